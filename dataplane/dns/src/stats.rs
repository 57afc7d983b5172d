//! Per-worker counters, summed when read (the same scheme as mc-proxy).
//!
//! Each block has one cache-line-aligned slot per worker; a worker writes
//! only its own slot (Relaxed); status and scrapes sum the slots.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

pub(crate) use mc_rt::stats::Counters;

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

/// Process-wide counters, by index.
pub(crate) mod global {
    use super::{QTYPES, RCODES};

    pub(crate) const QTYPE_BASE: usize = 0;
    pub(crate) const QTYPE_OTHER: usize = QTYPES.len();
    pub(crate) const RCODE_BASE: usize = QTYPE_OTHER + 1;
    pub(crate) const RCODE_OTHER: usize = RCODE_BASE + RCODES.len();
    pub(crate) const CACHE_HITS: usize = RCODE_OTHER + 1;
    pub(crate) const CACHE_MISSES: usize = CACHE_HITS + 1;
    /// Gauge: this worker's cache size (set, not added).
    pub(crate) const CACHE_ENTRIES: usize = CACHE_MISSES + 1;
    pub(crate) const RRL_DROPPED: usize = CACHE_ENTRIES + 1;
    pub(crate) const RRL_SLIPPED: usize = RRL_DROPPED + 1;
    pub(crate) const MALFORMED: usize = RRL_SLIPPED + 1;
    pub(crate) const TRUNCATED: usize = MALFORMED + 1;
    /// Gauge.
    pub(crate) const TCP_ACTIVE: usize = TRUNCATED + 1;
    pub(crate) const TCP_REFUSED: usize = TCP_ACTIVE + 1;
    pub(crate) const FORWARDED: usize = TCP_REFUSED + 1;
    pub(crate) const FORWARD_OVERLOAD: usize = FORWARDED + 1;
    pub(crate) const XFR_OUT: usize = FORWARD_OVERLOAD + 1;
    pub(crate) const UDP_QUERIES: usize = XFR_OUT + 1;
    pub(crate) const TCP_QUERIES: usize = UDP_QUERIES + 1;
    pub(crate) const COUNT: usize = TCP_QUERIES + 1;
}

/// Per-upstream counters, by index.
pub(crate) mod upstream {
    pub(crate) const QUERIES: usize = 0;
    pub(crate) const FAILURES: usize = 1;
    pub(crate) const TIMEOUTS: usize = 2;
    pub(crate) const COUNT: usize = 3;
}

/// Latency histogram: one counter per bucket (upper bounds in µs), then the sum.
pub(crate) mod latency {
    pub(crate) const BOUNDS_US: [u64; 12] = [
        10, 25, 50, 100, 250, 500, 1_000, 5_000, 25_000, 100_000, 500_000, 2_000_000,
    ];
    pub(crate) const SUM_US: usize = BOUNDS_US.len() + 1;
    pub(crate) const COUNT: usize = BOUNDS_US.len() + 2;
}

pub(crate) type GlobalCounters = Counters<{ global::COUNT }>;
pub(crate) type UpstreamCounters = Counters<{ upstream::COUNT }>;
pub(crate) type LatencyCounters = Counters<{ latency::COUNT }>;

pub(crate) fn qtype_index(t: RecordType) -> usize {
    QTYPES
        .iter()
        .position(|(_, q)| *q == t)
        .map_or(global::QTYPE_OTHER, |i| global::QTYPE_BASE + i)
}

pub(crate) fn rcode_index(r: ResponseCode) -> usize {
    RCODES
        .iter()
        .position(|(_, c)| *c == r)
        .map_or(global::RCODE_OTHER, |i| global::RCODE_BASE + i)
}

/// Everything the workers count.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) global: GlobalCounters,
    pub(crate) upstreams: UpstreamCounters,
    /// Per upstream index: the counters above are `Counters` with one slot
    /// per (worker × upstream) pair, see [`Stats::upstream_slot`].
    pub(crate) answer_latency: LatencyCounters,
    pub(crate) upstream_latency: LatencyCounters,
    workers: usize,
}

impl Stats {
    pub(crate) fn new(workers: usize, upstreams: usize) -> Self {
        Self {
            global: GlobalCounters::new(workers),
            upstreams: UpstreamCounters::new(workers.max(1) * upstreams.max(1)),
            answer_latency: LatencyCounters::new(workers),
            upstream_latency: LatencyCounters::new(workers),
            workers: workers.max(1),
        }
    }

    pub(crate) fn upstream_slot(&self, worker: usize, upstream: usize) -> usize {
        upstream * self.workers + worker
    }

    /// Sum of counter `index` for upstream `u` over all workers.
    pub(crate) fn upstream_sum(&self, u: usize, index: usize) -> u64 {
        (0..self.workers)
            .map(|w| self.upstreams.get(self.upstream_slot(w, u), index))
            .fold(0, u64::wrapping_add)
    }
}
