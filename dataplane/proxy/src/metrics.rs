//! Prometheus exposition of the proxy's per-worker counters, summed at scrape time.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::published::Published;
use crate::snapshot::RouteEntry;
use crate::stats::{Route, global, latency, listener as lstat, route as rstat};

/// One sample per route: `{listener, route}` and the summed counter `index`.
fn route_rows<'a>(
    routes: impl Iterator<Item = &'a (&'a str, &'a str, Arc<RouteEntry>)>,
    index: Route,
) -> Vec<(Labels<'a>, u64)> {
    routes
        .map(|(l, h, r)| {
            (
                vec![("listener", *l), ("route", *h)],
                r.runtime.counters.sum(index),
            )
        })
        .collect()
}

/// Per backend of every route and path rule (`pool`: the rule's prefix,
/// empty for the route's own backends): up, ejections, outstanding.
fn backend_families(
    enc: &mut DescriptorEncoder<'_>,
    routes: &[(&str, &str, Arc<RouteEntry>)],
) -> Result<(), std::fmt::Error> {
    let now = crate::health::now_ms();
    // (listener, route, pool, backend, state)
    let mut rows = Vec::new();
    for (l, h, r) in routes {
        let own = r.runtime.pool.backends.iter().map(|b| ("", b));
        let rules =
            r.l7.iter()
                .flat_map(|l7| l7.paths.iter())
                .flat_map(|(p, t)| t.pool.backends.iter().map(move |b| (p, b)));
        for (pool, b) in own.chain(rules) {
            rows.push((*l, *h, pool, b.backend.to_string(), b));
        }
    }
    let (mut up, mut ejections, mut outstanding) = (Vec::new(), Vec::new(), Vec::new());
    for (l, h, p, name, b) in &rows {
        let labels: Labels<'_> = vec![
            ("listener", *l),
            ("route", *h),
            ("pool", *p),
            ("backend", name.as_str()),
        ];
        up.push((labels.clone(), u64::from(b.is_up(now))));
        ejections.push((labels.clone(), b.state.ejections()));
        outstanding.push((labels, u64::from(b.state.outstanding())));
    }
    family(
        enc,
        "proxy_backend_up",
        "1 when the backend takes traffic (its check passes and it is not ejected), by route, pool (a path rule's prefix, empty for the route's own) and backend",
        MetricType::Gauge,
        &up,
    )?;
    family(
        enc,
        "proxy_backend_ejections",
        "Times the backend was ejected after a failed connection or exchange",
        MetricType::Counter,
        &ejections,
    )?;
    family(
        enc,
        "proxy_backend_outstanding",
        "Connections (L4) or requests (L7) in flight to the backend",
        MetricType::Gauge,
        &outstanding,
    )
}

#[derive(Debug)]
pub struct ProxyCollector(pub Arc<Published>);

use mc_kit::metrics::{Labels, encode_family as family};

impl Collector for ProxyCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let snap = self.0.snapshot.load_full();
        let mut names: Vec<_> = snap.listeners.keys().collect();
        names.sort();
        let mut conns = Vec::new();
        let mut active = Vec::new();
        let mut unrouted = Vec::new();
        for name in &names {
            let Some(l) = snap.listeners.get(*name) else {
                continue;
            };
            let labels = vec![("listener", name.as_str())];
            conns.push((labels.clone(), l.counters.sum(lstat::CONNECTIONS)));
            active.push((labels.clone(), l.counters.sum(lstat::ACTIVE)));
            unrouted.push((labels, l.counters.sum(lstat::UNROUTED)));
        }
        family(
            &mut enc,
            "proxy_listener_connections",
            "Connections accepted, by listener",
            MetricType::Counter,
            &conns,
        )?;
        family(
            &mut enc,
            "proxy_listener_connections_active",
            "Open connections, by listener",
            MetricType::Gauge,
            &active,
        )?;
        family(
            &mut enc,
            "proxy_unrouted",
            "Connections reset for want of a route, by listener",
            MetricType::Counter,
            &unrouted,
        )?;

        let mut routes = Vec::new();
        for name in &names {
            let Some(l) = snap.listeners.get(*name) else {
                continue;
            };
            let mut entries: Vec<_> = l.routes.values().collect();
            entries.sort_by(|a, b| a.spec.hostname.cmp(&b.spec.hostname));
            for r in entries {
                routes.push((name.as_str(), r.spec.hostname.as_str(), r.clone()));
            }
        }
        let rows = |index: Route| route_rows(routes.iter(), index);
        family(
            &mut enc,
            "proxy_route_connections",
            "Connections routed, by route",
            MetricType::Counter,
            &rows(rstat::CONNECTIONS),
        )?;
        family(
            &mut enc,
            "proxy_route_connections_active",
            "Open routed connections, by route",
            MetricType::Gauge,
            &rows(rstat::ACTIVE),
        )?;
        family(
            &mut enc,
            "proxy_backend_connect_failures",
            "Failed backend connects, by route",
            MetricType::Counter,
            &rows(rstat::CONNECT_FAILURES),
        )?;
        let mut bytes = Vec::new();
        for (l, h, r) in &routes {
            bytes.push((
                vec![
                    ("listener", *l),
                    ("route", *h),
                    ("direction", "client_to_backend"),
                ],
                r.runtime.counters.sum(rstat::BYTES_UP),
            ));
            bytes.push((
                vec![
                    ("listener", *l),
                    ("route", *h),
                    ("direction", "backend_to_client"),
                ],
                r.runtime.counters.sum(rstat::BYTES_DOWN),
            ));
        }
        let l7_routes: Vec<_> = routes.iter().filter(|(_, _, r)| r.l7.is_some()).collect();
        let mut responses = Vec::new();
        for (l, h, r) in &l7_routes {
            for (class, i) in rstat::RESPONSES {
                responses.push((
                    vec![("listener", *l), ("route", *h), ("code", class)],
                    r.runtime.counters.sum(i),
                ));
            }
        }
        family(
            &mut enc,
            "proxy_http_responses",
            "L7 responses, by route and status class; 403_policy, 502, 503 and 504 are the proxy's own",
            MetricType::Counter,
            &responses,
        )?;
        let l7_rows = |index: Route| route_rows(l7_routes.iter().copied(), index);
        family(
            &mut enc,
            "proxy_http_requests",
            "L7 requests received, by route",
            MetricType::Counter,
            &l7_rows(rstat::REQUESTS),
        )?;
        family(
            &mut enc,
            "proxy_tls_handshake_failures",
            "L7 TLS handshakes that failed or timed out, by route",
            MetricType::Counter,
            &l7_rows(rstat::TLS_HANDSHAKE_FAILURES),
        )?;
        family(
            &mut enc,
            "proxy_route_bytes",
            "Bytes relayed, by route and direction",
            MetricType::Counter,
            &bytes,
        )?;

        {
            let mut m = enc.encode_descriptor(
                "proxy_backend_connect_seconds",
                "Backend connect latency, by route",
                None,
                MetricType::Histogram,
            )?;
            for (l, h, r) in &routes {
                let c = &r.runtime.connect_latency;
                let mut cumulative = 0;
                let mut buckets = Vec::with_capacity(latency::BOUNDS_US.len() + 1);
                for (i, bound) in latency::BOUNDS_US.iter().enumerate() {
                    cumulative += c.bucket(i);
                    buckets.push((*bound as f64 / 1e6, cumulative));
                }
                cumulative += c.bucket(latency::BOUNDS_US.len());
                buckets.push((f64::MAX, cumulative));
                let labels: Labels<'_> = vec![("listener", *l), ("route", *h)];
                let sum = c.sum_us() as f64 / 1e6;
                m.encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(sum, cumulative, &buckets, None)?;
            }
        }

        backend_families(&mut enc, &routes)?;

        let g = &self.0.globals;
        let blocks: Vec<_> = global::BLOCK_REASONS
            .iter()
            .map(|(n, i)| (vec![("reason", *n)], g.sum(*i)))
            .collect();
        family(
            &mut enc,
            "proxy_blocks",
            "Connections reset by the firewall, by reason",
            MetricType::Counter,
            &blocks,
        )?;
        family(
            &mut enc,
            "proxy_client_hello_failures",
            "ClientHellos malformed, too large or too slow",
            MetricType::Counter,
            &[(vec![], g.sum(global::CLIENT_HELLO_FAILURES))],
        )?;
        family(
            &mut enc,
            "proxy_proxy_header_failures",
            "Bad or missing PROXY headers from trusted peers",
            MetricType::Counter,
            &[(vec![], g.sum(global::PROXY_HEADER_FAILURES))],
        )?;
        Ok(())
    }
}
