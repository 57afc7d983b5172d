//! The seam between the two halves: what the admin side publishes and the
//! workers read.
//!
//! Invariant: this is the only module both halves import for shared state.
//! The admin side stores a new [`Snapshot`] or [`ListenerSet`] and bumps
//! [`Published::changes`]; a worker only loads them (wait-free `ArcSwap`
//! reads) and bumps its own slot of the counters. Nothing here takes a lock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::http01::Http01Tokens;
use crate::snapshot::Snapshot;
use crate::stats::GlobalCounters;

/// A listener's bound sockets: one `SO_REUSEPORT` socket per worker.
#[derive(Debug)]
pub(crate) struct BoundListener {
    pub(crate) name: String,
    pub(crate) address: SocketAddr,
    pub(crate) sockets: Vec<std::net::TcpListener>,
}

/// The listeners workers should be accepting on. Kept apart from the routing
/// snapshot so that a removed listener's sockets close as soon as workers
/// let go, even while old connections still hold old snapshots.
#[derive(Debug, Default)]
pub(crate) struct ListenerSet {
    pub(crate) listeners: Vec<Arc<BoundListener>>,
}

/// Shared between the admin thread (writes) and the workers (reads).
#[derive(Debug)]
pub struct Published {
    pub(crate) snapshot: ArcSwap<Snapshot>,
    pub(crate) listeners: ArcSwap<ListenerSet>,
    /// Bumped after every publish; workers wait on it to pick up listeners.
    pub(crate) changes: watch::Sender<u64>,
    pub(crate) globals: GlobalCounters,
    pub(crate) workers: usize,
    pub(crate) max_client_hello: usize,
    /// Set when the process drains: L7 connections finish their requests and close.
    pub(crate) draining: AtomicBool,
    /// Accept loops running across workers (an upgrade waits for its
    /// successor's to start before the old process stops accepting).
    pub(crate) armed: AtomicUsize,
    /// ACME HTTP-01 answers for the plain-HTTP listeners (managed certificates).
    pub(crate) http01: Arc<Http01Tokens>,
}

impl Published {
    /// The first publication: `snapshot`, no listeners yet.
    pub(crate) fn new(
        snapshot: Snapshot,
        globals: GlobalCounters,
        workers: usize,
        max_client_hello: usize,
    ) -> Self {
        let (changes, _) = watch::channel(0);
        Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            listeners: ArcSwap::from_pointee(ListenerSet::default()),
            changes,
            globals,
            workers,
            max_client_hello,
            draining: AtomicBool::new(false),
            armed: AtomicUsize::new(0),
            http01: Arc::default(),
        }
    }

    /// Tells every worker that generation `generation` is published.
    pub(crate) fn notify(&self, generation: u64) {
        self.changes.send_replace(generation);
    }
}
