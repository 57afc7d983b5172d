//! mc-wire: the data plane's wire parsers.
//!
//! * [`client_hello`]: an incremental, bounded, total parser of the TLS ClientHello at the
//!   start of a TCP stream (SNI host name, ALPN), across any TLS record fragmentation and
//!   any TCP segmentation.
//! * [`proxy_protocol`]: PROXY protocol v1 (text) and v2 (binary) parsers and encoders.
//!
//! Everything here is a pure function over `&[u8]`: no I/O, no runtime, no panic on any
//! input, and no allocation in proportion to peer input beyond each parser's stated bound.
//! The parsers are stateless: callers pass all bytes received so far from the start of
//! the stream and call again when more arrive.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod client_hello;
pub mod proxy_protocol;

#[doc(hidden)]
pub mod fuzzing;

/// The crate's one error type: each parser's error nested as a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TLS ClientHello could not be accepted.
    #[error(transparent)]
    ClientHello(#[from] client_hello::ClientHelloError),
    /// The PROXY protocol header could not be accepted.
    #[error(transparent)]
    Proxy(#[from] proxy_protocol::ProxyError),
}
