//! The ssh engine's sign request on arbitrary bytes: JSON decoding, the
//! profile's principal/TTL/option checks, then the OpenSSH public key
//! parser. Never panics; an accepted request has 1 to 64 principals, each
//! one the profile allows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_metacrypt::fuzzing::ssh_sign_request;

fuzz_target!(|data: &[u8]| {
    if let Some(principals) = ssh_sign_request(data) {
        assert!((1..=64).contains(&principals.len()));
        for p in principals {
            assert!(p == "alice" || p.starts_with("deploy-"), "{p}");
        }
    }
});
