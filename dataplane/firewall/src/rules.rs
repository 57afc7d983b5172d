//! The operator's block rules and the reasons a connection is refused.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::country::CountryCode;
use crate::error::RuleError;

/// The global block lists, as stored and edited by the admin API.
///
/// Values are already validated by their types; [`crate::CompiledFirewall::build`]
/// turns them into one lookup table. Duplicates and overlaps are allowed: the
/// most specific entry decides the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallRules {
    /// Single addresses (a /32 or /128 block reported as [`Reason::Ip`]).
    pub ips: Vec<IpAddr>,
    /// CIDR blocks. Host bits, if any, are ignored by the compiler; use
    /// [`parse_cidr`] to refuse them at input time.
    pub cidrs: Vec<IpNet>,
    /// Countries resolved through the GeoIP database.
    pub countries: Vec<CountryCode>,
}

impl FirewallRules {
    /// True when no rule is present.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty() && self.cidrs.is_empty() && self.countries.is_empty()
    }
}

/// Why a firewall rule blocks an address. Ordered by specificity at equal
/// prefix length: an explicit IP beats a CIDR, which beats a country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Listed in [`FirewallRules::ips`].
    Ip,
    /// Inside a block of [`FirewallRules::cidrs`].
    Cidr,
    /// Located by GeoIP in this blocked country.
    Country(CountryCode),
}

impl Reason {
    /// The metric label: `"ip"`, `"cidr"` or `"country"`.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Cidr => "cidr",
            Self::Country(_) => "country",
        }
    }

    /// Rank among entries with the same prefix (higher wins).
    pub(crate) const fn rank(self) -> u8 {
        match self {
            Self::Ip => 2,
            Self::Cidr => 1,
            Self::Country(_) => 0,
        }
    }

    /// Dense index into [`BLOCK_LABELS`].
    pub const fn index(self) -> usize {
        match self {
            Self::Ip => 0,
            Self::Cidr => 1,
            Self::Country(_) => 2,
        }
    }
}

/// Why a limiter refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitReason {
    /// Over the per-client-IP new-connection rate ([`crate::RateLimiter`]).
    RateLimit,
    /// Over the concurrent connections allowed for one client IP.
    ConnLimitIp,
    /// Over the concurrent connections allowed in total.
    ConnLimitTotal,
}

impl LimitReason {
    /// The metric label: `"rate_limit"`, `"conn_limit_ip"` or `"conn_limit_total"`.
    pub const fn label(self) -> &'static str {
        match self {
            Self::RateLimit => "rate_limit",
            Self::ConnLimitIp => "conn_limit_ip",
            Self::ConnLimitTotal => "conn_limit_total",
        }
    }

    /// Dense index into [`BLOCK_LABELS`].
    pub const fn index(self) -> usize {
        match self {
            Self::RateLimit => 3,
            Self::ConnLimitIp => 4,
            Self::ConnLimitTotal => 5,
        }
    }
}

/// Every block reason's metric label, indexed by [`Reason::index`] and
/// [`LimitReason::index`], so per-worker counters can be a plain
/// `[u64; BLOCK_LABELS.len()]`.
pub const BLOCK_LABELS: [&str; 6] = [
    "ip",
    "cidr",
    "country",
    "rate_limit",
    "conn_limit_ip",
    "conn_limit_total",
];

/// Parses one IP address rule. IPv4-mapped IPv6 input (`::ffff:192.0.2.7`) is
/// kept as given; the compiler treats it as the IPv4 address.
///
/// # Errors
/// [`RuleError::Ip`] naming the input.
pub fn parse_ip(input: &str) -> Result<IpAddr, RuleError> {
    input.trim().parse().map_err(|_| RuleError::Ip {
        input: input.to_owned(),
    })
}

/// Parses one CIDR rule strictly: `10.1.0.0/16` is accepted, `10.1.2.3/16`
/// is refused with a suggestion, a bare address is refused (use an IP rule).
///
/// # Errors
/// [`RuleError::Cidr`] or [`RuleError::CidrHostBits`] naming the input.
pub fn parse_cidr(input: &str) -> Result<IpNet, RuleError> {
    let net: IpNet = input.trim().parse().map_err(|_| RuleError::Cidr {
        input: input.to_owned(),
    })?;
    if net.addr() != net.network() {
        return Err(RuleError::CidrHostBits {
            input: input.to_owned(),
            network: net.trunc().to_string(),
        });
    }
    Ok(net)
}
