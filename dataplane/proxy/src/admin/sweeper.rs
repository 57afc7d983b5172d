//! The sweeper: where replaced snapshots are freed.
//!
//! Invariant: a worker never drops the last reference to a snapshot. Each
//! replaced snapshot is kept here until no connection holds it, then freed
//! by [`Retired::sweep`] on the admin thread: freeing a 10k-route table takes
//! milliseconds, which a worker must not spend.

use std::sync::{Arc, Mutex};

use crate::snapshot::Snapshot;

/// Snapshots replaced but possibly still held by connections.
#[derive(Default)]
pub(super) struct Retired(Mutex<Vec<Arc<Snapshot>>>);

impl Retired {
    /// Keeps `replaced` until its last reader lets go (and frees the ones already let go).
    pub(super) fn retire(&self, replaced: Arc<Snapshot>) {
        let mut retired = self.0.lock().unwrap_or_else(|p| p.into_inner());
        retired.push(replaced);
        retired.retain(|s| Arc::strong_count(s) > 1);
    }

    /// Frees the snapshots no connection holds any more; returns how many are still held.
    pub(super) fn sweep(&self) -> usize {
        let mut retired = self.0.lock().unwrap_or_else(|p| p.into_inner());
        retired.retain(|s| Arc::strong_count(s) > 1);
        retired.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::ProxyState;
    use super::super::config::ProxySection;
    use crate::firewall::RuleTarget;
    use std::sync::Arc;

    #[test]
    fn replaced_snapshots_are_freed_by_the_sweeper_not_by_their_last_reader() {
        let dir = tempfile::tempdir().expect("dir");
        let section = ProxySection {
            certificate_authorities: Some(Vec::new()),
            ..ProxySection::default()
        };
        let state = ProxyState::start(
            dir.path(),
            &section,
            &dir.path().join("x.toml"),
            1,
            Default::default(),
        )
        .expect("start");
        // A connection holds the current snapshot while the table changes.
        let held = state.published.snapshot.load_full();
        state
            .add_rule(
                RuleTarget::parse_ip("192.0.2.1").expect("ip"),
                String::new(),
            )
            .expect("publish");
        assert_eq!(state.sweep_retired(), 1, "kept while a connection holds it");
        assert_eq!(
            Arc::strong_count(&held),
            2,
            "the retired list holds a reference"
        );
        drop(held);
        assert_eq!(state.sweep_retired(), 0, "freed on the admin side");
    }
}
