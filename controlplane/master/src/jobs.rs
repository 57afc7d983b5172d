//! The master's background loops, started when the service opens: every
//! second, the probe sweep (`probe::sweep`), and in a loop of its own (a
//! snapshot may take minutes; probes must not wait for it) the due
//! scheduled snapshots (`schedule::run_due`).
//!
//! Invariant: a loop holds only a weak reference between ticks, so a
//! dropped master stops it; each tick's work is bounded by the number of
//! nodes and services (a probe by `probe_timeout`, a snapshot by
//! `call_timeout`).

use std::sync::Arc;
use std::time::Duration;

use crate::Master;

const TICK: Duration = Duration::from_secs(1);

pub(crate) fn spawn(m: &Arc<Master>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("no runtime: the probe and the snapshot schedule do not run");
        return;
    };
    every_tick(&rt, m, |m| {
        Box::pin(async move { crate::probe::sweep(&m).await })
    });
    every_tick(&rt, m, |m| {
        Box::pin(async move { crate::schedule::run_due(&m).await })
    });
}

type Job = fn(Arc<Master>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

fn every_tick(rt: &tokio::runtime::Handle, m: &Arc<Master>, job: Job) {
    let weak = Arc::downgrade(m);
    rt.spawn(async move {
        loop {
            tokio::time::sleep(TICK).await;
            let Some(m) = weak.upgrade() else { return };
            job(m).await;
        }
    });
}
