//! Flapping: a container Podman keeps restarting (its restart policy,
//! `podman.restart`) is reported. Every status read and every pass of the
//! watcher (`services.watch_interval`) records each container's id and
//! restart count; a container whose count rose by `services.flap_restarts`
//! or more within `services.flap_window` is flapping — a field of its
//! component status, a drift line, and the `agent_flapping_containers`
//! gauge. The watcher also keeps `agent_drift_components`.
//!
//! Invariants: only observations inside the window count, and only those
//! of the same container id (a new container starts over); memory is
//! bounded: at most [`MAX_SAMPLES`] per container, and containers not seen
//! for a window are forgotten. Observations live in memory: a restarted
//! agent starts counting again.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use mc_kit::metrics::{Labels, encode_family as family};
use mc_kit::shutdown::Shutdown;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use crate::agent::Agent;

/// Observations kept per container.
const MAX_SAMPLES: usize = 256;

struct Sample {
    at_ms: i64,
    id: String,
    restarts: u32,
}

/// Restart observations per container name, and the watcher's gauges.
#[derive(Default)]
pub(crate) struct Flaps {
    seen: Mutex<HashMap<String, VecDeque<Sample>>>,
    flapping: AtomicU64,
    drift: AtomicU64,
}

impl Flaps {
    /// Records that `container` (`id`) had restarted `restarts` times at
    /// `now_ms`; the restarts within the last `window_ms`.
    pub(crate) fn observe(
        &self,
        container: &str,
        id: &str,
        restarts: u32,
        now_ms: i64,
        window_ms: i64,
    ) -> u32 {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, q| q.back().is_some_and(|s| now_ms - s.at_ms <= window_ms));
        let q = seen.entry(container.to_owned()).or_default();
        if q.back().is_some_and(|s| s.id != id) {
            q.clear();
        }
        while q.front().is_some_and(|s| now_ms - s.at_ms > window_ms) || q.len() >= MAX_SAMPLES {
            q.pop_front();
        }
        q.push_back(Sample {
            at_ms: now_ms,
            id: id.to_owned(),
            restarts,
        });
        let first = q.front().map_or(restarts, |s| s.restarts);
        restarts.saturating_sub(first)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Agent {
    /// Records `restarts` of `container` and says whether it flaps, and
    /// how many restarts the window saw.
    pub(crate) fn flapping(&self, container: &str, id: &str, restarts: u32) -> (bool, u32) {
        let s = &self.cfg.services;
        let window = i64::try_from(s.flap_window.get().as_millis()).unwrap_or(i64::MAX);
        let n = self
            .flaps
            .observe(container, id, restarts, now_ms(), window);
        (n >= s.flap_restarts, n)
    }
}

/// Every `services.watch_interval`, reads every service's status (which
/// records restarts) and updates the gauges; ends with the shutdown.
pub(crate) fn spawn_watcher(agent: &Arc<Agent>, mut shutdown: Shutdown) {
    let every = agent.cfg.services.watch_interval.get();
    let weak = Arc::downgrade(agent);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.wait() => return,
            }
            let Some(agent) = weak.upgrade() else { return };
            let Ok(all) = crate::ops::list(&agent).await else {
                continue;
            };
            let flapping = all
                .iter()
                .flat_map(|s| &s.components)
                .filter(|c| c.flapping)
                .count();
            let drift: usize = all.iter().map(|s| s.drift.len()).sum();
            agent.flaps.flapping.store(flapping as u64, Relaxed);
            agent.flaps.drift.store(drift as u64, Relaxed);
        }
    });
}

/// `agent_flapping_containers` and `agent_drift_lines` on `/metrics`.
#[derive(Debug)]
pub(crate) struct FlapCollector(pub(crate) Weak<Agent>);

impl Collector for FlapCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(a) = self.0.upgrade() else {
            return Ok(());
        };
        let gauge =
            |v: &AtomicU64| -> Vec<(Labels<'_>, u64)> { vec![(Vec::new(), v.load(Relaxed))] };
        family(
            &mut enc,
            "agent_flapping_containers",
            "Containers restarted flap_restarts times or more within flap_window (last watcher pass)",
            MetricType::Gauge,
            &gauge(&a.flaps.flapping),
        )?;
        family(
            &mut enc,
            "agent_drift_lines",
            "Differences between desired and observed state (last watcher pass)",
            MetricType::Gauge,
            &gauge(&a.flaps.drift),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_count_within_the_window_and_per_container_id() {
        let f = Flaps::default();
        let w = 60_000;
        assert_eq!(f.observe("web-app", "a", 0, 0, w), 0);
        assert_eq!(f.observe("web-app", "a", 2, 10_000, w), 2);
        assert_eq!(f.observe("web-app", "a", 5, 20_000, w), 5);
        // The first observation leaves the window: counted from the next.
        assert_eq!(f.observe("web-app", "a", 6, 65_000, w), 4);
        // A new container starts over.
        assert_eq!(f.observe("web-app", "b", 1, 66_000, w), 0);
        assert_eq!(f.observe("web-app", "b", 1, 200_000, w), 0);
        // Forgotten containers are dropped; samples are bounded.
        assert_eq!(f.observe("db-app", "c", 0, 400_000, w), 0);
        assert_eq!(f.seen.lock().expect("lock").len(), 1);
        for i in 0..1000 {
            f.observe("db-app", "c", i, 400_000 + i64::from(i), w);
        }
        let seen = f.seen.lock().expect("lock");
        assert!(seen.get("db-app").is_some_and(|q| q.len() <= MAX_SAMPLES));
    }
}
