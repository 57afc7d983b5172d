//! The node registry: `RegisterNode` and `Heartbeat` from `agent-<node>`
//! system accounts, and each node's health.
//!
//! Invariants: the node name comes from the verified token (never the
//! request) and must be on the allowlist; a node is written only by its own
//! agent; health is derived from the stored heartbeat time and the last
//! probe (`probe`) when read, so it survives a restart of the master
//! unchanged.

use mc_kit::api::{ApiError, Invalid};
use mc_proto::deploy::v1 as pb;
use mc_service::caller::Caller;

use crate::Master;
use crate::store::{self, Load, NodeRow};

/// The account prefix of node agents.
pub(crate) const AGENT_PREFIX: &str = "agent-";
const MAX_FIELD: usize = 256;

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The calling node's name, checked against the allowlist.
fn caller_node(m: &Master, c: &Caller) -> Result<String, ApiError> {
    let p = c.require()?;
    let node = p
        .name_suffix(AGENT_PREFIX)
        .ok_or_else(|| ApiError::Forbidden("only an agent-<node> account may do this".into()))?;
    if !m.config.nodes.iter().any(|n| n == node) {
        return Err(ApiError::Forbidden(format!(
            "node {node} is not on the allowlist (mcp.nodes)"
        )));
    }
    Ok(node.to_owned())
}

fn short(field: &str, s: &str) -> Result<(), ApiError> {
    if s.len() > MAX_FIELD || s.chars().any(char::is_control) {
        return Err(Invalid::new(field, "at most 256 bytes, no control characters").into());
    }
    Ok(())
}

/// `host:port` with a port.
fn check_address(a: &str) -> Result<(), ApiError> {
    short("address", a)?;
    let ok = a
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0));
    if !ok {
        return Err(Invalid::new("address", "must be host:port").into());
    }
    Ok(())
}

pub(crate) async fn register(
    m: &Master,
    c: &Caller,
    r: pb::RegisterNodeRequest,
) -> Result<pb::RegisterNodeResponse, ApiError> {
    let node = caller_node(m, c)?;
    check_address(&r.address)?;
    short("arch", &r.arch)?;
    short("agent_version", &r.agent_version)?;
    let role =
        pb::NodeRole::try_from(r.role).map_err(|_| Invalid::new("role", "unknown node role"))?;
    let now = now_ms();
    let _guard = m.registry.lock().await;
    let old = store::node(&m.store, &node).map_err(ApiError::internal)?;
    let min = i64::try_from(m.config.register_interval.get().as_millis()).unwrap_or(i64::MAX);
    let same = |o: &NodeRow| {
        o.address == r.address
            && o.arch == r.arch
            && o.agent_version == r.agent_version
            && (o.role == i32::from(role) || role == pb::NodeRole::Unspecified)
    };
    let recent = |o: &NodeRow| now.saturating_sub(o.registered_at.saturating_mul(1000)) < min;
    // Idempotent: the same registration again (an agent restarted) is
    // answered without a write; a changed one only once per interval.
    if let Some(o) = old.as_ref().filter(|o| recent(o) && same(o)) {
        return Ok(pb::RegisterNodeResponse {
            node: o.name.clone(),
            heartbeat_interval_seconds: interval_secs(m),
        });
    }
    if let Some(o) = &old
        && recent(o)
    {
        return Err(ApiError::RateLimited(format!(
            "node {node} registered less than {} ago",
            m.config.register_interval
        )));
    }
    let row = NodeRow {
        name: node.clone(),
        role: if role == pb::NodeRole::Unspecified {
            pb::NodeRole::Worker.into()
        } else {
            role.into()
        },
        address: r.address,
        arch: r.arch,
        agent_version: r.agent_version,
        registered_at: now / 1000,
        last_heartbeat_ms: now,
        load: old.map(|o| o.load).unwrap_or_default(),
        probe: None,
    };
    store::put_node(&m.store, &row).map_err(ApiError::internal)?;
    tracing::info!(node, address = %row.address, "node registered");
    Ok(pb::RegisterNodeResponse {
        node,
        heartbeat_interval_seconds: interval_secs(m),
    })
}

fn interval_secs(m: &Master) -> u32 {
    u32::try_from(m.config.heartbeat_interval.get().as_secs().max(1)).unwrap_or(u32::MAX)
}

pub(crate) async fn heartbeat(
    m: &Master,
    c: &Caller,
    r: pb::HeartbeatRequest,
) -> Result<pb::HeartbeatResponse, ApiError> {
    let node = caller_node(m, c)?;
    let l = r.load.unwrap_or_default();
    if !l.cpu.is_finite() || l.cpu < 0.0 || l.cpu > 100_000.0 {
        return Err(Invalid::new("load.cpu", "must be a finite, non-negative number").into());
    }
    let now = now_ms();
    let _guard = m.registry.lock().await;
    let Some(mut row) = store::node(&m.store, &node).map_err(ApiError::internal)? else {
        return Err(ApiError::FailedPrecondition(format!(
            "node {node} is not registered: call RegisterNode first"
        )));
    };
    let min = i64::try_from(m.config.heartbeat_interval.get().as_millis() / 3).unwrap_or(0);
    if now.saturating_sub(row.last_heartbeat_ms) < min {
        return Err(ApiError::RateLimited(format!(
            "heartbeats from {node} come faster than a third of {}",
            m.config.heartbeat_interval
        )));
    }
    row.last_heartbeat_ms = now;
    row.load = Load {
        cpu: l.cpu,
        memory_used: l.memory_used_bytes,
        memory_total: l.memory_total_bytes,
        disk_free: l.disk_free_bytes,
        containers: l.containers,
    };
    store::put_node(&m.store, &row).map_err(ApiError::internal)?;
    Ok(pb::HeartbeatResponse {})
}

/// `unhealthy_after` heartbeat intervals, in milliseconds.
pub(crate) fn window_ms(m: &Master) -> i64 {
    let window = m
        .config
        .heartbeat_interval
        .get()
        .saturating_mul(m.config.unhealthy_after);
    i64::try_from(window.as_millis()).unwrap_or(i64::MAX)
}

/// Whether the heartbeats stopped: none for `unhealthy_after` intervals.
pub(crate) fn stale(m: &Master, row: &NodeRow, now_ms: i64) -> bool {
    now_ms.saturating_sub(row.last_heartbeat_ms) >= window_ms(m)
}

/// The probe that speaks for the node: one taken since its last heartbeat
/// and younger than the window (an old one says nothing about now).
fn current_probe<'a>(m: &Master, row: &'a NodeRow, now_ms: i64) -> Option<&'a store::Probe> {
    row.probe.as_ref().filter(|p| {
        p.at_ms > row.last_heartbeat_ms && now_ms.saturating_sub(p.at_ms) < window_ms(m)
    })
}

/// Healthy while the last heartbeat is younger than `unhealthy_after`
/// intervals; after that, what the probe found: `SUSPECT` until one ran,
/// then healthy (the agent answered SERVING), `UNHEALTHY` (it answered
/// otherwise) or `UNREACHABLE` (no answer).
pub(crate) fn health(m: &Master, row: &NodeRow, now_ms: i64) -> pb::NodeHealth {
    if !stale(m, row, now_ms) {
        return pb::NodeHealth::Healthy;
    }
    match current_probe(m, row, now_ms) {
        None => pb::NodeHealth::Suspect,
        Some(p) if p.ok => pb::NodeHealth::Healthy,
        Some(p) if p.reached => pb::NodeHealth::Unhealthy,
        Some(_) => pb::NodeHealth::Unreachable,
    }
}

/// Why a node that is not healthy cannot take a call, for error messages:
/// `node N is unhealthy (unreachable: …; no heartbeat for S s)`.
pub(crate) fn why_not(m: &Master, row: &NodeRow, now_ms: i64) -> String {
    let h = health(m, row, now_ms);
    let state = h
        .as_str_name()
        .trim_start_matches("NODE_HEALTH_")
        .to_lowercase();
    let probe = current_probe(m, row, now_ms)
        .map(|p| format!(": {}", p.message))
        .unwrap_or_default();
    format!(
        "node {} is unhealthy ({state}{probe}; no heartbeat for {} s)",
        row.name,
        now_ms.saturating_sub(row.last_heartbeat_ms) / 1000
    )
}

pub(crate) fn to_pb(m: &Master, row: &NodeRow, now_ms: i64) -> pb::NodeInfo {
    pb::NodeInfo {
        name: row.name.clone(),
        role: row.role,
        address: row.address.clone(),
        arch: row.arch.clone(),
        agent_version: row.agent_version.clone(),
        health: health(m, row, now_ms).into(),
        last_heartbeat_unix: row.last_heartbeat_ms / 1000,
        load: Some(pb::NodeLoad {
            cpu: row.load.cpu,
            memory_used_bytes: row.load.memory_used,
            memory_total_bytes: row.load.memory_total,
            disk_free_bytes: row.load.disk_free,
            containers: row.load.containers,
        }),
        probe: row
            .probe
            .as_ref()
            .filter(|p| p.at_ms > row.last_heartbeat_ms)
            .map(|p| pb::NodeProbe {
                at_unix: p.at_ms / 1000,
                ok: p.ok,
                message: p.message.clone(),
            }),
    }
}

pub(crate) fn list(m: &Master) -> Result<pb::ListNodesResponse, ApiError> {
    let now = now_ms();
    let nodes = store::nodes(&m.store).map_err(ApiError::internal)?;
    Ok(pb::ListNodesResponse {
        nodes: nodes.iter().map(|n| to_pb(m, n, now)).collect(),
    })
}

/// Placement: the pinned node (registered and healthy), else the healthy
/// worker with the fewest containers, ties by name. A node's count is the
/// larger of its last heartbeat's and what the master placed there since
/// (two deploys between heartbeats do not both see an empty node).
pub(crate) fn place(m: &Master, pinned: &str) -> Result<NodeRow, ApiError> {
    let now = now_ms();
    let mut nodes = store::nodes(&m.store).map_err(ApiError::internal)?;
    let services = store::services(&m.store).map_err(ApiError::internal)?;
    for n in &mut nodes {
        let placed: u32 = services
            .iter()
            .filter(|s| s.node == n.name)
            .map(|s| s.def.containers())
            .sum();
        n.load.containers = n.load.containers.max(placed);
    }
    if !pinned.is_empty() {
        let Some(n) = nodes.into_iter().find(|n| n.name == pinned) else {
            return Err(
                Invalid::new("node", format!("no registered node is named {pinned}")).into(),
            );
        };
        if health(m, &n, now) != pb::NodeHealth::Healthy {
            return Err(ApiError::FailedPrecondition(why_not(m, &n, now)));
        }
        return Ok(n);
    }
    nodes
        .into_iter()
        .filter(|n| {
            n.role != i32::from(pb::NodeRole::Edge) && health(m, n, now) == pb::NodeHealth::Healthy
        })
        .min_by(|a, b| (a.load.containers, &a.name).cmp(&(b.load.containers, &b.name)))
        .ok_or_else(|| ApiError::FailedPrecondition("no healthy node can take the service".into()))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use mc_kit::store::Store;
    use mc_service::auth::Principal;

    use super::*;
    use crate::config::McpConfig;
    use crate::store::ServiceRow;

    pub(crate) fn master(dir: &std::path::Path) -> Master {
        Master {
            store: Arc::new(Store::open(&dir.join("mcp/mcp.redb"), &store::SCHEMA).expect("open")),
            config: McpConfig {
                nodes: vec!["a".into(), "b".into(), "c".into()],
                register_interval: mc_kit::config::Duration::from_secs(60),
                ..McpConfig::default()
            },
            snapshots: dir.join("mcp/snapshots"),
            registry: tokio::sync::Mutex::new(()),
            ops: tokio::sync::Mutex::new(()),
            counters: crate::probe::Counters::default(),
            ui_verifier: None,
        }
    }

    fn agent(name: &str) -> Caller {
        Caller {
            principal: Some(Principal {
                account_id: name.to_owned(),
                username: name.to_owned(),
                account_type: "system".to_owned(),
                roles: Vec::new(),
                tags: Vec::new(),
                jti: "j".to_owned(),
                expires_at: i64::MAX,
                scopes: Vec::new(),
            }),
            source: None,
        }
    }

    fn reg(address: &str) -> pb::RegisterNodeRequest {
        pb::RegisterNodeRequest {
            role: pb::NodeRole::Worker.into(),
            address: address.to_owned(),
            arch: "x86_64".to_owned(),
            agent_version: "1".to_owned(),
        }
    }

    fn set_containers(m: &Master, node: &str, n: u32, heartbeat_ms: i64) {
        let mut row = store::node(&m.store, node).expect("read").expect("row");
        row.load.containers = n;
        row.last_heartbeat_ms = heartbeat_ms;
        store::put_node(&m.store, &row).expect("write");
    }

    #[tokio::test]
    async fn the_node_name_comes_from_the_token_and_the_allowlist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = master(dir.path());
        let r = register(&m, &agent("agent-a"), reg("127.0.0.1:9444")).await;
        assert_eq!(r.expect("registered").node, "a");
        let r = register(&m, &agent("agent-zz"), reg("127.0.0.1:9444")).await;
        assert!(
            matches!(r, Err(ApiError::Forbidden(ref m)) if m.contains("allowlist")),
            "{r:?}"
        );
        assert!(store::node(&m.store, "zz").expect("read").is_none());
        let r = register(&m, &agent("agent-b"), reg("no-port")).await;
        assert!(
            matches!(r, Err(ApiError::Invalid(ref i)) if i.field == "address"),
            "{r:?}"
        );
        // The same registration again is answered; a changed one is limited.
        assert!(
            register(&m, &agent("agent-a"), reg("127.0.0.1:9444"))
                .await
                .is_ok()
        );
        let r = register(&m, &agent("agent-a"), reg("127.0.0.1:9555")).await;
        assert!(matches!(r, Err(ApiError::RateLimited(_))), "{r:?}");
        // Heartbeats: only a registered node, not faster than a third of the interval.
        let hb = pb::HeartbeatRequest::default();
        let r = heartbeat(&m, &agent("agent-b"), hb).await;
        assert!(matches!(r, Err(ApiError::FailedPrecondition(_))), "{r:?}");
        let r = heartbeat(&m, &agent("agent-a"), hb).await;
        assert!(matches!(r, Err(ApiError::RateLimited(_))), "{r:?}");
        set_containers(&m, "a", 0, now_ms() - 20_000);
        let load = pb::NodeLoad {
            containers: 4,
            cpu: 0.5,
            ..pb::NodeLoad::default()
        };
        let r = heartbeat(
            &m,
            &agent("agent-a"),
            pb::HeartbeatRequest { load: Some(load) },
        )
        .await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(
            store::node(&m.store, "a")
                .expect("read")
                .expect("row")
                .load
                .containers,
            4
        );
    }

    #[tokio::test]
    async fn placement_takes_the_healthy_node_with_the_fewest_containers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = master(dir.path());
        for n in ["a", "b", "c"] {
            register(&m, &agent(&format!("agent-{n}")), reg("127.0.0.1:9444"))
                .await
                .expect("registered");
        }
        let now = now_ms();
        set_containers(&m, "a", 3, now);
        set_containers(&m, "b", 1, now);
        set_containers(&m, "c", 0, now - 10 * 30_000);
        let c_health = || {
            health(
                &m,
                &store::node(&m.store, "c").expect("r").expect("row"),
                now_ms(),
            )
        };
        assert_eq!(c_health(), pb::NodeHealth::Suspect, "stale, not probed yet");
        assert_eq!(place(&m, "").expect("placed").name, "b", "c is suspect");
        // What the probe found speaks for the node until the next heartbeat.
        for (reached, ok, want) in [
            (true, true, pb::NodeHealth::Healthy),
            (true, false, pb::NodeHealth::Unhealthy),
            (false, false, pb::NodeHealth::Unreachable),
        ] {
            let mut row = store::node(&m.store, "c").expect("r").expect("row");
            row.probe = Some(store::Probe {
                at_ms: now_ms(),
                reached,
                ok,
                message: "probed".into(),
            });
            store::put_node(&m.store, &row).expect("write");
            assert_eq!(c_health(), want);
            let chosen = place(&m, "").expect("placed").name;
            assert_eq!(chosen == "c", ok, "placement takes c only when healthy");
        }
        let row = store::node(&m.store, "c").expect("r").expect("row");
        assert!(
            why_not(&m, &row, now_ms()).starts_with("node c is unhealthy (unreachable: probed;")
        );
        // What the master placed counts before the next heartbeat does.
        let def = crate::spec::ServiceDef::from_toml(
            "name = \"x\"\n[[components]]\nname = \"a\"\nimage = \"i:1\"\n[[components]]\nname = \"b\"\nimage = \"i:1\"\n[[components]]\nname = \"c\"\nimage = \"i:1\"\n",
        )
        .expect("def");
        let row = ServiceRow {
            def,
            node: "b".into(),
            deployed_at: 0,
        };
        let rec = store::DeployRecord {
            service: "x".into(),
            node: "b".into(),
            at: 0,
            by: String::new(),
            action: "deploy".into(),
            success: true,
            steps: Vec::new(),
        };
        store::finish(&m.store, &rec, store::Change::Put(&row)).expect("finish");
        assert_eq!(
            place(&m, "").expect("placed").name,
            "a",
            "a (3) ties b (3), by name"
        );
        assert_eq!(place(&m, "b").expect("pinned").name, "b");
        let r = place(&m, "c");
        assert!(matches!(r, Err(ApiError::FailedPrecondition(_))), "{r:?}");
        let r = place(&m, "nowhere");
        assert!(
            matches!(r, Err(ApiError::Invalid(ref i)) if i.field == "node"),
            "{r:?}"
        );
    }
}
