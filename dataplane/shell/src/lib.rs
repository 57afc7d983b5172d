//! mc-shell: the process shell every `mcd` process runs in.
//!
//! - [`serve`]: REST (axum) and gRPC (tonic, mounted as axum routers) over
//!   TCP with TLS or a Unix socket, with limits and a draining shutdown.
//! - [`health`]: `/healthz` and the standard gRPC health service.
//! - [`metrics`]: the process registry, request metrics, `/metrics`.
//! - [`admin`]: the 0600 admin socket (`mc.admin.v1`): status, snapshots.
//!
//! Architecture invariant: nothing here knows a service or a token; the
//! data-plane host uses it as much as the control plane does.

pub mod admin;
pub mod health;
pub mod metrics;
pub mod serve;
