//! The pure parts of a managed certificate's life: the spec's checks, the
//! chain to serve, and when the next attempt is due. (The key and its CSR
//! come from the host's [`super::CsrMaker`]: this engine links no
//! certificate generator.)

use std::time::Duration;

use super::acme::AcmeSpec;
use crate::model::Invalid;
use serde::{Deserialize, Serialize};

/// Names per certificate (Metacrypt's own bound).
pub(super) const MAX_NAMES: usize = 100;
/// The first retry after a failure; doubles per failure in a row.
const BACKOFF_FIRST: Duration = Duration::from_secs(5);
/// The longest wait between two failed attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// A managed certificate as stored (`managed_certificates`, keyed by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ManagedSpec {
    pub(crate) name: String,
    pub(crate) dns_names: Vec<String>,
    pub(crate) mount: String,
    pub(crate) role: String,
    /// 0: the role's default.
    #[serde(default)]
    pub(crate) ttl_seconds: u64,
    /// Set: issued through ACME instead (then `mount`, `role` and `ttl_seconds` are empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) acme: Option<AcmeSpec>,
}

impl ManagedSpec {
    /// Checks every field, naming the first bad one.
    pub(super) fn check(&self) -> Result<(), Invalid> {
        crate::model::check_certificate_name("name", &self.name)?;
        if self.dns_names.is_empty() || self.dns_names.len() > MAX_NAMES {
            return Err(Invalid::new(
                "dns_names",
                format!("1 to {MAX_NAMES} names are needed"),
            ));
        }
        for n in &self.dns_names {
            check_dns_name(n)?;
        }
        if let Some(acme) = &self.acme {
            if !self.mount.is_empty() || !self.role.is_empty() || self.ttl_seconds != 0 {
                return Err(Invalid::new(
                    "acme_directory",
                    "an ACME certificate takes no mount, role or ttl (the CA decides)",
                ));
            }
            if self.dns_names.iter().any(|n| n.starts_with("*.")) {
                return Err(Invalid::new(
                    "dns_names",
                    "wildcards need DNS-01, which the ACME source does not answer",
                ));
            }
            return acme.check();
        }
        for (field, v) in [("mount", &self.mount), ("role", &self.role)] {
            let ok = !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_')
                });
            if !ok {
                return Err(Invalid::new(
                    field,
                    format!("`{v}` must be 1 to 64 characters of a-z, 0-9, `-` and `_`"),
                ));
            }
        }
        if self.ttl_seconds > 20 * 365 * 86_400 {
            return Err(Invalid::new("ttl_seconds", "at most 20 years"));
        }
        Ok(())
    }

    /// Where its certificates come from, as `mcctl proxy certs list` shows it.
    pub(crate) fn source(&self) -> String {
        if let Some(a) = &self.acme {
            return format!("acme:{}", a.directory);
        }
        format!("metacrypt:{}/{}", self.mount, self.role)
    }
}

/// A DNS name or a `*.` wildcard of one: lowercase labels of 1-63 `[a-z0-9-]`.
fn check_dns_name(name: &str) -> Result<(), Invalid> {
    let rest = name.strip_prefix("*.").unwrap_or(name);
    let ok = !rest.is_empty()
        && name.len() <= 253
        && rest.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            "dns_names",
            format!("`{name}` is not a lowercase DNS name"),
        ))
    }
}

/// The chain to serve: the leaf, then the issuer's chain without any
/// self-signed certificate (a root is the client's anchor, never sent).
pub(super) fn served_chain(leaf_pem: &str, ca_chain_pem: &str) -> Result<String, String> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = leaf_pem.trim().to_owned();
    out.push('\n');
    for block in ca_chain_pem.split_inclusive(END) {
        let block = block.trim();
        if !block.ends_with(END) {
            continue;
        }
        let (_, pem) = x509_parser::pem::parse_x509_pem(block.as_bytes())
            .map_err(|e| format!("the CA chain is not PEM: {e}"))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| format!("the CA chain does not parse: {e}"))?;
        if cert.subject().as_raw() != cert.issuer().as_raw() {
            out.push_str(block);
            out.push('\n');
        }
    }
    Ok(out)
}

/// When a certificate valid from `not_before` to `not_after` is renewed:
/// at two thirds of its lifetime.
pub(super) fn renew_at(not_before: i64, not_after: i64) -> i64 {
    let life = not_after.saturating_sub(not_before).max(0);
    not_before.saturating_add(life / 3 * 2 + (life % 3) * 2 / 3)
}

/// The wait after `failures` failed attempts in a row (at least one).
pub(super) fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    BACKOFF_FIRST.saturating_mul(factor).min(BACKOFF_MAX)
}
