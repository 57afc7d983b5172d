//! Active health checks: one task per route with a `health_check`, on the
//! admin runtime, writing each verdict into the backends' shared atomics
//! ([`crate::health::BackendState`]) that the workers read.
//!
//! Invariants: a task owns only `Arc`s of backend state and resolved
//! addresses, never a snapshot, so it cannot keep a replaced table alive.
//! After every publish [`HealthChecks::reconcile`] leaves exactly one task
//! per checked route, running the route's current check over its current
//! backends: a task whose route, check or backends changed is aborted and
//! replaced (streaks live in the backend state, so nothing restarts from
//! zero for a backend that stays).

mod probe;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use crate::health::{BackendState, now_ms};
use crate::model::{CheckKind, HealthCheck, HostPattern};
use crate::snapshot::{BackendHealth, RouteEntry, Snapshot};
use probe::Probe;

/// One backend the task checks.
#[derive(Clone)]
struct Target {
    name: String,
    host: String,
    addrs: Vec<SocketAddr>,
    state: Arc<BackendState>,
}

struct Running {
    /// The check and the backends' identities it was started for.
    signature: u64,
    task: JoinHandle<()>,
}

/// The running checks, by (listener, hostname).
#[derive(Default)]
pub(crate) struct HealthChecks(Mutex<HashMap<(String, HostPattern), Running>>);

impl Drop for HealthChecks {
    fn drop(&mut self) {
        let map = self.0.get_mut().unwrap_or_else(|p| p.into_inner());
        for (_, r) in map.drain() {
            r.task.abort();
        }
    }
}

fn targets(route: &RouteEntry) -> Vec<Target> {
    let target = |b: &BackendHealth| Target {
        name: b.backend.to_string(),
        host: b.backend.host.clone(),
        addrs: b.addrs.clone(),
        state: b.state.clone(),
    };
    let own = route.runtime.pool.backends.iter();
    let rules = route
        .l7
        .iter()
        .flat_map(|l7| l7.paths.iter())
        .flat_map(|(_, t)| t.pool.backends.iter());
    own.chain(rules).map(target).collect()
}

fn signature(check: &HealthCheck, targets: &[Target]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    check.hash(&mut h);
    for t in targets {
        Arc::as_ptr(&t.state).hash(&mut h);
        t.addrs.hash(&mut h);
    }
    h.finish()
}

impl HealthChecks {
    /// Starts, replaces and stops tasks so they match `snapshot`'s routes.
    /// Without a tokio runtime (some unit tests) nothing runs.
    pub(crate) fn reconcile(&self, snapshot: &Snapshot) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut running = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut wanted = HashMap::new();
        for listener in snapshot.listeners.values() {
            for route in listener.routes.values() {
                if let Some(check) = &route.spec.health_check {
                    wanted.insert(route.spec.key(), (check.clone(), targets(route)));
                }
            }
        }
        running.retain(|key, r| {
            let keep = wanted
                .get(key)
                .is_some_and(|(c, t)| signature(c, t) == r.signature);
            if !keep {
                r.task.abort();
            }
            keep
        });
        for (key, (check, targets)) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let signature = signature(&check, &targets);
            let route = format!("{}/{}", key.0, key.1);
            let task = runtime.spawn(run(route, check, targets));
            running.insert(key, Running { signature, task });
        }
    }
}

/// Checks every target each interval, all at once, until aborted.
async fn run(route: String, check: HealthCheck, targets: Vec<Target>) {
    let tls = match check.kind {
        CheckKind::Tls => {
            let roots = Arc::new(rustls::RootCertStore::empty());
            crate::tls::backend_client_config(None, &roots, true).ok()
        }
        _ => None,
    };
    let probe = Arc::new(Probe {
        kind: check.kind.clone(),
        timeout: check.timeout,
        tls,
    });
    let mut tick = tokio::time::interval(check.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut probes = tokio::task::JoinSet::new();
        for t in &targets {
            let (t, probe) = (t.clone(), probe.clone());
            probes.spawn(async move {
                let mut result = Err("does not resolve".to_owned());
                for addr in &t.addrs {
                    result = probe.run(*addr, &t.host).await;
                    if result.is_ok() {
                        break;
                    }
                }
                (t, result)
            });
        }
        while let Some(done) = probes.join_next().await {
            let Ok((t, result)) = done else { continue };
            let changed = t
                .state
                .checked(result.is_ok(), check.rise, check.fall, now_ms());
            match (changed, result) {
                (true, Ok(())) => {
                    tracing::info!(route, backend = t.name, "health check passes; backend up");
                }
                (true, Err(why)) => {
                    tracing::warn!(
                        route,
                        backend = t.name,
                        why,
                        "health check fails; backend down"
                    );
                }
                (false, Err(why)) => {
                    tracing::debug!(route, backend = t.name, why, "health check failed");
                }
                (false, Ok(())) => {}
            }
        }
    }
}
