//! The PKI engine (`type: "pki"`): a root generated or imported per mount,
//! named intermediates signed by it, issuer rotation, roles constraining
//! what may be issued, issue (server-side key, returned once), sign-csr,
//! renew, revoke, list, get, and a CRL per issuer version. The spec is
//! docs/design/pki.md.
//!
//! Rows: `pki_issuers`, `pki_roles`, `pki_certs` are sealed under the
//! mount's DEK ring (issuer private keys live only there); `pki_public`
//! and `pki_names` hold public data (certificates, chains, CRLs, the mount
//! name → id index) in clear so the public routes answer while sealed.
//!
//! Invariants: every request is checked (names, TTL, CSR signature, key
//! type) before its write transaction begins, and a refusal changes
//! nothing; a leaf's private key is never stored; a CRL's number only grows
//! per issuer version and it lists only unexpired revoked certificates.

pub mod acme;
pub(crate) mod certs;
pub mod csr;
pub mod model;
pub(crate) mod names;
pub mod ocsp;
pub(crate) mod ops;
pub(crate) mod public;
pub mod reason;
pub(crate) mod x509;

use mc_kit::store::Table;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Engine, MountHooks};
use crate::error::CryptError;
use model::Ttl;

/// The engine's tables (store schema v5; `acme` v7).
pub(crate) mod tables {
    use mc_kit::store::Table;
    use redb::TableDefinition;

    /// mount id ‖ issuer name ‖ 0 ‖ version u32 BE → `IssuerVersion` (sealed).
    pub(crate) const PKI_ISSUERS: Table = TableDefinition::new("pki_issuers");
    /// mount id ‖ role name → `Role` (sealed).
    pub(crate) const PKI_ROLES: Table = TableDefinition::new("pki_roles");
    /// mount id ‖ serial (16 bytes) → `CertRecord` (sealed).
    pub(crate) const PKI_CERTS: Table = TableDefinition::new("pki_certs");
    /// mount id ‖ issuer name ‖ 0 ‖ version u32 BE → `PublicIssuer` (clear JSON).
    pub(crate) const PKI_PUBLIC: Table = TableDefinition::new("pki_public");
    /// mount name → mount id u64 BE (clear): how a public route finds a mount.
    pub(crate) const PKI_NAMES: Table = TableDefinition::new("pki_names");
    /// mount id ‖ kind byte ‖ id → an ACME row (sealed; `acme::model::kind`).
    pub(crate) const ACME: Table = TableDefinition::new("acme");
}

/// Limits (docs/design/pki.md §Limits).
pub(crate) const MAX_ISSUERS: usize = 32;
pub(crate) const MAX_ISSUER_VERSIONS: u32 = 16;
pub(crate) const MAX_ROLES: usize = 256;
pub(crate) const MAX_CERTS: usize = 100_000;
pub(crate) const MAX_LIST: usize = 1000;
/// Twenty years.
pub(crate) const MAX_TTL_SECS: u64 = 20 * 365 * 86_400;

/// The engine.
#[derive(Default)]
pub(crate) struct Pki;

/// A pki mount's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkiConfig {
    /// How long a CRL is valid (`next_update` − `this_update`); seconds or `72h`.
    #[serde(default = "default_crl_ttl")]
    pub crl_ttl: Ttl,
    /// How long before a CRL's `next_update` the refresh job re-signs it
    /// (default a third of `crl_ttl`; below `crl_ttl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl_refresh_margin: Option<Ttl>,
    /// ACME (docs/design/acme.md); shown only when set.
    #[serde(default, skip_serializing_if = "acme::AcmeConfig::is_default")]
    pub acme: acme::AcmeConfig,
}

fn default_crl_ttl() -> Ttl {
    Ttl(72 * 3600)
}

impl Default for PkiConfig {
    fn default() -> Self {
        Self {
            crl_ttl: default_crl_ttl(),
            crl_refresh_margin: None,
            acme: acme::AcmeConfig::default(),
        }
    }
}

impl PkiConfig {
    pub(crate) fn of(config: &Value) -> PkiConfig {
        serde_json::from_value(config.clone()).unwrap_or_default()
    }

    /// Seconds before `next_update` at which a CRL is re-signed.
    pub(crate) fn refresh_margin(&self) -> u64 {
        self.crl_refresh_margin.map_or(self.crl_ttl.0 / 3, |m| m.0)
    }
}

impl MountHooks for Pki {
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
        let cfg: PkiConfig = serde_json::from_value(merged)
            .map_err(|e| CryptError::invalid("config", e.to_string()))?;
        if cfg.crl_ttl.0 < 60 || cfg.crl_ttl.0 > 366 * 86_400 {
            return Err(CryptError::invalid("crl_ttl", "1m to 366d"));
        }
        if let Some(m) = cfg.crl_refresh_margin
            && (m.0 == 0 || m.0 >= cfg.crl_ttl.0)
        {
            return Err(CryptError::invalid(
                "crl_refresh_margin",
                "at least 1s and below crl_ttl",
            ));
        }
        cfg.acme.validate()?;
        serde_json::to_value(cfg).map_err(CryptError::internal)
    }

    fn tables(&self) -> &'static [Table] {
        &[
            tables::PKI_ISSUERS,
            tables::PKI_ROLES,
            tables::PKI_CERTS,
            tables::PKI_PUBLIC,
            tables::ACME,
        ]
    }
}

impl Engine for Pki {
    const TYPE: &'static str = "pki";
}

#[cfg(test)]
mod tests;
