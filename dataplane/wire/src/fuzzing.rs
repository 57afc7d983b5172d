//! Fuzz bodies shared by the `cargo fuzz` targets (`fuzz/`) and the property tests: each
//! runs a parser on arbitrary bytes and asserts its invariants. Not a stable API.
#![allow(clippy::panic)] // failing assertions are how these report

use crate::client_hello;
use crate::proxy_protocol::{self, Accept, Version};

/// ClientHello: never panics; a `Complete` fits in the input and depends only on its
/// records; a shorter prefix is `Incomplete`; a prefix's error means the whole errs too.
pub fn client_hello(data: &[u8]) {
    // The first byte picks a small bound now and then, to reach the TooLarge paths.
    let max_len = match data.first() {
        Some(&b) if b & 0x80 != 0 => usize::from(b) * 8,
        _ => client_hello::DEFAULT_MAX_LEN,
    };
    let data = data.get(1..).unwrap_or_default();
    let whole = client_hello::parse(data, max_len);
    if let Ok(client_hello::Parse::Complete(hello)) = &whole {
        let end = hello.record_bytes;
        assert!(
            end <= data.len() && end <= max_len,
            "record_bytes past the input"
        );
        let exact = data.get(..end).unwrap_or_default();
        assert_eq!(client_hello::parse(exact, max_len), whole);
        let short = data.get(..end.saturating_sub(1)).unwrap_or_default();
        assert_eq!(
            client_hello::parse(short, max_len),
            Ok(client_hello::Parse::Incomplete)
        );
    }
    for cut in [data.len() / 2, data.len().saturating_sub(1)] {
        let prefix = data.get(..cut).unwrap_or_default();
        match client_hello::parse(prefix, max_len) {
            Ok(client_hello::Parse::Incomplete) => {}
            Ok(complete) => assert_eq!(Ok(complete), whole),
            Err(e) => assert!(
                whole.is_err(),
                "prefix failed with {e} but the whole did not"
            ),
        }
    }
}

/// PROXY v1: as [`proxy_v2`], through the text form.
pub fn proxy_v1(data: &[u8]) {
    proxy(data, Accept::V1, Version::V1);
}

/// PROXY v2: never panics; a parsed header re-encodes to bytes that parse to the same
/// header; a shorter prefix is `Incomplete`.
pub fn proxy_v2(data: &[u8]) {
    proxy(data, Accept::V2, Version::V2);
}

fn proxy(data: &[u8], accept: Accept, version: Version) {
    let whole = proxy_protocol::parse(data, accept);
    if whole != Err(proxy_protocol::ProxyError::VersionNotAccepted) {
        assert_eq!(proxy_protocol::parse(data, Accept::Any), whole);
    }
    let Ok(proxy_protocol::Parse::Complete { header, consumed }) = whole else {
        return;
    };
    assert!(consumed <= data.len(), "consumed past the input");
    let short = data.get(..consumed.saturating_sub(1)).unwrap_or_default();
    assert_eq!(
        proxy_protocol::parse(short, accept),
        Ok(proxy_protocol::Parse::Incomplete)
    );
    let mut encoded = Vec::new();
    proxy_protocol::encode(&header, version, &mut encoded);
    let again = proxy_protocol::parse(&encoded, accept);
    let expected = proxy_protocol::Parse::Complete {
        header,
        consumed: encoded.len(),
    };
    assert_eq!(again, Ok(expected), "re-encoded header parsed differently");
}
