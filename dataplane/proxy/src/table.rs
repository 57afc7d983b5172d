//! Route lookup by SNI: exact names first, then the most specific wildcard;
//! within an L7 route, path rules by longest prefix ([`PathTable`]).
//!
//! `*.example.com` matches any name ending in `.example.com` (one or more
//! labels in front); for `a.b.example.com` the candidates are tried from the
//! longest suffix down, so `*.b.example.com` beats `*.example.com`. A lookup
//! is at most one hash probe per label and allocates nothing.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::HostPattern;

#[derive(Debug)]
pub struct RouteTable<T> {
    exact: HashMap<Box<str>, Arc<T>>,
    /// Keyed by the suffix after `*.`.
    wildcard: HashMap<Box<str>, Arc<T>>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        }
    }
}

impl<T> RouteTable<T> {
    pub fn insert(&mut self, pattern: &HostPattern, value: Arc<T>) {
        match pattern.wildcard_suffix() {
            Some(suffix) => self.wildcard.insert(suffix.into(), value),
            None => self.exact.insert(pattern.as_str().into(), value),
        };
    }

    pub fn get(&self, pattern: &HostPattern) -> Option<&Arc<T>> {
        match pattern.wildcard_suffix() {
            Some(suffix) => self.wildcard.get(suffix),
            None => self.exact.get(pattern.as_str()),
        }
    }

    pub fn values(&self) -> impl Iterator<Item = &Arc<T>> {
        self.exact.values().chain(self.wildcard.values())
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcard.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `name` must already be lower-case (the ClientHello parser guarantees it).
    pub fn lookup(&self, name: &str) -> Option<&Arc<T>> {
        if let Some(v) = self.exact.get(name) {
            return Some(v);
        }
        if self.wildcard.is_empty() {
            return None;
        }
        let mut rest = name;
        while let Some((_, suffix)) = rest.split_once('.') {
            if let Some(v) = self.wildcard.get(suffix) {
                return Some(v);
            }
            rest = suffix;
        }
        None
    }
}

/// A route's path-prefix rules: the longest prefix of a path wins.
///
/// Sorted by prefix length, longest first, when built, so a lookup is the
/// first rule whose prefix starts the path. Each rule's first eight bytes
/// sit in a word of their own, so a rule that does not match costs one
/// mask and compare against the path's first word (no `memcmp` call per
/// rule); only a prefix longer than eight bytes whose head matched
/// compares its tail. No allocation. Prefixes are unique (the model checks
/// it) and start with `/`, so a zero byte padding a short path never
/// equals a prefix byte.
#[derive(Debug)]
pub struct PathTable<T> {
    heads: Box<[Head]>,
    /// The prefixes back to back, in `heads`' order.
    text: Box<str>,
    /// Each rule's target, in `heads`' order (read only on a match).
    values: Box<[T]>,
}

/// A rule's first eight bytes (little-endian, zero-padded) and where its
/// whole prefix lies in the table's text.
#[derive(Debug, Clone, Copy)]
struct Head {
    word: u64,
    start: u32,
    len: u32,
}

impl Head {
    /// The bits of a path's first word that this prefix constrains.
    fn mask(self) -> u64 {
        let bytes = self.len.min(8);
        u64::MAX.checked_shr(64 - 8 * bytes).unwrap_or(0)
    }
}

/// `bytes`' first eight bytes as a little-endian word, zero-padded.
fn first_word(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    let n = bytes.len().min(8);
    if let (Some(dst), Some(src)) = (word.get_mut(..n), bytes.get(..n)) {
        dst.copy_from_slice(src);
    }
    u64::from_le_bytes(word)
}

impl<T> Default for PathTable<T> {
    fn default() -> Self {
        Self {
            heads: Box::default(),
            text: Box::default(),
            values: Box::default(),
        }
    }
}

impl<T> FromIterator<(Box<str>, T)> for PathTable<T> {
    fn from_iter<I: IntoIterator<Item = (Box<str>, T)>>(iter: I) -> Self {
        let mut rules: Vec<_> = iter.into_iter().collect();
        // Stable: equal lengths keep their order (they cannot both match).
        rules.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let mut text = String::with_capacity(rules.iter().map(|(p, _)| p.len()).sum());
        let mut heads = Vec::with_capacity(rules.len());
        let mut values = Vec::with_capacity(rules.len());
        for (prefix, value) in rules {
            // Prefixes are at most 256 bytes and 64 per route (the model's
            // limits), so offsets fit in u32 with room to spare.
            let start = u32::try_from(text.len()).unwrap_or(u32::MAX);
            let len = u32::try_from(prefix.len()).unwrap_or(u32::MAX);
            heads.push(Head {
                word: first_word(prefix.as_bytes()),
                start,
                len,
            });
            text.push_str(&prefix);
            values.push(value);
        }
        Self {
            heads: heads.into(),
            text: text.into_boxed_str(),
            values: values.into(),
        }
    }
}

impl<T> PathTable<T> {
    /// The rule with the longest prefix of `path`, with that prefix.
    pub fn lookup(&self, path: &str) -> Option<(&str, &T)> {
        let bytes = path.as_bytes();
        let word = first_word(bytes);
        for (i, h) in self.heads.iter().enumerate() {
            if word & h.mask() != h.word {
                continue;
            }
            let prefix = self.prefix(*h);
            if h.len > 8 && !bytes.starts_with(prefix.as_bytes()) {
                continue;
            }
            return self.values.get(i).map(|v| (prefix, v));
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// The rules, longest prefix first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.heads
            .iter()
            .zip(self.values.iter())
            .map(|(h, v)| (self.prefix(*h), v))
    }

    fn prefix(&self, h: Head) -> &str {
        let (start, len) = (h.start as usize, h.len as usize);
        self.text.get(start..start + len).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn longest_prefix_wins_whatever_the_order() {
        let t: PathTable<u8> = [("/", 0), ("/api/v2/", 2), ("/api/", 1)]
            .into_iter()
            .map(|(p, v)| (Box::from(p), v))
            .collect();
        let get = |p: &str| t.lookup(p).map(|(_, v)| *v);
        assert_eq!(get("/api/v2/x"), Some(2));
        assert_eq!(get("/api/v1"), Some(1));
        assert_eq!(get("/api"), Some(0));
        assert_eq!(get("/"), Some(0));
        assert_eq!(get(""), None);
        assert_eq!(PathTable::<u8>::default().lookup("/x"), None);
    }

    #[test]
    fn long_prefixes_compare_their_tails_and_short_paths_their_padding() {
        let t: PathTable<u8> = [
            ("/", 0),
            ("/api/", 1),
            ("/.well-known/acme-challenge/", 2),
            ("/.well-known/", 3),
        ]
        .into_iter()
        .map(|(p, v)| (Box::from(p), v))
        .collect();
        let get = |p: &str| t.lookup(p).map(|(prefix, v)| (prefix.to_owned(), *v));
        assert_eq!(
            get("/.well-known/acme-challenge/tok"),
            Some(("/.well-known/acme-challenge/".into(), 2))
        );
        // The head (first eight bytes) matches; the tail does not.
        assert_eq!(
            get("/.well-known/acme-chall"),
            Some(("/.well-known/".into(), 3))
        );
        assert_eq!(get("/.well-kn"), Some(("/".into(), 0)));
        assert_eq!(get("/ap"), Some(("/".into(), 0)), "shorter than /api/");
        assert_eq!(get("/api/"), Some(("/api/".into(), 1)));
        let order: Vec<&str> = t.iter().map(|(p, _)| p).collect();
        assert_eq!(
            order,
            [
                "/.well-known/acme-challenge/",
                "/.well-known/",
                "/api/",
                "/"
            ]
        );
    }

    proptest! {
        /// The answer is the longest of the prefixes that start the path.
        #[test]
        fn lookup_is_the_longest_matching_prefix(
            prefixes in proptest::collection::hash_set("/[ab/]{0,12}", 0..12),
            path in "/[ab/]{0,14}",
        ) {
            let t: PathTable<String> =
                prefixes.iter().map(|p| (Box::from(p.as_str()), p.clone())).collect();
            let want = prefixes
                .iter()
                .filter(|p| path.starts_with(p.as_str()))
                .max_by_key(|p| p.len());
            prop_assert_eq!(t.lookup(&path).map(|(_, v)| v), want);
        }
    }

    fn table(patterns: &[&str]) -> RouteTable<String> {
        let mut t = RouteTable::default();
        for p in patterns {
            let h = HostPattern::parse(p).expect("pattern");
            t.insert(&h, Arc::new((*p).to_owned()));
        }
        t
    }

    #[test]
    fn exact_beats_wildcard_and_longest_wildcard_wins() {
        let t = table(&["a.example.com", "*.example.com", "*.b.example.com"]);
        let get = |n: &str| t.lookup(n).map(|s| s.as_str().to_owned());
        assert_eq!(get("a.example.com").as_deref(), Some("a.example.com"));
        assert_eq!(get("x.example.com").as_deref(), Some("*.example.com"));
        assert_eq!(get("x.y.example.com").as_deref(), Some("*.example.com"));
        assert_eq!(get("x.b.example.com").as_deref(), Some("*.b.example.com"));
        assert_eq!(
            get("example.com"),
            None,
            "a wildcard needs a label in front"
        );
        assert_eq!(get("example.org"), None);
        assert_eq!(get(""), None);
    }

    #[test]
    fn ten_thousand_routes() {
        let mut t = RouteTable::default();
        for i in 0..10_000 {
            let h = HostPattern::parse(&format!("svc{i}.example.com")).expect("p");
            t.insert(&h, Arc::new(i));
        }
        assert_eq!(t.lookup("svc9999.example.com").map(|v| **v), Some(9999));
        assert_eq!(t.len(), 10_000);
    }
}
