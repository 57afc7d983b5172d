//! The crate's errors: one top-level [`Error`] with a sub-enum per fault kind.
//! Functions return the sub-enum that can actually occur; `?` lifts it into
//! [`Error`]. Messages name the value, file or field at fault.

use std::path::PathBuf;

/// Any error of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A firewall rule (IP, CIDR, country) is invalid.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// The GeoIP database could not be opened.
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
    /// A rate or connection limit setting is invalid.
    #[error(transparent)]
    Limit(#[from] LimitConfigError),
}

/// Invalid rule input (config fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// Not two ASCII letters.
    #[error("country code {input:?} must be two letters (ISO 3166-1 alpha-2, e.g. \"FR\")")]
    CountryFormat {
        /// The input as given.
        input: String,
    },
    /// Two letters, but not an assigned ISO 3166-1 alpha-2 code.
    #[error("country code {input:?} is not an assigned ISO 3166-1 alpha-2 code")]
    CountryUnknown {
        /// The input as given.
        input: String,
    },
    /// Not an IPv4 or IPv6 address.
    #[error("{input:?} is not an IP address (expected e.g. 192.0.2.7 or 2001:db8::7)")]
    Ip {
        /// The input as given.
        input: String,
    },
    /// Not a CIDR block.
    #[error("{input:?} is not a CIDR block (expected e.g. 192.0.2.0/24 or 2001:db8::/32)")]
    Cidr {
        /// The input as given.
        input: String,
    },
    /// A CIDR block with bits set after the prefix length.
    #[error("CIDR block {input:?} has host bits set; did you mean {network}?")]
    CidrHostBits {
        /// The input as given.
        input: String,
        /// The network it probably meant.
        network: String,
    },
}

/// The GeoIP database could not be used (local fault).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GeoIpError {
    /// The file could not be read.
    #[error("cannot read GeoIP database {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid MaxMind DB.
    #[error("GeoIP database {path} is not a valid MaxMind DB: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What the reader found wrong.
        source: maxminddb::MaxMindDbError,
    },
    /// A valid MaxMind DB without country data (e.g. an ASN database).
    #[error(
        "GeoIP database {path} has database_type {database_type:?}; \
         expected a Country or City database (e.g. GeoLite2-Country)"
    )]
    UnsupportedType {
        /// The file.
        path: PathBuf,
        /// Its `database_type` metadata.
        database_type: String,
    },
}

/// An invalid limit setting (config fault).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitConfigError {
    /// Rate not finite, negative, or above 1000 per second (the limiter keeps
    /// millisecond time).
    #[error(
        "rate limit {rate} per second is invalid: expected 0 (off) or a number in 0.001..=1000"
    )]
    Rate {
        /// The rate as given.
        rate: f64,
    },
    /// Burst 0 with a non-zero rate would refuse every connection; a huge
    /// one would make the limit meaningless.
    #[error("rate limit burst {burst} is invalid: expected 1..=100000 when a rate is set")]
    Burst {
        /// The burst as given.
        burst: u32,
    },
    /// Table size not a power of two in the allowed range.
    #[error("{what} table size {size} is invalid: expected a power of two in 2^4..=2^24")]
    TableSize {
        /// Which table.
        what: &'static str,
        /// The size as given.
        size: usize,
    },
}
