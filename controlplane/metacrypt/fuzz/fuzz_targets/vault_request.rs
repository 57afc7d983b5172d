//! The Vault facade's request decoding on arbitrary input: the first line
//! is `METHOD path?query` (the path after `/v1/`), the rest the body.
//! Decoding never panics, whatever the method, path, query or body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_metacrypt::fuzzing::vault_request_accepts;

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(head) = std::str::from_utf8(head) else { return };
    let (method, target) = head.split_once(' ').unwrap_or((head, ""));
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let _ = vault_request_accepts(method, path, query, body);
});
