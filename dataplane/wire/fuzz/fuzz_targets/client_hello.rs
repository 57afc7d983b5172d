//! TLS ClientHello parser on arbitrary bytes (the first byte may pick a small bound).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mc_wire::fuzzing::client_hello(data));
