//! The admin side: runs on the data plane's tokio admin thread. It validates
//! requests, writes redb, and builds and publishes snapshots through
//! [`crate::published`].
//!
//! Invariant: the worker side never imports this module; everything a worker
//! needs reaches it through `published.rs`.

mod certificates;
pub(crate) mod config;
mod firewall;
mod grpc;
mod listeners;
mod policies;
mod routes;
mod state;
pub mod store;
mod sweeper;

use mc_kit::store::StoreError;

use crate::model::Invalid;

pub use grpc::Admin;
pub(crate) use routes::MAX_ROUTES_PER_REPLACE;
pub use state::ProxyState;

/// Why an admin call was refused; maps one-to-one onto gRPC codes.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    InvalidArgument(#[from] Invalid),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<AdminError> for tonic::Status {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::InvalidArgument(i) => Self::invalid_argument(i.to_string()),
            AdminError::NotFound(m) => Self::not_found(m),
            AdminError::FailedPrecondition(m) => Self::failed_precondition(m),
            AdminError::Internal(m) => Self::internal(m),
        }
    }
}
