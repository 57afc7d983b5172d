//! The periodic tasks the jobs loop (`core/jobs.rs`) runs while unsealed,
//! each on its own interval from `[metacrypt]`; every run's outcome is
//! recorded for `sys/jobs` and the status page:
//!
//! - `transit count flush` (`count_flush`, 10 s): AES-GCM encryption
//!   counts move from memory into the stored keys, so the 2^31 budget
//!   survives restarts (counts since the last flush are lost on kill -9,
//!   which only delays a budget rotation).
//! - `transit auto-rotate` (`transit_rotation_check`, 1 h): every key whose
//!   `auto_rotate_period` has passed, or whose AES-GCM budget is spent,
//!   rotates (audited `transit.key.auto_rotate` by `metacrypt-jobs`).
//! - `kv expiry` (`kv_expiry_check`, 1 min): versions whose
//!   `delete_version_after` deletion time has passed are destroyed, in
//!   batches of `rewrap_batch_rows` paths (`engines/kv/expiry.rs`).
//! - `pki crl refresh` (`crl_refresh_check`, 5 s): CRLs near their
//!   `next_update` are re-signed (`core/pki_crl.rs`).
//! - `pki acme tidy` (`acme_tidy_check`, 1 h): expired ACME orders,
//!   authorizations and used or expired EAB keys are deleted, at most
//!   `rewrap_batch_rows` per mount and run (`engines/pki/acme/tidy.rs`).
//!
//! Invariant: a task that fails is retried at its next interval, never in
//! a tight loop, and a sealed barrier skips every task.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Metacrypt;
use crate::engines::kv::expiry;
use crate::engines::pki::acme::tidy;
use crate::engines::transit::engine::Change;
use crate::error::CryptError;

/// A task: its name, and its work (on the blocking pool).
type Work = fn(&Metacrypt) -> Result<String, CryptError>;

const TRANSIT: &str = "transit";
const KV: &str = "kv";
const PKI: &str = "pki";

/// When each task is next due.
pub(crate) struct Due {
    next: BTreeMap<&'static str, Instant>,
}

impl Due {
    /// Every task is first due one interval after the loop starts.
    pub(crate) fn new() -> Self {
        Self {
            next: BTreeMap::new(),
        }
    }
}

fn now_secs() -> u64 {
    u64::try_from(mc_kit::clock::unix_now()).unwrap_or(0)
}

impl Metacrypt {
    fn tasks(&self) -> [(&'static str, Duration, Work); 5] {
        let c = &self.config;
        [
            (
                "transit count flush",
                c.count_flush.get(),
                Self::flush_counts,
            ),
            (
                "transit auto-rotate",
                c.transit_rotation_check.get(),
                Self::auto_rotate,
            ),
            ("kv expiry", c.kv_expiry_check.get(), Self::expire_kv),
            (
                "pki crl refresh",
                c.crl_refresh_check.get(),
                Self::refresh_crls,
            ),
            ("pki acme tidy", c.acme_tidy_check.get(), Self::tidy_acme),
        ]
    }

    /// Runs the tasks that are due.
    pub(crate) async fn run_due_tasks(self: &Arc<Self>, due: &mut Due) {
        for (name, every, work) in self.tasks() {
            let now = Instant::now();
            let next = *due.next.entry(name).or_insert(now + every);
            if now < next {
                continue;
            }
            due.next.insert(name, now + every);
            let me = self.clone();
            let r = tokio::task::spawn_blocking(move || work(&me))
                .await
                .map_err(CryptError::internal)
                .and_then(|r| r);
            if let Err(e) = &r {
                tracing::warn!(task = name, error = %e, "metacrypt: task failed (retried at its next interval)");
            }
            self.jobs
                .record(name, every.as_secs(), r.map_err(|e| e.to_string()));
        }
    }

    /// Saves every cached transit key's unflushed encryption counts.
    pub(crate) fn flush_counts(&self) -> Result<String, CryptError> {
        let mut flushed = 0;
        self.run_system(TRANSIT, |a| {
            for (name, key) in self.transit().cached(a.mount().id) {
                if let Some(taken) = key.take_counts()
                    && self.transit().flush_counts(&a, &name, &taken)?
                {
                    flushed += 1;
                }
            }
            Ok(())
        })?;
        Ok(format!("{flushed} keys flushed"))
    }

    /// Rotates every transit key whose rotation is due.
    fn auto_rotate(&self) -> Result<String, CryptError> {
        self.auto_rotate_at(now_secs())
    }

    /// [`Self::auto_rotate`] as of `now` (unix seconds).
    pub(crate) fn auto_rotate_at(&self, now: u64) -> Result<String, CryptError> {
        let (mut checked, mut rotated) = (0, 0);
        self.run_system(TRANSIT, |a| {
            for name in self.transit().names(&a)? {
                checked += 1;
                let Some(key) = self.transit().key(&a, &name)? else {
                    continue;
                };
                if !key.rotation_due(now) {
                    continue;
                }
                // Counts first, so the stored budget is current.
                if let Some(taken) = key.take_counts() {
                    self.transit().flush_counts(&a, &name, &taken)?;
                }
                let mut done = false;
                self.transit()
                    .change(&a, &name, "transit.key.auto_rotate", |cur| {
                        let Some(cur) = cur else {
                            return Ok((Change::Keep, String::new()));
                        };
                        let spent = cur
                            .versions
                            .get(&cur.latest_version)
                            .map_or(0, |v| v.encryptions);
                        // Rotated meanwhile by someone else: nothing to do.
                        if !cur.rotation_due(now, spent) {
                            return Ok((Change::Keep, String::new()));
                        }
                        let mut next = cur.clone();
                        let v = next.rotate(now)?;
                        done = true;
                        Ok((Change::Put(next), format!("version={v} (auto_rotate)")))
                    })?;
                rotated += usize::from(done);
            }
            Ok(())
        })?;
        Ok(format!("{checked} keys checked, {rotated} rotated"))
    }

    /// Deletes expired ACME rows on every pki mount.
    fn tidy_acme(&self) -> Result<String, CryptError> {
        self.tidy_acme_at(mc_kit::clock::unix_now())
    }

    /// [`Self::tidy_acme`] as of `now` (unix seconds).
    pub(crate) fn tidy_acme_at(&self, now: i64) -> Result<String, CryptError> {
        let mut total = tidy::Tidied::default();
        let batch = self.config.rewrap_batch_rows;
        self.run_system(PKI, |a| {
            let done = tidy::tidy(&a, now, batch)
                .map_err(|p| CryptError::internal(format!("acme tidy: {}", p.detail)))?;
            total.orders += done.orders;
            total.authzs += done.authzs;
            total.eab_keys += done.eab_keys;
            Ok(())
        })?;
        Ok(format!(
            "{} orders, {} authorizations, {} EAB keys removed",
            total.orders, total.authzs, total.eab_keys
        ))
    }

    /// Destroys the kv versions whose `delete_version_after` has passed.
    fn expire_kv(&self) -> Result<String, CryptError> {
        self.expire_kv_at(mc_kit::clock::unix_now())
    }

    /// [`Self::expire_kv`] as of `now` (unix seconds).
    pub(crate) fn expire_kv_at(&self, now: i64) -> Result<String, CryptError> {
        let mut total = expiry::Expired::default();
        let batch = self.config.rewrap_batch_rows;
        self.run_system(KV, |a| {
            let done = expiry::destroy_expired(&a, now, batch)?;
            total.paths += done.paths;
            total.versions += done.versions;
            Ok(())
        })?;
        Ok(format!(
            "{} versions destroyed on {} paths",
            total.versions, total.paths
        ))
    }
}
