//! mc-kit: the platform's standard library, safe for the data plane.
//!
//! Every Metacircular crate loads config, stores data, logs and shuts down
//! the same way with these pieces:
//!
//! - [`config`]: TOML with typed sections, `MC_<SECTION>_<KEY>` env overrides,
//!   fail-closed validation that names the key and the file.
//! - [`store`]: redb files (0600), schema version + ordered migrations,
//!   consistent online snapshots, restore.
//! - [`telemetry`]: `tracing` setup, human or JSON.
//! - [`metrics`]: the row encoder for scrape-time collectors.
//! - [`api`]: [`api::Invalid`] and [`api::ApiError`], mapped once to gRPC and HTTP.
//! - [`store::json`], [`store::audit`]: typed JSON tables, transactions, the audit log.
//! - [`seal`]: values sealed at rest, bound to their table and key.
//! - [`ephemeral`]: bounded single-use values with a TTL.
//! - [`origin`]: config file vs admin API, the file wins.
//! - [`clock`]: Unix seconds.
//! - [`shutdown`]: one signal every task watches.
//! - [`version`]: the `git describe` string baked into every binary.
//!
//! Architecture invariant: no HTTP server, no auth, no certificate
//! generation here — the data-plane engines link this crate, and serving
//! lives in `mc-shell`, tokens and TLS in `mc-service`.

pub mod api;
pub mod clock;
pub mod config;
pub mod ephemeral;
pub mod metrics;
pub mod origin;
pub mod seal;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod version;
