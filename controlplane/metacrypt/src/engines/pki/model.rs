//! The engine's rows and request shapes: key types, TTLs, issuer versions,
//! roles, certificate records and the public issuer rows.
//!
//! Invariant: `IssuerVersion` (which holds a private key) is only ever
//! stored sealed; `PublicIssuer` holds nothing secret.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::reason::Reason;
use crate::error::CryptError;

/// The key types the engine generates and accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    #[serde(rename = "ec-p256")]
    EcP256,
    #[serde(rename = "ec-p384")]
    EcP384,
    #[serde(rename = "ed25519")]
    Ed25519,
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

impl KeyType {
    pub(crate) const ALL: &'static str = "ec-p256, ec-p384, ed25519, rsa-2048, rsa-3072, rsa-4096";

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }

    pub(crate) fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }
}

/// A duration in seconds; accepts a number of seconds or `30s`, `5m`, `72h`, `30d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ttl(pub u64);

impl Ttl {
    pub(crate) fn parse(text: &str) -> Result<Ttl, String> {
        if let Ok(n) = text.parse::<u64>() {
            return Ok(Ttl(n));
        }
        let d: mc_kit::config::Duration = text
            .parse()
            .map_err(|_| format!("{text:?} is not a duration (seconds, or like 72h)"))?;
        Ok(Ttl(d.get().as_secs()))
    }
}

impl Serialize for Ttl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// A JSON value that is a number or a string (TTLs, revocation reasons).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum NumOrText {
    N(u64),
    S(String),
}

impl<'de> Deserialize<'de> for Ttl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ttl, D::Error> {
        match NumOrText::deserialize(d)? {
            NumOrText::N(n) => Ok(Ttl(n)),
            NumOrText::S(s) => Ttl::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// (issuer name, version): which key signed what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerRef {
    pub name: String,
    pub version: u32,
}

/// A revoked certificate as its issuer's CRL needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub serial: String,
    pub revoked_at: i64,
    pub not_after: i64,
    /// Rows from before reasons read as `unspecified`.
    #[serde(default)]
    pub reason: Reason,
}

/// One version of an issuer (sealed: it holds the private key).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct IssuerVersion {
    pub name: String,
    pub version: u32,
    pub key_type: KeyType,
    /// PKCS#8 PEM of the issuer's private key.
    pub key_pem: String,
    pub cert_pem: String,
    pub not_after: i64,
    /// Who signed this certificate (`None`: self-signed or imported root).
    pub parent: Option<IssuerRef>,
    pub crl_number: u64,
    pub revoked: Vec<Revoked>,
    pub created_at: i64,
}

impl std::fmt::Debug for IssuerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerVersion")
            .field("name", &self.name)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The public row of an issuer version (clear).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PublicIssuer {
    pub cert_pem: String,
    /// The issuer's certificate then its parents', PEM.
    pub chain_pem: String,
    /// The current CRL, DER as base64.
    pub crl_der: String,
    pub crl_number: u64,
    pub not_after: i64,
    /// The CRL's nextUpdate (0 in rows from before the refresh job: due).
    #[serde(default)]
    pub crl_next_update: i64,
}

/// An issuer as the API shows it (no key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuerInfo {
    pub name: String,
    pub version: u32,
    pub versions: u32,
    pub key_type: KeyType,
    pub certificate: String,
    pub chain: String,
    pub not_after: i64,
    pub parent: Option<IssuerRef>,
    pub crl_number: u64,
    pub revoked: usize,
}

/// A role: what may be issued under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    #[serde(default = "root_name")]
    pub issuer: String,
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    #[serde(default = "yes")]
    pub allow_bare_domains: bool,
    #[serde(default)]
    pub allow_subdomains: bool,
    #[serde(default)]
    pub allow_wildcard: bool,
    #[serde(default)]
    pub allow_localhost: bool,
    #[serde(default)]
    pub allow_ip_sans: bool,
    #[serde(default = "default_key_types")]
    pub key_types: Vec<KeyType>,
    /// Default for `issue` (the first of `key_types` when absent).
    #[serde(default)]
    pub key_type: Option<KeyType>,
    #[serde(default = "default_ttl")]
    pub ttl: Ttl,
    #[serde(default = "default_max_ttl")]
    pub max_ttl: Ttl,
    #[serde(default = "yes")]
    pub server: bool,
    #[serde(default)]
    pub client: bool,
    #[serde(default)]
    pub no_store: bool,
}

pub(crate) const ROOT: &str = "root";

fn root_name() -> String {
    ROOT.to_owned()
}
fn yes() -> bool {
    true
}
fn default_key_types() -> Vec<KeyType> {
    vec![KeyType::EcP256]
}
fn default_ttl() -> Ttl {
    Ttl(86_400)
}
fn default_max_ttl() -> Ttl {
    Ttl(30 * 86_400)
}

impl Role {
    /// Checks and normalises a role (lowercased domains, the default key type).
    pub(crate) fn check(mut self) -> Result<Role, CryptError> {
        if self.allowed_domains.len() > 64 {
            return Err(CryptError::invalid("allowed_domains", "at most 64"));
        }
        for d in &mut self.allowed_domains {
            *d = d.to_ascii_lowercase();
            super::names::check_dns(d)
                .map_err(|m| CryptError::invalid("allowed_domains", format!("{d}: {m}")))?;
        }
        if self.key_types.is_empty() || self.key_types.len() > 6 {
            return Err(CryptError::invalid(
                "key_types",
                format!("1 to 6 of {}", KeyType::ALL),
            ));
        }
        let kt = self.key_type.unwrap_or(self.key_types[0]);
        if !self.key_types.contains(&kt) {
            return Err(CryptError::invalid("key_type", "must be one of key_types"));
        }
        self.key_type = Some(kt);
        if self.max_ttl.0 == 0 || self.max_ttl.0 > super::MAX_TTL_SECS {
            return Err(CryptError::invalid("max_ttl", "1s to 20 years"));
        }
        if self.ttl.0 == 0 || self.ttl > self.max_ttl {
            return Err(CryptError::invalid("ttl", "1s to max_ttl"));
        }
        if !self.server && !self.client {
            return Err(CryptError::invalid(
                "server",
                "a role allows server, client or both",
            ));
        }
        super::ops::check_name(&self.issuer).map_err(|e| match e {
            CryptError::Invalid(i) => CryptError::Invalid(i.under("issuer")),
            e => e,
        })?;
        Ok(self)
    }
}

/// A stored certificate (sealed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertRecord {
    pub serial: String,
    pub issuer: IssuerRef,
    pub role: String,
    pub certificate: String,
    pub common_name: String,
    pub names: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    #[serde(default)]
    pub revoked_at: Option<i64>,
    /// Set with `revoked_at` (absent in rows from before reasons: unspecified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<Reason>,
}

/// What issue, sign-csr and renew answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Issued {
    pub serial: String,
    pub certificate: String,
    /// The issuing CA then its parents, PEM.
    pub ca_chain: String,
    pub issuer: IssuerRef,
    pub not_after: i64,
    /// PKCS#8 PEM; only from `issue`, returned once, never stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    pub key_type: KeyType,
    pub stored: bool,
}

/// `POST issue/{role}` and `POST sign-csr/{role}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    #[serde(default)]
    pub common_name: String,
    #[serde(default)]
    pub alt_names: Vec<String>,
    #[serde(default)]
    pub ip_sans: Vec<String>,
    #[serde(default)]
    pub ttl: Option<Ttl>,
    /// issue only: overrides the role's default key type (must be allowed).
    #[serde(default)]
    pub key_type: Option<KeyType>,
    /// sign-csr only: the CSR, PEM.
    #[serde(default)]
    pub csr: Option<String>,
}

/// `POST root/generate` and `POST issuers/{name}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaRequest {
    #[serde(default)]
    pub common_name: String,
    #[serde(default = "default_ca_key")]
    pub key_type: KeyType,
    #[serde(default = "default_ca_ttl")]
    pub ttl: Ttl,
}

impl Default for CaRequest {
    fn default() -> Self {
        Self {
            common_name: String::new(),
            key_type: default_ca_key(),
            ttl: default_ca_ttl(),
        }
    }
}

fn default_ca_key() -> KeyType {
    KeyType::EcP256
}
fn default_ca_ttl() -> Ttl {
    Ttl(10 * 365 * 86_400)
}

/// `POST root/import`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    pub certificate: String,
    pub private_key: String,
}

/// `POST revoke`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub serial: String,
    /// An RFC 5280 code or name (default `unspecified`).
    #[serde(default)]
    pub reason: Reason,
}

/// The answer of `revoke`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeAnswer {
    pub serial: String,
    pub revoked_at: i64,
    pub reason: Reason,
    pub crl_number: u64,
}
