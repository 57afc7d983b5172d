//! A named key: its stored state ([`KeyState`], one sealed JSON row per key)
//! and the unsealed cache ([`TransitKey`]: every version's cipher or signing
//! key built once). Versions and config follow Vault: versions 1…latest,
//! `min_decryption_version` ≥ 1, `min_encryption_version` 0 = latest,
//! `min_available_version` only grows and never passes either minimum,
//! `exportable` only goes false → true, at most [`MAX_VERSIONS`] versions.
//!
//! Invariant: every mutation validates on a copy and replaces the state only
//! when everything passed, so a refused request changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::error::TransitError;
use super::material::{Cached, KeyVersion};
use super::types::KeyType;
use super::wire::{Period, flexible_bool, flexible_u32};

/// At most this many live versions per key (trim first).
pub const MAX_VERSIONS: usize = 1000;
/// `auto_rotate_period`, when set, is at least an hour.
pub const MIN_AUTO_ROTATE: u64 = 3600;
/// An AES-GCM version rotates itself after this many encryptions (below the 2^32 random-nonce bound).
pub const AES_GCM_ROTATE_AFTER: u64 = 1 << 31;

/// `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`.
pub fn validate_name(name: &str) -> Result<(), TransitError> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(TransitError::invalid(
            "name",
            "must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}",
        ))
    }
}

/// The stored key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: KeyType,
    #[serde(default)]
    pub derived: bool,
    #[serde(default)]
    pub exportable: bool,
    #[serde(default)]
    pub deletion_allowed: bool,
    pub min_decryption_version: u32,
    #[serde(default)]
    pub min_encryption_version: u32,
    #[serde(default)]
    pub min_available_version: u32,
    pub latest_version: u32,
    /// Seconds; 0 = never.
    #[serde(default)]
    pub auto_rotate_period: u64,
    pub versions: BTreeMap<u32, KeyVersion>,
}

/// `POST keys/{name}`: Vault's create fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CreateKey {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(deserialize_with = "flexible_bool")]
    pub derived: Option<bool>,
    #[serde(deserialize_with = "flexible_bool")]
    pub exportable: Option<bool>,
    #[serde(deserialize_with = "flexible_bool")]
    pub convergent_encryption: Option<bool>,
    #[serde(deserialize_with = "flexible_bool")]
    pub allow_plaintext_backup: Option<bool>,
    pub auto_rotate_period: Option<Period>,
    #[serde(deserialize_with = "flexible_u32")]
    pub key_size: Option<u32>,
}

/// `POST keys/{name}/config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ConfigKey {
    #[serde(deserialize_with = "flexible_u32")]
    pub min_decryption_version: Option<u32>,
    #[serde(deserialize_with = "flexible_u32")]
    pub min_encryption_version: Option<u32>,
    #[serde(deserialize_with = "flexible_bool")]
    pub deletion_allowed: Option<bool>,
    #[serde(deserialize_with = "flexible_bool")]
    pub exportable: Option<bool>,
    #[serde(deserialize_with = "flexible_bool")]
    pub allow_plaintext_backup: Option<bool>,
    pub auto_rotate_period: Option<Period>,
}

fn check_period(p: Option<&Period>) -> Result<Option<u64>, TransitError> {
    match p {
        None => Ok(None),
        Some(p) => {
            let s = p.seconds("auto_rotate_period")?;
            if s != 0 && s < MIN_AUTO_ROTATE {
                return Err(TransitError::invalid(
                    "auto_rotate_period",
                    "auto rotate period must be 0 to disable or at least an hour",
                ));
            }
            Ok(Some(s))
        }
    }
}

fn refuse_backup(v: Option<bool>) -> Result<(), TransitError> {
    if v == Some(true) {
        return Err(TransitError::invalid(
            "allow_plaintext_backup",
            "key backup is not offered",
        ));
    }
    Ok(())
}

impl KeyState {
    /// A new key with version 1.
    pub fn create(name: &str, req: &CreateKey, now: u64) -> Result<Self, TransitError> {
        validate_name(name)?;
        let kind = KeyType::parse(req.kind.as_deref().unwrap_or("aes256-gcm"))?;
        let derived = req.derived.unwrap_or(false);
        if derived && !kind.supports_derivation() {
            return Err(TransitError::invalid(
                "derived",
                format!(
                    "key derivation is not supported for {} keys",
                    kind.native_name()
                ),
            ));
        }
        if req.convergent_encryption == Some(true) {
            return Err(TransitError::invalid(
                "convergent_encryption",
                "convergent encryption is not offered",
            ));
        }
        refuse_backup(req.allow_plaintext_backup)?;
        if let Some(size) = req.key_size {
            let want = match kind {
                KeyType::HmacSha256 => 32,
                KeyType::HmacSha512 => 64,
                _ => 0,
            };
            if size != want && size != 0 {
                return Err(TransitError::invalid(
                    "key_size",
                    "key_size is fixed by the type (hmac-sha256: 32, hmac-sha512: 64)",
                ));
            }
        }
        let auto_rotate_period = check_period(req.auto_rotate_period.as_ref())?.unwrap_or(0);
        let v1 = KeyVersion::generate(kind, derived, now)?;
        Ok(Self {
            name: name.to_owned(),
            kind,
            derived,
            exportable: req.exportable.unwrap_or(false),
            deletion_allowed: false,
            min_decryption_version: 1,
            min_encryption_version: 0,
            min_available_version: 0,
            latest_version: 1,
            auto_rotate_period,
            versions: BTreeMap::from([(1, v1)]),
        })
    }

    /// A new latest version.
    pub fn rotate(&mut self, now: u64) -> Result<u32, TransitError> {
        if self.versions.len() >= MAX_VERSIONS {
            return Err(TransitError::invalid(
                "name",
                format!("key already has {MAX_VERSIONS} versions; trim older versions first"),
            ));
        }
        let next = self
            .latest_version
            .checked_add(1)
            .ok_or_else(|| TransitError::invalid("name", "no further version number"))?;
        let v = KeyVersion::generate(self.kind, self.derived, now)?;
        self.versions.insert(next, v);
        self.latest_version = next;
        Ok(next)
    }

    /// Whether `auto_rotate_period` has passed since the latest version, or
    /// an AES-GCM latest version has reached its encryption budget.
    pub fn rotation_due(&self, now: u64, latest_encryptions: u64) -> bool {
        let age_due = self.auto_rotate_period > 0
            && self
                .versions
                .get(&self.latest_version)
                .is_some_and(|v| now.saturating_sub(v.created_at) >= self.auto_rotate_period);
        age_due || (self.kind == KeyType::Aes256Gcm && latest_encryptions >= AES_GCM_ROTATE_AFTER)
    }

    /// `keys/{name}/config`, Vault's rules; warnings are returned for the response.
    pub fn configure(&mut self, req: &ConfigKey) -> Result<Vec<String>, TransitError> {
        let mut next = self.clone();
        let mut warnings = Vec::new();
        if let Some(mut v) = req.min_decryption_version {
            if v == 0 {
                v = 1;
                warnings.push("transit key numbering starts at 1; forcing minimum to 1".to_owned());
            }
            if v != next.min_decryption_version {
                if v > next.latest_version {
                    return Err(TransitError::invalid(
                        "min_decryption_version",
                        format!(
                            "cannot set min decryption version of {v}, latest key version is {}",
                            next.latest_version
                        ),
                    ));
                }
                if v < next.min_available_version {
                    return Err(TransitError::invalid(
                        "min_decryption_version",
                        format!(
                            "cannot set min decryption version of {v} below min available version {}",
                            next.min_available_version
                        ),
                    ));
                }
                next.min_decryption_version = v;
            }
        }
        if let Some(v) = req.min_encryption_version {
            if v > next.latest_version {
                return Err(TransitError::invalid(
                    "min_encryption_version",
                    format!(
                        "cannot set min encryption version of {v}, latest key version is {}",
                        next.latest_version
                    ),
                ));
            }
            next.min_encryption_version = v;
        }
        if next.min_encryption_version > 0
            && next.min_encryption_version < next.min_decryption_version
        {
            return Err(TransitError::invalid(
                "min_encryption_version",
                format!(
                    "cannot set min encryption/decryption values; min encryption version of {} must be \
                     greater than or equal to min decryption version of {}",
                    next.min_encryption_version, next.min_decryption_version
                ),
            ));
        }
        if let Some(d) = req.deletion_allowed {
            next.deletion_allowed = d;
        }
        if let Some(e) = req.exportable {
            if next.exportable && !e {
                return Err(TransitError::invalid(
                    "exportable",
                    "exportable key cannot be made non-exportable",
                ));
            }
            next.exportable = e;
        }
        refuse_backup(req.allow_plaintext_backup)?;
        if let Some(p) = check_period(req.auto_rotate_period.as_ref())? {
            next.auto_rotate_period = p;
        }
        *self = next;
        Ok(warnings)
    }

    /// `keys/{name}/trim`: Vault's rules, then older versions are deleted.
    pub fn trim(&mut self, min_available_version: Option<u32>) -> Result<(), TransitError> {
        let f = "min_available_version";
        let Some(v) = min_available_version else {
            return Err(TransitError::invalid(f, "missing min_available_version"));
        };
        let why = if v < self.min_available_version {
            "minimum available version cannot be decremented"
        } else if self.min_encryption_version == 0 {
            "minimum available version cannot be set when minimum encryption version is not set"
        } else if v > self.min_encryption_version {
            "minimum available version cannot be greater than minimum encryption version"
        } else if v > self.min_decryption_version {
            "minimum available version cannot be greater than minimum decryption version"
        } else if v == 0 {
            "minimum available version should be positive"
        } else {
            ""
        };
        if !why.is_empty() {
            return Err(TransitError::invalid(f, why));
        }
        self.min_available_version = v;
        self.versions.retain(|&n, _| n >= v);
        Ok(())
    }

    /// `DELETE keys/{name}` is allowed only with `deletion_allowed`.
    pub fn check_delete(&self) -> Result<(), TransitError> {
        if self.deletion_allowed {
            Ok(())
        } else {
            Err(TransitError::invalid(
                "deletion_allowed",
                "deletion is not allowed for this key",
            ))
        }
    }
}

/// A key ready for operations: its state and every live version's cached keys.
pub struct TransitKey {
    pub(crate) state: KeyState,
    pub(crate) cache: BTreeMap<u32, Arc<Cached>>,
}

impl std::fmt::Debug for TransitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitKey")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl TransitKey {
    /// Builds every version's keys (RSA parsing is the slow part: once per load).
    pub fn load(state: KeyState) -> Result<Self, TransitError> {
        Self::load_reusing(state, None)
    }

    /// The new state of the same key: versions whose material is unchanged
    /// keep their cached keys and counters.
    pub fn reload(&self, state: KeyState) -> Result<Self, TransitError> {
        Self::load_reusing(state, Some(self))
    }

    fn load_reusing(state: KeyState, old: Option<&Self>) -> Result<Self, TransitError> {
        let mut cache = BTreeMap::new();
        for (&n, v) in &state.versions {
            let reuse = old.and_then(|o| {
                let same = o.state.kind == state.kind
                    && o.state.derived == state.derived
                    && o.state
                        .versions
                        .get(&n)
                        .is_some_and(|ov| ov.material == v.material);
                if same { o.cache.get(&n).cloned() } else { None }
            });
            let c = match reuse {
                Some(c) => c,
                None => Arc::new(Cached::build(state.kind, state.derived, v)?),
            };
            cache.insert(n, c);
        }
        Ok(Self { state, cache })
    }

    pub fn state(&self) -> &KeyState {
        &self.state
    }

    /// Encryptions made with version `v`: stored plus not yet flushed.
    pub fn encryptions(&self, v: u32) -> u64 {
        let stored = self.state.versions.get(&v).map_or(0, |s| s.encryptions);
        let pending = self
            .cache
            .get(&v)
            .map_or(0, |c| c.encryptions.load(Ordering::Relaxed));
        stored.saturating_add(pending)
    }

    /// Encryptions made with the latest version.
    pub fn latest_encryptions(&self) -> u64 {
        self.encryptions(self.state.latest_version)
    }

    /// Whether the frame should rotate this key now (age or AES-GCM budget).
    pub fn rotation_due(&self, now: u64) -> bool {
        self.state.rotation_due(now, self.latest_encryptions())
    }

    /// Moves the unflushed encryption counts into a copy of the state for the
    /// frame to store (then [`Self::reload`] it); `None` when there is nothing
    /// to flush. Counts taken but not stored are lost, which only delays a
    /// budget rotation (the budget is half the nonce bound).
    pub fn take_counts(&self) -> Option<KeyState> {
        let mut next = self.state.clone();
        let mut any = false;
        for (v, c) in &self.cache {
            let n = c.encryptions.swap(0, Ordering::Relaxed);
            if n > 0 {
                if let Some(sv) = next.versions.get_mut(v) {
                    sv.encryptions = sv.encryptions.saturating_add(n);
                }
                any = true;
            }
        }
        any.then_some(next)
    }

    /// The version an encrypt, sign or hmac uses: `requested` (0 = latest)
    /// within `min_encryption_version..=latest_version`.
    pub(crate) fn version_for_use(
        &self,
        requested: Option<u32>,
    ) -> Result<(u32, &Cached), TransitError> {
        let s = &self.state;
        let f = "key_version";
        let v = match requested.unwrap_or(0) {
            0 => s.latest_version,
            v if v > s.latest_version => {
                return Err(TransitError::invalid(
                    f,
                    "requested version is higher than the latest key version",
                ));
            }
            v if v < s.min_encryption_version => {
                return Err(TransitError::invalid(
                    f,
                    "requested version is less than the minimum encryption key version",
                ));
            }
            v => v,
        };
        self.cache
            .get(&v)
            .map(|c| (v, c.as_ref()))
            .ok_or_else(|| TransitError::invalid(f, "requested version has been trimmed"))
    }

    /// The version a decrypt, rewrap or verify reads, or Vault's refusal.
    pub(crate) fn version_for_read(
        &self,
        field: &'static str,
        v: u32,
    ) -> Result<&Cached, TransitError> {
        let s = &self.state;
        if v > s.latest_version {
            return Err(TransitError::invalid(
                field,
                "invalid ciphertext: version is too new",
            ));
        }
        if v < s.min_decryption_version {
            return Err(TransitError::invalid(field, super::error::TOO_OLD));
        }
        self.cache
            .get(&v)
            .map(|c| c.as_ref())
            .ok_or_else(|| TransitError::invalid(field, super::error::TOO_OLD))
    }
}
