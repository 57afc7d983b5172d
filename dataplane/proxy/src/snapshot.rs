//! The immutable routing snapshot the workers read.
//!
//! Built on the admin thread from validated specs, published with one
//! `ArcSwap::store`, loaded by a worker once per accepted connection. A
//! connection keeps the `Arc<Snapshot>` it started with; the next connection
//! sees the new one. Counters, round-robin positions and backend health are
//! carried from the previous snapshot for entries that still exist, so a
//! change never resets them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use crate::balance::{BackendHealth, BackendSet};
pub(crate) use crate::health::now_ms;

use crate::firewall::FirewallState;
use crate::gate::RequestGate;
use crate::model::{BackendProtocol, HostPattern, ListenerSpec, PathRule, PolicyRule, RouteSpec};
use crate::stats::{LatencyCounters, ListenerCounters, RouteCounters};
use crate::table::{PathTable, RouteTable};

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
    /// The route's backend protocol (its own backends).
    pub(crate) protocol: BackendProtocol,
    /// Path-prefix rules, longest prefix first.
    pub(crate) paths: PathTable<PathTarget>,
    /// Request rate per client and requests in flight.
    pub(crate) gate: RequestGate,
}

/// Where one path rule sends a request.
#[derive(Debug)]
pub(crate) struct PathTarget {
    pub(crate) strip: bool,
    pub(crate) protocol: BackendProtocol,
    pub(crate) pool: Arc<BackendSet>,
}

/// The backends one request may go to and how to speak to them.
pub(crate) struct Upstream<'a> {
    pub(crate) pool: &'a BackendSet,
    pub(crate) protocol: BackendProtocol,
    /// Present when `protocol` is TLS.
    pub(crate) tls: Option<&'a BackendTls>,
    /// The matched prefix, when the rule strips it.
    pub(crate) strip: Option<&'a str>,
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
    /// The route's own backends.
    pub(crate) pool: BackendSet,
}

impl RouteEntry {
    /// The route's own backends in the order to try them for a client
    /// with hash `key`.
    pub(crate) fn candidates(&self, key: u64) -> crate::balance::Order<'_> {
        self.runtime.pool.order(key)
    }

    /// L7: where a request for `path` goes (`None` when the route has no
    /// usable L7 side).
    pub(crate) fn upstream(&self, path: &str) -> Option<Upstream<'_>> {
        let l7 = self.l7.as_ref()?;
        let tls = |p: BackendProtocol| {
            if p == BackendProtocol::Tls {
                l7.backend_tls.as_ref()
            } else {
                None
            }
        };
        Some(match l7.paths.lookup(path) {
            Some((prefix, t)) => Upstream {
                pool: &t.pool,
                protocol: t.protocol,
                tls: tls(t.protocol),
                strip: t.strip.then_some(prefix),
            },
            None => Upstream {
                pool: &self.runtime.pool,
                protocol: l7.protocol,
                tls: tls(l7.protocol),
                strip: None,
            },
        })
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

fn l7_route(
    spec: &RouteSpec,
    listener: &ListenerSpec,
    l7: &mut L7Inputs<'_>,
    previous: Option<&RouteEntry>,
) -> Option<L7Route> {
    let opts = spec.l7.as_ref()?;
    let Some(server) = l7.configs.get(
        &opts.certificate,
        listener.min_tls,
        opts.client_auth.as_ref(),
    ) else {
        tracing::error!(route = %spec.hostname, certificate = %opts.certificate, "certificate not loaded; the route resets connections");
        return None;
    };
    let any_tls = std::iter::once(opts.backend_protocol)
        .chain(opts.paths.iter().filter_map(|p| p.backend_protocol))
        .any(|p| p == BackendProtocol::Tls);
    let backend_tls = if any_tls {
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
    } else {
        None
    };
    let policies = l7
        .policies
        .get(&spec.key())
        .cloned()
        .unwrap_or_default()
        .into_boxed_slice();
    let old = previous.and_then(|p| p.l7.as_ref());
    let old_paths = old.map(|l| &l.paths);
    let paths = opts
        .paths
        .iter()
        .map(|rule| path_target(rule, spec, opts.backend_protocol, old_paths))
        .collect();
    Some(L7Route {
        server,
        backend_tls,
        policies,
        protocol: opts.backend_protocol,
        paths,
        gate: RequestGate::build(&opts.limits, old.map(|l| &l.gate)),
    })
}

/// A path rule's entry; its backends' state is carried over from the
/// previous snapshot's rule with the same prefix and backends.
fn path_target(
    rule: &PathRule,
    route: &RouteSpec,
    route_protocol: BackendProtocol,
    previous: Option<&PathTable<PathTarget>>,
) -> (Box<str>, PathTarget) {
    let old = previous
        .and_then(|t| t.iter().find(|(p, _)| *p == rule.prefix))
        .map(|(_, t)| &t.pool);
    let carried = old
        .filter(|pool| pool.serves(&rule.backends, |_| 1, &route.balance))
        .cloned();
    let target = PathTarget {
        strip: rule.strip_prefix,
        protocol: rule.backend_protocol.unwrap_or(route_protocol),
        pool: carried.unwrap_or_else(|| {
            Arc::new(BackendSet::new(
                &rule.backends,
                |_| 1,
                &route.balance,
                old.map(|p| &**p),
            ))
        }),
    };
    (rule.prefix.as_str().into(), target)
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
            let weights = |i: usize| route.balance.weight(i);
            let runtime = match prev_route {
                Some(p)
                    if p.spec.backends == route.backends
                        && p.runtime
                            .pool
                            .serves(&route.backends, weights, &route.balance) =>
                {
                    p.runtime.clone()
                }
                Some(p) => Arc::new(RouteRuntime {
                    counters: carry_counters(&p.runtime.counters, workers),
                    connect_latency: LatencyCounters::new(workers),
                    pool: BackendSet::new(
                        &route.backends,
                        weights,
                        &route.balance,
                        Some(&p.runtime.pool),
                    ),
                }),
                None => Arc::new(RouteRuntime {
                    counters: RouteCounters::new(workers),
                    connect_latency: LatencyCounters::new(workers),
                    pool: BackendSet::new(&route.backends, weights, &route.balance, None),
                }),
            };
            let l7_entry = l7
                .as_deref_mut()
                .and_then(|i| l7_route(route, spec, i, prev_route.map(|r| &**r)));
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

/// A route whose backends changed keeps its totals (its backends' health
/// goes with them).
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
