//! Per-worker counters, summed when read.
//!
//! Each counter block has one cache-line-aligned slot per worker; a worker
//! only ever writes its own slot (Relaxed), the admin thread sums all slots
//! when a status or scrape asks. No counter is shared between cores on the
//! hot path.

pub use mc_rt::stats::Counters;

/// Route counters, by index.
pub mod route {
    pub const CONNECTIONS: usize = 0;
    pub const ACTIVE: usize = 1;
    pub const BYTES_UP: usize = 2;
    pub const BYTES_DOWN: usize = 3;
    pub const CONNECT_FAILURES: usize = 4;
    /// L7: requests received.
    pub const REQUESTS: usize = 5;
    /// L7: responses by class (1xx … 5xx), then the proxy's own errors.
    pub const RESP_1XX: usize = 6;
    pub const RESP_2XX: usize = 7;
    pub const RESP_3XX: usize = 8;
    pub const RESP_4XX: usize = 9;
    pub const RESP_5XX: usize = 10;
    pub const POLICY_BLOCKS: usize = 11;
    pub const ERR_502: usize = 12;
    pub const ERR_503: usize = 13;
    pub const ERR_504: usize = 14;
    pub const TLS_HANDSHAKE_FAILURES: usize = 15;
    pub const COUNT: usize = 16;

    pub const L7_TOTALS: [usize; 11] = [
        REQUESTS,
        RESP_1XX,
        RESP_2XX,
        RESP_3XX,
        RESP_4XX,
        RESP_5XX,
        POLICY_BLOCKS,
        ERR_502,
        ERR_503,
        ERR_504,
        TLS_HANDSHAKE_FAILURES,
    ];

    /// Label → counter, as shown by status and metrics.
    pub const RESPONSES: [(&str, usize); 9] = [
        ("1xx", RESP_1XX),
        ("2xx", RESP_2XX),
        ("3xx", RESP_3XX),
        ("4xx", RESP_4XX),
        ("5xx", RESP_5XX),
        ("403_policy", POLICY_BLOCKS),
        ("502", ERR_502),
        ("503", ERR_503),
        ("504", ERR_504),
    ];

    /// The class counter of an HTTP status.
    pub fn class(status: u16) -> usize {
        match status {
            100..=199 => RESP_1XX,
            200..=299 => RESP_2XX,
            300..=399 => RESP_3XX,
            400..=499 => RESP_4XX,
            _ => RESP_5XX,
        }
    }
}

/// Listener counters, by index.
pub mod listener {
    pub const CONNECTIONS: usize = 0;
    pub const ACTIVE: usize = 1;
    pub const UNROUTED: usize = 2;
    pub const COUNT: usize = 3;
}

/// Process-wide counters, by index. Block reasons share the metric label names.
pub mod global {
    pub const BLOCK_IP: usize = 0;
    pub const BLOCK_CIDR: usize = 1;
    pub const BLOCK_COUNTRY: usize = 2;
    pub const BLOCK_RATE_LIMIT: usize = 3;
    pub const BLOCK_CONN_LIMIT_IP: usize = 4;
    pub const BLOCK_CONN_LIMIT_TOTAL: usize = 5;
    pub const BLOCK_UNTRUSTED_PROXY: usize = 6;
    pub const CLIENT_HELLO_FAILURES: usize = 7;
    pub const PROXY_HEADER_FAILURES: usize = 8;
    pub const COUNT: usize = 9;

    pub const BLOCK_REASONS: [(&str, usize); 7] = [
        ("ip", BLOCK_IP),
        ("cidr", BLOCK_CIDR),
        ("country", BLOCK_COUNTRY),
        ("rate_limit", BLOCK_RATE_LIMIT),
        ("conn_limit_ip", BLOCK_CONN_LIMIT_IP),
        ("conn_limit_total", BLOCK_CONN_LIMIT_TOTAL),
        ("untrusted_proxy", BLOCK_UNTRUSTED_PROXY),
    ];
}

pub type RouteCounters = Counters<{ route::COUNT }>;
pub type ListenerCounters = Counters<{ listener::COUNT }>;
pub type GlobalCounters = Counters<{ global::COUNT }>;

/// Backend connect latency histogram, by index: one counter per bucket
/// (upper bounds in µs), then the sum in µs.
pub mod latency {
    pub const BOUNDS_US: [u64; 10] = [
        100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000,
    ];
    /// Bucket `BOUNDS_US.len()` counts everything above the last bound.
    pub const SUM_US: usize = BOUNDS_US.len() + 1;
    pub const COUNT: usize = BOUNDS_US.len() + 2;
}

pub type LatencyCounters = Counters<{ latency::COUNT }>;
