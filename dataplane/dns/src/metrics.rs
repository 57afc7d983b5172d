//! Prometheus exposition of MCNS's per-worker counters, summed at scrape time.

use std::sync::Arc;

use mc_kit::metrics::{Labels, encode_family as family};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::published::Published;
use crate::stats::{Global, LatencyCounters, QTYPES, RCODES, global, latency, upstream as ustat};

#[derive(Debug)]
pub struct DnsCollector(pub Arc<Published>);

fn histogram(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    c: &LatencyCounters,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    let mut cumulative = 0;
    let mut buckets = Vec::with_capacity(latency::BOUNDS_US.len() + 1);
    for (i, bound) in latency::BOUNDS_US.iter().enumerate() {
        cumulative += c.bucket(i);
        buckets.push((*bound as f64 / 1e6, cumulative));
    }
    cumulative += c.bucket(latency::BOUNDS_US.len());
    buckets.push((f64::MAX, cumulative));
    let sum = c.sum_us() as f64 / 1e6;
    m.encode_family(&Vec::<(&str, &str)>::new())?
        .encode_histogram::<NoLabelSet>(sum, cumulative, &buckets, None)?;
    Ok(())
}

impl Collector for DnsCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let p = &self.0;
        let g = &p.stats.global;
        let mut queries: Vec<(Labels<'_>, u64)> = QTYPES
            .iter()
            .map(|(n, t)| (vec![("type", *n)], g.sum(Global::qtype(*t))))
            .collect();
        queries.push((vec![("type", "OTHER")], g.sum(global::QTYPE_OTHER)));
        family(
            &mut enc,
            "dns_queries",
            "Queries by type",
            MetricType::Counter,
            &queries,
        )?;
        let mut rcodes: Vec<(Labels<'_>, u64)> = RCODES
            .iter()
            .map(|(n, r)| (vec![("rcode", *n)], g.sum(Global::rcode(*r))))
            .collect();
        rcodes.push((vec![("rcode", "OTHER")], g.sum(global::RCODE_OTHER)));
        family(
            &mut enc,
            "dns_responses",
            "Responses by rcode",
            MetricType::Counter,
            &rcodes,
        )?;
        family(
            &mut enc,
            "dns_transport_queries",
            "Queries by transport",
            MetricType::Counter,
            &[
                (vec![("transport", "udp")], g.sum(global::UDP_QUERIES)),
                (vec![("transport", "tcp")], g.sum(global::TCP_QUERIES)),
            ],
        )?;
        for (name, help, idx) in [
            (
                "dns_cache_hits",
                "Forwarding cache hits",
                global::CACHE_HITS,
            ),
            (
                "dns_cache_misses",
                "Forwarding cache misses",
                global::CACHE_MISSES,
            ),
            (
                "dns_forwarded",
                "Queries sent to upstreams",
                global::FORWARDED,
            ),
            (
                "dns_forward_overload",
                "Forwarded queries refused for want of slots (SERVFAIL)",
                global::FORWARD_OVERLOAD,
            ),
            (
                "dns_rrl_dropped",
                "Responses dropped by response rate limiting",
                global::RRL_DROPPED,
            ),
            (
                "dns_rrl_slipped",
                "Rate-limited responses sent truncated (slip)",
                global::RRL_SLIPPED,
            ),
            (
                "dns_malformed",
                "Messages that could not be parsed",
                global::MALFORMED,
            ),
            (
                "dns_truncated",
                "Answers sent with TC set",
                global::TRUNCATED,
            ),
            (
                "dns_tcp_refused",
                "TCP connections closed at the connection limit",
                global::TCP_REFUSED,
            ),
            ("dns_zone_transfers", "Zone transfers sent", global::XFR_OUT),
            (
                "dns_updates_applied",
                "RFC 2136 UPDATEs answered NOERROR",
                global::UPDATES_APPLIED,
            ),
            (
                "dns_updates_refused",
                "RFC 2136 UPDATEs answered with an error (TSIG, permission, prerequisite, format)",
                global::UPDATES_REFUSED,
            ),
        ] {
            family(
                &mut enc,
                name,
                help,
                MetricType::Counter,
                &[(vec![], g.sum(idx))],
            )?;
        }
        family(
            &mut enc,
            "dns_cache_entries",
            "Forwarding cache entries (all workers)",
            MetricType::Gauge,
            &[(vec![], g.sum(global::CACHE_ENTRIES))],
        )?;
        family(
            &mut enc,
            "dns_tcp_connections_active",
            "Open DNS TCP connections",
            MetricType::Gauge,
            &[(vec![], g.sum(global::TCP_ACTIVE))],
        )?;
        let names: Vec<String> = p
            .settings
            .upstreams
            .iter()
            .map(ToString::to_string)
            .collect();
        for (metric, help, idx) in [
            (
                "dns_upstream_queries",
                "Queries sent, by upstream",
                ustat::QUERIES,
            ),
            (
                "dns_upstream_failures",
                "Failed or refused upstream attempts, by upstream",
                ustat::FAILURES,
            ),
            (
                "dns_upstream_timeouts",
                "Upstream attempts that timed out, by upstream",
                ustat::TIMEOUTS,
            ),
        ] {
            let rows: Vec<(Labels<'_>, u64)> = names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    (
                        vec![("upstream", n.as_str())],
                        p.stats.upstreams.sum(i, idx),
                    )
                })
                .collect();
            family(&mut enc, metric, help, MetricType::Counter, &rows)?;
        }
        histogram(
            &mut enc,
            "dns_answer_seconds",
            "Time from receiving a query to sending its answer",
            &p.stats.answer_latency,
        )?;
        histogram(
            &mut enc,
            "dns_upstream_seconds",
            "Upstream round trip of successful forwarded queries",
            &p.stats.upstream_latency,
        )?;
        let snap = p.snapshot.load();
        family(
            &mut enc,
            "dns_zones",
            "Zones served",
            MetricType::Gauge,
            &[(vec![], snap.zones.len() as u64)],
        )?;
        family(
            &mut enc,
            "dns_snapshot_generation",
            "Zone snapshot generation",
            MetricType::Gauge,
            &[(vec![], snap.generation)],
        )?;
        Ok(())
    }
}
