//! MCNS message handling on arbitrary bytes (UDP and TCP paths): a valid
//! response within the transport's limit, or silence; never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mc_dns::fuzzing::message(data));
