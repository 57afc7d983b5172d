//! mc-service: what a hosted control-plane service is built from.
//!
//! - [`auth`]: the one method → requirement map per process, the layer that
//!   enforces it on REST routes and gRPC methods alike, token verifiers.
//! - [`tls`]: rustls server configs from PEM files (TLS 1.3 only), the dev CA.

pub mod auth;
pub mod tls;
