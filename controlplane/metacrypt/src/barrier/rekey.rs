//! Slot changes: a new passphrase, a new Shamir split, removing a slot.
//! Each needs the current unseal material (a passphrase, or k shares of
//! the current set), checked and rate-limited like an unseal; the root key,
//! MEK and DEKs do not change, only the slots that wrap the root key.
//!
//! Invariants: the material is checked before anything is written; a slot
//! change and its audit row commit in one transaction; the last slot is
//! never removed; a replaced passphrase or Shamir slot no longer opens
//! (its wrapping is gone from `barrier_seal`).

use std::sync::Arc;
use std::time::Instant;

use mc_kit::api::ApiError;
use mc_kit::store::json::WriteTx;
use zeroize::Zeroizing;

use super::keyfile::SlotInfo;
use super::keys::{Key, aad_slot, derive_kwk, unwrap_key, wrap};
use super::{Actor, Barrier, SealConfig, Slot, SlotKind, key_err, shamir};
use crate::store::{BARRIER_SEAL, SEAL_KEY};

/// Current unseal material, proving the caller may change the slots.
pub(crate) enum Material {
    Passphrase(Zeroizing<String>),
    Shares(Vec<Zeroizing<String>>),
}

fn random_id(kind: &str) -> Result<String, ApiError> {
    let mut b = [0u8; 4];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| ApiError::internal("no randomness"))?;
    Ok(format!(
        "{kind}-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    ))
}

impl Barrier {
    /// The root key `material` opens: rate-limited and one derivation at a
    /// time like an unseal; a refusal is audited as `action` and backs off.
    pub(crate) async fn root_from(
        self: &Arc<Self>,
        material: Material,
        action: &str,
        who: &Actor,
    ) -> Result<Key, ApiError> {
        let kind = match &material {
            Material::Passphrase(p) => {
                if p.is_empty() || p.len() > super::MAX_PASSPHRASE_BYTES {
                    return Err(ApiError::invalid("passphrase", "1 to 1024 bytes"));
                }
                "passphrase"
            }
            Material::Shares(s) if s.is_empty() => {
                return Err(ApiError::invalid(
                    "passphrase",
                    "give the current passphrase or the current shares",
                ));
            }
            Material::Shares(_) => "shamir",
        };
        // Shares are checked (typos, format) before they count as an attempt.
        let shares = match &material {
            Material::Shares(s) => s
                .iter()
                .map(|t| shamir::decode(t))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ApiError::invalid("shares", e.to_string()))?,
            Material::Passphrase(_) => Vec::new(),
        };
        self.attempt(
            action,
            format!("slot={kind}"),
            who,
            move |me| match material {
                Material::Passphrase(p) => me.passphrase_root(&p),
                Material::Shares(_) => me.shares_root(&shares),
            },
        )
        .await
    }

    /// One check of unseal material, as an unseal attempt is: the back-off
    /// first (a refusal audited `rate_limited` as `action`), one derivation
    /// at a time, `check` on the blocking pool; its `Ok(None)` (the
    /// material does not open) backs off, is audited `denied` and is 403.
    pub(super) async fn attempt<T: Send + 'static>(
        self: &Arc<Self>,
        action: &str,
        detail: String,
        who: &Actor,
        check: impl FnOnce(&Barrier) -> Result<Option<T>, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        if let Err(secs) = self.backoff.check(Instant::now()) {
            self.audit_only(who.event(action, "rate_limited", detail))?;
            return Err(ApiError::RateLimited(format!(
                "too many failed attempts: retry in {secs}s"
            )));
        }
        let Ok(permit) = tokio::time::timeout(self.wait, self.derivation.acquire()).await else {
            return Err(ApiError::RateLimited(
                "another unseal attempt is running".to_owned(),
            ));
        };
        let _permit = permit.map_err(ApiError::internal)?;
        let me = self.clone();
        let found = tokio::task::spawn_blocking(move || check(&me))
            .await
            .map_err(ApiError::internal)??;
        let Some(found) = found else {
            self.backoff.failure(Instant::now());
            self.audit_only(who.event(action, "denied", detail))?;
            return Err(ApiError::Forbidden("wrong passphrase or shares".to_owned()));
        };
        self.backoff.success();
        Ok(found)
    }

    /// The root key k shares of the current Shamir set open, if they do.
    fn shares_root(&self, shares: &[shamir::Share]) -> Result<Option<Key>, ApiError> {
        let cfg = self.config()?;
        let Some((slot, set_id, k)) = cfg.slots.iter().find_map(|s| match s.kind {
            SlotKind::Shamir { set_id, k, .. } => Some((s, set_id, k)),
            _ => None,
        }) else {
            return Err(ApiError::invalid(
                "shares",
                "this barrier has no Shamir slot",
            ));
        };
        if shares.iter().any(|s| s.set_id != set_id) {
            return Ok(None);
        }
        let Ok(kwk) = shamir::combine(shares, k) else {
            return Ok(None);
        };
        Ok(unwrap_key(
            &Key::from_bytes(kwk),
            &slot.wrapped_root,
            &aad_slot(&slot.id, cfg.root_version),
        )
        .ok())
    }

    /// Removes the slots `remove` picks and adds `add`, with its audit row.
    fn replace_slots(
        &self,
        root_version: u32,
        remove: impl Fn(&Slot) -> bool,
        add: Option<Slot>,
        audit: (&str, String),
        who: &Actor,
    ) -> Result<(), ApiError> {
        let _changing = self.key_lock();
        let tx = WriteTx::begin(&self.store)?;
        let mut cfg: SealConfig = tx
            .get(BARRIER_SEAL, SEAL_KEY)?
            .ok_or_else(|| ApiError::internal("no seal config"))?;
        // The new slot wraps the root of this version; a rekey meanwhile
        // (none is built yet) would have changed it.
        if cfg.root_version != root_version {
            return Err(ApiError::FailedPrecondition(
                "the root key changed; retry".to_owned(),
            ));
        }
        cfg.slots.retain(|s| !remove(s));
        cfg.slots.extend(add);
        if cfg.slots.is_empty() {
            return Err(ApiError::FailedPrecondition(
                "the last slot cannot be removed".to_owned(),
            ));
        }
        tx.put(BARRIER_SEAL, SEAL_KEY, &cfg)?;
        tx.audit(who.event(audit.0, "ok", audit.1))?;
        tx.commit()?;
        Ok(())
    }

    /// A new passphrase slot (replacing any passphrase slot) for `new`.
    pub(crate) async fn change_passphrase(
        self: &Arc<Self>,
        material: Material,
        new: Zeroizing<String>,
        who: &Actor,
    ) -> Result<SlotInfo, ApiError> {
        let keys = self.unsealed()?;
        super::check_passphrase(&new)?;
        let root = self
            .root_from(material, "barrier.passphrase_change", who)
            .await?;
        let mut salt = [0u8; 16];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| ApiError::internal("no randomness"))?;
        let argon = self.argon;
        let kwk = tokio::task::spawn_blocking(move || derive_kwk(new.as_bytes(), &salt, argon))
            .await
            .map_err(ApiError::internal)?
            .map_err(key_err)?;
        let id = random_id("passphrase")?;
        use base64::Engine as _;
        let slot = Slot {
            id: id.clone(),
            kind: SlotKind::Passphrase {
                params: self.argon,
                salt: base64::engine::general_purpose::STANDARD.encode(salt),
            },
            wrapped_root: wrap(&kwk, &root, &aad_slot(&id, keys.root_version)).map_err(key_err)?,
        };
        self.replace_slots(
            keys.root_version,
            |s| matches!(s.kind, SlotKind::Passphrase { .. }),
            Some(slot),
            ("barrier.passphrase_change", format!("slot={id}")),
            who,
        )?;
        Ok(SlotInfo {
            id,
            kind: "passphrase".to_owned(),
        })
    }

    /// A new Shamir split (n shares, any k open), replacing the old set;
    /// returns the new shares once.
    pub(crate) async fn reshare(
        self: &Arc<Self>,
        material: Material,
        n: u8,
        k: u8,
        who: &Actor,
    ) -> Result<(SlotInfo, Vec<Zeroizing<String>>), ApiError> {
        let keys = self.unsealed()?;
        if !(2..=shamir::MAX_SHARES).contains(&n) || k < 2 || k > n {
            return Err(ApiError::invalid(
                "shares",
                "need 2 ≤ threshold ≤ shares ≤ 16",
            ));
        }
        let root = self.root_from(material, "barrier.reshare", who).await?;
        let kwk = Key::random().map_err(key_err)?;
        let mut id_bytes = [0u8; 4];
        aws_lc_rs::rand::fill(&mut id_bytes).map_err(|_| ApiError::internal("no randomness"))?;
        let set_id = u32::from_be_bytes(id_bytes);
        let shares = shamir::split(kwk.bytes(), n, k, set_id)
            .map_err(|e| ApiError::invalid("shares", e.to_string()))?;
        let id = random_id("shamir")?;
        let slot = Slot {
            id: id.clone(),
            kind: SlotKind::Shamir { set_id, n, k },
            wrapped_root: wrap(&kwk, &root, &aad_slot(&id, keys.root_version)).map_err(key_err)?,
        };
        self.replace_slots(
            keys.root_version,
            |s| matches!(s.kind, SlotKind::Shamir { .. }),
            Some(slot),
            ("barrier.reshare", format!("slot={id} n={n} k={k}")),
            who,
        )?;
        // Progress towards the old set means nothing now.
        *self.progress() = super::Progress::default();
        Ok((
            SlotInfo {
                id,
                kind: "shamir".to_owned(),
            },
            shares.iter().map(shamir::encode).collect(),
        ))
    }

    /// Removes slot `id` (never the last one).
    pub(crate) async fn remove_slot(
        self: &Arc<Self>,
        material: Material,
        id: &str,
        who: &Actor,
    ) -> Result<(), ApiError> {
        let keys = self.unsealed()?;
        if !self.config()?.slots.iter().any(|s| s.id == id) {
            return Err(ApiError::NotFound(format!("no slot {id}")));
        }
        self.root_from(material, "barrier.slot_remove", who).await?;
        self.replace_slots(
            keys.root_version,
            |s| s.id == id,
            None,
            ("barrier.slot_remove", format!("slot={id}")),
            who,
        )
    }
}

#[cfg(test)]
#[path = "rekey_tests.rs"]
mod tests;
