//! Scheduled snapshots: a service whose definition has `[snapshots] every
//! = …` gets a snapshot (the same `snapshots::take` as `mcctl snapshot`)
//! every interval, the newest `keep` kept.
//!
//! Invariants: the next due time of each scheduled service is a row in
//! redb (`store::SCHEDULE`), written after each run, so a restarted master
//! keeps the schedule (a run cut short by a crash runs again at start); a
//! service newly scheduled gets its first snapshot one interval after the
//! master first sees it; runs take the master's operation lock, so no two
//! snapshots of a service (nor a snapshot and a deploy) overlap; the loop
//! runs them one after the other; a failed run is a deploy record; an undeployed service's row is deleted
//! with the service row (`store::finish`).

use std::sync::atomic::Ordering::Relaxed;

use mc_service::caller::Caller;

use crate::Master;
use crate::deploy::{node_of, record, step};
use crate::registry::now_ms;
use crate::store::{self, Change};

/// The account named in the deploy records of scheduled runs.
const BY: &str = "scheduler";

/// Runs every scheduled snapshot that is due.
pub(crate) async fn run_due(m: &Master) {
    let Ok(services) = store::services(&m.store) else {
        return;
    };
    for row in services {
        let name = row.def.name.clone();
        let Some(s) = &row.def.snapshots else {
            continue;
        };
        let every = i64::try_from(s.every.get().as_secs()).unwrap_or(i64::MAX);
        let now = now_ms() / 1000;
        match store::next_snapshot(&m.store, &name) {
            Ok(Some(at)) if at > now => continue,
            Ok(Some(_)) => {}
            Ok(None) => {
                set_next(m, &name, now.saturating_add(every));
                continue;
            }
            Err(e) => {
                tracing::warn!(service = %name, error = %e, "reading the snapshot schedule");
                continue;
            }
        }
        let ok = run_one(m, &name).await;
        m.counters.snapshots[usize::from(!ok)].fetch_add(1, Relaxed);
        set_next(m, &name, (now_ms() / 1000).saturating_add(every));
    }
}

fn set_next(m: &Master, service: &str, at: i64) {
    // Only while the service is still deployed (an undeploy may have run
    // meanwhile and deleted its row).
    if matches!(store::service(&m.store, service), Ok(Some(_)))
        && let Err(e) = store::set_next_snapshot(&m.store, service, Some(at))
    {
        tracing::warn!(service, error = %e, "writing the snapshot schedule");
    }
}

/// One scheduled snapshot; whether it succeeded. A failure is recorded like
/// an operator's action; a success is its snapshot row (recording every
/// run would push the service's deploy records out of their bound).
async fn run_one(m: &Master, service: &str) -> bool {
    let _guard = m.ops.lock().await;
    let Ok(Some(row)) = store::service(&m.store, service) else {
        return false;
    };
    let r = match node_of(m, &row.node).and_then(|n| crate::agents::connect(m, &n)) {
        Ok(agent) => crate::snapshots::take(m, &agent, service).await,
        Err(e) => Err(e.to_string()),
    };
    match &r {
        Ok(s) => tracing::info!(service, id = %s.id, "scheduled snapshot"),
        Err(e) => {
            tracing::warn!(service, error = %e, "scheduled snapshot failed");
            let steps = vec![step("snapshot", false, e.clone())];
            let caller = Caller::default();
            let mut rec = record(&caller, service, &row.node, "scheduled-snapshot", steps);
            BY.clone_into(&mut rec.by);
            if let Err(e) = store::finish(&m.store, &rec, Change::Keep) {
                tracing::warn!(service, error = %e, "recording a scheduled snapshot");
            }
        }
    }
    r.is_ok()
}

/// When `service`'s next scheduled snapshot is due (0: not scheduled).
pub(crate) fn next_at(m: &Master, service: &str) -> i64 {
    store::next_snapshot(&m.store, service)
        .ok()
        .flatten()
        .unwrap_or(0)
}
