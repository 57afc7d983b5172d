//! The at-rest envelope parser on arbitrary bytes: never panics, and what it
//! accepts is consistent with the bytes (header, version, nonce, body).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_metacrypt::fuzzing::parse_envelope;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = parse_envelope(data) {
        assert_eq!(env.header, &data[..9]);
        assert!(env.dek_version >= 1);
        assert_eq!(&env.nonce[..], &data[9..21]);
        assert_eq!(env.sealed, &data[21..]);
        assert!(env.sealed.len() >= 16, "the tag is always there");
    }
});
