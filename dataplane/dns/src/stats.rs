//! Per-worker counters, summed when read (the same scheme as mc-proxy).
//!
//! Each block has one cache-line-aligned slot per worker; a worker writes
//! only its own slot (Relaxed); status and scrapes sum the slots.
//!
//! Invariant: each counter family has its own index type ([`Global`],
//! [`Upstream`], a latency bucket) and its own block type that accepts only
//! that index, so counting into the wrong family does not compile.

use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use mc_rt::stats::Counters;

/// Query types counted separately; everything else is `OTHER`.
pub(crate) const QTYPES: [(&str, RecordType); 13] = [
    ("A", RecordType::A),
    ("AAAA", RecordType::AAAA),
    ("CNAME", RecordType::CNAME),
    ("MX", RecordType::MX),
    ("NS", RecordType::NS),
    ("PTR", RecordType::PTR),
    ("SOA", RecordType::SOA),
    ("SRV", RecordType::SRV),
    ("TXT", RecordType::TXT),
    ("CAA", RecordType::CAA),
    ("ANY", RecordType::ANY),
    ("AXFR", RecordType::AXFR),
    ("IXFR", RecordType::IXFR),
];

pub(crate) const RCODES: [(&str, ResponseCode); 8] = [
    ("NOERROR", ResponseCode::NoError),
    ("FORMERR", ResponseCode::FormErr),
    ("SERVFAIL", ResponseCode::ServFail),
    ("NXDOMAIN", ResponseCode::NXDomain),
    ("NOTIMP", ResponseCode::NotImp),
    ("REFUSED", ResponseCode::Refused),
    ("NOTAUTH", ResponseCode::NotAuth),
    ("BADVERS", ResponseCode::BADVERS),
];

/// A process-wide counter (one of [`global`]'s constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Global(usize);

/// Process-wide counters.
pub(crate) mod global {
    use super::{Global, QTYPES, RCODES, RecordType, ResponseCode};

    /// Queries by type: `QTYPES` in order, then `OTHER` (see [`Global::qtype`]).
    const QTYPE_BASE: usize = 0;
    pub(crate) const QTYPE_OTHER: Global = Global(QTYPE_BASE + QTYPES.len());
    /// Responses by rcode: `RCODES` in order, then `OTHER` (see [`Global::rcode`]).
    const RCODE_BASE: usize = QTYPE_OTHER.0 + 1;
    pub(crate) const RCODE_OTHER: Global = Global(RCODE_BASE + RCODES.len());
    pub(crate) const CACHE_HITS: Global = Global(RCODE_OTHER.0 + 1);
    pub(crate) const CACHE_MISSES: Global = Global(CACHE_HITS.0 + 1);
    /// Gauge: this worker's cache size (set, not added).
    pub(crate) const CACHE_ENTRIES: Global = Global(CACHE_MISSES.0 + 1);
    pub(crate) const RRL_DROPPED: Global = Global(CACHE_ENTRIES.0 + 1);
    pub(crate) const RRL_SLIPPED: Global = Global(RRL_DROPPED.0 + 1);
    pub(crate) const MALFORMED: Global = Global(RRL_SLIPPED.0 + 1);
    pub(crate) const TRUNCATED: Global = Global(MALFORMED.0 + 1);
    /// Gauge.
    pub(crate) const TCP_ACTIVE: Global = Global(TRUNCATED.0 + 1);
    pub(crate) const TCP_REFUSED: Global = Global(TCP_ACTIVE.0 + 1);
    pub(crate) const FORWARDED: Global = Global(TCP_REFUSED.0 + 1);
    pub(crate) const FORWARD_OVERLOAD: Global = Global(FORWARDED.0 + 1);
    pub(crate) const XFR_OUT: Global = Global(FORWARD_OVERLOAD.0 + 1);
    pub(crate) const UDP_QUERIES: Global = Global(XFR_OUT.0 + 1);
    pub(crate) const TCP_QUERIES: Global = Global(UDP_QUERIES.0 + 1);
    /// UPDATEs answered NOERROR / with any other rcode.
    pub(crate) const UPDATES_APPLIED: Global = Global(TCP_QUERIES.0 + 1);
    pub(crate) const UPDATES_REFUSED: Global = Global(UPDATES_APPLIED.0 + 1);
    pub(super) const COUNT: usize = UPDATES_REFUSED.0 + 1;

    impl Global {
        /// The counter of queries of type `t` (`OTHER` when not in `QTYPES`).
        pub(crate) fn qtype(t: RecordType) -> Self {
            QTYPES
                .iter()
                .position(|(_, q)| *q == t)
                .map_or(QTYPE_OTHER, |i| Self(QTYPE_BASE + i))
        }

        /// The counter of responses with `r` (`OTHER` when not in `RCODES`).
        pub(crate) fn rcode(r: ResponseCode) -> Self {
            RCODES
                .iter()
                .position(|(_, c)| *c == r)
                .map_or(RCODE_OTHER, |i| Self(RCODE_BASE + i))
        }
    }
}

/// A per-upstream counter (one of [`upstream`]'s constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Upstream(usize);

/// Per-upstream counters.
pub(crate) mod upstream {
    use super::Upstream;

    pub(crate) const QUERIES: Upstream = Upstream(0);
    pub(crate) const FAILURES: Upstream = Upstream(1);
    pub(crate) const TIMEOUTS: Upstream = Upstream(2);
    pub(super) const COUNT: usize = 3;
}

/// Latency histogram: one counter per bucket (upper bounds in µs), then the sum.
pub(crate) mod latency {
    pub(crate) const BOUNDS_US: [u64; 12] = [
        10, 25, 50, 100, 250, 500, 1_000, 5_000, 25_000, 100_000, 500_000, 2_000_000,
    ];
    pub(super) const SUM_US: usize = BOUNDS_US.len() + 1;
    pub(super) const COUNT: usize = BOUNDS_US.len() + 2;
}

/// The process-wide counters, addressed by [`Global`] only.
#[derive(Debug)]
pub(crate) struct GlobalCounters(Counters<{ global::COUNT }>);

impl GlobalCounters {
    fn new(workers: usize) -> Self {
        Self(Counters::new(workers))
    }

    pub(crate) fn add(&self, worker: usize, c: Global, n: u64) {
        self.0.add(worker, c.0, n);
    }

    pub(crate) fn sub(&self, worker: usize, c: Global, n: u64) {
        self.0.sub(worker, c.0, n);
    }

    /// For gauges: this worker's value.
    pub(crate) fn set(&self, worker: usize, c: Global, n: u64) {
        self.0.set(worker, c.0, n);
    }

    pub(crate) fn sum(&self, c: Global) -> u64 {
        self.0.sum(c.0)
    }
}

/// Per-(worker × upstream) counters, addressed by [`Upstream`] only.
#[derive(Debug)]
pub(crate) struct UpstreamCounters {
    counters: Counters<{ upstream::COUNT }>,
    workers: usize,
}

impl UpstreamCounters {
    fn new(workers: usize, upstreams: usize) -> Self {
        let workers = workers.max(1);
        Self {
            counters: Counters::new(workers * upstreams.max(1)),
            workers,
        }
    }

    fn slot(&self, worker: usize, upstream: usize) -> usize {
        upstream * self.workers + worker
    }

    /// Counts `n` for upstream `u` (its index in `dns.upstreams`) on `worker`.
    pub(crate) fn add(&self, worker: usize, u: usize, c: Upstream, n: u64) {
        self.counters.add(self.slot(worker, u), c.0, n);
    }

    /// Sum of counter `c` for upstream `u` over all workers.
    pub(crate) fn sum(&self, u: usize, c: Upstream) -> u64 {
        (0..self.workers)
            .map(|w| self.counters.get(self.slot(w, u), c.0))
            .fold(0, u64::wrapping_add)
    }
}

/// A latency histogram over [`latency::BOUNDS_US`].
#[derive(Debug)]
pub(crate) struct LatencyCounters(Counters<{ latency::COUNT }>);

impl LatencyCounters {
    fn new(workers: usize) -> Self {
        Self(Counters::new(workers))
    }

    pub(crate) fn observe(&self, worker: usize, elapsed: Duration) {
        self.0.observe(worker, &latency::BOUNDS_US, elapsed);
    }

    /// Observations in bucket `i` (`0..=BOUNDS_US.len()`, the last unbounded).
    pub(crate) fn bucket(&self, i: usize) -> u64 {
        self.0.sum(i)
    }

    /// The sum of every observation, in µs.
    pub(crate) fn sum_us(&self) -> u64 {
        self.0.sum(latency::SUM_US)
    }
}

/// Everything the workers count.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) global: GlobalCounters,
    pub(crate) upstreams: UpstreamCounters,
    pub(crate) answer_latency: LatencyCounters,
    pub(crate) upstream_latency: LatencyCounters,
}

impl Stats {
    pub(crate) fn new(workers: usize, upstreams: usize) -> Self {
        Self {
            global: GlobalCounters::new(workers),
            upstreams: UpstreamCounters::new(workers, upstreams),
            answer_latency: LatencyCounters::new(workers),
            upstream_latency: LatencyCounters::new(workers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_counts_in_its_own_block() {
        let s = Stats::new(2, 2);
        s.global.add(1, Global::rcode(ResponseCode::NXDomain), 1);
        s.global.add(0, Global::qtype(RecordType::AAAA), 2);
        s.global.add(0, Global::qtype(RecordType::HINFO), 1);
        // The last counter of the block lands inside it.
        s.global.add(1, global::TCP_QUERIES, 4);
        assert_eq!(s.global.sum(Global::rcode(ResponseCode::NXDomain)), 1);
        assert_eq!(s.global.sum(Global::qtype(RecordType::AAAA)), 2);
        assert_eq!(s.global.sum(global::QTYPE_OTHER), 1);
        assert_eq!(s.global.sum(global::TCP_QUERIES), 4);
        s.upstreams.add(1, 1, upstream::TIMEOUTS, 3);
        assert_eq!(s.upstreams.sum(1, upstream::TIMEOUTS), 3);
        assert_eq!(s.upstreams.sum(0, upstream::TIMEOUTS), 0);
        s.answer_latency.observe(0, Duration::from_micros(30));
        assert_eq!(s.answer_latency.bucket(2), 1);
        assert_eq!(s.answer_latency.sum_us(), 30);
    }
}
