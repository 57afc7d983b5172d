//! Per-source-address limits: the request rate of the public credential
//! endpoints and the failed logins that trigger back-off.
//!
//! Sources are keyed by network, not by exact address: IPv4 by address
//! (/32), IPv6 by prefix (`ipv6_prefix_len`, /64 by default), so one host
//! holding a whole /64 is one source. Bounded in entries: when the table is
//! full, expired windows go first, then the oldest live ones (an eighth at
//! a time); a newcomer is always counted, never refused for lack of room.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::core::{Caller, Mcias};
use crate::error::IamError;

/// Most sources each window table tracks.
const MAX_ENTRIES: usize = 100_000;

/// The network `ip` is counted under: IPv4 (and IPv4-mapped IPv6) by
/// address, IPv6 by its first `v6_prefix` bits.
pub(crate) fn source_key(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let p = u32::from(v6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - p).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// Sliding-window counters per source network, bounded in entries.
pub(crate) struct IpWindows {
    window: Duration,
    limit: u32,
    max_entries: usize,
    v6_prefix: u8,
    map: HashMap<IpAddr, (Instant, u32)>,
}

impl IpWindows {
    pub(crate) fn new(window: Duration, limit: u32, v6_prefix: u8, max_entries: usize) -> Self {
        Self {
            window,
            limit,
            max_entries: max_entries.max(1),
            v6_prefix,
            map: HashMap::new(),
        }
    }

    /// Counts one event; `false` once over the limit within the window.
    pub(crate) fn hit(&mut self, ip: IpAddr, now: Instant) -> bool {
        let key = source_key(ip, self.v6_prefix);
        if !self.map.contains_key(&key) && self.map.len() >= self.max_entries {
            self.make_room(now);
        }
        let e = self.map.entry(key).or_insert((now, 0));
        if now.duration_since(e.0) >= self.window {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
        e.1 <= self.limit
    }

    /// Drops expired windows; when all are live, the oldest eighth.
    fn make_room(&mut self, now: Instant) {
        let w = self.window;
        self.map
            .retain(|_, (start, _)| now.duration_since(*start) < w);
        if self.map.len() < self.max_entries {
            return;
        }
        let n = (self.max_entries / 8).max(1);
        let mut starts: Vec<Instant> = self.map.values().map(|(s, _)| *s).collect();
        let cutoff = *starts.select_nth_unstable(n - 1).1;
        let mut left = n;
        self.map.retain(|_, (s, _)| {
            let evict = left > 0 && *s <= cutoff;
            left -= usize::from(evict);
            !evict
        });
    }

    pub(crate) fn over(&self, ip: IpAddr, now: Instant) -> bool {
        self.map
            .get(&source_key(ip, self.v6_prefix))
            .is_some_and(|(start, n)| now.duration_since(*start) < self.window && *n >= self.limit)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// The two windows MCIAS keeps per source address.
pub(crate) struct Limits {
    /// Per-IP request rate (login and validate).
    requests: Mutex<IpWindows>,
    /// Per-IP failed logins (back-off).
    failures: Mutex<IpWindows>,
}

impl Limits {
    pub(crate) fn new(requests_per_minute: u32, failures_per_minute: u32, v6_prefix: u8) -> Self {
        let window = Duration::from_secs(60);
        let table = |limit| Mutex::new(IpWindows::new(window, limit, v6_prefix, MAX_ENTRIES));
        Self {
            requests: table(requests_per_minute),
            failures: table(failures_per_minute),
        }
    }

    /// Counts a failed login from `caller`'s address.
    pub(crate) fn failed(&self, caller: &Caller) {
        if let Some(ip) = caller.source {
            self.failures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .hit(ip, Instant::now());
        }
    }

    /// Whether `caller`'s address has failed too often lately.
    pub(crate) fn backed_off(&self, caller: &Caller) -> bool {
        caller.source.is_some_and(|ip| {
            self.failures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .over(ip, Instant::now())
        })
    }
}

impl Mcias {
    /// The per-IP request limit of the public credential endpoints.
    pub fn rate_limit_public(&self, caller: &Caller) -> Result<(), IamError> {
        self.rate_limit(caller)
    }

    pub(crate) fn rate_limit(&self, caller: &Caller) -> Result<(), IamError> {
        // The public credential endpoints are where the store grows.
        self.maybe_prune();
        if let Some(ip) = caller.source {
            let mut w = self
                .limits
                .requests
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if !w.hit(ip, Instant::now()) {
                return Err(IamError::RateLimited(
                    "too many requests from this address; try again in a minute".to_owned(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    /// Issue 12 item 6: a table full of live windows refused every new
    /// address (429 on login, validate, reset and OAuth for everyone).
    #[test]
    fn a_full_table_evicts_rather_than_refusing_newcomers() {
        let now = Instant::now();
        let mut w = IpWindows::new(Duration::from_secs(60), 2, 64, 16);
        for i in 0..16 {
            assert!(w.hit(ip(&format!("198.51.100.{i}")), now));
        }
        assert_eq!(w.len(), 16);
        // Full of live windows: a newcomer is still served (twice, up to
        // its limit), and the table stays bounded.
        let later = now + Duration::from_secs(1);
        assert!(w.hit(ip("203.0.113.1"), later));
        assert!(w.hit(ip("203.0.113.1"), later));
        assert!(!w.hit(ip("203.0.113.1"), later), "and limited like anyone");
        assert!(w.len() <= 16, "{}", w.len());
        // Thousands of newcomers: every one is served, the table bounded.
        for i in 0..5000_u32 {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(w.hit(a, later), "newcomer {a} refused");
            assert!(w.len() <= 16);
        }
    }

    #[test]
    fn expired_windows_make_room_first() {
        let now = Instant::now();
        let mut w = IpWindows::new(Duration::from_secs(60), 1, 64, 4);
        for i in 0..4 {
            assert!(w.hit(ip(&format!("198.51.100.{i}")), now));
        }
        let later = now + Duration::from_secs(61);
        assert!(w.hit(ip("203.0.113.1"), later));
        assert_eq!(w.len(), 1, "every expired window went");
    }

    /// One /64 is one source, whatever addresses in it are used; IPv4 is
    /// keyed by address.
    #[test]
    fn one_ipv6_prefix_shares_one_entry() {
        let now = Instant::now();
        let mut w = IpWindows::new(Duration::from_secs(60), 3, 64, 100);
        for a in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
            assert!(w.hit(ip(a), now));
        }
        assert!(!w.hit(ip("2001:db8:1:2:abcd::1"), now), "same /64: over");
        assert!(w.over(ip("2001:db8:1:2::77"), now));
        assert_eq!(w.len(), 1);
        assert!(
            w.hit(ip("2001:db8:1:3::1"), now),
            "the next /64 is another source"
        );
        assert!(w.hit(ip("192.0.2.1"), now));
        assert!(w.hit(ip("192.0.2.2"), now), "IPv4 by address");
        assert!(w.hit(ip("::ffff:192.0.2.3"), now));
        assert_eq!(source_key(ip("::ffff:192.0.2.3"), 64), ip("192.0.2.3"));
        assert_eq!(source_key(ip("2001:db8::1"), 128), ip("2001:db8::1"));
        assert_eq!(source_key(ip("2001:db8::1"), 48), ip("2001:db8::"));
    }
}
