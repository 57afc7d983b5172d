//! Per-worker counters, summed when read.
//!
//! Each counter block has one cache-line-aligned slot per worker; a worker
//! only ever writes its own slot (Relaxed), the admin thread sums all slots
//! when a status or scrape asks. No counter is shared between cores on the
//! hot path.

use std::sync::atomic::{AtomicU64, Ordering};

/// One slot per worker, padded so that neighbouring workers never share a line.
#[derive(Debug)]
#[repr(align(128))]
pub struct Slot<const N: usize>(pub [AtomicU64; N]);

impl<const N: usize> Default for Slot<N> {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

#[derive(Debug)]
pub struct Counters<const N: usize> {
    slots: Box<[Slot<N>]>,
}

impl<const N: usize> Counters<N> {
    pub fn new(workers: usize) -> Self {
        Self {
            slots: (0..workers.max(1)).map(|_| Slot::default()).collect(),
        }
    }

    #[inline]
    pub fn add(&self, worker: usize, index: usize, n: u64) {
        if let Some(c) = self.slots.get(worker).and_then(|s| s.0.get(index)) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    #[inline]
    pub fn sub(&self, worker: usize, index: usize, n: u64) {
        if let Some(c) = self.slots.get(worker).and_then(|s| s.0.get(index)) {
            c.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// The sum over workers (wrapping, so a gauge's +1/-1 across workers nets out).
    pub fn sum(&self, index: usize) -> u64 {
        self.slots
            .iter()
            .filter_map(|s| s.0.get(index))
            .fold(0_u64, |acc, c| acc.wrapping_add(c.load(Ordering::Relaxed)))
    }
}

/// Route counters, by index.
pub mod route {
    pub const CONNECTIONS: usize = 0;
    pub const ACTIVE: usize = 1;
    pub const BYTES_UP: usize = 2;
    pub const BYTES_DOWN: usize = 3;
    pub const CONNECT_FAILURES: usize = 4;
    pub const COUNT: usize = 5;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_across_workers_and_gauges_net_out() {
        let c = RouteCounters::new(3);
        c.add(0, route::ACTIVE, 1);
        c.add(1, route::ACTIVE, 1);
        c.sub(2, route::ACTIVE, 1); // a connection counted up on 0 ends on 2? never, but sums must still net out
        c.add(2, route::BYTES_UP, 10);
        assert_eq!(c.sum(route::ACTIVE), 1);
        assert_eq!(c.sum(route::BYTES_UP), 10);
        c.add(99, route::BYTES_UP, 1); // out of range: ignored, no panic
        assert_eq!(std::mem::align_of::<Slot<5>>(), 128);
    }
}

/// Backend connect latency histogram, by index: one counter per bucket
/// (upper bounds in µs), then the sum in µs.
pub mod latency {
    pub const BOUNDS_US: [u64; 10] = [
        100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000,
    ];
    /// Bucket `BOUNDS_US.len()` counts everything above the last bound.
    pub const SUM_US: usize = BOUNDS_US.len() + 1;
    pub const COUNT: usize = BOUNDS_US.len() + 2;

    pub fn bucket(us: u64) -> usize {
        BOUNDS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BOUNDS_US.len())
    }
}

pub type LatencyCounters = Counters<{ latency::COUNT }>;

impl LatencyCounters {
    pub fn observe(&self, worker: usize, elapsed: std::time::Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.add(worker, latency::bucket(us), 1);
        self.add(worker, latency::SUM_US, us);
    }
}
