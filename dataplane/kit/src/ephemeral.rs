//! Short-lived, single-use values held in memory: two-step login nonces,
//! OAuth codes, WebAuthn ceremonies, later ACME orders and upload sessions.
//!
//! Invariants: a value is handed out at most once ([`SingleUse::take`]
//! removes it), never after its TTL, and the map never holds more than its
//! capacity — when full of live entries it refuses new ones rather than grow
//! (a flood of begun-but-never-finished ceremonies costs the flooder, not
//! the memory of the process). Nothing survives a restart, by design.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The map is full of live entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many pending requests; try again shortly")]
pub struct Full;

/// A bounded map of values that expire after `ttl` and can be taken once.
pub struct SingleUse<K, V> {
    ttl: Duration,
    capacity: usize,
    map: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V> SingleUse<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (every operation is a single insert/remove), so poison is ignored.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds `value` under `key` until taken or expired.
    pub fn insert(&self, key: K, value: V) -> Result<(), Full> {
        self.insert_at(key, value, Instant::now())
    }

    pub fn insert_at(&self, key: K, value: V, now: Instant) -> Result<(), Full> {
        let mut map = self.lock();
        if map.len() >= self.capacity {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| now.saturating_duration_since(*at) < ttl);
            if map.len() >= self.capacity {
                return Err(Full);
            }
        }
        map.insert(key, (now, value));
        Ok(())
    }

    /// Removes and returns the value if it is still live.
    pub fn take<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.take_at(key, Instant::now())
    }

    pub fn take_at<Q>(&self, key: &Q, now: Instant) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (at, value) = self.lock().remove(key)?;
        (now.saturating_duration_since(at) < self.ttl).then_some(value)
    }

    /// Whether a live value is held under `key` (without taking it).
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = Instant::now();
        self.lock()
            .get(key)
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) < self.ttl)
    }

    /// Live and expired-but-not-yet-purged entries.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_once_never_after_ttl_and_bounded() {
        let m = SingleUse::new(Duration::from_secs(60), 2);
        let t0 = Instant::now();
        m.insert_at("a".to_owned(), 1, t0).expect("room");
        assert_eq!(m.take_at("a", t0), Some(1));
        assert_eq!(m.take_at("a", t0), None, "single use");

        m.insert_at("b".to_owned(), 2, t0).expect("room");
        assert_eq!(
            m.take_at("b", t0 + Duration::from_secs(61)),
            None,
            "expired"
        );

        m.insert_at("c".to_owned(), 3, t0).expect("room");
        m.insert_at("d".to_owned(), 4, t0).expect("room");
        assert_eq!(
            m.insert_at("e".to_owned(), 5, t0),
            Err(Full),
            "full of live entries"
        );
        // Once they expire, the space is reclaimed.
        m.insert_at("e".to_owned(), 5, t0 + Duration::from_secs(61))
            .expect("expired entries purged");
        assert_eq!(m.len(), 1);
        assert_eq!(m.take_at("e", t0 + Duration::from_secs(62)), Some(5));
    }
}
