//! Per-worker counters, summed when read, typed by family.
//!
//! Each counter block has one cache-line-aligned slot per worker; a worker
//! only ever writes its own slot (Relaxed), the admin thread sums all slots
//! when a status or scrape asks. No counter is shared between cores on the
//! hot path.
//!
//! Invariant: a block only takes counters of its own family. Each family
//! (route, listener, global) is its own index type whose values exist only
//! as the constants below, so a listener counter used on a route block does
//! not compile.

use std::marker::PhantomData;
use std::time::Duration;

use mc_rt::stats::Counters;

/// An index into a block of one family.
pub(crate) trait Family: Copy {
    fn index(self) -> usize;
}

/// Declares a family's index type; only this module can make its values.
macro_rules! family {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) struct $name(usize);

        impl Family for $name {
            #[inline]
            fn index(self) -> usize {
                self.0
            }
        }
    };
}

family!(
    /// A route counter.
    Route
);
family!(
    /// A listener counter.
    Listener
);
family!(
    /// A process-wide counter.
    Global
);

/// `N` counters of family `F` per worker.
#[derive(Debug)]
pub(crate) struct Block<F, const N: usize> {
    counters: Counters<N>,
    family: PhantomData<F>,
}

impl<F: Family, const N: usize> Block<F, N> {
    pub(crate) fn new(workers: usize) -> Self {
        Self {
            counters: Counters::new(workers),
            family: PhantomData,
        }
    }

    #[inline]
    pub(crate) fn add(&self, worker: usize, counter: F, n: u64) {
        self.counters.add(worker, counter.index(), n);
    }

    #[inline]
    pub(crate) fn sub(&self, worker: usize, counter: F, n: u64) {
        self.counters.sub(worker, counter.index(), n);
    }

    /// The sum over workers.
    pub(crate) fn sum(&self, counter: F) -> u64 {
        self.counters.sum(counter.index())
    }
}

/// Route counters.
pub(crate) mod route {
    use super::Route;

    pub(crate) const CONNECTIONS: Route = Route(0);
    pub(crate) const ACTIVE: Route = Route(1);
    pub(crate) const BYTES_UP: Route = Route(2);
    pub(crate) const BYTES_DOWN: Route = Route(3);
    pub(crate) const CONNECT_FAILURES: Route = Route(4);
    /// L7: requests received.
    pub(crate) const REQUESTS: Route = Route(5);
    /// L7: responses by class (1xx … 5xx), then the proxy's own errors.
    pub(crate) const RESP_1XX: Route = Route(6);
    pub(crate) const RESP_2XX: Route = Route(7);
    pub(crate) const RESP_3XX: Route = Route(8);
    pub(crate) const RESP_4XX: Route = Route(9);
    pub(crate) const RESP_5XX: Route = Route(10);
    pub(crate) const POLICY_BLOCKS: Route = Route(11);
    pub(crate) const ERR_502: Route = Route(12);
    pub(crate) const ERR_503: Route = Route(13);
    pub(crate) const ERR_504: Route = Route(14);
    pub(crate) const TLS_HANDSHAKE_FAILURES: Route = Route(15);
    pub(crate) const COUNT: usize = 16;

    pub(crate) const L7_TOTALS: [Route; 11] = [
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
    pub(crate) const RESPONSES: [(&str, Route); 9] = [
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
    pub(crate) fn class(status: u16) -> Route {
        match status {
            100..=199 => RESP_1XX,
            200..=299 => RESP_2XX,
            300..=399 => RESP_3XX,
            400..=499 => RESP_4XX,
            _ => RESP_5XX,
        }
    }
}

/// Listener counters.
pub(crate) mod listener {
    use super::Listener;

    pub(crate) const CONNECTIONS: Listener = Listener(0);
    pub(crate) const ACTIVE: Listener = Listener(1);
    pub(crate) const UNROUTED: Listener = Listener(2);
    pub(crate) const COUNT: usize = 3;
}

/// Process-wide counters. Block reasons share the metric label names.
pub(crate) mod global {
    use super::Global;

    pub(crate) const BLOCK_IP: Global = Global(0);
    pub(crate) const BLOCK_CIDR: Global = Global(1);
    pub(crate) const BLOCK_COUNTRY: Global = Global(2);
    pub(crate) const BLOCK_RATE_LIMIT: Global = Global(3);
    pub(crate) const BLOCK_CONN_LIMIT_IP: Global = Global(4);
    pub(crate) const BLOCK_CONN_LIMIT_TOTAL: Global = Global(5);
    pub(crate) const BLOCK_UNTRUSTED_PROXY: Global = Global(6);
    pub(crate) const CLIENT_HELLO_FAILURES: Global = Global(7);
    pub(crate) const PROXY_HEADER_FAILURES: Global = Global(8);
    pub(crate) const COUNT: usize = 9;

    pub(crate) const BLOCK_REASONS: [(&str, Global); 7] = [
        ("ip", BLOCK_IP),
        ("cidr", BLOCK_CIDR),
        ("country", BLOCK_COUNTRY),
        ("rate_limit", BLOCK_RATE_LIMIT),
        ("conn_limit_ip", BLOCK_CONN_LIMIT_IP),
        ("conn_limit_total", BLOCK_CONN_LIMIT_TOTAL),
        ("untrusted_proxy", BLOCK_UNTRUSTED_PROXY),
    ];
}

pub(crate) type RouteCounters = Block<Route, { route::COUNT }>;
pub(crate) type ListenerCounters = Block<Listener, { listener::COUNT }>;
pub(crate) type GlobalCounters = Block<Global, { global::COUNT }>;

/// Backend connect latency histogram: one counter per bucket (upper bounds
/// in µs), then the sum in µs.
pub(crate) mod latency {
    pub(crate) const BOUNDS_US: [u64; 10] = [
        100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000,
    ];
    /// Bucket `BOUNDS_US.len()` counts everything above the last bound.
    pub(super) const SUM_US: usize = BOUNDS_US.len() + 1;
    pub(super) const COUNT: usize = BOUNDS_US.len() + 2;
}

/// A latency histogram over [`latency::BOUNDS_US`], per worker.
#[derive(Debug)]
pub(crate) struct LatencyCounters(Counters<{ latency::COUNT }>);

impl LatencyCounters {
    pub(crate) fn new(workers: usize) -> Self {
        Self(Counters::new(workers))
    }

    #[inline]
    pub(crate) fn observe(&self, worker: usize, elapsed: Duration) {
        self.0.observe(worker, &latency::BOUNDS_US, elapsed);
    }

    /// Bucket `i` (not cumulative); `BOUNDS_US.len()` is the overflow bucket.
    pub(crate) fn bucket(&self, i: usize) -> u64 {
        if i > latency::BOUNDS_US.len() {
            return 0;
        }
        self.0.sum(i)
    }

    /// The sum of every observation, in µs.
    pub(crate) fn sum_us(&self) -> u64 {
        self.0.sum(latency::SUM_US)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_fills_its_block_exactly() {
        let last = |xs: &[usize]| xs.iter().copied().max().map_or(0, |m| m + 1);
        let routes: Vec<usize> = [
            route::CONNECTIONS,
            route::ACTIVE,
            route::BYTES_UP,
            route::BYTES_DOWN,
            route::CONNECT_FAILURES,
        ]
        .into_iter()
        .chain(route::L7_TOTALS)
        .map(Family::index)
        .collect();
        assert_eq!(last(&routes), route::COUNT);
        assert_eq!(last(&[listener::UNROUTED.index()]), listener::COUNT);
        assert_eq!(
            last(&[global::PROXY_HEADER_FAILURES.index()]),
            global::COUNT
        );
        let c = RouteCounters::new(2);
        c.add(0, route::ACTIVE, 2);
        c.sub(1, route::ACTIVE, 1);
        assert_eq!(c.sum(route::ACTIVE), 1);
    }
}
