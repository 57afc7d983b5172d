//! mc-service: what a hosted control-plane service is built from.
//!
//! - [`auth`]: the one method → requirement map per process, the layer that
//!   enforces it on REST routes and gRPC methods alike, token verifiers.
//! - [`hosted`]: [`hosted::HostedService`], what a service implements once so
//!   the host can mount it, and [`hosted::Mounted`], what the host builds.
//! - [`caller`]: [`caller::Caller`], the verified caller for axum and tonic.
//! - [`body`]: [`body::JsonBody`], a JSON body whose rejection is the kit's API error.
//! - [`tls`]: rustls server configs from PEM files (TLS 1.3 only), the dev CA.
//! - [`ui`]: what every web UI shares: the session cookie, the guard's
//!   session/admin/CSRF checks, [`ui::Csrf`], security headers and assets.

pub mod auth;
pub mod body;
pub mod caller;
pub mod hosted;
pub mod tls;
pub mod ui;
