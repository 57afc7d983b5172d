//! Profile validation and the checks of a sign request against its
//! profile (pure functions; unit tests below).
//!
//! Invariants: a certificate is never signed with an empty principal list
//! (OpenSSH reads that as "any principal"); every principal matches an
//! allowed pattern; extensions and critical options are only those the
//! profile allows; host certificates carry neither.

use std::collections::BTreeMap;

use super::model::{CertKind, Profile, SignRequest};
use super::{MAX_PATTERNS, MAX_PRINCIPALS, MAX_TTL_SECS};
use crate::error::CryptError;

/// The standard user-certificate extensions (PROTOCOL.certkeys).
pub(crate) const STANDARD_EXTENSIONS: &[&str] = &[
    "no-touch-required",
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
];
/// Allowed by default in a user profile (all but `no-touch-required`).
const DEFAULT_ALLOWED: &[&str] = &[
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
];
/// The critical options OpenSSH defines.
pub(crate) const CRITICAL_OPTIONS: &[&str] =
    &["force-command", "source-address", "verify-required"];

/// An OpenSSH pattern: `*` any run, `?` any one character.
pub(crate) fn matches(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// A principal or pattern: 1–255 printable ASCII bytes, no `,` or space.
fn check_principal(field: &str, p: &str) -> Result<(), CryptError> {
    let ok =
        !p.is_empty() && p.len() <= 255 && p.bytes().all(|b| b.is_ascii_graphic() && b != b',');
    if ok {
        Ok(())
    } else {
        Err(CryptError::invalid(
            field,
            format!("{p:?}: 1 to 255 printable characters, no comma or space"),
        ))
    }
}

fn check_option(name: &str, value: &str) -> Result<(), CryptError> {
    let field = format!("critical_options.{name}");
    match name {
        "force-command" if !value.is_empty() && value.len() <= 1024 => Ok(()),
        "force-command" => Err(CryptError::invalid(field, "1 to 1024 bytes")),
        "verify-required" if value.is_empty() => Ok(()),
        "verify-required" => Err(CryptError::invalid(field, "takes no value")),
        "source-address" => {
            let ok = !value.is_empty()
                && value.len() <= 1024
                && value.split(',').all(|a| {
                    let (ip, bits) = a.split_once('/').unwrap_or((a, ""));
                    let ip = ip.parse::<std::net::IpAddr>();
                    match (ip, bits) {
                        (Ok(_), "") => true,
                        (Ok(ip), b) => b
                            .parse::<u8>()
                            .is_ok_and(|n| n <= if ip.is_ipv4() { 32 } else { 128 }),
                        _ => false,
                    }
                });
            if ok {
                Ok(())
            } else {
                Err(CryptError::invalid(
                    field,
                    "a comma list of addresses or CIDRs",
                ))
            }
        }
        _ => Err(CryptError::invalid(
            field,
            format!("unknown; one of {}", CRITICAL_OPTIONS.join(", ")),
        )),
    }
}

impl Profile {
    /// Checks and normalises a profile (defaults filled in).
    pub(crate) fn check(mut self) -> Result<Profile, CryptError> {
        if self.allowed_principals.is_empty() || self.allowed_principals.len() > MAX_PATTERNS {
            return Err(CryptError::invalid(
                "allowed_principals",
                format!("1 to {MAX_PATTERNS} patterns"),
            ));
        }
        for p in &self.allowed_principals {
            check_principal("allowed_principals", p)?;
        }
        if self.default_principals.len() > MAX_PRINCIPALS {
            return Err(CryptError::invalid(
                "default_principals",
                format!("at most {MAX_PRINCIPALS}"),
            ));
        }
        for p in &self.default_principals {
            self.principal_allowed("default_principals", p)?;
        }
        if self.max_ttl.0 == 0 || self.max_ttl.0 > MAX_TTL_SECS {
            return Err(CryptError::invalid("max_ttl", "1s to 1 year"));
        }
        if self.ttl.0 == 0 || self.ttl > self.max_ttl {
            return Err(CryptError::invalid("ttl", "1s up to max_ttl"));
        }
        match self.cert_type {
            CertKind::Host => {
                let none = |v: &Option<Vec<String>>| v.as_ref().is_none_or(Vec::is_empty);
                if !none(&self.allowed_extensions) || !none(&self.default_extensions) {
                    return Err(CryptError::invalid(
                        "allowed_extensions",
                        "host certificates take none",
                    ));
                }
                if !self.critical_options.is_empty() || !self.allowed_critical_options.is_empty() {
                    return Err(CryptError::invalid(
                        "critical_options",
                        "host certificates take none",
                    ));
                }
                self.allowed_extensions = Some(Vec::new());
                self.default_extensions = Some(Vec::new());
            }
            CertKind::User => {
                let allowed = self
                    .allowed_extensions
                    .take()
                    .unwrap_or_else(|| DEFAULT_ALLOWED.iter().map(|s| (*s).to_owned()).collect());
                for e in &allowed {
                    if !STANDARD_EXTENSIONS.contains(&e.as_str()) {
                        return Err(CryptError::invalid(
                            "allowed_extensions",
                            format!("{e:?}: one of {}", STANDARD_EXTENSIONS.join(", ")),
                        ));
                    }
                }
                let defaults = self
                    .default_extensions
                    .take()
                    .unwrap_or_else(|| vec!["permit-pty".to_owned()]);
                for e in &defaults {
                    if !allowed.contains(e) {
                        return Err(CryptError::invalid(
                            "default_extensions",
                            format!("{e:?} is not in allowed_extensions"),
                        ));
                    }
                }
                self.allowed_extensions = Some(allowed);
                self.default_extensions = Some(defaults);
                for (k, v) in &self.critical_options {
                    check_option(k, v)?;
                }
                for k in &self.allowed_critical_options {
                    if !CRITICAL_OPTIONS.contains(&k.as_str()) {
                        return Err(CryptError::invalid(
                            "allowed_critical_options",
                            format!("{k:?}: one of {}", CRITICAL_OPTIONS.join(", ")),
                        ));
                    }
                }
            }
        }
        Ok(self)
    }

    fn principal_allowed(&self, field: &str, p: &str) -> Result<(), CryptError> {
        check_principal(field, p)?;
        if self.allowed_principals.iter().any(|pat| matches(pat, p)) {
            Ok(())
        } else {
            Err(CryptError::invalid(
                field,
                format!("principal {p:?} is not allowed by the profile"),
            ))
        }
    }
}

/// What a certificate will say, once a request passed its profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    pub principals: Vec<String>,
    pub ttl: u64,
    pub extensions: Vec<String>,
    pub critical_options: BTreeMap<String, String>,
}

/// Checks `r` against `p` (principals, TTL, extensions, options).
pub(crate) fn check_request(p: &Profile, r: &SignRequest) -> Result<Checked, CryptError> {
    let mut principals = if r.principals.is_empty() {
        p.default_principals.clone()
    } else {
        r.principals.clone()
    };
    if principals.is_empty() {
        return Err(CryptError::invalid(
            "principals",
            "at least one (the profile has no default)",
        ));
    }
    if principals.len() > MAX_PRINCIPALS {
        return Err(CryptError::invalid(
            "principals",
            format!("at most {MAX_PRINCIPALS}"),
        ));
    }
    for x in &principals {
        p.principal_allowed("principals", x)?;
    }
    principals.dedup();
    let ttl = r.ttl.unwrap_or(p.ttl).0;
    if ttl == 0 {
        return Err(CryptError::invalid("ttl", "at least 1s"));
    }
    if ttl > p.max_ttl.0 {
        return Err(CryptError::invalid(
            "ttl",
            format!("{ttl}s is over the profile's max_ttl ({}s)", p.max_ttl.0),
        ));
    }
    let allowed = p.allowed_extensions.clone().unwrap_or_default();
    let mut extensions = match &r.extensions {
        Some(e) => e.clone(),
        None => p.default_extensions.clone().unwrap_or_default(),
    };
    for e in &extensions {
        if !allowed.contains(e) {
            return Err(CryptError::invalid(
                "extensions",
                format!("{e:?} is not allowed by the profile"),
            ));
        }
    }
    extensions.sort();
    extensions.dedup();
    let mut options = p.critical_options.clone();
    for (k, v) in &r.critical_options {
        if !p.allowed_critical_options.contains(k) {
            return Err(CryptError::invalid(
                "critical_options",
                format!("{k:?} is not allowed by the profile"),
            ));
        }
        check_option(k, v)?;
        options.insert(k.clone(), v.clone());
    }
    Ok(Checked {
        principals,
        ttl,
        extensions,
        critical_options: options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile(v: serde_json::Value) -> Profile {
        serde_json::from_value::<Profile>(v)
            .expect("profile")
            .check()
            .expect("valid")
    }

    fn req(v: serde_json::Value) -> SignRequest {
        serde_json::from_value(v).expect("request")
    }

    proptest::proptest! {
        /// A pattern without wildcards matches only itself; `*` matches
        /// everything; a request's principals are accepted only when each
        /// one matches an allowed pattern.
        #[test]
        fn principals_pass_only_through_the_patterns(
            s in "[a-z0-9.*?-]{0,12}",
            t in "[a-z0-9.-]{1,12}",
            asked in proptest::collection::vec("[a-z*?,-]{0,8}", 0..4),
        ) {
            if !s.contains(['*', '?']) {
                proptest::prop_assert_eq!(matches(&s, &t), s == t);
            }
            proptest::prop_assert!(matches("*", &t));
            let p = profile(json!({"allowed_principals": ["alice", "deploy-*"]}));
            let r = SignRequest { principals: asked.clone(), ..SignRequest::default() };
            if let Ok(c) = check_request(&p, &r) {
                proptest::prop_assert!(!c.principals.is_empty());
                for x in &c.principals {
                    proptest::prop_assert!(x == "alice" || x.starts_with("deploy-"), "{x}");
                }
            }
        }
    }

    #[test]
    fn patterns() {
        assert!(matches("alice", "alice"));
        assert!(!matches("alice", "alicea"));
        assert!(matches("deploy-*", "deploy-web"));
        assert!(matches("deploy-*", "deploy-"));
        assert!(!matches("deploy-*", "deploy"));
        assert!(matches("*.example.test", "a.b.example.test"));
        assert!(!matches("*.example.test", "example.test"));
        assert!(matches("web-??", "web-01"));
        assert!(!matches("web-??", "web-1"));
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
    }

    #[test]
    fn profile_defaults_and_refusals() {
        let p = profile(json!({"allowed_principals": ["alice"]}));
        assert_eq!(p.cert_type, CertKind::User);
        assert_eq!(p.default_extensions, Some(vec!["permit-pty".to_owned()]));
        assert_eq!(p.ttl.0, 3600);
        let bad = |v: serde_json::Value, needle: &str| {
            let e = serde_json::from_value::<Profile>(v)
                .expect("shape")
                .check()
                .expect_err("refused")
                .to_string();
            assert!(e.contains(needle), "{needle:?} not in {e}");
        };
        bad(json!({"allowed_principals": []}), "allowed_principals");
        bad(
            json!({"allowed_principals": ["a"], "default_principals": ["b"]}),
            "not allowed",
        );
        bad(
            json!({"allowed_principals": ["a"], "ttl": "2h", "max_ttl": "1h"}),
            "ttl",
        );
        bad(
            json!({"allowed_principals": ["a"], "allowed_extensions": ["permit-everything"]}),
            "permit-everything",
        );
        bad(
            json!({"allowed_principals": ["a"], "critical_options": {"source-address": "nope"}}),
            "source-address",
        );
        bad(
            json!({"cert_type": "host", "allowed_principals": ["*.test"], "critical_options": {"force-command": "x"}}),
            "host",
        );
    }

    #[test]
    fn requests_checked_against_the_profile() {
        let p = profile(json!({
            "allowed_principals": ["alice", "deploy-*"],
            "allowed_critical_options": ["source-address"],
            "critical_options": {"force-command": "/bin/true"},
            "max_ttl": "2h"
        }));
        let c = check_request(
            &p,
            &req(
                json!({"public_key": "", "principals": ["deploy-web", "alice"], "ttl": "90m",
                "critical_options": {"source-address": "127.0.0.1/32,::1"}}),
            ),
        )
        .expect("ok");
        assert_eq!(c.ttl, 5400);
        assert_eq!(c.extensions, vec!["permit-pty".to_owned()]);
        assert_eq!(c.critical_options.len(), 2);
        let refused = |v: serde_json::Value, needle: &str| {
            let e = check_request(&p, &req(v)).expect_err("refused").to_string();
            assert!(e.contains(needle), "{needle:?} not in {e}");
        };
        refused(
            json!({"public_key": "", "principals": ["bob"]}),
            "\"bob\" is not allowed",
        );
        refused(json!({"public_key": "", "principals": []}), "at least one");
        refused(
            json!({"public_key": "", "principals": ["alice"], "ttl": "3h"}),
            "max_ttl",
        );
        refused(
            json!({"public_key": "", "principals": ["alice"], "extensions": ["no-touch-required"]}),
            "no-touch-required",
        );
        refused(
            json!({"public_key": "", "principals": ["alice"], "critical_options": {"force-command": "sh"}}),
            "force-command",
        );
        refused(json!({"public_key": "", "principals": ["a,b"]}), "no comma");
    }
}
