//! The operations over one Metacrypt state, by capability; REST and gRPC
//! adapters call these and nothing below them.
//!
//! Invariant: `core/` imports neither `api/` nor `ui/`; every engine
//! operation goes through [`Metacrypt::run`] (`run.rs`), which answers 503
//! `sealed` before any path or body is used, then checks policy and the
//! mount; every `sys` operation but status first takes the unsealed keys.

pub mod acme;
pub(crate) mod audit;
pub(crate) mod jobs;
pub(crate) mod kv;
pub(crate) mod metrics;
pub(crate) mod mounts;
pub(crate) mod pki;
pub(crate) mod pki_crl;
pub(crate) mod pki_ocsp;
pub(crate) mod policy;
pub(crate) mod run;
pub(crate) mod slots;
pub(crate) mod ssh;
pub(crate) mod sys;
pub(crate) mod tasks;
pub(crate) mod transit;
pub(crate) mod user;
pub(crate) mod view;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use arc_swap::ArcSwapOption;
use mc_kit::store::Store;
use mc_kit::store::audit::AuditEvent;

use crate::barrier::Barrier;
use crate::config::MetacryptConfig;
use crate::error::CryptError;

pub use crate::barrier::Status;
pub use crate::engines::kv::KvConfig;
pub use acme::{EabCreated, EabRequest};
pub use audit::{AuditPage, AuditQuery};
pub use jobs::{JobInfo, JobsView, RingInfo, RotatedDek, TaskInfo};
pub use kv::{
    KvConfigInput, KvDelete, KvList, KvMetadata, KvMetadataInput, KvOptions, KvRead, KvVersion,
    KvWrite,
};
pub use mc_service::caller::Caller;
pub use mounts::{Mount, MountInput, MountUpdate};
pub use pki::PublicPki;
pub use policy::{ExplainInput, Explained, PolicyCapability, PolicyEffect, PolicyRule, Subject};
pub use slots::{
    AddSlotInput, ChangePassphraseInput, Material, RekeyOutput, ReshareInput, Reshared, SlotAdded,
    SlotInfo,
};
pub use sys::{InitInput, InitOutput, UnsealInputBody};
pub use transit::{Answer, Batched, EncryptRequest, HmacRequest, SignRequest};
pub use user::{
    UserDecrypt, UserDecrypted, UserEncrypt, UserEncrypted, UserKeyInfo, UserKeyVersion,
};

/// The engine types a mount can have.
pub const MOUNT_TYPES: &[&str] = crate::engines::Engines::TYPES;

/// Metacrypt: the store and the barrier.
pub struct Metacrypt {
    store: Arc<Store>,
    barrier: Arc<Barrier>,
    config: MetacryptConfig,
    engines: crate::engines::Engines,
    view: ArcSwapOption<view::View>,
    generation: AtomicU64,
    /// The web UI's session verifier (MCIAS's), set once by the host.
    pub(crate) ui_verifier: std::sync::OnceLock<Arc<dyn mc_service::auth::TokenVerifier>>,
    /// ACME's Replay-Nonces (in memory by design: docs/design/acme.md).
    pub(crate) acme_nonces: crate::engines::pki::acme::nonce::Nonces,
    /// The background loop's wake-up and the tasks' last outcomes.
    pub(crate) jobs: jobs::Jobs,
    /// Engine requests by engine, operation and outcome (`core/metrics.rs`).
    pub(crate) requests: metrics::Requests,
}

/// An audit row for a change made by `c`.
pub(crate) fn event(c: &Caller, action: &str, target: &str, detail: String) -> AuditEvent {
    AuditEvent {
        at: mc_kit::clock::unix_now(),
        actor: c.actor(),
        action: action.to_owned(),
        target: target.to_owned(),
        source_ip: c.ip(),
        result: "ok".to_owned(),
        detail,
        ..AuditEvent::default()
    }
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
            engines: crate::engines::Engines::default(),
            view: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            ui_verifier: std::sync::OnceLock::new(),
            acme_nonces: Default::default(),
            jobs: jobs::Jobs::default(),
            requests: metrics::Requests::default(),
        })
    }

    pub fn config_ref(&self) -> &MetacryptConfig {
        &self.config
    }

    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// `Ok` while unsealed, else the one sealed answer; for adapters that
    /// must refuse before reading a path or body.
    pub fn require_unsealed(&self) -> Result<(), CryptError> {
        self.barrier.unsealed().map(|_| ())
    }
}
