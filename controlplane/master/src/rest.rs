//! The REST twin of `mc.deploy.v1.Master` under `/v1/mcp/` (JSON, errors
//! `{"error": …}`): each handler makes the same one call as its gRPC twin.
//! A deploy's body is `{"spec": <the TOML definition as JSON>, "dry_run":
//! false}`; logs are the last lines only (following is gRPC's).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use mc_kit::api::ApiError;
use mc_proto::deploy::v1 as pb;
use mc_service::body::JsonBody;
use mc_service::caller::Caller;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_stream::StreamExt;

use crate::Master;
use crate::deploy::{self, Action};
use crate::spec::ServiceDef;
use crate::{migrate, registry, snapshots, sync};

type S = State<Arc<Master>>;
type R = Result<Json<Value>, ApiError>;

/// Most log lines returned over REST.
const MAX_TAIL: u32 = 10_000;

fn steps(s: &[pb::StepResult]) -> Value {
    s.iter()
        .map(|s| json!({"step": s.step, "success": s.success, "message": s.message}))
        .collect()
}

pub(crate) fn status_json(s: &pb::ServiceStatus) -> Value {
    let spec = s.spec.clone().and_then(|p| ServiceDef::from_proto(p).ok());
    let components: Vec<Value> = s
        .components
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "image": c.image,
                "state": pb::ContainerState::try_from(c.state)
                    .map_or("unspecified", |st| st.as_str_name()),
                "ports": c.ports,
                "started_at_unix": c.started_at_unix,
                "restarts": c.restarts,
                "healthy": c.healthy,
                "flapping": c.flapping,
                "recent_restarts": c.recent_restarts,
            })
        })
        .collect();
    json!({
        "service": s.service,
        "node": s.node,
        "spec": spec,
        "components": components,
        "drift": s.drift,
        "deployed_at_unix": s.deployed_at_unix,
    })
}

fn node_json(n: &pb::NodeInfo) -> Value {
    let l = n.load.unwrap_or_default();
    json!({
        "name": n.name,
        "role": pb::NodeRole::try_from(n.role).map_or("unspecified", |r| r.as_str_name()),
        "address": n.address,
        "arch": n.arch,
        "agent_version": n.agent_version,
        "health": pb::NodeHealth::try_from(n.health).map_or("unspecified", |h| h.as_str_name()),
        "last_heartbeat_unix": n.last_heartbeat_unix,
        "probe": n.probe.as_ref().map(|p| json!({"at_unix": p.at_unix, "ok": p.ok, "message": p.message})),
        "load": {
            "cpu": l.cpu,
            "memory_used_bytes": l.memory_used_bytes,
            "memory_total_bytes": l.memory_total_bytes,
            "disk_free_bytes": l.disk_free_bytes,
            "containers": l.containers,
        },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    spec: ServiceDef,
    #[serde(default)]
    dry_run: bool,
}

async fn deploy_rest(State(m): S, c: Caller, JsonBody(b): JsonBody<DeployBody>) -> R {
    let r = pb::DeployRequest {
        spec: Some(b.spec.to_proto()),
        dry_run: b.dry_run,
    };
    let d = deploy::deploy(&m, &c, r).await?;
    Ok(Json(
        json!({"success": d.success, "node": d.node, "steps": steps(&d.steps)}),
    ))
}

#[derive(Deserialize)]
struct Purge {
    #[serde(default)]
    purge: bool,
}

async fn undeploy_rest(
    State(m): S,
    c: Caller,
    Path(service): Path<String>,
    Query(q): Query<Purge>,
) -> R {
    let r = pb::UndeployRequest {
        service,
        purge: q.purge,
    };
    let d = deploy::undeploy(&m, &c, r).await?;
    Ok(Json(
        json!({"success": d.success, "steps": steps(&d.steps)}),
    ))
}

#[derive(Deserialize)]
struct NodeFilter {
    #[serde(default)]
    node: String,
}

async fn list_rest(State(m): S, Query(q): Query<NodeFilter>) -> R {
    let l = deploy::list(&m, &q.node).await?;
    let services: Vec<Value> = l.services.iter().map(status_json).collect();
    Ok(Json(json!({ "services": services })))
}

async fn status_rest(State(m): S, Path(service): Path<String>) -> R {
    Ok(Json(status_json(&deploy::status(&m, &service).await?)))
}

async fn act_rest(m: &Master, c: &Caller, service: &str, a: Action) -> R {
    let d = deploy::act(m, c, service, a).await?;
    Ok(Json(
        json!({"success": d.success, "steps": steps(&d.steps)}),
    ))
}

async fn stop_rest(State(m): S, c: Caller, Path(service): Path<String>) -> R {
    act_rest(&m, &c, &service, Action::Stop).await
}

async fn start_rest(State(m): S, c: Caller, Path(service): Path<String>) -> R {
    act_rest(&m, &c, &service, Action::Start).await
}

async fn restart_rest(State(m): S, c: Caller, Path(service): Path<String>) -> R {
    act_rest(&m, &c, &service, Action::Restart).await
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default)]
    component: String,
    #[serde(default)]
    tail: u32,
}

async fn logs_rest(State(m): S, Path(service): Path<String>, Query(q): Query<LogQuery>) -> R {
    if q.tail > MAX_TAIL {
        return Err(ApiError::invalid("tail", "at most 10000"));
    }
    let r = pb::ServiceLogsRequest {
        service,
        component: q.component,
        tail: q.tail,
        follow: false,
    };
    let mut stream = deploy::logs(&m, r).await?;
    let mut lines = Vec::new();
    while let Some(line) = stream.next().await {
        match line {
            Ok(l) => lines.push(l.line),
            Err(s) => return Err(ApiError::Unavailable(s.message().to_owned())),
        }
    }
    Ok(Json(json!({ "lines": lines })))
}

fn snapshot_json(s: &pb::Snapshot) -> Value {
    json!({
        "id": s.id,
        "service": s.service,
        "node": s.node,
        "created_at_unix": s.created_at_unix,
        "bytes": s.bytes,
        "sha256": s.sha256,
    })
}

async fn snapshot_rest(State(m): S, c: Caller, Path(service): Path<String>) -> R {
    Ok(Json(snapshot_json(
        &snapshots::create(&m, &c, &service).await?,
    )))
}

#[derive(Deserialize)]
struct ServiceFilter {
    #[serde(default)]
    service: String,
}

async fn snapshots_rest(State(m): S, Query(q): Query<ServiceFilter>) -> R {
    let l = snapshots::list(&m, &q.service)?;
    let all: Vec<Value> = l.snapshots.iter().map(snapshot_json).collect();
    Ok(Json(
        json!({ "snapshots": all, "next_at_unix": l.next_at_unix }),
    ))
}

async fn restore_rest(State(m): S, c: Caller, Path(id): Path<String>) -> R {
    let r = pb::RestoreSnapshotRequest {
        snapshot_id: id,
        node: String::new(),
        force: true,
    };
    let d = snapshots::restore(&m, &c, r).await?;
    Ok(Json(
        json!({"success": d.success, "steps": steps(&d.steps)}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MigrateBody {
    node: String,
}

async fn migrate_rest(
    State(m): S,
    c: Caller,
    Path(service): Path<String>,
    JsonBody(b): JsonBody<MigrateBody>,
) -> R {
    let r = pb::MigrateServiceRequest {
        service,
        node: b.node,
    };
    let d = migrate::migrate(&m, &c, r).await?;
    Ok(Json(json!({
        "success": d.success,
        "snapshot_id": d.snapshot_id,
        "steps": steps(&d.steps),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    specs: Vec<ServiceDef>,
    #[serde(default)]
    dry_run: bool,
}

async fn sync_rest(State(m): S, c: Caller, JsonBody(b): JsonBody<SyncBody>) -> R {
    if b.specs.len() > sync::MAX_SPECS {
        return Err(ApiError::invalid("specs", "at most 256 services"));
    }
    let r = pb::SyncRequest {
        specs: b.specs.iter().map(ServiceDef::to_proto).collect(),
        dry_run: b.dry_run,
    };
    let d = sync::sync(&m, &c, r).await?;
    let changes: Vec<Value> = d
        .changes
        .iter()
        .map(|c| {
            json!({
                "service": c.service,
                "action": c.action,
                "diff": c.diff,
                "node": c.node,
                "success": c.success,
                "steps": steps(&c.steps),
            })
        })
        .collect();
    Ok(Json(json!({"success": d.success, "changes": changes})))
}

async fn nodes_rest(State(m): S) -> R {
    let l = registry::list(&m)?;
    let nodes: Vec<Value> = l.nodes.iter().map(node_json).collect();
    Ok(Json(json!({ "nodes": nodes })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    #[serde(default)]
    role: String,
    address: String,
    #[serde(default)]
    arch: String,
    #[serde(default)]
    agent_version: String,
}

async fn register_rest(State(m): S, c: Caller, JsonBody(b): JsonBody<RegisterBody>) -> R {
    let role = match b.role.as_str() {
        "" | "worker" => pb::NodeRole::Worker,
        "master" => pb::NodeRole::Master,
        "edge" => pb::NodeRole::Edge,
        _ => return Err(ApiError::invalid("role", "worker, master or edge")),
    };
    let r = pb::RegisterNodeRequest {
        role: role.into(),
        address: b.address,
        arch: b.arch,
        agent_version: b.agent_version,
    };
    let d = registry::register(&m, &c, r).await?;
    Ok(Json(
        json!({"node": d.node, "heartbeat_interval_seconds": d.heartbeat_interval_seconds}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct LoadBody {
    cpu: f64,
    memory_used_bytes: u64,
    memory_total_bytes: u64,
    disk_free_bytes: u64,
    containers: u32,
}

async fn heartbeat_rest(State(m): S, c: Caller, JsonBody(b): JsonBody<LoadBody>) -> R {
    let r = pb::HeartbeatRequest {
        load: Some(pb::NodeLoad {
            cpu: b.cpu,
            memory_used_bytes: b.memory_used_bytes,
            memory_total_bytes: b.memory_total_bytes,
            disk_free_bytes: b.disk_free_bytes,
            containers: b.containers,
        }),
    };
    registry::heartbeat(&m, &c, r).await?;
    Ok(Json(json!({})))
}

pub(crate) fn router(m: Arc<Master>) -> Router {
    Router::new()
        .route("/v1/mcp/services", post(deploy_rest).get(list_rest))
        .route(
            "/v1/mcp/services/{service}",
            get(status_rest).delete(undeploy_rest),
        )
        .route("/v1/mcp/services/{service}/stop", post(stop_rest))
        .route("/v1/mcp/services/{service}/start", post(start_rest))
        .route("/v1/mcp/services/{service}/restart", post(restart_rest))
        .route("/v1/mcp/services/{service}/logs", get(logs_rest))
        .route("/v1/mcp/services/{service}/snapshots", post(snapshot_rest))
        .route("/v1/mcp/services/{service}/migrate", post(migrate_rest))
        .route("/v1/mcp/snapshots", get(snapshots_rest))
        .route("/v1/mcp/snapshots/{id}/restore", post(restore_rest))
        .route("/v1/mcp/nodes", get(nodes_rest))
        .route("/v1/mcp/sync", post(sync_rest))
        .route("/v1/mcp/nodes/register", post(register_rest))
        .route("/v1/mcp/nodes/heartbeat", post(heartbeat_rest))
        .with_state(m)
}
