//! mc-proxy: MC-Proxy, the node's ingress.
//!
//! It accepts TLS connections on one or more listeners, reads the SNI from
//! the ClientHello (our own bounded parser in `mc-wire`), and routes each
//! connection by the listener's table: L4 relays the exact bytes to a
//! backend; L7 terminates TLS and forwards HTTP/2 and HTTP/1.1. A global
//! firewall (IP/CIDR/GeoIP blocks, rate and connection limits, `mc-firewall`)
//! runs before any TLS byte is read, and PROXY protocol v1/v2 is accepted
//! from trusted peers and sent to backends per route.
//!
//! Two halves, two threads of control, joined by one module:
//! - the admin side ([`admin`]) runs on the data plane's tokio admin thread:
//!   it validates, writes redb, builds and publishes snapshots;
//! - the worker side (`worker`) runs on the thread-per-core runtime: it only
//!   loads snapshots and bumps its own counters;
//! - `published` is the seam: the snapshot and listener set the admin side
//!   stores and the workers load. The worker side imports it, never `admin`.

pub mod admin;
mod balance;
mod cert_problem;
mod client_cert;
pub mod firewall;
mod gate;
mod health;
pub mod http01;
pub mod metrics;
pub mod model;
mod published;
pub mod snapshot;
pub(crate) mod stats;
pub mod table;
pub(crate) mod tls;
mod worker;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use admin::config::ProxySection;
/// The store's path and schema, for `mcd snapshot` / `mcd restore`.
pub use admin::store;
pub use admin::{AdminError, ProxyState};
/// For mc-bench only (the API boundary in ARCHITECTURE.md).
#[doc(hidden)]
pub use balance::BenchPicker;
pub use published::Published;

use crate::stats::listener as lstat;

/// A running proxy: its state, and its workers' threads.
pub struct Proxy {
    pub state: Arc<ProxyState>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Opens the store, binds the listeners (or takes those `handed` over by a
    /// predecessor) and starts `workers` worker threads.
    pub fn start(
        data_dir: &Path,
        section: &ProxySection,
        config_file: &Path,
        workers: usize,
        driver: mc_rt::Driver,
        handed: admin::HandedOver,
    ) -> Result<Self, AdminError> {
        let state = Arc::new(ProxyState::start(
            data_dir,
            section,
            config_file,
            workers,
            handed,
        )?);
        let published = state.published.clone();
        let handles = mc_rt::workers::spawn(workers, driver, move |id| {
            worker::run(id, published.clone())
        })
        .map_err(|e| mc_kit::api::ApiError::Internal(format!("starting workers: {e}")))?;
        Ok(Self {
            state,
            workers: handles,
        })
    }

    /// Open client connections across every listener.
    fn active_connections(&self) -> u64 {
        let snap = self.state.published.snapshot.load_full();
        snap.listeners
            .values()
            .map(|l| l.counters.sum(lstat::ACTIVE))
            .sum()
    }

    /// Stops accepting, then waits up to `timeout` for open connections to
    /// finish. Connections still open at the deadline are closed when the
    /// process exits.
    pub async fn drain(&self, timeout: Duration) {
        self.state.close_listeners();
        let deadline = Instant::now() + timeout;
        loop {
            let active = self.active_connections();
            if active == 0 {
                tracing::info!("proxy drained");
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    active,
                    "proxy shutdown timeout passed; closing open connections"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }
}
