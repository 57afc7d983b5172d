//! The barrier's own records, stored plain (JSON) in `barrier_*` tables:
//! the slots that open the root key, the MEK, and each DEK version.
//!
//! Invariant: every secret in them is a wrapped key (base64 of
//! `nonce ‖ ciphertext ‖ tag`, see [`super::keys`]); none is ever in clear.

use serde::{Deserialize, Serialize};

use super::keys::ArgonParams;

/// `barrier_seal/config`: the slots that open the root key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SealConfig {
    pub(crate) format: u32,
    pub(crate) root_version: u32,
    pub(crate) slots: Vec<Slot>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Slot {
    pub(crate) id: String,
    #[serde(flatten)]
    pub(crate) kind: SlotKind,
    pub(crate) wrapped_root: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum SlotKind {
    Passphrase {
        #[serde(flatten)]
        params: ArgonParams,
        salt: String,
    },
    Shamir {
        set_id: u32,
        n: u8,
        k: u8,
    },
    /// An auto-unseal key file (32 random bytes on separate storage);
    /// `key_id` is the first 8 bytes of its SHA-256, hex.
    Keyfile {
        key_id: String,
    },
}

impl SlotKind {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Passphrase { .. } => "passphrase",
            Self::Shamir { .. } => "shamir",
            Self::Keyfile { .. } => "keyfile",
        }
    }
}

/// `barrier_mek/current`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MekRecord {
    pub(crate) version: u32,
    pub(crate) root_version: u32,
    pub(crate) wrapped: String,
}

/// `barrier_keys/<mount ‖ version>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DekRecord {
    pub(crate) mek_version: u32,
    pub(crate) wrapped: String,
    pub(crate) created_at: i64,
}
