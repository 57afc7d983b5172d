//! Root key rekey: a new root key and a new MEK, every DEK rewrapped under
//! the MEK and every slot's wrapping of the root replaced, in one write
//! transaction with its `barrier.rekey` audit row, so the same passphrase,
//! shares and key file still unseal. Each slot's key-wrapping key comes
//! from its own material: the passphrase (Argon2id with the slot's salt),
//! k shares of the current set, the configured key file; all of them are
//! needed (a slot whose material is missing would no longer open), and a
//! wrong one is refused, rate-limited and audited like an unseal.
//!
//! Invariants: nothing is written until every slot's material has opened
//! its slot; the old root key and MEK are gone when the transaction
//! commits (the store holds only the new wrappings); DEK values do not
//! change, so no sealed row is rewritten.

use std::sync::Arc;

use mc_kit::api::ApiError;
use mc_kit::store::json::WriteTx;
use zeroize::Zeroizing;

use super::keys::{Key, aad_dek, aad_mek, aad_slot, derive_kwk, unwrap_key, wrap};
use super::slots::{DekRecord, MekRecord};
use super::{Actor, Barrier, SealConfig, SlotKind, Unsealed, key_err, shamir};
use crate::store::{BARRIER_KEYS, BARRIER_MEK, BARRIER_SEAL, MEK_KEY, SEAL_KEY};

/// What a rekey needs: the material of every slot (a key file is read
/// from `key_file`, the configured auto-unseal path).
pub(crate) struct RekeyMaterial {
    pub(crate) passphrase: Option<Zeroizing<String>>,
    pub(crate) shares: Vec<Zeroizing<String>>,
    pub(crate) key_file: Option<std::path::PathBuf>,
}

/// The versions after a rekey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Rekeyed {
    pub(crate) root_version: u32,
    pub(crate) mek_version: u32,
}

/// Rewraps every DEK row of `tx` from `old` (the MEK the rows name) under
/// `mek` version `version` (MEK rotation and rekey).
pub(super) fn rewrap_deks(
    tx: &WriteTx,
    old: &Key,
    mek: &Key,
    version: u32,
) -> Result<(), ApiError> {
    for (k, dek) in super::dek_rows(tx)? {
        let (mount, v) = super::split_dek_key(&k)?;
        let plain =
            unwrap_key(old, &dek.wrapped, &aad_dek(mount, v, dek.mek_version)).map_err(key_err)?;
        tx.put(
            BARRIER_KEYS,
            &k,
            &DekRecord {
                mek_version: version,
                wrapped: wrap(mek, &plain, &aad_dek(mount, v, version)).map_err(key_err)?,
                created_at: dek.created_at,
            },
        )?;
    }
    Ok(())
}

/// Writes the MEK row: `mek` version `mek_version` wrapped under `root`
/// version `root_version` (init, MEK rotation, rekey).
pub(super) fn put_mek(
    tx: &WriteTx,
    root: &Key,
    mek: &Key,
    mek_version: u32,
    root_version: u32,
) -> Result<(), ApiError> {
    let wrapped = wrap(root, mek, &aad_mek(mek_version, root_version)).map_err(key_err)?;
    tx.put(
        BARRIER_MEK,
        MEK_KEY,
        &MekRecord {
            version: mek_version,
            root_version,
            wrapped,
        },
    )?;
    Ok(())
}

/// Each slot's key-wrapping key from `m`, in slot order; `Ok(None)` when
/// some material does not open its slot (wrong passphrase or shares);
/// `Err` when material is missing or a key file is unusable.
fn slot_kwks(cfg: &SealConfig, m: &RekeyMaterial) -> Result<Option<Vec<Key>>, ApiError> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for slot in &cfg.slots {
        let kwk = match &slot.kind {
            SlotKind::Passphrase { params, salt } => {
                let p = m.passphrase.as_ref().ok_or_else(|| {
                    ApiError::invalid("passphrase", "this barrier has a passphrase slot: give it")
                })?;
                let salt = base64::engine::general_purpose::STANDARD
                    .decode(salt)
                    .map_err(ApiError::internal)?;
                derive_kwk(p.as_bytes(), &salt, *params).map_err(key_err)?
            }
            SlotKind::Shamir { set_id, k, .. } => {
                if m.shares.is_empty() {
                    return Err(ApiError::invalid(
                        "shares",
                        "this barrier has a Shamir slot: give k of its shares",
                    ));
                }
                let shares = m
                    .shares
                    .iter()
                    .map(|t| shamir::decode(t))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| ApiError::invalid("shares", e.to_string()))?;
                if shares.iter().any(|s| s.set_id != *set_id) {
                    return Ok(None);
                }
                let Ok(kwk) = shamir::combine(&shares, *k) else {
                    return Ok(None);
                };
                Key::from_bytes(kwk)
            }
            SlotKind::Keyfile { .. } => {
                let unusable = |why: String| {
                    ApiError::FailedPrecondition(format!(
                        "keyfile slot {}: {why} (restore the file, or remove the slot first)",
                        slot.id
                    ))
                };
                let path = m
                    .key_file
                    .as_deref()
                    .ok_or_else(|| unusable("no auto_unseal_key_file is configured".to_owned()))?;
                super::keyfile::read_key_file(path).map_err(unusable)?
            }
        };
        if unwrap_key(
            &kwk,
            &slot.wrapped_root,
            &aad_slot(&slot.id, cfg.root_version),
        )
        .is_err()
        {
            if matches!(slot.kind, SlotKind::Keyfile { .. }) {
                return Err(ApiError::FailedPrecondition(format!(
                    "keyfile slot {}: the key file does not open it",
                    slot.id
                )));
            }
            return Ok(None);
        }
        out.push(kwk);
    }
    Ok(Some(out))
}

impl Barrier {
    /// A new root key and MEK (see the module header).
    pub(crate) async fn rekey_root(
        self: &Arc<Self>,
        material: RekeyMaterial,
        who: &Actor,
    ) -> Result<Rekeyed, ApiError> {
        let current = self.unsealed()?;
        if let Some(p) = &material.passphrase
            && (p.is_empty() || p.len() > super::MAX_PASSPHRASE_BYTES)
        {
            return Err(ApiError::invalid("passphrase", "1 to 1024 bytes"));
        }
        let cfg = self.config()?;
        let for_check = cfg.clone();
        let kwks = self
            .attempt("barrier.rekey", String::new(), who, move |_| {
                slot_kwks(&for_check, &material)
            })
            .await?;
        let me = self.clone();
        let who = who.clone();
        tokio::task::spawn_blocking(move || me.rekey_blocking(&current, cfg, &kwks, &who))
            .await
            .map_err(ApiError::internal)?
    }

    fn rekey_blocking(
        &self,
        current: &Arc<Unsealed>,
        mut cfg: SealConfig,
        kwks: &[Key],
        who: &Actor,
    ) -> Result<Rekeyed, ApiError> {
        let _changing = self.key_lock();
        let tx = WriteTx::begin(&self.store)?;
        let stored: SealConfig = tx
            .get(BARRIER_SEAL, SEAL_KEY)?
            .ok_or_else(|| ApiError::internal("no seal config"))?;
        let mek_rec: MekRecord = tx
            .get(BARRIER_MEK, MEK_KEY)?
            .ok_or_else(|| ApiError::internal("no MEK row"))?;
        let same_slots = stored
            .slots
            .iter()
            .map(|s| &s.id)
            .eq(cfg.slots.iter().map(|s| &s.id));
        if stored.root_version != current.root_version
            || mek_rec.version != current.mek_version
            || !same_slots
        {
            return Err(ApiError::FailedPrecondition(
                "the keys or slots changed meanwhile; retry".to_owned(),
            ));
        }
        let (root_version, mek_version) = (cfg.root_version + 1, mek_rec.version + 1);
        let (root, mek) = (
            Key::random().map_err(key_err)?,
            Key::random().map_err(key_err)?,
        );
        rewrap_deks(&tx, &current.mek, &mek, mek_version)?;
        put_mek(&tx, &root, &mek, mek_version, root_version)?;
        for (slot, kwk) in cfg.slots.iter_mut().zip(kwks) {
            slot.wrapped_root =
                wrap(kwk, &root, &aad_slot(&slot.id, root_version)).map_err(key_err)?;
        }
        cfg.root_version = root_version;
        tx.put(BARRIER_SEAL, SEAL_KEY, &cfg)?;
        let kinds: Vec<&str> = cfg.slots.iter().map(|s| s.kind.name()).collect();
        tx.audit(who.event(
            "barrier.rekey",
            "ok",
            format!(
                "root_version={root_version} mek_version={mek_version} slots={}",
                kinds.join(",")
            ),
        ))?;
        tx.commit()?;
        let mut next = current.copy()?;
        next.root_version = root_version;
        next.mek_version = mek_version;
        next.root = root;
        next.mek = mek;
        self.swap_unsealed(current, next);
        Ok(Rekeyed {
            root_version,
            mek_version,
        })
    }
}
