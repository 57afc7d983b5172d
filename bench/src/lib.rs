//! Inputs shared by the mc-bench benchmarks (`cargo bench -p mc-bench`).
//!
//! The benchmarks use only the public API of the crates they measure, so they
//! keep compiling as those crates evolve. Results are summarised in
//! docs/PERFORMANCE.md.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// Deterministic pseudo-random numbers (splitmix64), so every run measures
/// the same inputs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn v4(&mut self) -> Ipv4Addr {
        Ipv4Addr::from(self.next_u64() as u32)
    }

    /// A global unicast (2000::/3) address, like real peers.
    pub fn v6(&mut self) -> Ipv6Addr {
        let bits = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        Ipv6Addr::from((bits >> 3) | (1 << 125))
    }
}

/// The first flight of a real rustls 0.23 client (aws-lc-rs provider, TLS 1.3
/// and 1.2, SNI `sni`, ALPN h2 + http/1.1): one TLS record holding the
/// ClientHello, as MC-Proxy sees it on the wire.
pub fn client_hello(sni: &str) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the provider supports the default versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).expect("a DNS name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("write to a Vec");
    }
    out
}

/// The same ClientHello re-framed into records of at most `chunk` bytes of
/// handshake data each (a ClientHello split over several TLS records).
pub fn fragment_records(hello: &[u8], chunk: usize) -> Vec<u8> {
    let body = &hello[5..];
    let mut out = Vec::with_capacity(hello.len() + body.len() / chunk * 5 + 5);
    for part in body.chunks(chunk) {
        out.extend_from_slice(&hello[..3]);
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}
