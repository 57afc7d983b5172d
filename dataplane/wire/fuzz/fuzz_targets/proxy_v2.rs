//! PROXY v2 parser on arbitrary bytes; parsed headers re-encode and re-parse equal.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mc_wire::fuzzing::proxy_v2(data));
