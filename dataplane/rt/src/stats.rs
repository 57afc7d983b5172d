//! Per-worker counters, summed when read.
//!
//! Each block has one cache-line-aligned slot per worker; a worker only ever
//! writes its own slot (`Relaxed`), and status or a scrape sums the slots.
//! No counter is shared between cores on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One slot per worker, padded so that neighbouring workers never share a line.
#[derive(Debug)]
#[repr(align(128))]
pub struct Slot<const N: usize>(pub [AtomicU64; N]);

impl<const N: usize> Default for Slot<N> {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// `N` counters per worker, addressed by index.
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
    fn cell(&self, worker: usize, index: usize) -> Option<&AtomicU64> {
        self.slots.get(worker).and_then(|s| s.0.get(index))
    }

    #[inline]
    pub fn add(&self, worker: usize, index: usize, n: u64) {
        if let Some(c) = self.cell(worker, index) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    #[inline]
    pub fn sub(&self, worker: usize, index: usize, n: u64) {
        if let Some(c) = self.cell(worker, index) {
            c.fetch_sub(n, Ordering::Relaxed);
        }
    }

    #[inline]
    pub fn set(&self, worker: usize, index: usize, n: u64) {
        if let Some(c) = self.cell(worker, index) {
            c.store(n, Ordering::Relaxed);
        }
    }

    /// One slot's value (a slot is a worker, or whatever the caller indexes by).
    pub fn get(&self, slot: usize, index: usize) -> u64 {
        self.cell(slot, index)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The sum over workers (wrapping, so a gauge's +1/-1 on different workers nets out).
    pub fn sum(&self, index: usize) -> u64 {
        self.slots
            .iter()
            .filter_map(|s| s.0.get(index))
            .fold(0_u64, |acc, c| acc.wrapping_add(c.load(Ordering::Relaxed)))
    }

    /// Histogram use: counters `0..=bounds.len()` are buckets (µs upper
    /// bounds, the last one unbounded) and counter `bounds.len() + 1` is the
    /// sum in µs. `N` must be `bounds.len() + 2`.
    #[inline]
    pub fn observe(&self, worker: usize, bounds_us: &[u64], elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = bounds_us
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(bounds_us.len());
        self.add(worker, bucket, 1);
        self.add(worker, bounds_us.len() + 1, us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_across_workers_and_gauges_net_out() {
        let c = Counters::<5>::new(3);
        c.add(0, 1, 1);
        c.add(1, 1, 1);
        c.sub(2, 1, 1);
        c.add(2, 2, 10);
        assert_eq!(c.sum(1), 1);
        assert_eq!(c.sum(2), 10);
        c.add(99, 2, 1); // out of range: ignored, no panic
        c.set(0, 3, 7);
        assert_eq!(c.sum(3), 7);
        assert_eq!(std::mem::align_of::<Slot<5>>(), 128);
    }

    #[test]
    fn observe_fills_buckets_and_sum() {
        const BOUNDS: [u64; 2] = [100, 1_000];
        let c = Counters::<4>::new(1);
        c.observe(0, &BOUNDS, Duration::from_micros(50));
        c.observe(0, &BOUNDS, Duration::from_micros(500));
        c.observe(0, &BOUNDS, Duration::from_millis(5));
        assert_eq!([c.sum(0), c.sum(1), c.sum(2)], [1, 1, 1]);
        assert_eq!(c.sum(3), 5_550);
    }
}
