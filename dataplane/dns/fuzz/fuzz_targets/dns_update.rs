//! MCNS UPDATE handling (RFC 2136 + TSIG) on arbitrary bytes: each message is
//! run as sent and re-signed with a key allowed for the zone, so mutations
//! reach the prerequisite and update sections; a valid response or a plan
//! that applies to a copy of the zone, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mc_dns::fuzzing::update(data));
