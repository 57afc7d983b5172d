//! `sys/mounts`: list, get, create, update, delete (Admin in the map; not
//! policy-governed). A mount row lives in `mounts` (sealed under `sys`),
//! its DEK ring in `barrier_keys`.
//!
//! Invariants: creating a mount writes its row, its DEK ring and the audit
//! row in one transaction; deleting one removes the row, the ring (so its
//! data is unreadable the moment it commits), every row of the engine's
//! tables under its id and the audit row in one transaction. `sys` and the
//! Vault facade's first segments are reserved names.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Caller, Metacrypt, event};
use crate::barrier::SYS_MOUNT;
use crate::barrier::sealer::{get_sealed, purge_prefix, put_sealed};
use crate::engines::Engines;
use crate::error::CryptError;
use crate::store::{MOUNTS, mount_key, sys_key};
use mc_kit::store::json::WriteTx;

/// At most this many mounts.
pub(crate) const MAX_MOUNTS: usize = 256;
/// Names a mount may not take (the native `sys` tree and the facade's).
pub(crate) const RESERVED: &[&str] = &[
    "sys",
    "auth",
    "iam",
    "sso",
    "crypt",
    "identity",
    "cubbyhole",
    "oauth2",
    "ui",
];
const MAX_DESCRIPTION: usize = 256;

/// A mount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    pub id: u64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    pub config: Value,
    pub created_at: i64,
}

/// `POST sys/mounts`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountInput {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub config: Option<Value>,
}

/// `PATCH sys/mounts/{mount}`: what is given changes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountUpdate {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub config: Option<Value>,
}

/// `[a-z][a-z0-9_-]{0,62}`, not reserved.
pub(crate) fn check_name(name: &str) -> Result<(), CryptError> {
    let mut chars = name.chars();
    let ok = name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok {
        return Err(CryptError::invalid("name", "[a-z][a-z0-9_-]{0,62}"));
    }
    if RESERVED.contains(&name) {
        return Err(CryptError::invalid("name", format!("{name} is reserved")));
    }
    Ok(())
}

fn check_description(d: &str) -> Result<(), CryptError> {
    if d.len() > MAX_DESCRIPTION || d.chars().any(char::is_control) {
        return Err(CryptError::invalid(
            "description",
            "at most 256 bytes, no control characters",
        ));
    }
    Ok(())
}

fn random_id() -> Result<u64, CryptError> {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| CryptError::internal("no randomness"))?;
    Ok(u64::from_be_bytes(b))
}

impl Metacrypt {
    pub(crate) fn engines(&self) -> &Engines {
        &self.engines
    }

    pub fn list_mounts(&self) -> Result<Vec<Mount>, CryptError> {
        let keys = self.barrier.unsealed()?;
        Ok(self.view(&keys)?.mounts.values().cloned().collect())
    }

    pub fn get_mount(&self, name: &str) -> Result<Mount, CryptError> {
        let keys = self.barrier.unsealed()?;
        self.view(&keys)?
            .mounts
            .get(name)
            .cloned()
            .ok_or_else(|| CryptError::NotFound(format!("no mount named {name}")))
    }

    pub fn create_mount(&self, c: &Caller, input: MountInput) -> Result<Mount, CryptError> {
        self.barrier.unsealed()?;
        check_name(&input.name)?;
        check_description(&input.description)?;
        let engine = self.engines.get(&input.kind).ok_or_else(|| {
            CryptError::invalid("type", format!("one of {}", Engines::TYPES.join(", ")))
        })?;
        let config = engine
            .validate_config(None, input.config.unwrap_or(Value::Null))
            .map_err(|e| match e {
                CryptError::Invalid(i) => CryptError::Invalid(i.under("config")),
                e => e,
            })?;
        let _changing = self.barrier.key_lock();
        // Taken under the lock: the keys may have changed while waiting.
        let keys = self.barrier.unsealed()?;
        let tx = WriteTx::begin(&self.store)?;
        let row = sys_key(&input.name);
        if tx.get_raw(MOUNTS, &row)?.is_some() {
            return Err(CryptError::AlreadyExists(format!(
                "a mount named {} exists",
                input.name
            )));
        }
        if self.view(&keys)?.mounts.len() >= MAX_MOUNTS {
            return Err(CryptError::FailedPrecondition(format!(
                "at most {MAX_MOUNTS} mounts"
            )));
        }
        let mut id = random_id()?;
        while id == SYS_MOUNT || keys.has_ring(id) {
            id = random_id()?;
        }
        let mount = Mount {
            id,
            name: input.name.clone(),
            kind: input.kind.clone(),
            description: input.description,
            config,
            created_at: mc_kit::clock::unix_now(),
        };
        put_sealed(&tx, &keys, SYS_MOUNT, MOUNTS, &row, &mount)?;
        let ring = self.barrier.create_ring(&tx, &keys, id)?;
        tx.audit(event(
            c,
            "mount.create",
            &mount.name,
            format!("type={}", mount.kind),
        ))?;
        tx.commit()?;
        self.barrier.install_ring(&keys, ring)?;
        self.changed();
        engine.on_mount(id);
        Ok(mount)
    }

    pub fn update_mount(
        &self,
        c: &Caller,
        name: &str,
        input: MountUpdate,
    ) -> Result<Mount, CryptError> {
        let keys = self.barrier.unsealed()?;
        if let Some(d) = &input.description {
            check_description(d)?;
        }
        let tx = WriteTx::begin(&self.store)?;
        let row = sys_key(name);
        let mut mount: Mount = get_sealed(&tx, &keys, SYS_MOUNT, MOUNTS, &row)?
            .ok_or_else(|| CryptError::NotFound(format!("no mount named {name}")))?;
        if let Some(config) = input.config {
            let engine = self
                .engines
                .get(&mount.kind)
                .ok_or_else(|| CryptError::internal("a mount of an unknown type"))?;
            mount.config = engine
                .validate_config(Some(&mount.config), config)
                .map_err(|e| match e {
                    CryptError::Invalid(i) => CryptError::Invalid(i.under("config")),
                    e => e,
                })?;
        }
        if let Some(d) = input.description {
            mount.description = d;
        }
        put_sealed(&tx, &keys, SYS_MOUNT, MOUNTS, &row, &mount)?;
        tx.audit(event(c, "mount.update", name, String::new()))?;
        tx.commit()?;
        self.changed();
        Ok(mount)
    }

    /// Deletes a mount and everything in it.
    pub fn delete_mount(&self, c: &Caller, name: &str) -> Result<(), CryptError> {
        self.barrier.unsealed()?;
        let _changing = self.barrier.key_lock();
        let keys = self.barrier.unsealed()?;
        let tx = WriteTx::begin(&self.store)?;
        let row = sys_key(name);
        let mount: Mount = get_sealed(&tx, &keys, SYS_MOUNT, MOUNTS, &row)?
            .ok_or_else(|| CryptError::NotFound(format!("no mount named {name}")))?;
        tx.delete(MOUNTS, &row)?;
        self.barrier.delete_ring(&tx, mount.id)?;
        self.barrier.delete_job(&tx, mount.id)?;
        let mut rows = 0;
        if let Some(engine) = self.engines.get(&mount.kind) {
            for table in engine.tables() {
                rows += purge_prefix(&tx, *table, &mount_key(mount.id, b""))?;
            }
        }
        tx.audit(event(
            c,
            "mount.delete",
            name,
            format!("type={} rows={rows}", mount.kind),
        ))?;
        tx.commit()?;
        self.barrier.drop_ring(&keys, mount.id)?;
        self.changed();
        if let Some(engine) = self.engines.get(&mount.kind) {
            engine.on_unmount(mount.id);
        }
        Ok(())
    }
}
