//! MCR: the platform's OCI registry (distribution-spec 1.1), a hosted
//! control-plane service serving `/v2/` on the control plane's REST
//! listener, with Docker token auth backed by MCIAS.
//!
//! Layout: `registry/` is the `/v2` API (route, auth, uploads, blobs,
//! manifests, tags; pure parsers in `digest`, `range`, `route`,
//! `manifest`), `core/` the operations over the store, `storage/` the blob
//! files, `store.rs` the tables. See docs/design/mcr.md.

mod api;
pub mod config;
mod core;
pub mod error;
mod gc;
mod hosted;
pub mod methods;
pub mod model;
mod policy;
pub mod registry;
mod storage;
mod store;
pub mod ui;

use std::sync::Arc;

pub use config::McrConfig;

/// The registry service.
pub struct Mcr {
    core: core::Core,
    sessions: core::uploads::Sessions,
    auth: registry::auth::Auth,
    policy: Arc<policy::Policy>,
    config: McrConfig,
    gc: gc::Gc,
    /// MCIAS's verifier, for the UI's session cookie (none: nobody signs in).
    ui_verifier: Option<Arc<dyn mc_service::auth::TokenVerifier>>,
}

impl Mcr {
    fn store(&self) -> Arc<mc_kit::store::Store> {
        self.core.store.clone()
    }
}

/// Entry points for the fuzz targets (`controlplane/mcr/fuzz`); not an API.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses a token request's `scope` (must never panic).
    pub fn scope(s: &str) -> bool {
        crate::registry::auth::parse_scope(s).is_some()
    }
}
