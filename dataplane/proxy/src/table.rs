//! Route lookup by SNI: exact names first, then the most specific wildcard.
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

#[cfg(test)]
mod tests {
    use super::*;

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
