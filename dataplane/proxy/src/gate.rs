//! An L7 route's request gate: the GCRA rate per client address
//! (`mc_firewall::RateLimiter`, the firewall's lock-free table) and the cap
//! on requests in flight.
//!
//! Invariant: the limiter and the in-flight count outlive snapshots (a new
//! snapshot's gate takes the previous one's and applies the new settings in
//! place), so a change keeps every client's history and the count of the
//! requests still running. A request holds a [`Slot`] from admission until
//! its response body ends; dropping it gives the place back. The count is
//! kept only while a cap is set.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mc_firewall::{RateLimiter, RateLimiterConfig};

use crate::model::RequestLimits;

/// Cells of a route's rate table (8 bytes each): the number of clients over
/// their rate at the same moment the table tracks without evicting.
const TABLE_SIZE: usize = 1 << 12;

#[derive(Debug, Default)]
pub(crate) struct RequestGate {
    rate: Option<Arc<RateLimiter>>,
    in_flight: Arc<AtomicU32>,
    max_in_flight: u32,
}

/// Why a request was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The client is over the route's rate: 429, retry after this long.
    Rate(Duration),
    /// The route has its maximum of requests in flight: 503.
    Busy,
}

/// A request's place under the in-flight cap.
#[derive(Debug)]
pub(crate) struct Slot(Arc<AtomicU32>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RequestGate {
    /// The gate for `limits`, keeping `previous`'s limiter and count.
    pub(crate) fn build(limits: &RequestLimits, previous: Option<&RequestGate>) -> Self {
        let in_flight = previous.map_or_else(Arc::default, |p| p.in_flight.clone());
        let rate = if limits.rate_per_second == 0 {
            None
        } else {
            let (rate, burst) = (f64::from(limits.rate_per_second), limits.effective_burst());
            let kept = previous
                .and_then(|p| p.rate.clone())
                .filter(|r| r.set_rate(rate, burst).is_ok());
            kept.or_else(|| {
                let config = RateLimiterConfig {
                    rate_per_sec: rate,
                    burst,
                    table_size: TABLE_SIZE,
                };
                match RateLimiter::new(config) {
                    Ok(r) => Some(Arc::new(r)),
                    Err(e) => {
                        // Validated limits cannot get here.
                        tracing::error!(error = %e, "route rate limit refused; the route is not rate limited");
                        None
                    }
                }
            })
        };
        Self {
            rate,
            in_flight,
            max_in_flight: limits.max_concurrent_requests,
        }
    }

    /// Admits a request from `client`, or says why not. A request refused
    /// for its rate takes no slot, and one refused as busy costs no rate.
    pub(crate) fn admit(&self, client: IpAddr) -> Result<Option<Slot>, Refused> {
        let slot = if self.max_in_flight == 0 {
            None
        } else {
            let max = self.max_in_flight;
            self.in_flight
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < max).then_some(n + 1)
                })
                .map_err(|_| Refused::Busy)?;
            Some(Slot(self.in_flight.clone()))
        };
        if let Some(rate) = &self.rate {
            rate.check_wait(client, Instant::now())
                .map_err(Refused::Rate)?;
        }
        Ok(slot)
    }
}

/// `Retry-After` in whole seconds, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_millis()
        .div_ceil(1000)
        .max(1)
        .try_into()
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, burst: u32, max: u32) -> RequestLimits {
        RequestLimits {
            rate_per_second: rate,
            burst,
            max_concurrent_requests: max,
        }
    }

    #[test]
    fn rate_per_client_and_history_kept_across_a_change() {
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let gate = RequestGate::build(&limits(1, 2, 0), None);
        assert!(gate.admit(a).is_ok() && gate.admit(a).is_ok());
        let Err(Refused::Rate(wait)) = gate.admit(a) else {
            panic!("over the rate");
        };
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(retry_after_secs(wait), 1);
        assert!(gate.admit(b).is_ok(), "another client is unaffected");
        // A new snapshot with a higher burst keeps a's history.
        let next = RequestGate::build(&limits(1, 3, 0), Some(&gate));
        assert!(next.admit(a).is_ok());
        assert!(matches!(next.admit(a), Err(Refused::Rate(_))));
        // Turned off: everything passes.
        let off = RequestGate::build(&limits(0, 0, 0), Some(&next));
        assert!((0..100).all(|_| off.admit(a).is_ok()));
    }

    #[test]
    fn in_flight_cap_releases_on_drop_and_survives_a_change() {
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let gate = RequestGate::build(&limits(0, 0, 2), None);
        let one = gate.admit(ip).expect("first");
        let two = gate.admit(ip).expect("second");
        assert_eq!(gate.admit(ip).expect_err("full"), Refused::Busy);
        let next = RequestGate::build(&limits(0, 0, 2), Some(&gate));
        assert_eq!(next.admit(ip).expect_err("still full"), Refused::Busy);
        drop(one);
        let three = next.admit(ip).expect("a place came back");
        drop((two, three));
        assert_eq!(next.in_flight.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
