//! Path-prefix rules of an L7 route: which backends a request goes to by
//! the start of its path.
//!
//! Invariant: a validated rule's prefix starts with `/`, is 1 to
//! [`MAX_PREFIX`] visible ASCII bytes without `?` or `#`, and is unique in
//! its route; a route has at most [`MAX_PATH_RULES`] rules. Matching (in
//! `table::PathTable`) compares bytes: nothing is decoded or normalized.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{Backend, BackendProtocol, Invalid, MAX_BACKENDS};

pub(crate) const MAX_PATH_RULES: usize = 64;
const MAX_PREFIX: usize = 256;

/// One rule: requests whose path starts with `prefix` go to `backends`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PathRule {
    pub prefix: String,
    pub backends: Vec<Backend>,
    /// `None`: the route's backend protocol.
    #[serde(default)]
    pub backend_protocol: Option<BackendProtocol>,
    /// Remove `prefix` from the path before forwarding (the query stays).
    #[serde(default)]
    pub strip_prefix: bool,
}

impl PathRule {
    pub fn new(prefix: impl Into<String>, backends: Vec<Backend>) -> Self {
        Self {
            prefix: prefix.into(),
            backends,
            backend_protocol: None,
            strip_prefix: false,
        }
    }
}

/// Checks a route's rules (`field` names the list, e.g. `route.l7.paths`).
pub(crate) fn validate(field: &str, rules: &[PathRule]) -> Result<(), Invalid> {
    if rules.len() > MAX_PATH_RULES {
        return Err(Invalid::new(
            field,
            format!("at most {MAX_PATH_RULES} path rules per route"),
        ));
    }
    let mut seen = HashSet::new();
    for (i, r) in rules.iter().enumerate() {
        let at = |what: &str| format!("{field}[{i}].{what}");
        check_prefix(&r.prefix).map_err(|m| Invalid::new(at("prefix"), m))?;
        if !seen.insert(r.prefix.as_str()) {
            return Err(Invalid::new(
                at("prefix"),
                format!("`{}` is listed twice", r.prefix),
            ));
        }
        if r.backends.is_empty() || r.backends.len() > MAX_BACKENDS {
            return Err(Invalid::new(
                at("backends"),
                format!("1 to {MAX_BACKENDS} backends"),
            ));
        }
    }
    Ok(())
}

fn check_prefix(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("`{p}` must start with `/`"));
    }
    if p.len() > MAX_PREFIX {
        return Err(format!("at most {MAX_PREFIX} bytes"));
    }
    if !p
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
    {
        return Err(format!(
            "`{p}`: only visible ASCII characters, no `?` or `#` (a prefix matches the path, not the query)"
        ));
    }
    Ok(())
}

/// The path and query a backend gets when `prefix` is stripped from
/// `path_and_query`: always starting with `/`. `None` when `prefix` does
/// not start the path.
pub(crate) fn strip(path_and_query: &str, prefix: &str) -> Option<String> {
    let rest = path_and_query.strip_prefix(prefix)?;
    Some(if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(p: &str) -> PathRule {
        PathRule::new(p, vec![Backend::parse("127.0.0.1:80").expect("backend")])
    }

    #[test]
    fn prefixes_are_checked_and_unique() {
        validate("p", &[rule("/"), rule("/api/"), rule("/a-b_c.~%20")]).expect("valid");
        for bad in ["", "api", "/a b", "/a?x", "/a#x", "/é"] {
            assert!(validate("p", &[rule(bad)]).is_err(), "{bad}");
        }
        let e = validate("p", &[rule("/x"), rule("/x")]).expect_err("twice");
        assert_eq!(e.field, "p[1].prefix");
        let many: Vec<_> = (0..=MAX_PATH_RULES)
            .map(|i| rule(&format!("/{i}")))
            .collect();
        assert!(validate("p", &many).is_err());
        let mut none = rule("/n");
        none.backends.clear();
        assert_eq!(
            validate("p", &[none]).expect_err("no backend").field,
            "p[0].backends"
        );
    }

    #[test]
    fn stripping_keeps_the_query_and_a_leading_slash() {
        assert_eq!(strip("/api/v1?x=1", "/api/").as_deref(), Some("/v1?x=1"));
        assert_eq!(strip("/api/v1", "/api").as_deref(), Some("/v1"));
        assert_eq!(strip("/api", "/api").as_deref(), Some("/"));
        assert_eq!(strip("/api?q", "/api").as_deref(), Some("/?q"));
        assert_eq!(strip("/apix", "/api").as_deref(), Some("/x"));
        assert_eq!(strip("/", "/").as_deref(), Some("/"));
        assert_eq!(strip("/other", "/api"), None);
    }
}
