//! ACME (RFC 8555) for pki mounts: one directory per mount and role on the
//! public routes, certificates signed through the role (docs/design/acme.md).
//!
//! Built here: the mount config's `acme` section, JWS decoding and
//! verification (`jws`), problem documents (`problem`), nonces (`nonce`)
//! and the EAB binding check (`eab`). The request flow and its tables are
//! specified in the design note and not built yet.
//!
//! Invariants: a role is served over ACME only when `acme.roles` lists it;
//! every refusal is a [`problem::Problem`] with an RFC 8555 type.

pub mod eab;
pub mod flow;
pub mod jws;
pub(crate) mod keys;
pub(crate) mod model;
pub mod nonce;
pub(crate) mod orders;
pub mod problem;
pub(crate) mod rows;
pub(crate) mod tidy;
pub mod validate;

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::model::Ttl;
use crate::error::CryptError;

/// The `acme` section of a pki mount's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// Roles served over ACME (`/v1/acme/{mount}/{role}/directory`).
    #[serde(default)]
    pub roles: Vec<String>,
    /// The URL prefix of absolute ACME URLs (`https://host:port`); when
    /// absent, `https://` and the request's `Host`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The DNS server validation resolves names with (default: MCNS).
    #[serde(default)]
    pub resolver: Option<SocketAddr>,
    /// The port http-01 connects to.
    #[serde(default = "default_http_port")]
    pub http_port: u16,
    /// The port tls-alpn-01 connects to.
    #[serde(default = "default_tls_alpn_port")]
    pub tls_alpn_port: u16,
    /// How long one validation attempt may take.
    #[serde(default = "default_timeout")]
    pub timeout: Ttl,
}

fn default_http_port() -> u16 {
    80
}
fn default_tls_alpn_port() -> u16 {
    443
}
fn default_timeout() -> Ttl {
    Ttl(10)
}

impl Default for AcmeConfig {
    fn default() -> Self {
        Self {
            roles: Vec::new(),
            base_url: None,
            resolver: None,
            http_port: default_http_port(),
            tls_alpn_port: default_tls_alpn_port(),
            timeout: default_timeout(),
        }
    }
}

impl AcmeConfig {
    /// True when the section is all defaults (then it is not shown).
    pub(crate) fn is_default(&self) -> bool {
        self == &Self::default()
    }

    pub(crate) fn validate(&self) -> Result<(), CryptError> {
        if self.roles.len() > super::MAX_ROLES {
            return Err(CryptError::invalid("acme.roles", "at most 256"));
        }
        if self.http_port == 0 || self.tls_alpn_port == 0 {
            return Err(CryptError::invalid("acme", "ports must be 1 to 65535"));
        }
        if !(1..=60).contains(&self.timeout.0) {
            return Err(CryptError::invalid("acme.timeout", "1s to 60s"));
        }
        if let Some(u) = &self.base_url {
            let ok = (u.starts_with("https://") || u.starts_with("http://"))
                && !u.ends_with('/')
                && u.len() <= 255
                && u.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(CryptError::invalid(
                    "acme.base_url",
                    "an http(s) URL without a trailing slash",
                ));
            }
        }
        Ok(())
    }
}
