//! The front door's relay: a caller's bytes for any relayed data-plane
//! method (byte 0 picks it; byte 1 and the next bytes give the system
//! account's label) are decoded with prost-reflect or refused, described
//! within bounds, mapped to JSON and back, and the record API's name rule
//! passes the account only for names under its label.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mc_master::relay_request(data);
});
