//! The pki engine's CSR path on arbitrary bytes (PEM or DER): decoding,
//! the signature check, the key type, then the role's name checks. Never
//! panics; what it accepts is within the bounds (size, 100 names) and has
//! a public key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_metacrypt::fuzzing::{MAX_CSR_BYTES, csr_names, parse_csr};

fuzz_target!(|data: &[u8]| {
    if let Ok(csr) = parse_csr(data) {
        assert!(data.len() <= MAX_CSR_BYTES);
        assert!(!csr.spki_der.is_empty());
        assert!(csr.dns.len() + csr.ips.len() <= 100);
        if let Some(n) = csr_names(&csr) {
            assert!((1..=101).contains(&n));
        }
    }
});
