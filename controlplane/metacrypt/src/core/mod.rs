//! The operations over one Metacrypt state, by capability; REST and gRPC
//! adapters call these and nothing below them.
//!
//! Invariant: `core/` imports neither `api/` nor `ui/`; every engine
//! operation (none yet) will first take [`Metacrypt::unsealed`], which
//! answers 503 `sealed` before any path or body is read.

pub(crate) mod sys;

use std::path::Path;
use std::sync::Arc;

use mc_kit::store::Store;

use crate::barrier::{Barrier, Unsealed};
use crate::config::MetacryptConfig;
use crate::error::CryptError;

pub use crate::barrier::Status;
pub use mc_service::caller::Caller;
pub use sys::{InitInput, InitOutput, UnsealInputBody};

/// Metacrypt: the store and the barrier.
pub struct Metacrypt {
    store: Arc<Store>,
    barrier: Arc<Barrier>,
    #[allow(dead_code)]
    config: MetacryptConfig,
}

impl std::fmt::Debug for Metacrypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metacrypt").finish_non_exhaustive()
    }
}

impl Metacrypt {
    /// Opens `<dir>/metacrypt.redb`; the barrier starts Sealed (or
    /// Uninitialized on a new store).
    pub fn open(path: &Path, config: MetacryptConfig) -> Result<Self, CryptError> {
        let store =
            Arc::new(Store::open(path, &crate::store::SCHEMA).map_err(CryptError::internal)?);
        let barrier = Arc::new(Barrier::open(store.clone(), &config)?);
        Ok(Self {
            store,
            barrier,
            config,
        })
    }

    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// The unsealed keys, or 503 `sealed`: the hook every engine operation
    /// takes first (no engine exists yet).
    #[allow(dead_code)]
    pub(crate) fn unsealed(&self) -> Result<Arc<Unsealed>, CryptError> {
        self.barrier.unsealed()
    }

    /// `Ok` while unsealed, else the one sealed answer; for adapters that
    /// must refuse before reading a path or body.
    pub fn require_unsealed(&self) -> Result<(), CryptError> {
        self.barrier.unsealed().map(|_| ())
    }
}
