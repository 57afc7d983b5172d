//! What the admin side publishes and the workers read: the compiled-zones
//! snapshot (one `ArcSwap`), the validated settings, the stop signal and the
//! cache-flush requests; and the per-worker counters, which go the other way
//! (each worker bumps its own slot, status and scrapes sum them).
//!
//! Invariant: this is the only meeting point of the two halves. The worker
//! side (`worker/`) imports this module, never `crate::admin`; the admin side
//! writes here only with atomic stores (`ArcSwap::store`, atomics, the watch
//! channel), so a worker never waits on it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use tokio::sync::watch;

// The validated `[dns]` settings travel with the snapshot; the admin side's
// config module builds them, the workers only read them through here.
pub(crate) use crate::admin::config::{DnsSettings, RrlConfig};
use crate::stats::Stats;
use crate::zone::Snapshot;

/// Shared between the admin thread (writes) and the workers (reads).
#[derive(Debug)]
pub struct Published {
    pub(crate) snapshot: ArcSwap<Snapshot>,
    /// Set to true at shutdown: workers stop receiving and accepting.
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) stats: Stats,
    pub(crate) settings: Arc<DnsSettings>,
    pub(crate) workers: usize,
    /// Bumped by FlushCache; each worker clears its cache when it sees a new value.
    pub(crate) flush_all: AtomicU64,
    /// Single-name flushes: (sequence, name); workers drop names newer than they have seen.
    pub(crate) flush_names: ArcSwap<Vec<(u64, Name)>>,
    pub(crate) flush_seq: AtomicU64,
    /// Response rate limiting (shared, lock-free); `None` when off.
    pub(crate) rrl: Option<mc_firewall::RateLimiter>,
    pub(crate) tcp_active: AtomicUsize,
    /// The addresses actually bound (port 0 resolved).
    pub listen: Vec<SocketAddr>,
    /// UPDATE plans to the admin side (bounded; `None`: nobody applies them).
    pub(crate) updates: Option<tokio::sync::mpsc::Sender<crate::update::Job>>,
    /// TSIG keys added through the admin API (the config's are in `settings`).
    pub(crate) api_keys: ArcSwap<Vec<crate::tsig::TsigKey>>,
}

/// One worker's sockets: a UDP socket and a TCP listener per listen address,
/// bound by the admin side at start and handed over once.
#[derive(Debug, Default)]
pub(crate) struct WorkerSockets {
    pub(crate) udp: Vec<std::net::UdpSocket>,
    pub(crate) tcp: Vec<std::net::TcpListener>,
}
