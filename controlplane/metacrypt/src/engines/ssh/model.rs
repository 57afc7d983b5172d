//! The engine's rows and request shapes: CA key types, the CA row,
//! profiles, sign requests, certificate records and the public row.
//!
//! Invariant: `Ca` (which holds the private key) is only ever stored
//! sealed; `PublicCa` holds nothing secret.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::engines::pki::model::Ttl;

/// The CA key types the engine generates and imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum CaKeyType {
    #[default]
    #[serde(rename = "ed25519")]
    Ed25519,
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
}

/// User or host certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CertKind {
    #[default]
    User,
    Host,
}

/// `POST ca`: generate (`key_type`) or import (`private_key`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaRequest {
    #[serde(default)]
    pub key_type: Option<CaKeyType>,
    /// An unencrypted OpenSSH private key (PEM).
    #[serde(default)]
    pub private_key: Option<String>,
}

/// A revoked certificate as the KRL needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedSerial {
    pub serial: u64,
    pub valid_before: u64,
}

/// The mount's CA (sealed: it holds the private key).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Ca {
    pub key_type: CaKeyType,
    /// OpenSSH PEM of the private key.
    pub private_key: String,
    /// The public key line (`<algo> <base64> <comment>`).
    pub public_key: String,
    /// The serial the next certificate gets (from 1).
    pub next_serial: u64,
    pub krl_version: u64,
    pub revoked_serials: Vec<RevokedSerial>,
    pub revoked_key_ids: Vec<String>,
    pub created_at: i64,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("key_type", &self.key_type)
            .field("public_key", &self.public_key)
            .field("next_serial", &self.next_serial)
            .field("krl_version", &self.krl_version)
            .finish_non_exhaustive()
    }
}

/// What `GET ca` and `POST ca` answer (nothing secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaInfo {
    pub key_type: CaKeyType,
    pub public_key: String,
    pub next_serial: u64,
    pub krl_version: u64,
    pub revoked_serials: usize,
    pub revoked_key_ids: usize,
    pub created_at: i64,
}

/// The clear row the public routes serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PublicCa {
    pub public_key: String,
    /// The KRL, base64.
    pub krl: String,
    pub krl_version: u64,
}

/// What may be signed under a profile (docs/design/sshca.md §Profiles).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub cert_type: CertKind,
    pub allowed_principals: Vec<String>,
    #[serde(default)]
    pub default_principals: Vec<String>,
    #[serde(default)]
    pub allowed_extensions: Option<Vec<String>>,
    #[serde(default)]
    pub default_extensions: Option<Vec<String>>,
    #[serde(default)]
    pub critical_options: BTreeMap<String, String>,
    #[serde(default)]
    pub allowed_critical_options: Vec<String>,
    #[serde(default = "default_ttl")]
    pub ttl: Ttl,
    #[serde(default = "default_max_ttl")]
    pub max_ttl: Ttl,
}

fn default_ttl() -> Ttl {
    Ttl(3600)
}

fn default_max_ttl() -> Ttl {
    Ttl(86_400)
}

/// `POST sign-key/{profile}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    pub public_key: String,
    #[serde(default)]
    pub principals: Vec<String>,
    #[serde(default)]
    pub ttl: Option<Ttl>,
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub extensions: Option<Vec<String>>,
    #[serde(default)]
    pub critical_options: BTreeMap<String, String>,
}

/// A stored certificate's record (sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRecord {
    pub serial: u64,
    pub key_id: String,
    pub cert_type: CertKind,
    pub principals: Vec<String>,
    pub valid_after: u64,
    pub valid_before: u64,
    pub profile: String,
    /// The certificate line (`<algo>-cert-v01@openssh.com <base64> <key id>`).
    pub certificate: String,
    #[serde(default)]
    pub revoked_at: Option<i64>,
}

/// The answer to a signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    pub serial: u64,
    pub key_id: String,
    pub principals: Vec<String>,
    pub valid_after: u64,
    pub valid_before: u64,
    /// The certificate line, ready for `<key>-cert.pub`.
    pub certificate: String,
}

/// `POST krl/revoke`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    #[serde(default)]
    pub serials: Vec<u64>,
    #[serde(default)]
    pub key_ids: Vec<String>,
}

/// What a revocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeAnswer {
    pub krl_version: u64,
    pub revoked_serials: usize,
    pub revoked_key_ids: usize,
}
