//! The backend pickers: weighted round robin, least outstanding, and
//! rendezvous hashing (design: proxy.md, "Balancing and backend health").
//!
//! Invariants: a pick takes no lock and allocates nothing (the order is a
//! fixed array of at most [`MAX_BACKENDS`] indices); it reads each backend's
//! health atomics and writes at most the set's round-robin position. Up
//! backends come first in the policy's order, down ones after them. A hash
//! pick depends only on the key and each backend's address and weight, so
//! two sets with the same backends pick alike.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use std::hash::Hasher;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::health::{BackendState, Ejection, InFlight, now_ms};
use crate::model::{Backend, Balance, BalancePolicy, MAX_BACKENDS};

/// One backend of a set.
#[derive(Debug)]
pub(crate) struct BackendHealth {
    pub(crate) backend: Backend,
    /// Resolved on the admin thread when the snapshot is built.
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) weight: u32,
    /// The backend's identity for rendezvous hashing.
    id: u64,
    pub(crate) state: Arc<BackendState>,
    /// The route's ejection times.
    eject: Ejection,
}

impl BackendHealth {
    pub(crate) fn is_up(&self, now_ms: u64) -> bool {
        self.state.is_up(now_ms)
    }

    /// A connect to it failed: eject it for a while.
    pub(crate) fn mark_down(&self, now_ms: u64) {
        self.state.connect_failed(now_ms, self.eject);
    }

    pub(crate) fn mark_up(&self) {
        self.state.connected(now_ms());
    }

    /// Counts a connection or request to it until the guard drops.
    pub(crate) fn in_flight(&self) -> InFlight {
        InFlight::new(&self.state)
    }
}

/// Backends with their policy, round-robin position and health: a route's
/// own or one path rule's.
#[derive(Debug)]
pub(crate) struct BackendSet {
    next: AtomicUsize,
    pub(crate) backends: Box<[BackendHealth]>,
    policy: BalancePolicy,
    /// Weighted round robin: backend indices, smoothly interleaved.
    schedule: Box<[u8]>,
    slow_start_ms: u64,
    eject: Ejection,
    /// Every weight is the same, so the hash policy can rank by the raw
    /// hash: the score is monotone in it, and the logarithm is skipped.
    equal_weights: bool,
}

/// The order to try a set's backends in.
pub(crate) struct Order<'a> {
    set: &'a BackendSet,
    idx: [u8; MAX_BACKENDS],
    len: usize,
    /// How many of the first are up.
    up: usize,
    /// Bit `i`: backend `i` is in `idx`.
    taken: u64,
}

impl Order<'_> {
    fn push(&mut self, i: usize) {
        if let Some(slot) = self.idx.get_mut(self.len) {
            *slot = u8::try_from(i).unwrap_or(0);
            self.len += 1;
            self.taken |= 1u64 << i;
        }
    }

    fn has(&self, i: usize) -> bool {
        self.taken & (1u64 << i) != 0
    }
}

impl<'a> Order<'a> {
    /// Up backends, then down ones.
    pub(crate) fn all(&self) -> impl Iterator<Item = &'a BackendHealth> + use<'a, '_> {
        let set = self.set;
        self.idx
            .iter()
            .take(self.len)
            .filter_map(move |&i| set.backends.get(usize::from(i)))
    }

    /// Up backends only.
    pub(crate) fn up(&self) -> impl Iterator<Item = &'a BackendHealth> + use<'a, '_> {
        self.all().take(self.up)
    }
}

/// A hash key: the client address, or bytes of a request header.
pub(crate) fn key_of(bytes: &[u8]) -> u64 {
    // SipHash with fixed keys: the same on every node running this build.
    let mut h = std::hash::DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

pub(crate) fn key_of_ip(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => key_of(&v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => key_of(&v4.octets()),
            None => key_of(&v6.octets()),
        },
    }
}

/// splitmix64's finalizer: spreads a key mixed with a backend's id.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The rendezvous score of a backend for `key`: `weight / -ln(u)` with `u`
/// uniform in (0, 1) from the hash, so a backend wins in proportion to its
/// weight.
fn score(key: u64, b: &BackendHealth) -> f64 {
    let h = mix(key ^ b.id);
    // 53 bits, strictly inside (0, 1).
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    f64::from(b.weight) / -u.ln()
}

/// A backend's rank for `key` (higher first). With equal weights the score
/// is monotone in the hash, so the hash itself ranks the backends the same
/// way; otherwise the score's bits, which order like the score because
/// it is positive and finite.
fn rank(key: u64, b: &BackendHealth, equal_weights: bool) -> u64 {
    if equal_weights {
        mix(key ^ b.id) >> 11
    } else {
        score(key, b).to_bits()
    }
}

/// nginx's smooth weighted round robin, run once over one full cycle.
fn schedule(weights: &[u32]) -> Box<[u8]> {
    let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        let mut best = 0;
        for (i, w) in weights.iter().enumerate() {
            let c = current.get_mut(i).map_or(0, |c| {
                *c += i64::from(*w);
                *c
            });
            if c > current.get(best).copied().unwrap_or(i64::MIN) {
                best = i;
            }
        }
        if let Some(c) = current.get_mut(best) {
            *c -= total;
        }
        out.push(u8::try_from(best).unwrap_or(0));
    }
    out.into_boxed_slice()
}

pub(crate) fn resolve(backend: &Backend) -> Vec<SocketAddr> {
    if let Some(a) = backend.socket_addr() {
        return vec![a];
    }
    match (backend.host.as_str(), backend.port).to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(e) => {
            tracing::warn!(backend = %backend, error = %e, "backend does not resolve; it will count as down");
            Vec::new()
        }
    }
}

impl BackendSet {
    /// A set of `backends` with `weights` (by position; missing: 1), keeping
    /// the health of backends `previous` also has.
    pub(crate) fn new(
        backends: &[Backend],
        weights: impl Fn(usize) -> u32,
        balance: &Balance,
        previous: Option<&BackendSet>,
    ) -> Self {
        Self::with_resolver(backends, weights, balance, previous, resolve)
    }

    pub(crate) fn with_resolver(
        backends: &[Backend],
        weights: impl Fn(usize) -> u32,
        balance: &Balance,
        previous: Option<&BackendSet>,
        resolve: impl Fn(&Backend) -> Vec<SocketAddr>,
    ) -> Self {
        let (base, max) = balance.ejection();
        let eject = Ejection::new(base, max);
        let backends: Box<[BackendHealth]> = backends
            .iter()
            .take(MAX_BACKENDS)
            .enumerate()
            .map(|(i, b)| BackendHealth {
                backend: b.clone(),
                addrs: resolve(b),
                weight: weights(i).max(1),
                id: key_of(b.to_string().as_bytes()),
                state: previous
                    .and_then(|p| p.backends.iter().find(|o| o.backend == *b))
                    .map_or_else(Arc::default, |o| o.state.clone()),
                eject,
            })
            .collect();
        let w: Vec<u32> = backends.iter().map(|b| b.weight).collect();
        let equal_weights = w.windows(2).all(|p| p.first() == p.last());
        Self {
            equal_weights,
            next: AtomicUsize::new(previous.map_or(0, |p| p.next.load(Ordering::Relaxed))),
            schedule: schedule(&w),
            backends,
            policy: balance.policy,
            slow_start_ms: u64::try_from(balance.slow_start.as_millis()).unwrap_or(u64::MAX),
            eject,
        }
    }

    /// Whether this set is `backends` with these weights under `balance`.
    pub(crate) fn serves(
        &self,
        backends: &[Backend],
        weights: impl Fn(usize) -> u32,
        balance: &Balance,
    ) -> bool {
        let (base, max) = balance.ejection();
        self.policy == balance.policy
            && self.eject == Ejection::new(base, max)
            && self.slow_start_ms
                == u64::try_from(balance.slow_start.as_millis()).unwrap_or(u64::MAX)
            && self.backends.len() == backends.len()
            && self
                .backends
                .iter()
                .zip(backends)
                .enumerate()
                .all(|(i, (h, b))| h.backend == *b && h.weight == weights(i).max(1))
    }

    /// The hash key for a client (the value of the hash header when given):
    /// 0 unless the policy hashes, so other policies pay nothing for it.
    pub(crate) fn key_for(&self, client: IpAddr, header: Option<&[u8]>) -> u64 {
        if self.policy != BalancePolicy::Hash {
            return 0;
        }
        header.map_or_else(|| key_of_ip(client), key_of)
    }

    /// The order to try the backends in for a client with hash `key`
    /// (used by the hash policy only).
    pub(crate) fn order(&self, key: u64) -> Order<'_> {
        self.order_at(key, now_ms())
    }

    pub(crate) fn order_at(&self, key: u64, now: u64) -> Order<'_> {
        let mut o = Order {
            set: self,
            idx: [0; MAX_BACKENDS],
            len: 0,
            up: 0,
            taken: 0,
        };
        let n = self.backends.len();
        if n == 0 {
            return o;
        }
        let up = |i: usize| self.backends.get(i).is_some_and(|b| b.is_up(now));
        match self.policy {
            BalancePolicy::Hash => {
                // Up backends by descending score, then the down ones.
                let mut scored = [(0u64, 0u8); MAX_BACKENDS];
                let mut m = 0;
                for (i, b) in self.backends.iter().enumerate() {
                    if b.is_up(now)
                        && let Some(s) = scored.get_mut(m)
                    {
                        *s = (
                            rank(key, b, self.equal_weights),
                            u8::try_from(i).unwrap_or(0),
                        );
                        m += 1;
                    }
                }
                let scored = scored.get_mut(..m).unwrap_or_default();
                scored.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
                for (_, i) in scored.iter() {
                    o.push(usize::from(*i));
                }
            }
            BalancePolicy::Rr => {
                let tick = self.next.fetch_add(1, Ordering::Relaxed);
                if let Some(i) = self.pick_rr(tick, now) {
                    o.push(i);
                }
            }
            BalancePolicy::Least => {
                let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
                let mut best: Option<(usize, u64, u64)> = None;
                for k in 0..n {
                    let i = (start + k) % n;
                    let Some(b) = self.backends.get(i).filter(|b| b.is_up(now)) else {
                        continue;
                    };
                    let load = u64::from(b.state.outstanding()) + 1;
                    let w = u64::from(b.weight) * b.state.ramp_permille(now, self.slow_start_ms);
                    // load/w < best_load/best_w, without dividing.
                    if best.is_none_or(|(_, bl, bw)| load * bw < bl * w) {
                        best = Some((i, load, w));
                    }
                }
                if let Some((i, _, _)) = best {
                    o.push(i);
                }
            }
        }
        // The rest of the up backends, rotating from the first pick, then
        // the down ones.
        let from = o.idx.first().map_or(0, |i| usize::from(*i));
        for k in 0..n {
            let i = (from + k) % n;
            if !o.has(i) && up(i) {
                o.push(i);
            }
        }
        o.up = o.len;
        for i in 0..n {
            if !o.has(i) {
                o.push(i);
            }
        }
        o
    }

    /// Walks the schedule from `tick` to the first up backend a slow start
    /// does not skip.
    fn pick_rr(&self, tick: usize, now: u64) -> Option<usize> {
        let len = self.schedule.len().max(1);
        let mut fallback = None;
        for k in 0..len {
            let Some(&i) = self.schedule.get((tick + k) % len) else {
                break;
            };
            let i = usize::from(i);
            let Some(b) = self.backends.get(i).filter(|b| b.is_up(now)) else {
                continue;
            };
            let ramp = b.state.ramp_permille(now, self.slow_start_ms);
            if ramp >= 1000 || mix((tick + k) as u64) % 1000 < ramp {
                return Some(i);
            }
            fallback.get_or_insert(i);
        }
        fallback
    }
}

/// For mc-bench only: a set of backends and one pick, with no snapshot
/// and no I/O around it.
#[doc(hidden)]
pub struct BenchPicker(BackendSet);

impl BenchPicker {
    pub fn new(backends: &[Backend], balance: &Balance) -> Self {
        Self(BackendSet::new(
            backends,
            |i| balance.weight(i),
            balance,
            None,
        ))
    }

    /// The address of the backend picked for `client`.
    pub fn pick(&self, client: IpAddr) -> Option<SocketAddr> {
        let order = self.0.order(self.0.key_for(client, None));
        order.up().next().and_then(|b| b.addrs.first().copied())
    }
}

#[cfg(test)]
mod tests;
