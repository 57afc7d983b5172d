//! The master's Prometheus metrics on the control plane's `/metrics` (the
//! process prefixes `mc_`), read at scrape time:
//!
//! - `mcp_nodes{health}` (gauge): registered nodes by health (`healthy`,
//!   `suspect`, `unhealthy`, `unreachable`).
//! - `mcp_node_healthy{node}` (gauge, 0 or 1) and
//!   `mcp_node_heartbeat_age_seconds{node}` (gauge).
//! - `mcp_probes_total{result}` (`serving`, `unhealthy`, `unreachable`).
//! - `mcp_scheduled_snapshots_total{result}` (`ok`, `failed`).
//!
//! Invariant: label values are bounded: node names come from the
//! allowlist (`mcp.nodes`), the rest are fixed sets.

use std::sync::Weak;
use std::sync::atomic::Ordering::Relaxed;

use mc_kit::metrics::{Labels, encode_family as family};
use mc_proto::deploy::v1 as pb;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use crate::Master;
use crate::registry::{self, now_ms};

#[derive(Debug)]
pub(crate) struct MasterCollector(pub(crate) Weak<Master>);

const HEALTHS: [(pb::NodeHealth, &str); 4] = [
    (pb::NodeHealth::Healthy, "healthy"),
    (pb::NodeHealth::Suspect, "suspect"),
    (pb::NodeHealth::Unhealthy, "unhealthy"),
    (pb::NodeHealth::Unreachable, "unreachable"),
];

impl Collector for MasterCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(m) = self.0.upgrade() else {
            return Ok(());
        };
        let now = now_ms();
        let nodes = crate::store::nodes(&m.store).unwrap_or_default();
        let states: Vec<(String, pb::NodeHealth, u64)> = nodes
            .iter()
            .map(|n| {
                let age = now.saturating_sub(n.last_heartbeat_ms).max(0) / 1000;
                (
                    n.name.clone(),
                    registry::health(&m, n, now),
                    age.unsigned_abs(),
                )
            })
            .collect();
        let by: Vec<(Labels<'_>, u64)> = HEALTHS
            .iter()
            .map(|(h, name)| {
                let count = states.iter().filter(|(_, s, _)| s == h).count();
                (vec![("health", *name)], count as u64)
            })
            .collect();
        family(
            &mut enc,
            "mcp_nodes",
            "Registered nodes, by health",
            MetricType::Gauge,
            &by,
        )?;
        let healthy: Vec<(Labels<'_>, u64)> = states
            .iter()
            .map(|(n, h, _)| {
                (
                    vec![("node", n.as_str())],
                    u64::from(*h == pb::NodeHealth::Healthy),
                )
            })
            .collect();
        family(
            &mut enc,
            "mcp_node_healthy",
            "1 while the node is healthy (heartbeats, else a serving probe)",
            MetricType::Gauge,
            &healthy,
        )?;
        let ages: Vec<(Labels<'_>, u64)> = states
            .iter()
            .map(|(n, _, age)| (vec![("node", n.as_str())], *age))
            .collect();
        family(
            &mut enc,
            "mcp_node_heartbeat_age_seconds",
            "Seconds since the node's last heartbeat",
            MetricType::Gauge,
            &ages,
        )?;
        let c = &m.counters;
        let probes: Vec<(Labels<'_>, u64)> = ["serving", "unhealthy", "unreachable"]
            .iter()
            .zip(&c.probes)
            .map(|(r, n)| (vec![("result", *r)], n.load(Relaxed)))
            .collect();
        family(
            &mut enc,
            "mcp_probes",
            "Probes of nodes whose heartbeats stopped, by result",
            MetricType::Counter,
            &probes,
        )?;
        let snaps: Vec<(Labels<'_>, u64)> = ["ok", "failed"]
            .iter()
            .zip(&c.snapshots)
            .map(|(r, n)| (vec![("result", *r)], n.load(Relaxed)))
            .collect();
        family(
            &mut enc,
            "mcp_scheduled_snapshots",
            "Scheduled snapshots, by result",
            MetricType::Counter,
            &snaps,
        )
    }
}
