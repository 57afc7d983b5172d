//! The immutable routing snapshot the workers read.
//!
//! Built on the admin thread from validated specs, published with one
//! `ArcSwap::store`, loaded by a worker once per accepted connection. A
//! connection keeps the `Arc<Snapshot>` it started with; the next connection
//! sees the new one. Counters, round-robin positions and backend health are
//! carried from the previous snapshot for entries that still exist, so a
//! change never resets them.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::firewall::FirewallState;
use crate::model::{Backend, BackendProtocol, HostPattern, ListenerSpec, PolicyRule, RouteSpec};
use crate::stats::{LatencyCounters, ListenerCounters, RouteCounters};
use crate::table::RouteTable;

/// How long a backend that refused a connection is skipped.
pub(crate) const BACKEND_DOWN_FOR: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Snapshot {
    pub generation: u64,
    pub listeners: HashMap<String, Arc<ListenerEntry>>,
    pub(crate) firewall: Arc<FirewallState>,
}

#[derive(Debug)]
pub struct ListenerEntry {
    pub(crate) spec: ListenerSpec,
    pub routes: RouteTable<RouteEntry>,
    pub(crate) default_route: Option<Arc<RouteEntry>>,
    pub(crate) counters: Arc<ListenerCounters>,
}

#[derive(Debug)]
pub struct RouteEntry {
    pub(crate) spec: RouteSpec,
    pub(crate) connect_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) runtime: Arc<RouteRuntime>,
    /// L7 routes: the TLS and HTTP side. `None` on an L7 route means its
    /// certificate could not be loaded; such connections are reset.
    pub(crate) l7: Option<L7Route>,
}

/// What an L7 route needs at connection time, prepared on the admin thread.
#[derive(Debug)]
pub(crate) struct L7Route {
    pub(crate) server: Arc<rustls::ServerConfig>,
    /// TLS backends: the client configuration and the name to verify.
    pub(crate) backend_tls: Option<BackendTls>,
    /// Evaluated in order; the first match answers 403.
    pub(crate) policies: Box<[PolicyRule]>,
}

#[derive(Debug, Clone)]
pub(crate) struct BackendTls {
    pub(crate) config: Arc<rustls::ClientConfig>,
    /// `None`: the backend's host.
    pub(crate) server_name: Option<rustls_pki_types::ServerName<'static>>,
    /// Equal for equal settings: backend connections are pooled by it.
    pub(crate) identity: u64,
}

/// The inputs only L7 routes need.
pub(crate) struct L7Inputs<'a> {
    pub(crate) configs: crate::tls::ServerConfigs<'a>,
    /// Per route, already in evaluation order.
    pub(crate) policies: HashMap<(String, HostPattern), Vec<PolicyRule>>,
    pub(crate) default_roots: Arc<rustls::RootCertStore>,
}

/// The parts of a route that outlive snapshots.
#[derive(Debug)]
pub(crate) struct RouteRuntime {
    pub(crate) counters: RouteCounters,
    pub(crate) connect_latency: LatencyCounters,
    pub(crate) next: AtomicUsize,
    pub(crate) backends: Box<[BackendHealth]>,
}

#[derive(Debug)]
pub(crate) struct BackendHealth {
    pub(crate) backend: Backend,
    /// Resolved on the admin thread when the snapshot is built.
    pub(crate) addrs: Vec<SocketAddr>,
    /// Milliseconds since [`epoch`] until which the backend is skipped.
    pub(crate) down_until_ms: AtomicU64,
}

/// The process's monotonic time base for backend health.
pub(crate) fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

pub(crate) fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl BackendHealth {
    pub(crate) fn is_up(&self, now_ms: u64) -> bool {
        self.down_until_ms.load(Ordering::Relaxed) <= now_ms
    }

    pub(crate) fn mark_down(&self, now_ms: u64) {
        let until =
            now_ms.saturating_add(u64::try_from(BACKEND_DOWN_FOR.as_millis()).unwrap_or(u64::MAX));
        self.down_until_ms.store(until, Ordering::Relaxed);
    }

    pub(crate) fn mark_up(&self) {
        if self.down_until_ms.load(Ordering::Relaxed) != 0 {
            self.down_until_ms.store(0, Ordering::Relaxed);
        }
    }
}

impl RouteEntry {
    /// Backends in the order to try them: round robin from the next position,
    /// those marked down last (still tried if every backend is down).
    pub(crate) fn candidates(&self) -> impl Iterator<Item = &BackendHealth> {
        let backends = &self.runtime.backends;
        let n = backends.len().max(1);
        let start = self.runtime.next.fetch_add(1, Ordering::Relaxed) % n;
        let now = now_ms();
        let ring = move || (0..backends.len()).filter_map(move |i| backends.get((start + i) % n));
        ring()
            .filter(move |b| b.is_up(now))
            .chain(ring().filter(move |b| !b.is_up(now)))
    }
}

fn resolve(backend: &Backend) -> Vec<SocketAddr> {
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

/// Builds the next snapshot from specs, reusing runtime state from `previous`.
pub fn build(
    generation: u64,
    workers: usize,
    listeners: &[ListenerSpec],
    routes: &[RouteSpec],
    firewall: Arc<FirewallState>,
    previous: Option<&Snapshot>,
) -> Snapshot {
    build_with_l7(
        generation, workers, listeners, routes, firewall, previous, None,
    )
}

fn l7_route(spec: &RouteSpec, listener: &ListenerSpec, l7: &mut L7Inputs<'_>) -> Option<L7Route> {
    let opts = spec.l7.as_ref()?;
    let Some(server) = l7.configs.get(&opts.certificate, listener.min_tls) else {
        tracing::error!(route = %spec.hostname, certificate = %opts.certificate, "certificate not loaded; the route resets connections");
        return None;
    };
    let backend_tls = match opts.backend_protocol {
        BackendProtocol::Tls => {
            if opts.backend_tls_insecure_skip_verify {
                tracing::warn!(route = %spec.hostname, "backend certificates are NOT verified (backend_tls_insecure_skip_verify)");
            }
            match crate::tls::backend_client_config(
                opts.backend_ca_pem.as_deref(),
                &l7.default_roots,
                opts.backend_tls_insecure_skip_verify,
            ) {
                Ok(config) => Some(BackendTls {
                    identity: {
                        use std::hash::{Hash, Hasher};
                        let mut h = std::collections::hash_map::DefaultHasher::new();
                        (
                            &opts.backend_ca_pem,
                            &opts.backend_server_name,
                            opts.backend_tls_insecure_skip_verify,
                        )
                            .hash(&mut h);
                        h.finish() | 1
                    },
                    config,
                    server_name: opts
                        .backend_server_name
                        .as_deref()
                        .and_then(|n| rustls_pki_types::ServerName::try_from(n.to_owned()).ok()),
                }),
                Err(e) => {
                    tracing::error!(route = %spec.hostname, error = %e, "backend TLS configuration refused; the route resets connections");
                    return None;
                }
            }
        }
        BackendProtocol::Http1 | BackendProtocol::H2c => None,
    };
    let policies = l7
        .policies
        .get(&spec.key())
        .cloned()
        .unwrap_or_default()
        .into_boxed_slice();
    Some(L7Route {
        server,
        backend_tls,
        policies,
    })
}

/// [`build`], with what L7 routes need (without it they reset connections).
pub(crate) fn build_with_l7(
    generation: u64,
    workers: usize,
    listeners: &[ListenerSpec],
    routes: &[RouteSpec],
    firewall: Arc<FirewallState>,
    previous: Option<&Snapshot>,
    mut l7: Option<&mut L7Inputs<'_>>,
) -> Snapshot {
    let mut out = HashMap::new();
    for spec in listeners {
        let prev_listener = previous.and_then(|p| p.listeners.get(&spec.name));
        let mut table = RouteTable::default();
        for route in routes.iter().filter(|r| r.listener == spec.name) {
            let prev_route = prev_listener.and_then(|l| l.routes.get(&route.hostname));
            let runtime = match prev_route {
                Some(p) if p.spec.backends == route.backends => p.runtime.clone(),
                Some(p) => Arc::new(RouteRuntime {
                    counters: carry_counters(&p.runtime.counters, workers),
                    connect_latency: LatencyCounters::new(workers),
                    next: AtomicUsize::new(0),
                    backends: health(&route.backends),
                }),
                None => Arc::new(RouteRuntime {
                    counters: RouteCounters::new(workers),
                    connect_latency: LatencyCounters::new(workers),
                    next: AtomicUsize::new(0),
                    backends: health(&route.backends),
                }),
            };
            let l7_entry = l7.as_deref_mut().and_then(|i| l7_route(route, spec, i));
            let entry = RouteEntry {
                l7: l7_entry,
                connect_timeout: route.connect_timeout.unwrap_or(spec.connect_timeout),
                idle_timeout: route.idle_timeout.unwrap_or(spec.idle_timeout),
                spec: route.clone(),
                runtime,
            };
            table.insert(&route.hostname, Arc::new(entry));
        }
        let default_route = spec
            .default_route
            .as_ref()
            .and_then(|h: &HostPattern| table.get(h).cloned());
        let counters = prev_listener
            .map(|l| l.counters.clone())
            .unwrap_or_else(|| Arc::new(ListenerCounters::new(workers)));
        out.insert(
            spec.name.clone(),
            Arc::new(ListenerEntry {
                spec: spec.clone(),
                routes: table,
                default_route,
                counters,
            }),
        );
    }
    Snapshot {
        generation,
        listeners: out,
        firewall,
    }
}

fn health(backends: &[Backend]) -> Box<[BackendHealth]> {
    backends
        .iter()
        .map(|b| BackendHealth {
            backend: b.clone(),
            addrs: resolve(b),
            down_until_ms: AtomicU64::new(0),
        })
        .collect()
}

/// A route whose backends changed keeps its totals (not its health).
fn carry_counters(prev: &RouteCounters, workers: usize) -> RouteCounters {
    use crate::stats::route;
    let c = RouteCounters::new(workers);
    for i in [
        route::CONNECTIONS,
        route::BYTES_UP,
        route::BYTES_DOWN,
        route::CONNECT_FAILURES,
    ]
    .into_iter()
    .chain(route::L7_TOTALS)
    {
        c.add(0, i, prev.sum(i));
    }
    // Active connections keep decrementing the old counters they hold.
    c
}
