//! `MigrateService`: moves a service and its data to another node.
//!
//! Steps: stop on the source, export (kept as a snapshot), import on the
//! target, `ApplyService` there (the health-gated start; routes pointed at
//! the target), the service row moved to the target, then the source's
//! containers and data removed (routes the target took over are left).
//!
//! Invariants: the service row moves only after the target applied the
//! service successfully, in the same transaction as the attempt's record;
//! on any failure before that the target's copy is removed and the source
//! is started again (`restore-source`), so the service stays where it was.

use mc_kit::api::ApiError;
use mc_proto::deploy::v1 as pb;
use mc_service::caller::Caller;

use crate::Master;
use crate::agents::{self, AgentCall};
use crate::deploy::{from_pb, known, node_of, record, step, steps_pb};
use crate::registry::{self, now_ms};
use crate::snapshots;
use crate::spec::is_label;
use crate::store::{self, Change, ServiceRow, Step};

pub(crate) async fn migrate(
    m: &Master,
    c: &Caller,
    r: pb::MigrateServiceRequest,
) -> Result<pb::MigrateServiceResponse, ApiError> {
    if !is_label(&r.node) {
        return Err(ApiError::invalid("node", "must match [a-z0-9-]{1,63}"));
    }
    let _guard = m.ops.lock().await;
    let row = known(m, &r.service)?;
    if row.node == r.node {
        return Err(ApiError::FailedPrecondition(format!(
            "{} already runs on {}",
            r.service, r.node
        )));
    }
    let target = store::node(&m.store, &r.node)
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::invalid("node", format!("no registered node is named {}", r.node))
        })?;
    if registry::health(m, &target, now_ms()) != pb::NodeHealth::Healthy {
        return Err(ApiError::FailedPrecondition(format!(
            "node {} is unhealthy",
            target.name
        )));
    }
    let src = agents::connect(m, &node_of(m, &row.node)?)?;
    let dst = agents::connect(m, &target)?;
    let mut steps = Vec::new();
    let mut snapshot_id = String::new();
    let moved = run(m, &row, &src, &dst, &mut steps, &mut snapshot_id).await;
    let new_row;
    let change = if moved {
        let mut def = row.def.clone();
        if !def.node.is_empty() {
            def.node.clone_from(&target.name);
        }
        new_row = ServiceRow {
            def,
            node: target.name.clone(),
            deployed_at: now_ms() / 1000,
        };
        Change::Put(&new_row)
    } else {
        // Put things back: the target's copy (if it got one) goes, the
        // source runs again.
        if steps.iter().any(|s| s.step == "import") {
            remove(&dst, &r.service, "remove-target", &mut steps).await;
        }
        let ok = snapshots::act(&src, &r.service, true, &mut steps).await;
        steps.push(step(
            "restore-source",
            ok,
            if ok {
                format!("{} serves from {} again", r.service, row.node)
            } else {
                format!("{} could not be started on {} again", r.service, row.node)
            },
        ));
        Change::Keep
    };
    let mut rec = record(c, &r.service, &target.name, "migrate", steps.clone());
    rec.success = moved && rec.success;
    store::finish(&m.store, &rec, change).map_err(ApiError::internal)?;
    if moved {
        // The row has moved; the source's leftovers are cleaned up and a
        // failure here is reported, not undone.
        remove(&src, &r.service, "remove-source", &mut steps).await;
        let rec = record(
            c,
            &r.service,
            &target.name,
            "migrate-cleanup",
            steps.clone(),
        );
        store::finish(&m.store, &rec, Change::Keep).map_err(ApiError::internal)?;
    }
    let success = moved && steps.iter().all(|s| s.success);
    tracing::info!(service = %r.service, from = %row.node, to = %target.name, success, by = %c.actor(), "migrate");
    Ok(pb::MigrateServiceResponse {
        success,
        steps: steps_pb(&steps),
        snapshot_id,
    })
}

/// Stop, export, import, apply; whether the target now serves the service.
async fn run(
    m: &Master,
    row: &ServiceRow,
    src: &AgentCall,
    dst: &AgentCall,
    steps: &mut Vec<Step>,
    snapshot_id: &mut String,
) -> bool {
    let service = &row.def.name;
    if !snapshots::act(src, service, false, steps).await {
        return false;
    }
    let snap = match snapshots::take(m, src, service).await {
        Ok(s) => {
            steps.push(step(
                "export",
                true,
                format!(
                    "{} bytes from {}, kept as snapshot {}",
                    s.bytes, src.node, s.id
                ),
            ));
            snapshot_id.clone_from(&s.id);
            s
        }
        Err(e) => {
            steps.push(step("export", false, e));
            return false;
        }
    };
    match snapshots::send(m, dst, &snap).await {
        Ok(d) => steps.push(step(
            "import",
            true,
            format!("{} files, {} bytes on {}", d.files, d.bytes, dst.node),
        )),
        Err(e) => {
            steps.push(step("import", false, e));
            return false;
        }
    }
    let apply = pb::ApplyServiceRequest {
        spec: Some(row.def.to_proto()),
        zone: m.config.zone.clone(),
    };
    let mut client = dst.client.clone();
    match client.apply_service(dst.req(apply)).await {
        Ok(resp) => {
            let resp = resp.into_inner();
            steps.extend(from_pb(resp.steps).map(|s| Step {
                step: format!("{}: {}", dst.node, s.step),
                ..s
            }));
            if !resp.success {
                steps.push(step(
                    "deploy",
                    false,
                    format!("{} did not take it", dst.node),
                ));
            }
            resp.success
        }
        Err(s) => {
            steps.push(step("deploy", false, dst.error(&s).to_string()));
            false
        }
    }
}

/// `RemoveService` with purge on `agent`, as one step named `name`.
async fn remove(agent: &AgentCall, service: &str, name: &str, steps: &mut Vec<Step>) -> bool {
    let mut client = agent.client.clone();
    let req = agent.req(pb::RemoveServiceRequest {
        service: service.to_owned(),
        purge: true,
    });
    let (ok, message) = match client.remove_service(req).await {
        Ok(r) => {
            let r = r.into_inner();
            let failed: Vec<String> = r
                .steps
                .iter()
                .filter(|s| !s.success)
                .map(|s| format!("{}: {}", s.step, s.message))
                .collect();
            if r.success {
                (true, format!("{service} removed from {}", agent.node))
            } else {
                (false, failed.join("; "))
            }
        }
        Err(s) => (false, agent.error(&s).to_string()),
    };
    steps.push(step(name, ok, message));
    ok
}
