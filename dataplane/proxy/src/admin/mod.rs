//! The admin side: runs on the data plane's tokio admin thread. It validates
//! requests, writes redb, and builds and publishes snapshots through
//! [`crate::published`].
//!
//! Invariant: the worker side never imports this module; everything a worker
//! needs reaches it through `published.rs`.

mod backends;
mod certificates;
pub(crate) mod config;
mod firewall;
mod grpc;
mod grpc_balance;
mod grpc_managed;
mod grpc_paths;
mod grpc_policy;
mod health;
mod listeners;
mod managed;
mod policies;
mod reload;
mod routes;
mod state;
pub mod store;
mod sweeper;

use mc_kit::api::ApiError;

pub use grpc::Admin;
pub use listeners::HandedOver;
pub use managed::{
    AcmeClient, AcmeFuture, AcmeIssued, AcmeOrder, AcmeSection, CsrMaker, ManagedCollector,
    MetacryptSource, start as start_managed,
};
pub use reload::{Reload, Reloaded};
pub(crate) use routes::MAX_ROUTES_PER_REPLACE;
pub use state::ProxyState;

/// Why the proxy did not start: the admin side's [`ApiError`], as the host
/// reports it. Admin calls answer `ApiError` itself (its one gRPC mapping).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct AdminError(#[from] ApiError);
