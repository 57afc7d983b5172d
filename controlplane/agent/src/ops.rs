//! Everything but the cutover: stop/start/restart, remove, status with
//! drift, and reconcile (the node back to its desired state).

use std::collections::BTreeMap;

use mc_kit::api::ApiError;
use mc_proto::deploy::v1 as pb;

use crate::agent::{Agent, failed, ok};
use crate::model::{Health, Spec};
use crate::store::{self, Desired, Observed, Step};
use crate::{model, probe};

pub(crate) fn to_pb(steps: &[Step]) -> Vec<pb::StepResult> {
    steps
        .iter()
        .map(|s| pb::StepResult {
            step: s.step.clone(),
            success: s.success,
            message: s.message.clone(),
        })
        .collect()
}

fn service_name(s: &str) -> Result<(), ApiError> {
    if model::is_label(s) {
        Ok(())
    } else {
        Err(ApiError::invalid("service", "must match [a-z0-9-]{1,63}"))
    }
}

/// The desired row of `service`; NotFound when the node has none.
pub(crate) fn known(agent: &Agent, service: &str) -> Result<Desired, ApiError> {
    service_name(service)?;
    store::desired(&agent.store, service)?
        .ok_or_else(|| ApiError::NotFound(format!("no service `{service}` on this node")))
}

#[derive(Clone, Copy)]
pub(crate) enum Action {
    Stop,
    Start,
    Restart,
}

pub(crate) async fn act(
    agent: &Agent,
    service: &str,
    action: Action,
) -> Result<(bool, Vec<Step>), ApiError> {
    let _guard = agent.lock.lock().await;
    let d = known(agent, service)?;
    let mut steps = Vec::new();
    for c in &d.spec.components {
        let name = c.container(service);
        let (step, r) = match action {
            Action::Stop => ("stop", agent.podman.stop(&name, agent.grace()).await),
            Action::Start => ("start", agent.podman.start(&name).await),
            Action::Restart => ("restart", agent.podman.restart(&name, agent.grace()).await),
        };
        let step = format!("{}/{step}", c.name);
        let started = r.is_ok() && !matches!(action, Action::Stop);
        steps.push(match r {
            Ok(()) => ok(&step, name),
            Err(e) => failed(&step, e.to_string()),
        });
        // Started again: answer once it is healthy, as a deploy does.
        let port = store::observed(&agent.store, service, &c.name)?
            .and_then(|o| c.routes.first().and_then(|r| o.ports.get(&r.name).copied()));
        if let (true, Some(port), false) = (started, port, matches!(c.health, Health::Running)) {
            let step = format!("{}/health", c.name);
            let within = agent.health_deadline(c);
            steps.push(
                match probe::until(&c.health, agent.backend(port), within).await {
                    Ok(()) => ok(&step, "healthy"),
                    Err(m) => failed(&step, m),
                },
            );
        }
    }
    store::set_running(&agent.store, service, !matches!(action, Action::Stop))?;
    Ok((steps.iter().all(|s| s.success), steps))
}

/// Routes first (a stale route answers 502, not old content; one another
/// node took over is left), then containers, then the rows; `purge` also
/// deletes `/srv/<service>` (also when only data is left, no service).
pub(crate) async fn remove(
    agent: &Agent,
    service: &str,
    purge: bool,
) -> Result<(bool, Vec<Step>), ApiError> {
    let _guard = agent.lock.lock().await;
    service_name(service)?;
    let Some(d) = store::desired(&agent.store, service)? else {
        // Data without a service (an import the master then abandoned).
        if purge && agent.service_dir(service).exists() {
            let mut steps = Vec::new();
            purge_dir(agent, service, &mut steps);
            return Ok((steps.iter().all(|s| s.success), steps));
        }
        return Err(ApiError::NotFound(format!(
            "no service `{service}` on this node"
        )));
    };
    let mut steps = Vec::new();
    for c in &d.spec.components {
        let ours: Vec<String> = store::observed(&agent.store, service, &c.name)?
            .map(|o| {
                o.ports
                    .values()
                    .map(|p| agent.backend(*p).to_string())
                    .collect()
            })
            .unwrap_or_default();
        for r in &c.routes {
            steps.push(match agent.routes.remove(&r.hostname, Some(&ours)).await {
                Ok(true) => ok(
                    &format!("{}/route", c.name),
                    format!("{} removed", r.hostname),
                ),
                Ok(false) => ok(
                    &format!("{}/route", c.name),
                    format!("{} does not point here: left as it is", r.hostname),
                ),
                Err(e) => failed(&format!("{}/route", c.name), e.to_string()),
            });
        }
    }
    for c in &d.spec.components {
        let name = c.container(service);
        let _ = agent.podman.stop(&name, agent.grace()).await;
        steps.push(match agent.podman.remove(&name).await {
            Ok(()) => ok(&format!("{}/container", c.name), format!("{name} removed")),
            Err(e) => failed(&format!("{}/container", c.name), e.to_string()),
        });
    }
    store::remove(&agent.store, service)?;
    if purge {
        purge_dir(agent, service, &mut steps);
    }
    Ok((steps.iter().all(|s| s.success), steps))
}

fn purge_dir(agent: &Agent, service: &str, steps: &mut Vec<Step>) {
    let dir = agent.service_dir(service);
    steps.push(match std::fs::remove_dir_all(&dir) {
        Ok(()) => ok("purge", format!("{} deleted", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ok("purge", "nothing to delete"),
        Err(e) => failed("purge", e.to_string()),
    });
}

pub(crate) async fn status(agent: &Agent, service: &str) -> Result<pb::ServiceStatus, ApiError> {
    let d = known(agent, service)?;
    Ok(describe(agent, &d).await)
}

pub(crate) async fn list(agent: &Agent) -> Result<Vec<pb::ServiceStatus>, ApiError> {
    let mut out = Vec::new();
    for d in store::all_desired(&agent.store)? {
        out.push(describe(agent, &d).await);
    }
    Ok(out)
}

/// Desired spec, observed containers, and the differences.
pub(crate) async fn describe(agent: &Agent, d: &Desired) -> pb::ServiceStatus {
    let service = &d.spec.name;
    let mut components = Vec::new();
    let mut drift = Vec::new();
    for c in &d.spec.components {
        let name = c.container(service);
        let observed = store::observed(&agent.store, service, &c.name)
            .ok()
            .flatten();
        let ports: BTreeMap<String, u16> = observed
            .as_ref()
            .map(|o| o.ports.clone())
            .unwrap_or_default();
        let inspect = agent.podman.inspect(&name).await;
        let (state, started, restarts) = match &inspect {
            Ok(Some(i)) if i.running() => {
                (pb::ContainerState::Running, i.started_at_unix, i.restarts)
            }
            Ok(Some(i))
                if i.status == "exited" || i.status == "stopped" || i.status == "created" =>
            {
                (pb::ContainerState::Stopped, i.started_at_unix, i.restarts)
            }
            Ok(Some(i)) => (pb::ContainerState::Failed, i.started_at_unix, i.restarts),
            Ok(None) => (pb::ContainerState::Missing, 0, 0),
            Err(e) => {
                drift.push(format!("{name}: cannot inspect: {e}"));
                (pb::ContainerState::Unspecified, 0, 0)
            }
        };
        match (state, d.running) {
            (pb::ContainerState::Missing, _) => drift.push(format!("{name}: container missing")),
            (pb::ContainerState::Running, false) => {
                drift.push(format!("{name}: running but should be stopped"))
            }
            (s, true) if s != pb::ContainerState::Running => {
                drift.push(format!("{name}: {} but should run", s.as_str_name()));
            }
            _ => {}
        }
        if let Ok(Some(i)) = &inspect
            && i.image != c.image
        {
            drift.push(format!("{name}: runs {} instead of {}", i.image, c.image));
        }
        let (flapping, recent) = match &inspect {
            Ok(Some(i)) => agent.flapping(&name, &i.id, i.restarts),
            _ => (false, 0),
        };
        if flapping {
            drift.push(format!(
                "{name}: flapping ({recent} restarts within {})",
                agent.cfg.services.flap_window
            ));
        }
        let first = c.routes.first().and_then(|r| ports.get(&r.name));
        let healthy = state == pb::ContainerState::Running
            && match (&c.health, first) {
                (Health::Running, _) | (_, None) => true,
                (h, Some(p)) => probe::once(h, agent.backend(*p)).await.is_ok(),
            };
        components.push(pb::ComponentStatus {
            name: c.name.clone(),
            image: c.image.clone(),
            state: state.into(),
            ports: ports.into_iter().map(|(k, v)| (k, u32::from(v))).collect(),
            started_at_unix: started,
            restarts,
            healthy,
            flapping,
            recent_restarts: recent,
        });
    }
    pb::ServiceStatus {
        service: service.clone(),
        node: agent.cfg.node.clone(),
        spec: Some(d.spec.to_proto()),
        components,
        drift,
        deployed_at_unix: d.applied_at,
    }
}

/// Recreates missing containers (same host ports when still free), starts
/// stopped ones that should run, and re-applies routes.
pub(crate) async fn reconcile(agent: &Agent, only: &str) -> Result<(bool, Vec<Step>), ApiError> {
    let _guard = agent.lock.lock().await;
    let targets = if only.is_empty() {
        store::all_desired(&agent.store)?
    } else {
        vec![known(agent, only)?]
    };
    let mut steps = Vec::new();
    for d in &targets {
        let mut mine = Vec::new();
        reconcile_one(agent, &d.spec, d.running, &mut mine).await?;
        steps.extend(mine.into_iter().map(|s| Step {
            step: format!("{}: {}", d.spec.name, s.step),
            ..s
        }));
    }
    Ok((steps.iter().all(|s| s.success), steps))
}

async fn reconcile_one(
    agent: &Agent,
    spec: &Spec,
    running: bool,
    steps: &mut Vec<Step>,
) -> Result<(), ApiError> {
    for c in &spec.components {
        let name = c.container(&spec.name);
        let observed = store::observed(&agent.store, &spec.name, &c.name)?;
        let state = match agent.podman.inspect(&name).await {
            Ok(s) => s,
            Err(e) => {
                steps.push(failed(&format!("{}/container", c.name), e.to_string()));
                continue;
            }
        };
        let ports = match state {
            Some(i) if i.running() || !running => {
                if i.running() && !running {
                    let r = agent.podman.stop(&name, agent.grace()).await;
                    steps.push(match r {
                        Ok(()) => ok(&format!("{}/stop", c.name), "stopped, as desired"),
                        Err(e) => failed(&format!("{}/stop", c.name), e.to_string()),
                    });
                } else {
                    steps.push(ok(
                        &format!("{}/container", c.name),
                        format!("{name} as desired"),
                    ));
                }
                observed.map(|o| o.ports).unwrap_or_default()
            }
            Some(_) => {
                match agent.podman.start(&name).await {
                    Ok(()) => {
                        steps.push(ok(&format!("{}/start", c.name), format!("{name} started")))
                    }
                    Err(e) => {
                        steps.push(failed(&format!("{}/start", c.name), e.to_string()));
                        continue;
                    }
                }
                observed.map(|o| o.ports).unwrap_or_default()
            }
            None if !running => continue,
            None => {
                let reuse = observed.as_ref().map(|o| o.ports.clone());
                let launched = match agent
                    .launch(&spec.name, c, &name, reuse.as_ref(), &[], steps)
                    .await
                {
                    Ok(l) => l,
                    Err((step, m)) => {
                        steps.push(failed(&format!("{}/{step}", c.name), m));
                        continue;
                    }
                };
                let row = Observed {
                    container: name.clone(),
                    id: launched.id.clone(),
                    image: c.image.clone(),
                    ports: launched.ports.clone(),
                };
                store::put_observed(&agent.store, &spec.name, &c.name, &row)?;
                launched.ports
            }
        };
        if !running {
            continue;
        }
        for r in &c.routes {
            let step = format!("{}/route", c.name);
            let Some(port) = ports.get(&r.name) else {
                steps.push(failed(
                    &step,
                    format!("no recorded port for route {}", r.name),
                ));
                continue;
            };
            let backend = agent.backend(*port).to_string();
            steps.push(
                match agent.routes.switch(&r.hostname, r.mode, &backend).await {
                    Ok(Some(_)) => ok(&step, format!("{} → {backend}", r.hostname)),
                    Ok(None) => ok(&step, "no data plane configured on this node"),
                    Err(e) => failed(&step, e.to_string()),
                },
            );
        }
    }
    Ok(())
}
