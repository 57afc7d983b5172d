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
/// first `starts_with` that holds: at most one comparison per rule, no
/// allocation. The prefixes sit back to back in one string, so a lookup
/// reads a few cache lines, not one allocation per rule. Prefixes are
/// unique (the model checks it).
#[derive(Debug)]
pub struct PathTable<T> {
    text: Box<str>,
    /// Each rule's end offset in `text` (it starts where the previous ends).
    rules: Box<[(usize, T)]>,
}

impl<T> Default for PathTable<T> {
    fn default() -> Self {
        Self {
            text: Box::default(),
            rules: Box::default(),
        }
    }
}

impl<T> FromIterator<(Box<str>, T)> for PathTable<T> {
    fn from_iter<I: IntoIterator<Item = (Box<str>, T)>>(iter: I) -> Self {
        let mut rules: Vec<_> = iter.into_iter().collect();
        // Stable: equal lengths keep their order (they cannot both match).
        rules.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let mut text = String::with_capacity(rules.iter().map(|(p, _)| p.len()).sum());
        let rules = rules
            .into_iter()
            .map(|(p, v)| {
                text.push_str(&p);
                (text.len(), v)
            })
            .collect();
        Self {
            text: text.into_boxed_str(),
            rules,
        }
    }
}

impl<T> PathTable<T> {
    /// The rule with the longest prefix of `path`, with that prefix.
    pub fn lookup(&self, path: &str) -> Option<(&str, &T)> {
        self.iter().find(|(p, _)| path.starts_with(p))
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules, longest prefix first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        let mut start = 0;
        self.rules.iter().map(move |(end, v)| {
            let p = self.text.get(start..*end).unwrap_or_default();
            start = *end;
            (p, v)
        })
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

    proptest! {
        /// The answer is the longest of the prefixes that start the path.
        #[test]
        fn lookup_is_the_longest_matching_prefix(
            prefixes in proptest::collection::hash_set("/[ab/]{0,4}", 0..8),
            path in "/[ab/]{0,6}",
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
