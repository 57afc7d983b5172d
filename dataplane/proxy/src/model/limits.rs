//! Request limits of an L7 route: a GCRA rate per client address and a cap
//! on the requests in flight.
//!
//! Invariant: a validated rate is 0 (off) or 1 to [`MAX_RATE`] per second
//! with a burst of at most [`MAX_BURST`]; the in-flight cap is 0 (off) or
//! at most [`MAX_IN_FLIGHT`].

use serde::{Deserialize, Serialize};

use super::Invalid;

const MAX_RATE: u32 = 1000;
const MAX_BURST: u32 = 100_000;
const MAX_IN_FLIGHT: u32 = 1_000_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestLimits {
    /// Requests per second per client (an IPv4 address or an IPv6 /64); 0: off.
    #[serde(default)]
    pub rate_per_second: u32,
    /// Requests a client may make at once before the rate applies; 0: the rate.
    #[serde(default)]
    pub burst: u32,
    /// Requests in flight on the route at once, all clients together; 0: off.
    #[serde(default)]
    pub max_concurrent_requests: u32,
}

impl RequestLimits {
    /// The burst the limiter uses: the configured one, or one second's worth.
    pub(crate) fn effective_burst(&self) -> u32 {
        if self.burst == 0 {
            self.rate_per_second.max(1)
        } else {
            self.burst
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        if self.rate_per_second > MAX_RATE {
            return Err(Invalid::new(
                "route.l7.rate_per_second",
                format!("at most {MAX_RATE} (0 turns the limit off)"),
            ));
        }
        if self.burst > MAX_BURST {
            return Err(Invalid::new(
                "route.l7.rate_burst",
                format!("at most {MAX_BURST}"),
            ));
        }
        if self.burst > 0 && self.rate_per_second == 0 {
            return Err(Invalid::new("route.l7.rate_burst", "needs rate_per_second"));
        }
        if self.max_concurrent_requests > MAX_IN_FLIGHT {
            return Err(Invalid::new(
                "route.l7.max_concurrent_requests",
                format!("at most {MAX_IN_FLIGHT} (0 turns the limit off)"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded_and_burst_defaults_to_the_rate() {
        let l = |r, b, c| RequestLimits {
            rate_per_second: r,
            burst: b,
            max_concurrent_requests: c,
        };
        l(0, 0, 0).validate().expect("off");
        l(1000, 100_000, 1_000_000).validate().expect("max");
        assert_eq!(l(5, 0, 0).effective_burst(), 5);
        assert_eq!(l(5, 2, 0).effective_burst(), 2);
        for (bad, field) in [
            (l(1001, 0, 0), "route.l7.rate_per_second"),
            (l(1, 100_001, 0), "route.l7.rate_burst"),
            (l(0, 3, 0), "route.l7.rate_burst"),
            (l(0, 0, 1_000_001), "route.l7.max_concurrent_requests"),
        ] {
            assert_eq!(bad.validate().expect_err("refused").field, field);
        }
    }
}
