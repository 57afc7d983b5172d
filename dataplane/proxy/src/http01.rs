//! ACME HTTP-01 answers the proxy gives itself: while a managed
//! certificate's ACME order is open, its client publishes here the key
//! authorization for each (hostname, token), and the plain-HTTP listeners
//! answer `GET /.well-known/acme-challenge/<token>` for that Host from it,
//! before any route is looked up (docs/design/proxy.md §Managed certificates).
//!
//! Invariants: workers only load the map (wait-free, like the snapshot);
//! the admin side replaces it whole (`rcu`); at most [`MAX_TOKENS`] entries,
//! so a stuck order cannot grow it without bound; an order withdraws its
//! tokens when it ends, however it ends.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

/// Open challenges at once (an order has at most 100 names; attempts run one at a time).
pub const MAX_TOKENS: usize = 1000;

/// (hostname, token) → key authorization.
type Map = BTreeMap<(String, String), Arc<str>>;

/// The published HTTP-01 answers, shared by the admin side and the workers.
#[derive(Debug, Default)]
pub struct Http01Tokens(ArcSwap<Map>);

impl Http01Tokens {
    /// Answers `key_authorization` for `token` on `host` until withdrawn.
    /// Refused when [`MAX_TOKENS`] are open.
    pub fn publish(&self, host: &str, token: &str, key_authorization: &str) -> Result<(), String> {
        let key = (host.to_ascii_lowercase(), token.to_owned());
        let mut full = false;
        self.0.rcu(|m| {
            full = m.len() >= MAX_TOKENS && !m.contains_key(&key);
            let mut m = Map::clone(m);
            if !full {
                m.insert(key.clone(), Arc::from(key_authorization));
            }
            m
        });
        if full {
            return Err(format!("{MAX_TOKENS} ACME challenges are open already"));
        }
        Ok(())
    }

    /// Stops answering `token` on `host`.
    pub fn withdraw(&self, host: &str, token: &str) {
        let key = (host.to_ascii_lowercase(), token.to_owned());
        self.0.rcu(|m| {
            let mut m = Map::clone(m);
            m.remove(&key);
            m
        });
    }

    /// The key authorization for `token` on `host` (lower-case), if published.
    pub(crate) fn lookup(&self, host: &str, token: &str) -> Option<Arc<str>> {
        let m = self.0.load();
        m.get(&(host.to_owned(), token.to_owned())).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_tokens_answer_per_host_until_withdrawn() {
        let t = Http01Tokens::default();
        t.publish("App.test", "tok", "tok.thumb").expect("publish");
        assert_eq!(t.lookup("app.test", "tok").as_deref(), Some("tok.thumb"));
        assert_eq!(t.lookup("other.test", "tok"), None, "per hostname");
        assert_eq!(t.lookup("app.test", "tok2"), None);
        t.withdraw("app.test", "tok");
        assert_eq!(t.lookup("app.test", "tok"), None);
    }

    #[test]
    fn the_map_is_bounded() {
        let t = Http01Tokens::default();
        for i in 0..MAX_TOKENS {
            t.publish("a.test", &i.to_string(), "k").expect("room");
        }
        assert!(t.publish("a.test", "one-more", "k").is_err());
        // Re-publishing an open token is not growth.
        t.publish("a.test", "0", "k2").expect("replace");
        t.withdraw("a.test", "1");
        t.publish("a.test", "one-more", "k").expect("room again");
    }
}
