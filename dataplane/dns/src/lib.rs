//! mc-dns: MCNS, the platform's authoritative DNS with forwarding.
//!
//! It answers for the platform's zones from an immutable snapshot and
//! forwards every other name (for allowed clients) to upstream resolvers
//! through a per-worker cache, on the data plane's thread-per-core runtime.
//!
//! Two halves, as in mc-proxy, that meet only in [`published`]:
//! - the admin side ([`admin`]) on the data plane's tokio admin thread:
//!   validates, writes `mcns.redb`, compiles zones and publishes snapshots,
//!   sends NOTIFY, serves `mc.dns.v1`;
//! - the worker side ([`worker`]) on monoio workers: loads the snapshot once
//!   per query, keeps its own cache and counters, never blocks on the admin
//!   side and never imports it.
//!
//! Shared by both: [`model`] (validated types), [`zone`] (compiling a
//! zone), [`tsig`], [`update`] (RFC 2136 plans), [`stats`] (the counters)
//! and [`metrics`].
//!
//! Architecture invariant: any byte sequence received yields a valid
//! response or silence, never a panic (see the fuzz target in `fuzz/`).

pub mod admin;
#[doc(hidden)]
pub mod fuzzing;
pub mod metrics;
pub(crate) mod model;
pub(crate) mod published;
pub(crate) mod stats;
pub(crate) mod tsig;
pub(crate) mod update;
pub(crate) mod worker;
pub(crate) mod zone;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mc_kit::api::ApiError;

pub use admin::config::DnsSection;
pub use admin::state::{DnsState, HandedOver, Kept as ListeningSockets};
pub use admin::store;
/// Query parsing, for mc-bench's decode benchmark.
#[doc(hidden)]
pub use worker::message;

use crate::published::WorkerSockets;

/// A running MCNS: its state and its worker threads.
pub struct Dns {
    pub state: Arc<DnsState>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Dns {
    /// Opens the store, binds the listen addresses and starts `workers` worker threads.
    pub fn start(
        data_dir: &Path,
        section: &DnsSection,
        config_file: &Path,
        workers: usize,
        driver: mc_rt::Driver,
        handed: HandedOver,
    ) -> Result<Self, ApiError> {
        let settings = section.settings().map_err(ApiError::Invalid)?;
        let workers = workers.max(1);
        let (state, sockets) = DnsState::start(data_dir, settings, config_file, workers, handed)?;
        let state = Arc::new(state);
        let handles = if state.published.listen.is_empty() {
            Vec::new()
        } else {
            // Each worker takes its own sockets once, at start.
            let slots: Arc<Mutex<Vec<Option<WorkerSockets>>>> =
                Arc::new(Mutex::new(sockets.into_iter().map(Some).collect()));
            let published = state.published.clone();
            mc_rt::workers::spawn(workers, driver, move |id| {
                let mine = slots
                    .lock()
                    .ok()
                    .and_then(|mut s| s.get_mut(id).and_then(Option::take))
                    .unwrap_or_default();
                worker::run(id, published.clone(), mine)
            })
            .map_err(|e| ApiError::Internal(format!("starting DNS workers: {e}")))?
        };
        // Secondaries may have missed changes while we were down.
        for (spec, _) in state.zones() {
            state.notify_secondaries(&spec.name);
        }
        // UPDATE plans from the workers are applied on the admin runtime.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(admin::update::serve(state.clone()));
            }
            Err(_) => tracing::warn!("dns: no admin runtime; UPDATE answers SERVFAIL"),
        }
        Ok(Self {
            state,
            workers: handles,
        })
    }

    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Stops receiving and accepting, then waits up to `timeout` for open
    /// TCP connections to finish their current query.
    pub async fn drain(&self, timeout: Duration) {
        self.state.stop();
        let deadline = Instant::now() + timeout;
        loop {
            let active = self
                .state
                .published
                .tcp_active
                .load(std::sync::atomic::Ordering::Relaxed);
            if active == 0 {
                tracing::info!("dns drained");
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    active,
                    "dns shutdown timeout passed; closing open connections"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
