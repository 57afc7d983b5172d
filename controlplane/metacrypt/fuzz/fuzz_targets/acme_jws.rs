//! ACME's request decoding on arbitrary bytes: the flattened JWS, the
//! protected header (alg, nonce, url, kid|jwk, the JWK itself) and, when
//! the header embeds a key, signature verification; a JSON payload is also
//! decoded as key-change's inner JWS (its header rules and signature).
//! Never panics; what it accepts is within the body bound, and a
//! thumbprint is 43 characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_metacrypt::fuzzing::{AcmeJws, KeyRef, MAX_JWS_BYTES, acme_key_change_inner};

fuzz_target!(|data: &[u8]| {
    if let Ok(jws) = AcmeJws::parse(data) {
        assert!(data.len() <= MAX_JWS_BYTES);
        if let Ok(h) = jws.acme_header() {
            if let KeyRef::Jwk(key) = &h.key {
                assert_eq!(key.thumbprint().len(), 43);
                let _ = jws.verify(h.alg, key);
            }
        }
        if let Ok(payload) = jws.payload_json() {
            let _ = acme_key_change_inner(&payload, "https://acme.test/key-change");
        }
    }
});
