//! Keyfile slots and auto-unseal (opt-in). `add_keyfile_slot` (admin, with
//! the current passphrase) writes 32 random bytes 0600 to the configured
//! `auto_unseal_key_file` and adds a slot wrapping the root key under them
//! (replacing an older keyfile slot, as there is one path); at start,
//! `auto_unseal` opens the barrier from that file.
//!
//! Trade-off (README): whoever holds both the store and the key file reads
//! every secret, so the file belongs on separate storage; either alone is
//! useless. Invariants: the file is written (and synced) before the slot
//! commits, so a slot never names a file that was not written; a missing,
//! loose-permission, damaged or foreign file leaves the barrier sealed, is
//! logged with its reason and audited, and never counts against the unseal
//! back-off (the passphrase still unseals).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::Arc;

use mc_kit::api::ApiError;
use mc_kit::store::json::WriteTx;
use serde::Serialize;
use zeroize::Zeroizing;

use super::keys::{Key, aad_slot, unwrap_key, wrap};
use super::{Actor, Barrier, SealConfig, Slot, SlotKind, State, Status, key_err};
use crate::store::{BARRIER_SEAL, SEAL_KEY};

/// A slot as listed (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotInfo {
    pub id: String,
    pub kind: String,
}

/// The first 8 bytes of SHA-256 of the key file's bytes, hex.
fn key_id(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` to `path` with mode 0600 (via a synced temporary file
/// renamed into place).
fn write_key_file(path: &Path, bytes: &[u8]) -> Result<(), ApiError> {
    let parent = path.parent().filter(|p| p.is_dir()).ok_or_else(|| {
        ApiError::FailedPrecondition(format!(
            "auto_unseal_key_file {}: its directory does not exist",
            path.display()
        ))
    })?;
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(parent)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ApiError::FailedPrecondition(format!("auto_unseal_key_file {}: {e}", path.display()))
    })
}

/// Reads the key file: exactly 32 bytes, owner-only permissions.
pub(super) fn read_key_file(path: &Path) -> Result<Key, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "its permissions are {mode:04o}: it must be readable by its owner only (0600)"
        ));
    }
    if meta.len() != 32 {
        return Err(format!("damaged: {} bytes, not 32", meta.len()));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| "damaged: not 32 bytes".to_owned())?;
    Ok(Key::from_bytes(Zeroizing::new(arr)))
}

impl Barrier {
    /// The slots (ids and kinds).
    pub(crate) fn slots(&self) -> Result<Vec<SlotInfo>, ApiError> {
        Ok(self
            .config()?
            .slots
            .iter()
            .map(|s| SlotInfo {
                id: s.id.clone(),
                kind: s.kind.name().to_owned(),
            })
            .collect())
    }

    /// Checks `passphrase` against a passphrase slot (rate-limited like an
    /// unseal, one derivation at a time, refusals audited as `action`).
    pub(crate) async fn verify_passphrase(
        self: &Arc<Self>,
        passphrase: Zeroizing<String>,
        action: &str,
        who: &Actor,
    ) -> Result<(), ApiError> {
        self.root_from(super::rekey::Material::Passphrase(passphrase), action, who)
            .await
            .map(|_| ())
    }

    /// Writes a new key file at `path` and adds its slot (replacing any
    /// older keyfile slot); needs the barrier unsealed and the passphrase.
    pub(crate) async fn add_keyfile_slot(
        self: &Arc<Self>,
        passphrase: Zeroizing<String>,
        path: &Path,
        who: &Actor,
    ) -> Result<SlotInfo, ApiError> {
        let keys = self.unsealed()?;
        self.verify_passphrase(passphrase, "barrier.slot_add", who)
            .await?;
        let _changing = self.key_lock();
        let file_key = Key::random().map_err(key_err)?;
        let kid = key_id(file_key.bytes());
        let id = format!("keyfile-{kid}");
        let tx = WriteTx::begin(&self.store)?;
        let mut cfg: SealConfig = tx
            .get(BARRIER_SEAL, SEAL_KEY)?
            .ok_or_else(|| ApiError::internal("no seal config"))?;
        if cfg.root_version != keys.root_version {
            return Err(ApiError::FailedPrecondition(
                "the root key changed; retry".to_owned(),
            ));
        }
        let wrapped_root =
            wrap(&file_key, &keys.root, &aad_slot(&id, cfg.root_version)).map_err(key_err)?;
        let replaced: Vec<String> = cfg
            .slots
            .iter()
            .filter(|s| matches!(s.kind, SlotKind::Keyfile { .. }))
            .map(|s| s.id.clone())
            .collect();
        cfg.slots
            .retain(|s| !matches!(s.kind, SlotKind::Keyfile { .. }));
        cfg.slots.push(Slot {
            id: id.clone(),
            kind: SlotKind::Keyfile {
                key_id: kid.clone(),
            },
            wrapped_root,
        });
        tx.put(BARRIER_SEAL, SEAL_KEY, &cfg)?;
        tx.audit(who.event(
            "barrier.slot_add",
            "ok",
            format!("slot=keyfile id={id} replaced={}", replaced.join(",")),
        ))?;
        // The file first: a committed slot always has its file.
        write_key_file(path, file_key.bytes())?;
        tx.commit()?;
        tracing::warn!(path = %path.display(), slot = %id, "metacrypt: keyfile slot added; whoever holds the store and this file reads every secret");
        Ok(SlotInfo {
            id,
            kind: "keyfile".to_owned(),
        })
    }

    /// Unseals from the key file at `path` (at start). On failure the
    /// barrier stays sealed and the error says why.
    pub(crate) fn auto_unseal(&self, path: &Path) -> Result<Status, ApiError> {
        if !matches!(&**self.state.load(), State::Sealed) {
            return self.status();
        }
        let who = Actor {
            actor: "auto-unseal".to_owned(),
            ip: String::new(),
        };
        let refuse = |why: String| -> Result<Status, ApiError> {
            self.audit_only(who.event(
                "barrier.unseal",
                "denied",
                format!("slot=keyfile via=keyfile reason={why}"),
            ))?;
            Err(ApiError::FailedPrecondition(format!(
                "key file {}: {why}",
                path.display()
            )))
        };
        let file_key = match read_key_file(path) {
            Ok(k) => k,
            Err(why) => return refuse(why),
        };
        let kid = key_id(file_key.bytes());
        let cfg = self.config()?;
        let Some(slot) = cfg
            .slots
            .iter()
            .find(|s| matches!(&s.kind, SlotKind::Keyfile { key_id } if *key_id == kid))
        else {
            return refuse("it matches no keyfile slot (removed, replaced or damaged)".to_owned());
        };
        let root = match unwrap_key(
            &file_key,
            &slot.wrapped_root,
            &aad_slot(&slot.id, cfg.root_version),
        ) {
            Ok(r) => r,
            Err(_) => return refuse("it does not open its slot (damaged)".to_owned()),
        };
        let unsealed = self.load_keys(root)?;
        self.audit_only(who.event(
            "barrier.unseal",
            "ok",
            "slot=keyfile via=keyfile".to_owned(),
        ))?;
        self.state
            .store(Arc::new(State::Unsealed(Arc::new(unsealed))));
        tracing::info!(path = %path.display(), "metacrypt unsealed from its key file");
        self.status()
    }
}
