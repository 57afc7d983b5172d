//! Concurrent-connection caps per client and in total.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use super::{ClientHasher, DEFAULT_TABLE_SIZE, check_table_size};
use crate::error::LimitConfigError;
use crate::rules::LimitReason;

/// Settings of a [`ConnectionLimiter`]. A limit of 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimiterConfig {
    /// Concurrent connections per client (IPv4 address or IPv6 /64).
    pub max_per_ip: u32,
    /// Concurrent connections in total.
    pub max_total: u64,
    /// Counters in the per-client table: a power of two in `2^4 ..= 2^24`.
    /// Each is 4 bytes.
    pub table_size: usize,
}

impl Default for ConnectionLimiterConfig {
    /// Unlimited, with the default table size.
    fn default() -> Self {
        Self {
            max_per_ip: 0,
            max_total: 0,
            table_size: DEFAULT_TABLE_SIZE,
        }
    }
}

/// Counts open connections per client and in total, and refuses new ones
/// over the caps.
///
/// Per-client counts live in a fixed table of `AtomicU32` indexed by the
/// client's keyed hash. Clients that share a counter are counted together,
/// so a collision can only *over*-count: an innocent client sharing a bucket
/// with a busy one may be refused early, never let past its own cap. With
/// the default 2^16 counters and N clients holding connections at once, a
/// given client shares its counter with about N / 65 536 others.
///
/// Counting is always on, also while a limit is 0, so raising a limit later
/// sees the connections already open. Cloning is cheap and shares the counters.
#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    per_ip: Box<[AtomicU32]>,
    mask: usize,
    hasher: ClientHasher,
    total: AtomicU64,
    max_per_ip: AtomicU32,
    max_total: AtomicU64,
}

/// One open connection. Dropping it releases the connection's place in both
/// counts; keep it alive as long as the connection.
#[derive(Debug)]
#[must_use = "dropping the guard releases the connection slot at once"]
pub struct ConnGuard {
    inner: Arc<Inner>,
    slot: usize,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.inner.per_ip[self.slot].fetch_sub(1, Relaxed);
        self.inner.total.fetch_sub(1, Relaxed);
    }
}

impl ConnectionLimiter {
    /// A limiter with `config` and no connection open.
    ///
    /// # Errors
    /// [`LimitConfigError::TableSize`] for an invalid table size.
    pub fn new(config: ConnectionLimiterConfig) -> Result<Self, LimitConfigError> {
        let size = check_table_size("connection limiter", config.table_size)?;
        Ok(Self {
            inner: Arc::new(Inner {
                per_ip: (0..size).map(|_| AtomicU32::new(0)).collect(),
                mask: size - 1,
                hasher: ClientHasher::default(),
                total: AtomicU64::new(0),
                max_per_ip: AtomicU32::new(config.max_per_ip),
                max_total: AtomicU64::new(config.max_total),
            }),
        })
    }

    /// Changes both caps in place (0 = unlimited). Open connections stay
    /// open even if now over a cap; new ones are refused until below it.
    pub fn set_limits(&self, max_per_ip: u32, max_total: u64) {
        self.inner.max_per_ip.store(max_per_ip, Relaxed);
        self.inner.max_total.store(max_total, Relaxed);
    }

    /// Counts a new connection from `ip`, or refuses it with the cap it hit
    /// (the per-client cap is checked first).
    ///
    /// # Errors
    /// [`LimitReason::ConnLimitIp`] or [`LimitReason::ConnLimitTotal`]; nothing
    /// is counted then.
    pub fn try_acquire(&self, ip: IpAddr) -> Result<ConnGuard, LimitReason> {
        let inner = &self.inner;
        let slot = (inner.hasher.hash(ip) as usize) & inner.mask;

        let max_ip = inner.max_per_ip.load(Relaxed);
        if inner.per_ip[slot]
            .fetch_update(Relaxed, Relaxed, |n| {
                (max_ip == 0 || n < max_ip).then(|| n.saturating_add(1))
            })
            .is_err()
        {
            return Err(LimitReason::ConnLimitIp);
        }

        let max_total = inner.max_total.load(Relaxed);
        if inner
            .total
            .fetch_update(Relaxed, Relaxed, |n| {
                (max_total == 0 || n < max_total).then(|| n.saturating_add(1))
            })
            .is_err()
        {
            inner.per_ip[slot].fetch_sub(1, Relaxed);
            return Err(LimitReason::ConnLimitTotal);
        }

        Ok(ConnGuard {
            inner: Arc::clone(inner),
            slot,
        })
    }

    /// Connections open now, in total.
    pub fn total(&self) -> u64 {
        self.inner.total.load(Relaxed)
    }

    /// Connections counted now for `ip`'s client (including any client that
    /// shares its counter).
    pub fn count(&self, ip: IpAddr) -> u32 {
        let slot = (self.inner.hasher.hash(ip) as usize) & self.inner.mask;
        self.inner.per_ip[slot].load(Relaxed)
    }

    /// Number of per-client counters (fixed at construction).
    pub fn table_size(&self) -> usize {
        self.inner.per_ip.len()
    }
}
