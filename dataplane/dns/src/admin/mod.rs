//! The admin side of MCNS, on the data plane's tokio admin thread: the
//! `[dns]` config, the redb store, zone and record changes (from the admin
//! API and from RFC 2136 UPDATE), NOTIFY, and the `mc.dns.v1` gRPC adapter.
//!
//! Invariant: every change is validated, committed to `mcns.redb` and only
//! then published (one `ArcSwap::store` in [`crate::published`]); the
//! workers never call in here.

pub(crate) mod config;
pub(crate) mod grpc;
pub(crate) mod keys;
pub(crate) mod notify;
mod records;
pub(crate) mod serials;
pub(crate) mod state;
pub mod store;
pub(crate) mod update;
mod zones;
pub use grpc::Admin;
