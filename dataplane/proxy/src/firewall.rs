//! The proxy's side of the global firewall: rule records with their origin,
//! limits, and the compiled per-snapshot state the workers consult.
//!
//! Order on every accepted connection (before any TLS byte is read): the
//! compiled block table (IP, CIDR, country — one lookup), then the per-IP
//! new-connection rate, then the concurrent-connection limits. When the
//! listener trusts a PROXY header from the peer, the same checks run on the
//! address the header carries.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ipnet::IpNet;
use mc_firewall::{
    CompiledFirewall, ConnGuard, ConnectionLimiter, ConnectionLimiterConfig, CountryCode,
    FirewallRules, GeoIp, RateLimiter, RateLimiterConfig,
};
use serde::{Deserialize, Serialize};

use crate::model::{Invalid, Origin};
use crate::stats::{Global, global};

/// What a block rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleTarget {
    Ip(IpAddr),
    Cidr(IpNet),
    Country(String),
}

impl RuleTarget {
    pub fn parse_ip(s: &str) -> Result<Self, Invalid> {
        mc_firewall::parse_ip(s)
            .map(Self::Ip)
            .map_err(|e| Invalid::new("rule.ip", e.to_string()))
    }
    pub fn parse_cidr(s: &str) -> Result<Self, Invalid> {
        mc_firewall::parse_cidr(s)
            .map(Self::Cidr)
            .map_err(|e| Invalid::new("rule.cidr", e.to_string()))
    }
    pub fn parse_country(s: &str) -> Result<Self, Invalid> {
        CountryCode::parse(s)
            .map(|c| Self::Country(c.as_str().to_owned()))
            .map_err(|e| Invalid::new("rule.country", e.to_string()))
    }

    /// The store key: stable, one per target.
    pub fn key(&self) -> Vec<u8> {
        match self {
            Self::Ip(ip) => format!("ip:{ip}"),
            Self::Cidr(net) => format!("cidr:{net}"),
            Self::Country(cc) => format!("country:{cc}"),
        }
        .into_bytes()
    }
}

impl std::fmt::Display for RuleTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "ip {ip}"),
            Self::Cidr(net) => write!(f, "cidr {net}"),
            Self::Country(cc) => write!(f, "country {cc}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallRule {
    pub target: RuleTarget,
    pub comment: String,
    pub origin: Origin,
}

/// Connection limits; 0 means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub rate_per_second: u32,
    pub burst: u32,
    pub max_connections_per_ip: u32,
    pub max_connections_total: u32,
}

impl Limits {
    pub fn validate(&self) -> Result<(), Invalid> {
        // The limiter keeps millisecond time: at most 1000 new connections
        // per second per client.
        if self.rate_per_second > 1000 {
            return Err(Invalid::new("limits.rate_per_second", "at most 1000"));
        }
        if self.rate_per_second > 0 && self.burst == 0 {
            return Err(Invalid::new(
                "limits.burst",
                "must be at least 1 when a rate is set",
            ));
        }
        if self.burst > 100_000 {
            return Err(Invalid::new("limits.burst", "at most 100000"));
        }
        Ok(())
    }
}

/// Compiled, immutable firewall state published with each snapshot.
/// The limiters are long-lived: they are carried into the next state as
/// long as the limits do not change.
pub struct FirewallState {
    pub compiled: CompiledFirewall,
    pub limits: Limits,
    rate: Arc<RateLimiter>,
    conns: Arc<ConnectionLimiter>,
    pub geoip: Option<Arc<GeoIpInfo>>,
}

impl std::fmt::Debug for FirewallState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirewallState")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A loaded GeoIP database and what the status reports about it.
pub struct GeoIpInfo {
    pub db: GeoIp,
    pub path: PathBuf,
    pub loaded_at_unix: i64,
}

/// Why a connection was refused, as a global counter index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked(pub(crate) Global);

impl FirewallState {
    pub fn build(
        rules: &[FirewallRule],
        limits: Limits,
        geoip: Option<Arc<GeoIpInfo>>,
        previous: Option<&FirewallState>,
    ) -> Result<Self, mc_firewall::LimitConfigError> {
        let mut compiled_rules = FirewallRules::default();
        for r in rules {
            match &r.target {
                RuleTarget::Ip(ip) => compiled_rules.ips.push(*ip),
                RuleTarget::Cidr(net) => compiled_rules.cidrs.push(*net),
                RuleTarget::Country(cc) => {
                    if let Ok(cc) = CountryCode::parse(cc) {
                        compiled_rules.countries.push(cc);
                    }
                }
            }
        }
        let compiled = CompiledFirewall::build(&compiled_rules, geoip.as_deref().map(|g| &g.db));
        // The limiters live as long as the process: new limits are applied
        // to them in place, so a change keeps every client's history.
        let (rate, conns) = match previous {
            Some(p) => {
                if p.limits != limits {
                    p.rate
                        .set_rate(f64::from(limits.rate_per_second), limits.burst.max(1))?;
                    p.conns.set_limits(
                        limits.max_connections_per_ip,
                        u64::from(limits.max_connections_total),
                    );
                }
                (p.rate.clone(), p.conns.clone())
            }
            None => (
                Arc::new(RateLimiter::new(RateLimiterConfig {
                    rate_per_sec: f64::from(limits.rate_per_second),
                    burst: limits.burst.max(1),
                    ..RateLimiterConfig::default()
                })?),
                Arc::new(ConnectionLimiter::new(ConnectionLimiterConfig {
                    max_per_ip: limits.max_connections_per_ip,
                    max_total: u64::from(limits.max_connections_total),
                    ..ConnectionLimiterConfig::default()
                })?),
            ),
        };
        Ok(Self {
            compiled,
            limits,
            rate,
            conns,
            geoip,
        })
    }

    /// Decides whether a connection from `ip` may proceed; the guard holds its
    /// concurrent-connection slot until dropped.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Result<ConnGuard, Blocked> {
        if let Some(reason) = self.compiled.check(ip) {
            return Err(Blocked(match reason {
                mc_firewall::Reason::Ip => global::BLOCK_IP,
                mc_firewall::Reason::Cidr => global::BLOCK_CIDR,
                mc_firewall::Reason::Country(_) => global::BLOCK_COUNTRY,
            }));
        }
        if self.limits.rate_per_second > 0 && !self.rate.check(ip, now) {
            return Err(Blocked(global::BLOCK_RATE_LIMIT));
        }
        self.conns.try_acquire(ip).map_err(|r| {
            Blocked(match r {
                mc_firewall::LimitReason::ConnLimitIp => global::BLOCK_CONN_LIMIT_IP,
                mc_firewall::LimitReason::ConnLimitTotal => global::BLOCK_CONN_LIMIT_TOTAL,
                mc_firewall::LimitReason::RateLimit => global::BLOCK_RATE_LIMIT,
            })
        })
    }
}
