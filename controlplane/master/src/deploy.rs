//! The operator's operations: deploy (validate, place, the agent's
//! `ApplyService`, record), undeploy, status, list, stop/start/restart and
//! logs — each one call from the gRPC and REST adapters alike.
//!
//! Invariants: `success` only when every step (the master's and the
//! agent's) succeeded; the service row changes only with a successful
//! attempt's record (`store::finish`); operations that change services
//! are serialized by the master's one operation lock.

use mc_kit::api::ApiError;
use mc_proto::deploy::v1 as pb;
use mc_service::caller::Caller;

use crate::Master;
use crate::agents;
use crate::names;
use crate::registry::{self, now_ms};
use crate::spec::ServiceDef;
use crate::store::{self, Change, DeployRecord, ServiceRow, Step};

pub(crate) fn step(name: &str, success: bool, message: impl Into<String>) -> Step {
    Step {
        step: name.to_owned(),
        success,
        message: message.into(),
    }
}

pub(crate) fn steps_pb(steps: &[Step]) -> Vec<pb::StepResult> {
    steps
        .iter()
        .map(|s| pb::StepResult {
            step: s.step.clone(),
            success: s.success,
            message: s.message.clone(),
        })
        .collect()
}

pub(crate) fn from_pb(steps: Vec<pb::StepResult>) -> impl Iterator<Item = Step> {
    steps.into_iter().map(|s| Step {
        step: s.step,
        success: s.success,
        message: s.message,
    })
}

pub(crate) fn known(m: &Master, service: &str) -> Result<ServiceRow, ApiError> {
    store::service(&m.store, service)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound(format!("no service is named {service}")))
}

pub(crate) fn node_of(m: &Master, name: &str) -> Result<store::NodeRow, ApiError> {
    store::node(&m.store, name)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::FailedPrecondition(format!("node {name} is not registered")))
}

pub(crate) fn record(
    c: &Caller,
    service: &str,
    node: &str,
    action: &str,
    steps: Vec<Step>,
) -> DeployRecord {
    DeployRecord {
        service: service.to_owned(),
        node: node.to_owned(),
        at: now_ms() / 1000,
        by: c.actor(),
        action: action.to_owned(),
        success: steps.iter().all(|s| s.success),
        steps,
    }
}

/// Where the service goes: where it runs already, else placement.
fn destination(m: &Master, def: &ServiceDef) -> Result<store::NodeRow, ApiError> {
    if let Some(existing) = store::service(&m.store, &def.name).map_err(ApiError::internal)? {
        if !def.node.is_empty() && def.node != existing.node {
            return Err(ApiError::FailedPrecondition(format!(
                "{} runs on {}; moving it to {} is a migration (mcctl migrate)",
                def.name, existing.node, def.node
            )));
        }
        let node = node_of(m, &existing.node)?;
        if registry::health(m, &node, now_ms()) != pb::NodeHealth::Healthy {
            return Err(ApiError::FailedPrecondition(format!(
                "{} runs on {}, which is unhealthy",
                def.name, node.name
            )));
        }
        return Ok(node);
    }
    registry::place(m, &def.node)
}

pub(crate) async fn deploy(
    m: &Master,
    c: &Caller,
    r: pb::DeployRequest,
) -> Result<pb::DeployResponse, ApiError> {
    let spec = r
        .spec
        .ok_or_else(|| ApiError::invalid("spec", "is required"))?;
    let def = ServiceDef::from_proto(spec)?;
    let _guard = m.ops.lock().await;
    let node = destination(m, &def)?;
    let mut steps = vec![step("place", true, format!("node {}", node.name))];
    if r.dry_run {
        return Ok(pb::DeployResponse {
            success: true,
            node: node.name,
            steps: steps_pb(&steps),
        });
    }
    let agent = agents::connect(m, &node)?;
    // The certificate first: the agent's L7 routes name it.
    let mut applied = false;
    if let Ok(issued) = names::certificates(m, c, &node.name, &def, &mut steps).await {
        let apply = pb::ApplyServiceRequest {
            spec: Some(def.to_proto()),
            zone: m.config.zone.clone(),
        };
        let mut client = agent.client.clone();
        match client.apply_service(agent.req(apply)).await {
            Ok(resp) => {
                let resp = resp.into_inner();
                steps.extend(from_pb(resp.steps));
                applied = resp.success;
                if !resp.success && steps.iter().all(|s| s.success) {
                    steps.push(step("apply", false, "the agent reported a failure"));
                }
            }
            Err(s) => steps.push(step("apply", false, agent.error(&s).to_string())),
        }
        if applied {
            names::publish(m, c, &node, &def, &mut steps).await;
        } else {
            issued
                .rollback(m, c, &node.name, &def.name, &mut steps)
                .await;
        }
    }
    let rec = record(c, &def.name, &node.name, "deploy", steps);
    let row = ServiceRow {
        def,
        node: node.name.clone(),
        deployed_at: rec.at,
    };
    // The new version serves once the agent applied it, also when its name
    // could not be published (that step is marked failed).
    let change = if applied {
        Change::Put(&row)
    } else {
        Change::Keep
    };
    store::finish(&m.store, &rec, change).map_err(ApiError::internal)?;
    tracing::info!(service = %row.def.name, node = %node.name, success = rec.success, by = %rec.by, "deploy");
    Ok(pb::DeployResponse {
        success: rec.success,
        node: node.name,
        steps: steps_pb(&rec.steps),
    })
}

pub(crate) async fn undeploy(
    m: &Master,
    c: &Caller,
    r: pb::UndeployRequest,
) -> Result<pb::UndeployResponse, ApiError> {
    let _guard = m.ops.lock().await;
    let row = known(m, &r.service)?;
    let agent = agents::connect(m, &node_of(m, &row.node)?)?;
    let mut client = agent.client.clone();
    let req = pb::RemoveServiceRequest {
        service: r.service.clone(),
        purge: r.purge,
    };
    // Names, then routes and containers, then certificates (no route
    // names them any more).
    let mut steps = Vec::new();
    names::unpublish(m, c, &row.node, &row.def, &mut steps).await;
    let removed = match client.remove_service(agent.req(req)).await {
        Ok(resp) => {
            steps.extend(from_pb(resp.into_inner().steps));
            true
        }
        Err(s) if s.code() == tonic::Code::NotFound => {
            steps.push(step("remove", true, "the node no longer runs it"));
            true
        }
        Err(s) => {
            steps.push(step("remove", false, agent.error(&s).to_string()));
            false
        }
    };
    if removed {
        names::remove_certificates(m, c, &row.node, &row.def, &mut steps).await;
    }
    let rec = record(c, &r.service, &row.node, "undeploy", steps);
    let change = if rec.success {
        Change::Delete
    } else {
        Change::Keep
    };
    store::finish(&m.store, &rec, change).map_err(ApiError::internal)?;
    tracing::info!(service = %r.service, node = %row.node, success = rec.success, by = %rec.by, "undeploy");
    Ok(pb::UndeployResponse {
        success: rec.success,
        steps: steps_pb(&rec.steps),
    })
}

/// The agent's view of `row`, or the stored definition with a drift line
/// saying why the agent could not tell.
async fn status_of(m: &Master, row: &ServiceRow) -> pb::ServiceStatus {
    let fallback = |why: String| pb::ServiceStatus {
        service: row.def.name.clone(),
        node: row.node.clone(),
        spec: Some(row.def.to_proto()),
        components: Vec::new(),
        drift: vec![why],
        deployed_at_unix: row.deployed_at,
    };
    let agent = match node_of(m, &row.node).and_then(|n| agents::connect(m, &n)) {
        Ok(a) => a,
        Err(e) => return fallback(e.to_string()),
    };
    let mut client = agent.client.clone();
    let req = pb::GetServiceStatusRequest {
        service: row.def.name.clone(),
    };
    match client.get_service_status(agent.req(req)).await {
        Ok(s) => pb::ServiceStatus {
            node: row.node.clone(),
            deployed_at_unix: row.deployed_at,
            ..s.into_inner()
        },
        Err(s) => fallback(agent.error(&s).to_string()),
    }
}

pub(crate) async fn status(m: &Master, service: &str) -> Result<pb::ServiceStatus, ApiError> {
    let row = known(m, service)?;
    Ok(status_of(m, &row).await)
}

pub(crate) async fn list(m: &Master, node: &str) -> Result<pb::ListServicesResponse, ApiError> {
    let rows = store::services(&m.store).map_err(ApiError::internal)?;
    let mut services = Vec::new();
    for row in rows.iter().filter(|r| node.is_empty() || r.node == node) {
        services.push(status_of(m, row).await);
    }
    Ok(pb::ListServicesResponse { services })
}

/// Stop, start or restart.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Action {
    Stop,
    Start,
    Restart,
}

impl Action {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Start => "start",
            Self::Restart => "restart",
        }
    }
}

pub(crate) async fn act(
    m: &Master,
    c: &Caller,
    service: &str,
    a: Action,
) -> Result<pb::ServiceActionResponse, ApiError> {
    let _guard = m.ops.lock().await;
    let row = known(m, service)?;
    let agent = agents::connect(m, &node_of(m, &row.node)?)?;
    let mut client = agent.client.clone();
    let req = agent.req(pb::ServiceActionRequest {
        service: service.to_owned(),
    });
    let resp = match a {
        Action::Stop => client.stop_service(req).await,
        Action::Start => client.start_service(req).await,
        Action::Restart => client.restart_service(req).await,
    }
    .map_err(|s| agent.error(&s))?
    .into_inner();
    let rec = record(
        c,
        service,
        &row.node,
        a.name(),
        from_pb(resp.steps.clone()).collect(),
    );
    store::finish(&m.store, &rec, Change::Keep).map_err(ApiError::internal)?;
    Ok(resp)
}

/// The agent's log stream for the service's component, relayed as is.
pub(crate) async fn logs(
    m: &Master,
    r: pb::ServiceLogsRequest,
) -> Result<tonic::Streaming<pb::LogLine>, ApiError> {
    let row = known(m, &r.service)?;
    let agent = agents::connect(m, &node_of(m, &row.node)?)?;
    let mut client = agent.client.clone();
    let stream = client
        .service_logs(agent.req(r))
        .await
        .map_err(|s| agent.error(&s))?
        .into_inner();
    Ok(stream)
}
