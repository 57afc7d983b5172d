//! `Range` and `Content-Range` values: in-bounds answers, never a panic.
//! The first 8 bytes are the blob size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_mcr::registry::range::{RangeAnswer, content_range, range};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (size, rest) = data.split_at(8);
    let size = u64::from_le_bytes(size.try_into().unwrap_or([0; 8]));
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    if let RangeAnswer::Partial(r) = range(Some(s), size) {
        assert!(r.first <= r.last && r.last < size);
    }
    if let Some(r) = content_range(s) {
        assert!(r.first <= r.last);
    }
});
