//! Digest strings: what parses prints back identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_mcr::registry::digest::Digest;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(d.to_string(), s);
    }
});
