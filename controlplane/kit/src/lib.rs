//! mc-kit: the platform's standard library.
//!
//! Every Metacircular service is built from these pieces so that each one
//! loads config, stores data, logs, serves and shuts down the same way:
//!
//! - [`config`]: TOML with typed sections, `MC_<SECTION>_<KEY>` env overrides,
//!   fail-closed validation that names the key and the file.
//! - [`store`]: redb files (0600), schema version + ordered migrations,
//!   consistent online snapshots, restore.
//! - [`telemetry`]: `tracing` setup, human or JSON.
//! - [`tls`]: rustls TLS 1.3 server configs from PEM; the dev CA.
//! - [`serve`]: REST (axum) and gRPC (tonic) over TLS, draining on shutdown.
//! - [`health`], [`metrics`]: `/healthz`, gRPC health, Prometheus `/metrics`.
//! - [`shutdown`]: one signal every task watches.
//! - [`version`]: the `git describe` string baked into every binary.

pub mod admin;
pub mod auth;
pub mod config;
pub mod health;
pub mod metrics;
pub mod serve;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod version;
