//! The OCSP responder's request decoding on arbitrary bytes: never panics;
//! what it accepts is within the bounds (size, 1..=MAX CertIDs, nonce
//! length).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_metacrypt::fuzzing::{
    MAX_OCSP_CERTS, MAX_OCSP_NONCE, MAX_OCSP_REQUEST, decode_ocsp_request,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = decode_ocsp_request(data) {
        assert!(data.len() <= MAX_OCSP_REQUEST);
        assert!((1..=MAX_OCSP_CERTS).contains(&req.ids.len()));
        assert!(
            req.nonce
                .as_ref()
                .is_none_or(|n| n.extn_value.as_bytes().len() <= MAX_OCSP_NONCE)
        );
    }
});
