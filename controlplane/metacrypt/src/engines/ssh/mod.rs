//! The SSH CA engine (`type: "ssh"`): one CA key per mount (ed25519,
//! ECDSA P-256/P-384; generated or imported), profiles constraining what
//! may be signed, user and host certificates signed from submitted public
//! keys, revocation by serial or key id into a KRL (OpenSSH
//! PROTOCOL.krl), and the CA public key and KRL served in clear. The spec
//! is docs/design/sshca.md.
//!
//! Rows: `ssh_ca`, `ssh_profiles`, `ssh_certs` are sealed under the
//! mount's DEK ring (the CA private key lives only there); `ssh_public`
//! and `ssh_names` hold the public key line, the KRL and the mount name →
//! id index in clear, so `sshd`'s files can be fetched while sealed.
//!
//! Invariants: every request is checked against its profile before the
//! write transaction and a refusal changes nothing; serials come from the
//! CA row's counter, start at 1 and are never reused; the KRL version
//! grows by one with every revocation; no certificate has an empty
//! principal list.

pub(crate) mod cert;
pub(crate) mod krl;
pub mod model;
pub(crate) mod ops;
pub(crate) mod profile;
pub(crate) mod public;

use mc_kit::store::Table;
use serde_json::Value;

use super::{Engine, MountHooks};
use crate::error::CryptError;

/// The engine's tables (created by store schema v6).
pub(crate) mod tables {
    use mc_kit::store::Table;
    use redb::TableDefinition;

    /// mount id → `Ca` (sealed).
    pub(crate) const SSH_CA: Table = TableDefinition::new("ssh_ca");
    /// mount id ‖ profile name → `Profile` (sealed).
    pub(crate) const SSH_PROFILES: Table = TableDefinition::new("ssh_profiles");
    /// mount id ‖ serial u64 BE → `CertRecord` (sealed).
    pub(crate) const SSH_CERTS: Table = TableDefinition::new("ssh_certs");
    /// mount id → `PublicCa` (clear JSON).
    pub(crate) const SSH_PUBLIC: Table = TableDefinition::new("ssh_public");
    /// mount name → mount id u64 BE (clear): how a public route finds a mount.
    pub(crate) const SSH_NAMES: Table = TableDefinition::new("ssh_names");
}

/// Limits (docs/design/sshca.md §Limits).
pub(crate) const MAX_PROFILES: usize = 256;
pub(crate) const MAX_PATTERNS: usize = 64;
pub(crate) const MAX_PRINCIPALS: usize = 64;
pub(crate) const MAX_CERTS: usize = 100_000;
pub(crate) const MAX_KEY_IDS: usize = 10_000;
pub(crate) const MAX_REVOKE: usize = 1000;
pub(crate) const MAX_LIST: usize = 1000;
pub(crate) const MAX_KEY_LINE: usize = 16 * 1024;
/// One year.
pub(crate) const MAX_TTL_SECS: u64 = 366 * 86_400;
/// How far `valid_after` is set before now (clock skew).
pub(crate) const BACKDATE_SECS: u64 = 30;

/// The engine.
#[derive(Default)]
pub(crate) struct Ssh;

impl MountHooks for Ssh {
    fn validate_config(&self, _old: Option<&Value>, config: Value) -> Result<Value, CryptError> {
        match config {
            Value::Null => Ok(Value::Object(Default::default())),
            Value::Object(m) if m.is_empty() => Ok(Value::Object(m)),
            _ => Err(CryptError::invalid(
                "config",
                "the ssh engine takes no config",
            )),
        }
    }

    fn tables(&self) -> &'static [Table] {
        &[
            tables::SSH_CA,
            tables::SSH_PROFILES,
            tables::SSH_CERTS,
            tables::SSH_PUBLIC,
        ]
    }
}

impl Engine for Ssh {
    const TYPE: &'static str = "ssh";
}

#[cfg(test)]
mod tests;
