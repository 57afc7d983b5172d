//! The user engine: user-to-user encryption. Each MCIAS account has, per
//! `user` mount, a versioned X25519 key pair, created when its owner asks
//! (`keys/self`) or on its first `encrypt` or `decrypt`; a message is HPKE
//! auth mode ([`hpke`]) from the sender's key to the recipient's.
//!
//! Rows (table `user_keys`, sealed under the mount's ring): mount id ‖ 1 ‖
//! account id → [`AccountKeys`] (every version's private and public key,
//! the username at provisioning, refreshed on the owner's use), and mount
//! id ‖ 2 ‖ username → [`NameIndex`], so `--to alice` finds alice's id.
//!
//! Invariants: a private key leaves its row only inside the owner's own
//! `decrypt` or `encrypt` (no operation returns one, to admins either);
//! `decrypt` refuses (403) every caller but the recipient named in the
//! ciphertext, whatever policy says, so a sender cannot read its own
//! message; old versions stay and still decrypt after a rotation.

pub(crate) mod hpke;
pub mod ops;
mod wire;

use std::collections::BTreeMap;

use mc_kit::store::Table;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Engine, MountHooks};
use crate::error::CryptError;
use crate::store::USER_KEYS;

pub use ops::{UserDecrypted, UserEncrypted, UserKeyInfo, UserKeyVersion};

/// A key holds at most this many versions (rotate adds one).
pub(crate) const MAX_VERSIONS: usize = 1000;
/// A plaintext, decoded.
pub(crate) const MAX_PLAINTEXT: usize = 1 << 20;

/// The engine.
#[derive(Default)]
pub(crate) struct User;

impl MountHooks for User {
    fn validate_config(&self, _old: Option<&Value>, config: Value) -> Result<Value, CryptError> {
        match config {
            Value::Null => Ok(Value::Object(Default::default())),
            Value::Object(m) if m.is_empty() => Ok(Value::Object(m)),
            _ => Err(CryptError::invalid(
                "config",
                "a user mount takes no settings ({})",
            )),
        }
    }

    fn tables(&self) -> &'static [Table] {
        &[USER_KEYS]
    }
}

impl Engine for User {
    const TYPE: &'static str = "user";
}

/// One version of an account's key pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct KeyVersion {
    /// The X25519 private key, base64 (the row is sealed).
    pub private: String,
    /// The X25519 public key, base64.
    pub public: String,
    pub created_at: i64,
}

/// An account's keys in one mount.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccountKeys {
    pub account_id: String,
    pub username: String,
    pub latest: u32,
    pub versions: BTreeMap<u32, KeyVersion>,
}

/// Username → account id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NameIndex {
    pub account_id: String,
}

#[cfg(test)]
mod tests;
