//! Per-source-address limits: the request rate of the public credential
//! endpoints and the failed logins that trigger back-off. Bounded in
//! entries: when full of live windows, newcomers are refused rather than
//! the map grown.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::core::{Caller, Mcias};
use crate::error::IamError;

/// Sliding-window counters per source IP, bounded in entries.
pub(crate) struct IpWindows {
    window: Duration,
    limit: u32,
    max_entries: usize,
    map: HashMap<IpAddr, (Instant, u32)>,
}

impl IpWindows {
    fn new(window: Duration, limit: u32) -> Self {
        Self {
            window,
            limit,
            max_entries: 100_000,
            map: HashMap::new(),
        }
    }

    /// Counts one event; `false` once over the limit within the window.
    fn hit(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.map.len() >= self.max_entries {
            let w = self.window;
            self.map
                .retain(|_, (start, _)| now.duration_since(*start) < w);
            if self.map.len() >= self.max_entries {
                // Still full of live entries: refuse newcomers rather than grow.
                return self.map.contains_key(&ip) && self.check(ip, now);
            }
        }
        let e = self.map.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= self.window {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
        e.1 <= self.limit
    }

    fn check(&mut self, ip: IpAddr, now: Instant) -> bool {
        match self.map.get_mut(&ip) {
            Some(e) if now.duration_since(e.0) < self.window => {
                e.1 = e.1.saturating_add(1);
                e.1 <= self.limit
            }
            _ => true,
        }
    }

    fn over(&self, ip: IpAddr, now: Instant) -> bool {
        self.map
            .get(&ip)
            .is_some_and(|(start, n)| now.duration_since(*start) < self.window && *n >= self.limit)
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
    pub(crate) fn new(requests_per_minute: u32, failures_per_minute: u32) -> Self {
        let window = Duration::from_secs(60);
        Self {
            requests: Mutex::new(IpWindows::new(window, requests_per_minute)),
            failures: Mutex::new(IpWindows::new(window, failures_per_minute)),
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
