//! Lock-free per-client GCRA rate limiter on new connections.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::{ClientHasher, DEFAULT_TABLE_SIZE, check_table_size, remix};
use crate::error::LimitConfigError;

/// Bits of a cell holding the theoretical arrival time (ms since `epoch`):
/// 2^40 ms is about 34 years of process uptime.
const TAT_BITS: u32 = 40;
const TAT_MASK: u64 = (1 << TAT_BITS) - 1;
/// `now` is capped here (about 17 years of uptime) so that `now + burst *
/// interval` (at most 10^11 ms after validation) always fits in `TAT_BITS`.
const NOW_CAP: u64 = 1 << (TAT_BITS - 1);
/// Largest burst accepted.
const MAX_BURST: u32 = 100_000;

/// Settings of a [`RateLimiter`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimiterConfig {
    /// Sustained new connections per second per client; `0` turns the limit
    /// off. At most 1000 (the limiter keeps millisecond time); the interval
    /// `1000 / rate` ms is rounded to whole milliseconds.
    pub rate_per_sec: f64,
    /// Connections a client may open at once before the rate applies
    /// (`1 ..= 100_000` when `rate_per_sec` is set).
    pub burst: u32,
    /// Cells in the table: a power of two in `2^4 ..= 2^24`. Each is 8 bytes.
    pub table_size: usize,
}

impl Default for RateLimiterConfig {
    /// Off, with the default table size.
    fn default() -> Self {
        Self {
            rate_per_sec: 0.0,
            burst: 0,
            table_size: DEFAULT_TABLE_SIZE,
        }
    }
}

/// Per-client limit on new connections with GCRA ("burst + rate") semantics.
///
/// A fixed table of `AtomicU64` cells, each packing a 24-bit client tag and
/// the client's theoretical arrival time (TAT). A check reads at most two
/// cells and updates one with compare-and-swap; it never blocks, allocates
/// or grows. See the [module documentation](crate::limits) for what hash
/// collisions and evictions do.
#[derive(Debug)]
pub struct RateLimiter {
    cells: Box<[AtomicU64]>,
    mask: usize,
    hasher: ClientHasher,
    epoch: Instant,
    /// `interval_ms << 32 | burst`; interval 0 = off.
    params: AtomicU64,
}

impl RateLimiter {
    /// A limiter with `config`, its clock starting now.
    ///
    /// # Errors
    /// [`LimitConfigError`] for an invalid rate, burst or table size.
    pub fn new(config: RateLimiterConfig) -> Result<Self, LimitConfigError> {
        let size = check_table_size("rate limiter", config.table_size)?;
        let params = pack_params(config.rate_per_sec, config.burst)?;
        Ok(Self {
            cells: (0..size).map(|_| AtomicU64::new(0)).collect(),
            mask: size - 1,
            hasher: ClientHasher::default(),
            epoch: Instant::now(),
            params: AtomicU64::new(params),
        })
    }

    /// Changes rate and burst in place; client state is kept.
    ///
    /// # Errors
    /// [`LimitConfigError`] for an invalid rate or burst (nothing changes).
    pub fn set_rate(&self, rate_per_sec: f64, burst: u32) -> Result<(), LimitConfigError> {
        let params = pack_params(rate_per_sec, burst)?;
        self.params.store(params, Relaxed);
        Ok(())
    }

    /// Number of cells (fixed at construction).
    pub fn table_size(&self) -> usize {
        self.cells.len()
    }

    /// The instant the limiter's millisecond clock counts from.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Records a new connection from `ip` at `now`; `true` admits it, `false`
    /// means it is over the limit (count it as `rate_limit` and reset it).
    /// A refused attempt does not use up budget.
    pub fn check(&self, ip: IpAddr, now: Instant) -> bool {
        self.check_wait(ip, now).is_ok()
    }

    /// [`Self::check`], saying how long a refused client has to wait until
    /// its next attempt would be admitted (what `Retry-After` tells it).
    ///
    /// # Errors
    /// The wait, when `ip` is over the limit (nothing is recorded).
    pub fn check_wait(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let params = self.params.load(Relaxed);
        let interval = params >> 32;
        if interval == 0 {
            return Ok(());
        }
        let tolerance = interval * (params & u64::from(u32::MAX));

        let h = self.hasher.hash(ip);
        let tag = h >> TAT_BITS; // The 24 high bits.
        let i1 = (h as usize) & self.mask;
        let mut i2 = (remix(h) as usize) & self.mask;
        if i2 == i1 {
            i2 ^= 1;
        }
        let now_ms = self.now_ms(now);

        // Relaxed suffices: each cell is self-contained and the CAS orders
        // all updates of one cell.
        loop {
            let c1 = self.cells[i1].load(Relaxed);
            let c2 = self.cells[i2].load(Relaxed);
            let live = |c: u64| c & TAT_MASK > now_ms;
            let ours = |c: u64| c >> TAT_BITS == tag && live(c);
            // Our live state if we have one, else a free cell (an expired
            // cell is the same as a fresh client), else evict the foreign
            // cell whose TAT is oldest.
            let (slot, seen, tat) = if ours(c1) {
                (i1, c1, c1 & TAT_MASK)
            } else if ours(c2) {
                (i2, c2, c2 & TAT_MASK)
            } else if !live(c1) {
                (i1, c1, 0)
            } else if !live(c2) || c2 & TAT_MASK < c1 & TAT_MASK {
                (i2, c2, 0)
            } else {
                (i1, c1, 0)
            };
            let new_tat = tat.max(now_ms).saturating_add(interval);
            if new_tat - now_ms > tolerance {
                return Err(Duration::from_millis(new_tat - now_ms - tolerance));
            }
            let cell = (tag << TAT_BITS) | new_tat.min(TAT_MASK);
            if self.cells[slot]
                .compare_exchange_weak(seen, cell, Relaxed, Relaxed)
                .is_ok()
            {
                return Ok(());
            }
        }
    }

    /// Milliseconds from `epoch` to `now`, 0 if earlier, capped to the cell.
    fn now_ms(&self, now: Instant) -> u64 {
        let ms = now.saturating_duration_since(self.epoch).as_millis();
        u64::try_from(ms).unwrap_or(u64::MAX).min(NOW_CAP)
    }
}

/// `interval_ms << 32 | burst`, validated.
fn pack_params(rate_per_sec: f64, burst: u32) -> Result<u64, LimitConfigError> {
    if rate_per_sec == 0.0 {
        return Ok(0);
    }
    if !rate_per_sec.is_finite() || !(0.001..=1000.0).contains(&rate_per_sec) {
        return Err(LimitConfigError::Rate { rate: rate_per_sec });
    }
    if !(1..=MAX_BURST).contains(&burst) {
        return Err(LimitConfigError::Burst { burst });
    }
    // 1 ..= 1_000_000 after the range check above.
    let interval = (1000.0 / rate_per_sec).round().max(1.0) as u64;
    Ok((interval << 32) | u64::from(burst))
}
