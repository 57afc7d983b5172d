//! The probe after missed heartbeats: once a node has sent none for
//! `unhealthy_after` intervals, the master asks its agent's
//! `grpc.health.v1` over the agent's TLS listener (verified against
//! `mcp.agent_ca`; the method is public, so a broken token does not look
//! like a dead node), within `probe_timeout`, and stores what it found on
//! the node's row. `registry::health` reads it: `SERVING` → healthy, any
//! other answer → unhealthy, no answer (refused, TLS, timeout) →
//! unreachable.
//!
//! Invariants: a node is probed at most once per heartbeat interval, and
//! only while its heartbeats are stale; the result is written under the
//! registry lock on a freshly read row, so it never overwrites a heartbeat
//! that arrived meanwhile (the health rule ignores a probe older than the
//! last heartbeat anyway).

use std::sync::atomic::Ordering::Relaxed;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::Master;
use crate::registry::{self, now_ms};
use crate::store::{self, NodeRow, Probe};

/// What one probe found, from the agent's answer or the lack of one.
pub(crate) fn classify(
    r: Result<Result<ServingStatus, tonic::Status>, tokio::time::error::Elapsed>,
    timeout: std::time::Duration,
) -> (bool, bool, String) {
    match r {
        Err(_) => (false, false, format!("no answer within {timeout:?}")),
        Ok(Ok(ServingStatus::Serving)) => (true, true, "serving".to_owned()),
        Ok(Ok(s)) => (true, false, format!("answered {}", s.as_str_name())),
        // tonic reports a connection that never opened as UNAVAILABLE.
        Ok(Err(s)) if s.code() == tonic::Code::Unavailable => {
            (false, false, s.message().to_owned())
        }
        Ok(Err(s)) => (true, false, format!("{:?}: {}", s.code(), s.message())),
    }
}

/// Probes `node`'s agent once.
pub(crate) async fn probe(m: &Master, node: &NodeRow) -> Probe {
    let timeout = m.config.probe_timeout.get();
    let at_ms = now_ms();
    let channel = match crate::agents::channel(m, node, timeout) {
        Ok(c) => c,
        Err(e) => {
            return Probe {
                at_ms,
                reached: false,
                ok: false,
                message: e.to_string(),
            };
        }
    };
    let call = async {
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map(|r| r.into_inner().status())
    };
    let (reached, ok, message) = classify(tokio::time::timeout(timeout, call).await, timeout);
    Probe {
        at_ms,
        reached,
        ok,
        message,
    }
}

/// Probes every node whose heartbeats stopped and whose last probe is
/// older than one heartbeat interval; stores each result.
pub(crate) async fn sweep(m: &Master) {
    let Ok(nodes) = store::nodes(&m.store) else {
        return;
    };
    let interval = i64::try_from(m.config.heartbeat_interval.get().as_millis()).unwrap_or(i64::MAX);
    for n in nodes {
        let now = now_ms();
        let recent = n
            .probe
            .as_ref()
            .is_some_and(|p| p.at_ms > n.last_heartbeat_ms && now - p.at_ms < interval);
        if !registry::stale(m, &n, now) || recent {
            continue;
        }
        let before = registry::health(m, &n, now);
        let p = probe(m, &n).await;
        m.counters.probe(&p);
        let _guard = m.registry.lock().await;
        let Ok(Some(mut row)) = store::node(&m.store, &n.name) else {
            continue;
        };
        row.probe = Some(p.clone());
        if let Err(e) = store::put_node(&m.store, &row) {
            tracing::warn!(node = %row.name, error = %e, "storing a probe");
            continue;
        }
        let after = registry::health(m, &row, now_ms());
        if after != before {
            tracing::warn!(node = %row.name, health = after.as_str_name(), probe = %p.message, "node health changed");
        }
    }
}

/// Counters of the master's background work, for `/metrics`.
#[derive(Default)]
pub(crate) struct Counters {
    /// Probes by result: serving, unhealthy, unreachable.
    pub(crate) probes: [std::sync::atomic::AtomicU64; 3],
    /// Scheduled snapshots: ok, failed.
    pub(crate) snapshots: [std::sync::atomic::AtomicU64; 2],
}

impl Counters {
    fn probe(&self, p: &Probe) {
        let i = match (p.reached, p.ok) {
            (_, true) => 0,
            (true, false) => 1,
            (false, _) => 2,
        };
        self.probes[i].fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn answers_are_classified() {
        let t = Duration::from_secs(1);
        let elapsed = tokio::time::timeout(Duration::ZERO, std::future::pending::<()>())
            .await
            .expect_err("elapsed");
        assert!(!classify(Err(elapsed), t).0, "a timeout is unreachable");
        assert_eq!(
            classify(Ok(Ok(ServingStatus::Serving)), t),
            (true, true, "serving".into())
        );
        let not = classify(Ok(Ok(ServingStatus::NotServing)), t);
        assert_eq!((not.0, not.1), (true, false));
        let refused = classify(Ok(Err(tonic::Status::unavailable("tcp connect error"))), t);
        assert_eq!((refused.0, refused.1), (false, false));
        let denied = classify(Ok(Err(tonic::Status::permission_denied("no"))), t);
        assert_eq!((denied.0, denied.1), (true, false));
    }
}
