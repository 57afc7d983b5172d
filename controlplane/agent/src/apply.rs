//! ApplyService: the health-gated cutover (docs/design/mcp.md).
//!
//! Invariant: until every new container is healthy and every route points
//! at it, the old containers, routes and store rows are untouched; any
//! failure before that removes what this attempt started and restores the
//! routes it switched, so the old version keeps serving.

use std::collections::BTreeSet;

use mc_kit::api::ApiError;

use crate::agent::{Agent, Launched, failed, ok};
use crate::model::Spec;
use crate::routes::Previous;
use crate::store::{self, Desired, Observed, Step};

pub(crate) struct Outcome {
    pub(crate) success: bool,
    pub(crate) steps: Vec<Step>,
}

struct Staged {
    component: String,
    launched: Launched,
    /// `<service>-<component>`; differs from `launched.name` when an old
    /// container still holds it.
    final_name: String,
    image: String,
}

pub(crate) async fn apply(agent: &Agent, spec: Spec) -> Result<Outcome, ApiError> {
    let _guard = agent.lock.lock().await;
    let old = store::desired(&agent.store, &spec.name)?;
    let mut steps = Vec::new();
    let mut staged: Vec<Staged> = Vec::new();
    let mut switched: Vec<Previous> = Vec::new();

    let result = stage(agent, &spec, &mut steps, &mut staged).await;
    let result = match result {
        Ok(()) => switch_routes(agent, &spec, &staged, &mut steps, &mut switched).await,
        Err(e) => Err(e),
    };
    if let Err((step, message)) = result {
        steps.push(failed(&step, message));
        rollback(agent, &staged, &switched, &mut steps).await;
        store::record_steps(&agent.store, &spec.name, &steps)?;
        return Ok(Outcome {
            success: false,
            steps,
        });
    }

    // The new version serves: retire the old one.
    let mut success = true;
    if old.is_some() && !agent.cfg.services.drain_delay.get().is_zero() {
        tokio::time::sleep(agent.cfg.services.drain_delay.get()).await;
    }
    let mut observed = Vec::new();
    for s in &staged {
        if s.launched.name != s.final_name {
            let r = retire(agent, &s.final_name).await;
            let r = match r {
                Ok(()) => agent
                    .podman
                    .rename(&s.launched.name, &s.final_name)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => steps.push(ok(
                    &format!("{}/cutover", s.component),
                    format!("{} replaced", s.final_name),
                )),
                Err(m) => {
                    success = false;
                    steps.push(failed(&format!("{}/cutover", s.component), m));
                }
            }
        }
        let name = if success {
            s.final_name.clone()
        } else {
            s.launched.name.clone()
        };
        observed.push((
            s.component.clone(),
            Observed {
                container: name,
                id: s.launched.id.clone(),
                image: s.image.clone(),
                ports: s.launched.ports.clone(),
            },
        ));
    }
    if let Some(old) = &old {
        success &= retire_dropped(agent, &old.spec, &spec, &mut steps).await;
    }
    let desired = Desired {
        spec,
        running: true,
        applied_at: mc_kit::clock::unix_now(),
        last_steps: steps.clone(),
    };
    store::commit_applied(&agent.store, &desired, &observed)?;
    Ok(Outcome { success, steps })
}

/// Launches every component on fresh ports and waits for its health.
async fn stage(
    agent: &Agent,
    spec: &Spec,
    steps: &mut Vec<Step>,
    staged: &mut Vec<Staged>,
) -> Result<(), (String, String)> {
    for c in &spec.components {
        let final_name = c.container(&spec.name);
        let busy = agent
            .podman
            .inspect(&final_name)
            .await
            .map_err(|e| (format!("{}/container", c.name), e.to_string()))?
            .is_some();
        let name = if busy {
            format!("{final_name}-next")
        } else {
            final_name.clone()
        };
        let taken: Vec<u16> = staged
            .iter()
            .flat_map(|s| s.launched.ports.values().copied())
            .collect();
        let launched = agent
            .launch(&spec.name, c, &name, None, &taken, steps)
            .await
            .map_err(|(step, m)| (format!("{}/{step}", c.name), m))?;
        staged.push(Staged {
            component: c.name.clone(),
            launched,
            final_name,
            image: c.image.clone(),
        });
    }
    Ok(())
}

async fn switch_routes(
    agent: &Agent,
    spec: &Spec,
    staged: &[Staged],
    steps: &mut Vec<Step>,
    switched: &mut Vec<Previous>,
) -> Result<(), (String, String)> {
    for (c, s) in spec.components.iter().zip(staged) {
        for r in &c.routes {
            let step = format!("{}/route", c.name);
            let Some(port) = s.launched.ports.get(&r.name) else {
                return Err((step, format!("no port for route {}", r.name)));
            };
            let backend = agent.backend(*port).to_string();
            match agent.routes.switch(&r.hostname, r.mode, &backend).await {
                Ok(Some(prev)) => {
                    switched.push(prev);
                    steps.push(ok(&step, format!("{} → {backend}", r.hostname)));
                }
                Ok(None) => steps.push(ok(&step, "no data plane configured on this node")),
                Err(e) => return Err((step, e.to_string())),
            }
        }
    }
    Ok(())
}

async fn rollback(agent: &Agent, staged: &[Staged], switched: &[Previous], steps: &mut Vec<Step>) {
    if let Err(e) = agent.routes.restore(switched).await {
        steps.push(failed("rollback/route", e.to_string()));
    }
    for s in staged {
        if let Err(e) = agent.podman.remove(&s.launched.name).await {
            steps.push(failed("rollback/container", e.to_string()));
        }
    }
}

/// Stops and removes the container holding `name`.
async fn retire(agent: &Agent, name: &str) -> Result<(), String> {
    if let Err(e) = agent.podman.stop(name, agent.grace()).await {
        tracing::warn!(container = name, error = %e, "stopping the old container");
    }
    agent.podman.remove(name).await.map_err(|e| e.to_string())
}

/// Components and hostnames the old spec had and the new one does not.
async fn retire_dropped(agent: &Agent, old: &Spec, new: &Spec, steps: &mut Vec<Step>) -> bool {
    let mut success = true;
    let kept: BTreeSet<&str> = new
        .components
        .iter()
        .flat_map(|c| c.routes.iter().map(|r| r.hostname.as_str()))
        .collect();
    for c in &old.components {
        for r in c
            .routes
            .iter()
            .filter(|r| !kept.contains(r.hostname.as_str()))
        {
            if let Err(e) = agent.routes.remove(&r.hostname, None).await {
                success = false;
                steps.push(failed(&format!("{}/route", c.name), e.to_string()));
            }
        }
        if !new.components.iter().any(|n| n.name == c.name) {
            match retire(agent, &c.container(&old.name)).await {
                Ok(()) => steps.push(ok(
                    &format!("{}/container", c.name),
                    "removed (no longer in the spec)",
                )),
                Err(m) => {
                    success = false;
                    steps.push(failed(&format!("{}/container", c.name), m));
                }
            }
        }
    }
    success
}
