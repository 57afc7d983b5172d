//! Unseal back-off: after `after` consecutive failures each further attempt
//! must wait `base · 2^(failures − after)`, capped at `max`, for the whole
//! barrier; a success resets it.
//!
//! Invariant: the state is in memory only (resetting it takes a restart);
//! the check and the failure count are taken under one lock.
//!
//! Also the barrier's counters for metrics (`core/metrics.rs`): unseal
//! attempts by result, counted where they are audited, and values that
//! did not open. They are process-wide, as a process hosts one Metacrypt.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The results a `barrier.unseal` audit row carries.
const UNSEAL_RESULTS: [&str; 3] = ["ok", "denied", "rate_limited"];
static UNSEAL: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
static OPEN_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Counts an unseal attempt from its audit row (other rows are ignored).
pub(crate) fn count_unseal(event: &mc_kit::store::audit::AuditEvent) {
    if event.action != "barrier.unseal" {
        return;
    }
    if let Some(i) = UNSEAL_RESULTS.iter().position(|r| *r == event.result) {
        UNSEAL[i].fetch_add(1, Relaxed);
    }
}

/// Unseal attempts so far, by result.
pub(crate) fn unseal_counts() -> Vec<(&'static str, u64)> {
    UNSEAL_RESULTS
        .iter()
        .zip(&UNSEAL)
        .map(|(r, n)| (*r, n.load(Relaxed)))
        .collect()
}

pub(crate) fn count_open_failure() {
    OPEN_FAILURES.fetch_add(1, Relaxed);
}

/// Sealed values that did not open, so far.
pub(crate) fn open_failures() -> u64 {
    OPEN_FAILURES.load(Relaxed)
}

#[derive(Debug)]
pub(crate) struct Backoff {
    after: u32,
    base: Duration,
    max: Duration,
    state: Mutex<(u32, Option<Instant>)>,
}

impl Backoff {
    pub(crate) fn new(after: u32, base: Duration, max: Duration) -> Self {
        Self {
            after,
            base,
            max,
            state: Mutex::new((0, None)),
        }
    }

    /// `Err(seconds to wait)` while an attempt is not yet allowed.
    pub(crate) fn check(&self, now: Instant) -> Result<(), u64> {
        let s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match s.1 {
            Some(at) if now < at => Err((at - now).as_secs().max(1)),
            _ => Ok(()),
        }
    }

    pub(crate) fn failure(&self, now: Instant) {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.0 = s.0.saturating_add(1);
        if s.0 >= self.after {
            let exp = (s.0 - self.after).min(30);
            let wait = self.base.saturating_mul(1u32 << exp).min(self.max);
            s.1 = Some(now + wait);
        }
    }

    pub(crate) fn success(&self) {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *s = (0, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_after_n_failures_doubling_to_the_cap_and_resets() {
        let b = Backoff::new(2, Duration::from_secs(10), Duration::from_secs(25));
        let t0 = Instant::now();
        b.failure(t0);
        assert_eq!(b.check(t0), Ok(()));
        b.failure(t0);
        assert_eq!(b.check(t0), Err(10));
        assert_eq!(b.check(t0 + Duration::from_secs(11)), Ok(()));
        b.failure(t0);
        assert_eq!(b.check(t0), Err(20));
        b.failure(t0);
        assert_eq!(b.check(t0), Err(25), "capped");
        b.success();
        assert_eq!(b.check(t0), Ok(()));
    }
}
