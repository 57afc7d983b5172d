//! The Shamir share codec on arbitrary text: never panics; an accepted share
//! has an x in 1..=16.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_metacrypt::fuzzing::decode_share;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Some((_, x)) = decode_share(text)
    {
        assert!((1..=16).contains(&x));
    }
});
