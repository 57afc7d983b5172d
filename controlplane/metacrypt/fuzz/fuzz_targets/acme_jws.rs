//! ACME's request decoding on arbitrary bytes: the flattened JWS, the
//! protected header (alg, nonce, url, kid|jwk, the JWK itself) and, when
//! the header embeds a key, signature verification. Never panics; what it
//! accepts is within the body bound, and a thumbprint is 43 characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_metacrypt::fuzzing::{AcmeJws, KeyRef, MAX_JWS_BYTES};

fuzz_target!(|data: &[u8]| {
    if let Ok(jws) = AcmeJws::parse(data) {
        assert!(data.len() <= MAX_JWS_BYTES);
        if let Ok(h) = jws.acme_header() {
            if let KeyRef::Jwk(key) = &h.key {
                assert_eq!(key.thumbprint().len(), 43);
                let _ = jws.verify(h.alg, key);
            }
        }
        let _ = jws.payload_json();
    }
});
