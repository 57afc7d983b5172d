//! One backend's health: passive outlier ejection, the active check's
//! verdict, slow start and the outstanding count.
//!
//! Invariants: everything is an atomic (`Relaxed`: each field is a verdict of
//! its own, read and written whole; nothing orders two of them), written by
//! workers (ejection, outstanding) and by the admin side's checker (verdict,
//! streaks), never under a lock. A `BackendState` is shared by `Arc` between
//! snapshots for as long as the route keeps the backend, so a table swap
//! forgets no ejection and no running count.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A route's outlier ejection: the first length (ms), doubled per ejection
/// in a row, and the longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ejection {
    pub(crate) base_ms: u64,
    pub(crate) max_ms: u64,
}

impl Ejection {
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        Self {
            base_ms: ms(base),
            max_ms: ms(max),
        }
    }
}

impl Default for Ejection {
    fn default() -> Self {
        Self::new(
            crate::model::DEFAULT_EJECTION_BASE,
            crate::model::DEFAULT_EJECTION_MAX,
        )
    }
}
/// A backend in slow start gets at least this share (per mille) of its weight.
const RAMP_FLOOR: u64 = 100;

/// The process's monotonic time base for backend health.
pub(crate) fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since [`epoch`], at least 1 (0 means "never" below).
pub(crate) fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug, Default)]
pub(crate) struct BackendState {
    /// Ejected until then (ms since [`epoch`]); 0: never ejected.
    down_until_ms: AtomicU64,
    /// Ejections since the last successful connection.
    ejected_in_row: AtomicU32,
    ejections: AtomicU64,
    /// The active check's verdict.
    check_down: AtomicBool,
    /// When the active check last brought it back; 0: never.
    up_since_ms: AtomicU64,
    outstanding: AtomicU32,
    /// Checker only: >0 successes in a row, <0 failures in a row.
    streak: AtomicI32,
    /// Checker only: the ejection its streak counts from.
    streak_since_ejection: AtomicU64,
}

/// Why a backend is down, for status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Down {
    Check,
    /// Ejected until this time (ms since [`epoch`]).
    Ejected(u64),
}

impl BackendState {
    pub(crate) fn is_up(&self, now: u64) -> bool {
        !self.check_down.load(Ordering::Relaxed)
            && self.down_until_ms.load(Ordering::Relaxed) <= now
    }

    pub(crate) fn down(&self, now: u64) -> Option<Down> {
        if self.check_down.load(Ordering::Relaxed) {
            return Some(Down::Check);
        }
        let until = self.down_until_ms.load(Ordering::Relaxed);
        (until > now).then_some(Down::Ejected(until))
    }

    /// A connect failed: eject the backend unless it already is, for the
    /// route's base time doubled per ejection in a row, at most its maximum.
    pub(crate) fn connect_failed(&self, now: u64, e: Ejection) {
        if self.down_until_ms.load(Ordering::Relaxed) > now {
            return;
        }
        let n = self.ejected_in_row.fetch_add(1, Ordering::Relaxed).min(16);
        let length = e.base_ms.saturating_mul(1u64 << n).min(e.max_ms);
        self.down_until_ms
            .store(now.saturating_add(length), Ordering::Relaxed);
        self.ejections.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection succeeded: the streak of ejections ends, and an ejected
    /// backend (tried because nothing else answered) is readmitted now.
    pub(crate) fn connected(&self, now: u64) {
        if self.ejected_in_row.load(Ordering::Relaxed) != 0 {
            self.ejected_in_row.store(0, Ordering::Relaxed);
        }
        if self.down_until_ms.load(Ordering::Relaxed) > now {
            self.down_until_ms.store(now, Ordering::Relaxed);
        }
    }

    /// One active check's result. `fall` failures in a row mark the backend
    /// down, `rise` successes up; `rise` successes counted after an ejection
    /// end it. Returns whether the verdict changed.
    pub(crate) fn checked(&self, ok: bool, rise: u32, fall: u32, now: u64) -> bool {
        let until = self.down_until_ms.load(Ordering::Relaxed);
        if until > now && self.streak_since_ejection.swap(until, Ordering::Relaxed) != until {
            // A new ejection: count successes from here.
            self.streak.store(0, Ordering::Relaxed);
        }
        let s = self.streak.load(Ordering::Relaxed);
        let s = if ok {
            s.max(0).saturating_add(1)
        } else {
            s.min(0).saturating_sub(1)
        };
        self.streak.store(s, Ordering::Relaxed);
        let was_down = self.check_down.load(Ordering::Relaxed);
        if ok && s >= i32::try_from(rise).unwrap_or(i32::MAX) {
            if until > now {
                self.down_until_ms.store(now, Ordering::Relaxed);
                self.ejected_in_row.store(0, Ordering::Relaxed);
            }
            if was_down {
                self.up_since_ms.store(now, Ordering::Relaxed);
                self.check_down.store(false, Ordering::Relaxed);
                return true;
            }
        } else if !ok && s <= -i32::try_from(fall).unwrap_or(i32::MAX) && !was_down {
            self.check_down.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// The share of its weight (per mille) the backend gets: ramps from
    /// 10 % to 100 % over `slow_start` after it came back.
    pub(crate) fn ramp_permille(&self, now: u64, slow_start_ms: u64) -> u64 {
        if slow_start_ms == 0 {
            return 1000;
        }
        let from = self
            .down_until_ms
            .load(Ordering::Relaxed)
            .max(self.up_since_ms.load(Ordering::Relaxed));
        if from == 0 || now >= from.saturating_add(slow_start_ms) {
            return 1000;
        }
        let elapsed = now.saturating_sub(from);
        RAMP_FLOOR + (1000 - RAMP_FLOOR) * elapsed / slow_start_ms
    }

    pub(crate) fn outstanding(&self) -> u32 {
        self.outstanding.load(Ordering::Relaxed)
    }

    pub(crate) fn ejections(&self) -> u64 {
        self.ejections.load(Ordering::Relaxed)
    }
}

/// A connection (L4) or request (L7) to a backend, counted until dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<BackendState>);

impl InFlight {
    pub(crate) fn new(state: &Arc<BackendState>) -> Self {
        state.outstanding.fetch_add(1, Ordering::Relaxed);
        Self(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejection_doubles_up_to_the_cap_and_a_connection_ends_the_streak() {
        let s = BackendState::default();
        let e = Ejection::default();
        let base = e.base_ms;
        s.connect_failed(1000, Ejection::default());
        assert_eq!(s.down(1000), Some(Down::Ejected(1000 + base)));
        // Failures while ejected do not lengthen it.
        s.connect_failed(1001, Ejection::default());
        assert_eq!(s.down(1001), Some(Down::Ejected(1000 + base)));
        let t = 1000 + base;
        assert!(s.is_up(t));
        s.connect_failed(t, Ejection::default());
        assert_eq!(s.down(t), Some(Down::Ejected(t + 2 * base)));
        let mut now = t + 2 * base;
        for _ in 0..20 {
            s.connect_failed(now, Ejection::default());
            let Some(Down::Ejected(until)) = s.down(now) else {
                panic!("ejected")
            };
            assert!(until - now <= e.max_ms);
            now = until;
        }
        assert_eq!(s.ejections(), 22);
        s.connected(now);
        s.connect_failed(now, Ejection::default());
        assert_eq!(s.down(now), Some(Down::Ejected(now + base)), "streak ended");
    }

    #[test]
    fn a_route_sets_its_own_ejection_times() {
        let s = BackendState::default();
        let e = Ejection::new(Duration::from_millis(200), Duration::from_millis(500));
        s.connect_failed(1000, e);
        assert_eq!(s.down(1000), Some(Down::Ejected(1200)));
        s.connect_failed(1200, e);
        assert_eq!(s.down(1200), Some(Down::Ejected(1600)));
        s.connect_failed(1600, e);
        assert_eq!(s.down(1600), Some(Down::Ejected(2100)), "capped at 500 ms");
    }

    #[test]
    fn checks_rise_and_fall_and_end_an_ejection() {
        let s = BackendState::default();
        assert!(!s.checked(false, 2, 3, 10));
        assert!(!s.checked(false, 2, 3, 20));
        assert!(s.is_up(20));
        assert!(s.checked(false, 2, 3, 30), "third failure");
        assert_eq!(s.down(30), Some(Down::Check));
        assert!(!s.checked(true, 2, 3, 40));
        assert!(s.checked(true, 2, 3, 50), "second success");
        assert!(s.is_up(50));
        // Ejected after two successes: two more are needed to end it.
        s.connect_failed(60, Ejection::default());
        assert!(!s.is_up(61));
        s.checked(true, 2, 3, 70);
        assert!(!s.is_up(71));
        s.checked(true, 2, 3, 80);
        assert!(s.is_up(80));
    }

    #[test]
    fn slow_start_ramps_after_coming_back() {
        let s = BackendState::default();
        assert_eq!(s.ramp_permille(5, 1000), 1000, "never down");
        s.connect_failed(100, Ejection::default());
        let back = 100 + Ejection::default().base_ms;
        assert_eq!(s.ramp_permille(back, 1000), 100);
        assert_eq!(s.ramp_permille(back + 500, 1000), 550);
        assert_eq!(s.ramp_permille(back + 1000, 1000), 1000);
        assert_eq!(s.ramp_permille(back, 0), 1000, "off");
    }

    #[test]
    fn in_flight_counts_until_dropped() {
        let s = Arc::new(BackendState::default());
        let a = InFlight::new(&s);
        let b = InFlight::new(&s);
        assert_eq!(s.outstanding(), 2);
        drop(a);
        drop(b);
        assert_eq!(s.outstanding(), 0);
    }
}
