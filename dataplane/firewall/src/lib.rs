//! MC-Proxy's global firewall: pure, thread-safe logic that the
//! thread-per-core workers call once per accepted connection, before any TLS
//! byte is read (and again on the real client address after a trusted PROXY
//! header).
//!
//! - [`CompiledFirewall`]: IP, CIDR and GeoIP country blocks merged into one
//!   immutable longest-prefix table, so a check is one lookup. Built on the
//!   admin thread from [`FirewallRules`] and an optional [`GeoIp`] database,
//!   then published in the snapshot with `arc-swap`.
//! - [`RateLimiter`] and [`ConnectionLimiter`]: per-client new-connection
//!   rate (GCRA) and concurrent-connection caps, lock-free tables of atomics
//!   with memory fixed at construction.
//!
//! Nothing on the per-connection path takes a lock, allocates, blocks or
//! panics. Every refusal has a metric label: [`Reason::label`],
//! [`LimitReason::label`], all listed in [`BLOCK_LABELS`].
//!
//! ```
//! use mc_firewall::{CompiledFirewall, FirewallRules, Reason, parse_cidr};
//!
//! let rules = FirewallRules {
//!     cidrs: vec![parse_cidr("203.0.113.0/24")?],
//!     ips: vec!["203.0.113.7".parse()?],
//!     countries: vec![],
//! };
//! let fw = CompiledFirewall::build(&rules, None);
//! assert_eq!(fw.check("203.0.113.7".parse()?), Some(Reason::Ip));
//! assert_eq!(fw.check("::ffff:203.0.113.8".parse()?), Some(Reason::Cidr));
//! assert_eq!(fw.check("198.51.100.1".parse()?), None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod compiled;
mod country;
mod error;
mod geoip;
pub mod limits;
mod rules;

pub use compiled::{BuildStats, CompiledFirewall};
pub use country::{CountryCode, ISO_3166_1_ALPHA2};
pub use error::{Error, GeoIpError, LimitConfigError, RuleError};
pub use geoip::GeoIp;
pub use limits::{
    ConnGuard, ConnectionLimiter, ConnectionLimiterConfig, RateLimiter, RateLimiterConfig,
};
pub use rules::{BLOCK_LABELS, FirewallRules, LimitReason, Reason, parse_cidr, parse_ip};
