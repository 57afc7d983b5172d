//! The engine seam. A mount has a name, a random never-reused 64-bit id, a
//! type, a description, a config and its own DEK ring; its type is an
//! [`Engine`].
//!
//! How an engine plugs in (kv is the worked example, `engines/kv/`):
//!
//! 1. Implement [`Engine`] (`TYPE`, plus [`MountHooks`]: config
//!    validation, the tables holding the mount's rows, `on_mount`,
//!    `on_unmount`, `on_seal`) and add one arm to [`Engines::get`].
//! 2. Describe each operation as a request type implementing
//!    [`crate::core::run::EngineOp`]: its mount, and the (policy path,
//!    capability) it needs, e.g. kv's read of `secret/data/a` is
//!    (`data/a`, `read`). That table *is* the engine's policy surface.
//! 3. Write the operation as a function taking an
//!    [`Authorized`](crate::core::run::Authorized) token (the unsealed keys,
//!    the store, the mount, the caller); only `Core::run` builds one, after
//!    the barrier (503 when sealed), policy (403) and mount-type (404)
//!    checks, in that order. The adapters call `Metacrypt::run(caller, &op,
//!    |auth| engine_fn(auth, …))` and nothing else.
//! 4. Store every row through `barrier::sealer` with keys starting with the
//!    mount id (`store::mount_key`), so the envelope's AAD binds each value
//!    to its mount and location.
//!
//! Invariant: engines never see unseal material, never call `put_raw` or
//! `get_raw` themselves, and never run without an `Authorized` token.

pub mod kv;
pub mod pki;
pub mod ssh;
pub mod transit;
pub mod user;

use mc_kit::store::Table;
use serde_json::Value;

use crate::error::CryptError;

/// What a mount type must answer outside of its operations (object-safe).
pub(crate) trait MountHooks: Send + Sync {
    /// Checks and normalises a mount's config (defaults filled in);
    /// `old` is the current config on update.
    fn validate_config(&self, old: Option<&Value>, config: Value) -> Result<Value, CryptError>;
    /// The tables holding this type's rows (keys start with the mount id);
    /// they are purged when the mount is deleted.
    fn tables(&self) -> &'static [Table];
    /// After a mount of this type is created (its ring installed).
    fn on_mount(&self, _mount: u64) {}
    /// After a mount is deleted: drop anything cached for it.
    fn on_unmount(&self, _mount: u64) {}
    /// After the barrier seals: drop every cache holding key material.
    fn on_seal(&self) {}
}

/// A mount type.
pub(crate) trait Engine: MountHooks {
    /// The `type` of its mounts (`kv`, `transit`…).
    const TYPE: &'static str;
}

/// Every mount type this build serves.
#[derive(Default)]
pub(crate) struct Engines {
    kv: kv::Kv,
    pki: pki::Pki,
    ssh: ssh::Ssh,
    transit: transit::engine::Transit,
    user: user::User,
}

impl Engines {
    /// The types, for error messages and the UI.
    pub(crate) const TYPES: &'static [&'static str] = &[
        kv::Kv::TYPE,
        transit::engine::Transit::TYPE,
        user::User::TYPE,
        pki::Pki::TYPE,
        ssh::Ssh::TYPE,
    ];

    pub(crate) fn get(&self, kind: &str) -> Option<&dyn MountHooks> {
        match kind {
            kv::Kv::TYPE => Some(&self.kv),
            transit::engine::Transit::TYPE => Some(&self.transit),
            user::User::TYPE => Some(&self.user),
            pki::Pki::TYPE => Some(&self.pki),
            ssh::Ssh::TYPE => Some(&self.ssh),
            _ => None,
        }
    }

    pub(crate) fn transit(&self) -> &transit::engine::Transit {
        &self.transit
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &dyn MountHooks> {
        Self::TYPES.iter().filter_map(|t| self.get(t))
    }
}
