//! The kv engine (version 2 semantics): versioned JSON secrets with
//! check-and-set, soft delete / undelete / destroy, per-path metadata and
//! listing.
//!
//! Rows: `kv_meta` (mount id ‖ path → [`PathMeta`]) and `kv_data` (mount id
//! ‖ path ‖ 0 ‖ version u64 BE → the secret's JSON object), both sealed
//! under the mount's ring, so a value moved to another path, version or
//! mount does not open.
//!
//! Invariants: every operation is validated before its write transaction
//! begins and changes nothing when refused; a write, its pruning of
//! versions beyond `max_versions` and its metadata commit together; a
//! destroyed version's data row is gone. A version written under a
//! `delete_version_after` carries its deletion time from the start (as in
//! Vault) and reads as deleted once that time has passed; the `kv expiry`
//! task ([`expiry`]) then destroys it.

pub(crate) mod expiry;
pub mod ops;
mod path;

use std::collections::BTreeMap;

use mc_kit::store::Table;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Engine, MountHooks};
use crate::error::CryptError;
use crate::store::{KV_DATA, KV_META};

pub use ops::*;
pub(crate) use path::{check_dir, check_path};

/// Mount config limits.
pub(crate) const DEFAULT_MAX_VERSIONS: u32 = 10;
pub(crate) const MAX_VERSIONS: u32 = 100;
/// A secret, as JSON.
pub(crate) const MAX_SECRET_BYTES: usize = 1 << 20;
const MAX_CUSTOM_KEYS: usize = 64;
const MAX_CUSTOM_KEY: usize = 128;
const MAX_CUSTOM_VALUE: usize = 512;
/// `delete_version_after` is at most ten years (seconds).
pub(crate) const MAX_DELETE_AFTER: u64 = 10 * 365 * 86_400;

/// The engine.
#[derive(Default)]
pub(crate) struct Kv;

/// A kv mount's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvConfig {
    #[serde(default = "default_max_versions")]
    pub max_versions: u32,
    #[serde(default)]
    pub cas_required: bool,
    /// Seconds after which a new version reads as deleted; 0: never.
    #[serde(default)]
    pub delete_version_after: u64,
}

fn default_max_versions() -> u32 {
    DEFAULT_MAX_VERSIONS
}

impl Default for KvConfig {
    fn default() -> Self {
        Self {
            max_versions: DEFAULT_MAX_VERSIONS,
            cas_required: false,
            delete_version_after: 0,
        }
    }
}

impl KvConfig {
    pub(crate) fn of(config: &Value) -> KvConfig {
        serde_json::from_value(config.clone()).unwrap_or_default()
    }
}

/// Refuses a `delete_version_after` beyond [`MAX_DELETE_AFTER`].
pub(crate) fn check_delete_after(field: &str, secs: u64) -> Result<(), CryptError> {
    if secs > MAX_DELETE_AFTER {
        return Err(CryptError::invalid(field, "at most 10 years"));
    }
    Ok(())
}

/// The deletion delay for a new version: the path's and the mount's, the
/// shorter when both are set (a path may shorten the mount's, as in
/// Vault, not lengthen it); 0 when neither is.
pub(crate) fn delete_after(cfg: &KvConfig, meta: &PathMeta) -> u64 {
    match (cfg.delete_version_after, meta.delete_version_after) {
        (0, p) => p,
        (m, 0) => m,
        (m, p) => m.min(p),
    }
}

pub(crate) fn check_max_versions(field: &str, v: u32, zero_ok: bool) -> Result<(), CryptError> {
    if v > MAX_VERSIONS || (v == 0 && !zero_ok) {
        return Err(CryptError::invalid(
            field,
            if zero_ok {
                "0 (the mount's) to 100"
            } else {
                "1 to 100"
            },
        ));
    }
    Ok(())
}

impl MountHooks for Kv {
    fn validate_config(&self, old: Option<&Value>, config: Value) -> Result<Value, CryptError> {
        let merged = match (old, config) {
            (_, Value::Null) => old.cloned().unwrap_or(Value::Object(Default::default())),
            (Some(Value::Object(old)), Value::Object(new)) => {
                let mut m = old.clone();
                m.extend(new);
                Value::Object(m)
            }
            (_, v) => v,
        };
        let cfg: KvConfig = serde_json::from_value(merged)
            .map_err(|e| CryptError::invalid("config", e.to_string()))?;
        check_max_versions("max_versions", cfg.max_versions, false)?;
        check_delete_after("delete_version_after", cfg.delete_version_after)?;
        serde_json::to_value(cfg).map_err(CryptError::internal)
    }

    fn tables(&self) -> &'static [Table] {
        &[KV_META, KV_DATA]
    }
}

impl Engine for Kv {
    const TYPE: &'static str = "kv";
}

/// One version's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMeta {
    pub created_time: i64,
    /// Unix seconds of the soft delete (past), or of the deletion
    /// `delete_version_after` set at write time (future); 0: none.
    #[serde(default)]
    pub deletion_time: i64,
    #[serde(default)]
    pub destroyed: bool,
    /// `deletion_time` came from `delete_version_after`, so the expiry task
    /// destroys the version once it passes (a soft delete by a caller is
    /// never destroyed by the task: it can be undeleted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expires: bool,
}

impl VersionMeta {
    /// Readable at `now`: neither destroyed nor past its deletion time.
    pub(crate) fn live_at(&self, now: i64) -> bool {
        !self.destroyed && (self.deletion_time == 0 || self.deletion_time > now)
    }
}

/// A path's metadata row.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PathMeta {
    pub current_version: u64,
    pub oldest_version: u64,
    pub created_time: i64,
    pub updated_time: i64,
    /// 0: the mount's.
    #[serde(default)]
    pub max_versions: u32,
    /// Required here even when the mount does not require it.
    #[serde(default)]
    pub cas_required: bool,
    /// Seconds; 0: the mount's ([`delete_after`]).
    #[serde(default)]
    pub delete_version_after: u64,
    #[serde(default)]
    pub custom_metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub versions: BTreeMap<u64, VersionMeta>,
}

pub(crate) fn check_custom(m: &BTreeMap<String, String>) -> Result<(), CryptError> {
    if m.len() > MAX_CUSTOM_KEYS {
        return Err(CryptError::invalid("custom_metadata", "at most 64 keys"));
    }
    for (k, v) in m {
        if k.is_empty() || k.len() > MAX_CUSTOM_KEY {
            return Err(CryptError::invalid(
                format!("custom_metadata.{k}"),
                "keys are 1 to 128 bytes",
            ));
        }
        if v.len() > MAX_CUSTOM_VALUE {
            return Err(CryptError::invalid(
                format!("custom_metadata.{k}"),
                "values are at most 512 bytes",
            ));
        }
    }
    Ok(())
}

pub(crate) use check_max_versions as check_versions_limit;

#[cfg(test)]
pub(crate) mod tests;
