//! How a route spreads connections and requests over its backends, and how
//! it checks them (design: proxy.md, "Balancing and backend health").

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Invalid;

pub(crate) const MAX_WEIGHT: u32 = 100;
const MAX_SLOW_START: Duration = Duration::from_secs(3600);
const MAX_HTTP_PATH: usize = 1024;
const MAX_GRPC_SERVICE: usize = 256;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BalancePolicy {
    /// Weighted round robin.
    #[default]
    Rr,
    /// Fewest outstanding connections (L4) or requests (L7) per unit of weight.
    Least,
    /// Rendezvous hashing of the client address (or of `hash_header`, L7).
    Hash,
}

/// A route's balancing settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Balance {
    pub policy: BalancePolicy,
    /// L7 with `Hash`: hash this request header's value when present
    /// (lower-cased name).
    pub hash_header: Option<String>,
    /// One weight (1-100) per route backend, in order; empty: all 1.
    pub weights: Vec<u32>,
    /// Readmitted backends ramp up over this long; zero: off.
    pub slow_start: Duration,
    /// Outlier ejection's first length, doubled per ejection in a row;
    /// zero: [`DEFAULT_EJECTION_BASE`].
    pub ejection_base: Duration,
    /// The longest ejection; zero: [`DEFAULT_EJECTION_MAX`].
    pub ejection_max: Duration,
}

/// The first ejection after a failed connect, unless the route sets one.
pub const DEFAULT_EJECTION_BASE: Duration = Duration::from_secs(10);
/// The longest ejection, unless the route sets one.
pub const DEFAULT_EJECTION_MAX: Duration = Duration::from_secs(300);
const MIN_EJECTION: Duration = Duration::from_millis(100);
const MAX_EJECTION: Duration = Duration::from_secs(3600);

impl Balance {
    /// The weight of the route's `i`th backend.
    pub(crate) fn weight(&self, i: usize) -> u32 {
        self.weights.get(i).copied().unwrap_or(1)
    }

    /// The ejection's first and longest length, defaults applied.
    pub(crate) fn ejection(&self) -> (Duration, Duration) {
        let or = |d: Duration, default| if d.is_zero() { default } else { d };
        (
            or(self.ejection_base, DEFAULT_EJECTION_BASE),
            or(self.ejection_max, DEFAULT_EJECTION_MAX),
        )
    }

    pub(crate) fn validate(&self, backends: usize, l7: bool) -> Result<(), Invalid> {
        if !self.weights.is_empty() && self.weights.len() != backends {
            return Err(Invalid::new(
                "route.backend_weights",
                format!(
                    "one weight per backend ({backends}), or none; got {}",
                    self.weights.len()
                ),
            ));
        }
        if self.weights.iter().any(|w| !(1..=MAX_WEIGHT).contains(w)) {
            return Err(Invalid::new(
                "route.backend_weights",
                format!("every weight is between 1 and {MAX_WEIGHT}"),
            ));
        }
        if let Some(h) = &self.hash_header {
            if self.policy != BalancePolicy::Hash || !l7 {
                return Err(Invalid::new(
                    "route.balance.hash_header",
                    "only with the hash policy on an L7 route",
                ));
            }
            if h.len() > 128 || http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(Invalid::new(
                    "route.balance.hash_header",
                    format!("`{h}` is not a valid header name"),
                ));
            }
        }
        if self.slow_start > MAX_SLOW_START {
            return Err(Invalid::new(
                "route.balance.slow_start",
                "at most 1h (0: off)",
            ));
        }
        let (base, max) = self.ejection();
        if !(MIN_EJECTION..=MAX_EJECTION).contains(&base) {
            return Err(Invalid::new(
                "route.ejection_base",
                "between 100ms and 1h (0: 10s)",
            ));
        }
        if max < base || max > MAX_EJECTION {
            return Err(Invalid::new(
                "route.ejection_max",
                format!(
                    "between the base ejection ({}ms) and 1h (0: 5m)",
                    base.as_millis()
                ),
            ));
        }
        Ok(())
    }
}

/// What an active check does to one backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum CheckKind {
    /// A TCP connection is accepted.
    Tcp,
    /// A TLS handshake completes (the certificate is not verified: the
    /// check asks "is it serving", the route's own TLS settings verify).
    Tls,
    /// `GET path` over HTTP/1.1 answers `expect_status`.
    Http { path: String, expect_status: u16 },
    /// `grpc.health.v1.Health/Check` for `service` over h2c answers SERVING.
    Grpc { service: String },
}

/// A route's active health check.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HealthCheck {
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    /// Successes in a row that mark a backend up.
    pub rise: u32,
    /// Failures in a row that mark a backend down.
    pub fall: u32,
}

pub(crate) const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(5);
pub(crate) const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const DEFAULT_RISE: u32 = 2;
pub(crate) const DEFAULT_FALL: u32 = 3;

impl HealthCheck {
    pub fn new(kind: CheckKind) -> Self {
        Self {
            kind,
            interval: DEFAULT_CHECK_INTERVAL,
            timeout: DEFAULT_CHECK_TIMEOUT,
            rise: DEFAULT_RISE,
            fall: DEFAULT_FALL,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        let f = "route.health_check";
        if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&self.interval) {
            return Err(Invalid::new(
                format!("{f}.interval"),
                "between 100ms and 1h",
            ));
        }
        if self.timeout.is_zero() || self.timeout > self.interval {
            return Err(Invalid::new(
                format!("{f}.timeout"),
                "between 1ms and the interval",
            ));
        }
        for (name, n) in [("rise", self.rise), ("fall", self.fall)] {
            if !(1..=100).contains(&n) {
                return Err(Invalid::new(format!("{f}.{name}"), "between 1 and 100"));
            }
        }
        match &self.kind {
            CheckKind::Tcp | CheckKind::Tls => {}
            CheckKind::Http {
                path,
                expect_status,
            } => {
                if !path.starts_with('/')
                    || path.len() > MAX_HTTP_PATH
                    || path.parse::<http::uri::PathAndQuery>().is_err()
                {
                    return Err(Invalid::new(
                        format!("{f}.http_path"),
                        format!("`{path}`: an absolute path of at most {MAX_HTTP_PATH} bytes"),
                    ));
                }
                if !(100..=599).contains(expect_status) {
                    return Err(Invalid::new(
                        format!("{f}.expect_status"),
                        "an HTTP status 100-599",
                    ));
                }
            }
            CheckKind::Grpc { service } => {
                if service.len() > MAX_GRPC_SERVICE
                    || !service.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(Invalid::new(
                        format!("{f}.grpc_service"),
                        format!("at most {MAX_GRPC_SERVICE} visible ASCII characters"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_and_headers_are_checked() {
        let b = Balance {
            weights: vec![1, 2],
            ..Balance::default()
        };
        assert!(b.validate(2, false).is_ok());
        assert!(b.validate(3, false).is_err());
        let zero = Balance {
            weights: vec![0],
            ..Balance::default()
        };
        assert!(zero.validate(1, false).is_err());
        let header = Balance {
            policy: BalancePolicy::Hash,
            hash_header: Some("x-user".into()),
            ..Balance::default()
        };
        assert!(header.validate(1, true).is_ok());
        assert!(header.validate(1, false).is_err(), "L4 has no headers");
        let bad = Balance {
            hash_header: Some("bad header".into()),
            ..header
        };
        assert!(bad.validate(1, true).is_err());
    }

    #[test]
    fn ejection_times_are_bounded_and_default() {
        let d = Balance::default();
        assert_eq!(d.ejection(), (DEFAULT_EJECTION_BASE, DEFAULT_EJECTION_MAX));
        let ms = Duration::from_millis;
        let set = |base, max| Balance {
            ejection_base: ms(base),
            ejection_max: ms(max),
            ..Balance::default()
        };
        assert!(set(500, 2000).validate(1, false).is_ok());
        assert_eq!(set(500, 0).ejection(), (ms(500), DEFAULT_EJECTION_MAX));
        for (base, max) in [(50, 1000), (2000, 1000), (500, 3_600_001), (600_000, 0)] {
            assert!(
                set(base, max).validate(1, false).is_err(),
                "{base} {max} accepted"
            );
        }
    }

    #[test]
    fn checks_are_bounded() {
        let mut c = HealthCheck::new(CheckKind::Http {
            path: "/healthz".into(),
            expect_status: 200,
        });
        assert!(c.validate().is_ok());
        c.timeout = Duration::from_secs(10);
        assert!(c.validate().is_err(), "timeout beyond the interval");
        c.timeout = Duration::from_secs(1);
        c.rise = 0;
        assert!(c.validate().is_err());
        c.rise = 1;
        c.kind = CheckKind::Http {
            path: "healthz".into(),
            expect_status: 200,
        };
        assert!(c.validate().is_err(), "relative path");
    }
}
