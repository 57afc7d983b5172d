//! Validated names: repositories and tags, per the distribution spec.
//!
//! Invariant: a [`RepoName`] matches the spec's regex, is at most
//! [`MAX_NAME`] bytes and [`MAX_COMPONENTS`] components, so it is safe in
//! table keys (`\0` never occurs) and URLs; a tag matches
//! `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.

use std::fmt;

/// Bytes in a repository name (so `host:port/` + name stays under 255).
pub const MAX_NAME: usize = 200;
/// Path components in a repository name.
pub const MAX_COMPONENTS: usize = 16;

/// A repository name (`apps/web`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

fn component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return false;
    };
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Runs of separators between alphanumerics: ".", "_", "__" or "-+".
    let mut i = 0;
    while i < b.len() {
        if alnum(&b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(&b[i]) {
            i += 1;
        }
        let run = &c[start..i];
        let ok = matches!(run, "." | "_" | "__") || run.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

impl RepoName {
    pub fn parse(s: &str) -> Option<Self> {
        if s.is_empty() || s.len() > MAX_NAME {
            return None;
        }
        let mut n = 0;
        for c in s.split('/') {
            n += 1;
            if n > MAX_COMPONENTS || !component_ok(c) {
                return None;
            }
        }
        Some(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `s` is a valid tag.
pub fn valid_tag(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(first) = b.first() else {
        return false;
    };
    let word = |x: &u8| x.is_ascii_alphanumeric() || *x == b'_';
    b.len() <= 128 && word(first) && b[1..].iter().all(|x| word(x) || *x == b'.' || *x == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_spec() {
        for ok in [
            "a",
            "apps/web",
            "a.b_c__d---e/f0",
            "token",
            "x/blobs",
            "a/tags",
            "library/busybox",
        ] {
            assert!(RepoName::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a_.b",
            "a:b",
            "a b",
            &"a/".repeat(16).to_string(),
            &"a".repeat(201),
        ] {
            assert!(RepoName::parse(bad).is_none(), "{bad:?}");
        }
        let sixteen = vec!["a"; 16].join("/");
        assert!(RepoName::parse(&sixteen).is_some());
        assert!(RepoName::parse(&format!("{sixteen}/a")).is_none());
    }

    #[test]
    fn tags_follow_the_spec() {
        for ok in ["latest", "v1.2.3", "_x", "A-b.c_", &"a".repeat(128)] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", ".a", "-a", "a:b", "a/b", &"a".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
    }
}
