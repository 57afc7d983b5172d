//! Token request scopes (`repository:<name>:<actions>`): never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = mc_mcr::fuzzing::scope(s);
    }
});
