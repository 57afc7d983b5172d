//! Online garbage collection: reference counts kept transactionally plus a
//! grace period (docs/design/mcr.md, "Garbage collection, online"). Pushes
//! and pulls continue while it runs: there is no global lock, every step is
//! a short redb write transaction of at most [`sweep::BATCH`] rows, and
//! writers are serialised by redb itself.
//!
//! **Invariants.**
//! 1. A blob referenced by a stored manifest is never deleted: a link with
//!    `refs > 0` is never removed and a blob row with `links > 0` never
//!    deleted; both conditions are re-checked inside the write transaction
//!    that removes the row, so a manifest PUT or upload committed between
//!    a scan and its apply wins.
//! 2. Nothing in flight is deleted. Upload bytes live under `uploads/`,
//!    which only session expiry touches. If a client saw digest D in
//!    repository R at time t (HEAD/GET 200, upload or mount 201), a manifest
//!    PUT in R referencing D succeeds until at least t + `grace`: a link is
//!    removed only `grace` after it was created or last unreferenced; a
//!    removed link is kept in `unlinked` while the blob row lives, and the
//!    blob row lives `grace` after its last link went, during which a
//!    manifest PUT relinks it (`Core::put_manifest`).
//! 3. An object on disk is deleted only when no blob row names it: either
//!    its row was deleted in the same transaction that recorded it in
//!    `gc_pending`, or (orphans: crashed commits) no row names it and its
//!    mtime, set when it was moved into place just before its row's
//!    commit, is older than `grace`. Each stored copy is a distinct file
//!    (`.<inc>`), so deleting an old copy never removes a new upload.
//!
//! One run at a time (a second start is refused with the running run's id);
//! a cancel stops the run at its next batch boundary, between transactions,
//! so what it did holds and what it did not is left for the next run;
//! progress is written to the run's `gc_runs` row in each batch's
//! transaction; a run cut by a restart is marked `interrupted` at open, and
//! every step is idempotent, so the next run finishes the work.

pub(crate) mod api;
pub(crate) mod retention;
pub(crate) mod retention_api;
#[cfg(test)]
mod retention_tests;
pub(crate) mod sweep;
pub(crate) mod tables;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mc_kit::api::ApiError;
use mc_kit::clock::unix_now;
use mc_kit::store::StoreError;
use mc_kit::store::audit::AuditEvent;
use mc_kit::store::json::{ReadTx, WriteTx};

use crate::core::Core;
use crate::core::uploads::Sessions;
use crate::store::{BLOBS, LINKS};
use sweep::Progress;
use tables::{Counters, GC_RUNS, Item, RunRow};

/// Items a dry run lists.
pub(crate) const MAX_ITEMS: usize = 1000;
/// Runs kept in `gc_runs` (older ones are dropped when a run starts).
pub(crate) const MAX_RUNS: usize = 100;
const CANCELLED: &str = "cancelled";

/// The clock GC reads (tests move it).
pub(crate) type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The GC of one registry: its settings and the one-run-at-a-time guard.
pub(crate) struct Gc {
    grace: i64,
    running: Mutex<Option<String>>,
    /// Set by [`Gc::cancel`]; read at every batch boundary of the running run.
    cancel: AtomicBool,
    clock: Clock,
}

fn store_err(e: StoreError) -> ApiError {
    ApiError::internal(e)
}

impl Gc {
    pub(crate) fn new(grace: std::time::Duration, clock: Clock) -> Self {
        Self {
            grace: i64::try_from(grace.as_secs()).unwrap_or(i64::MAX),
            running: Mutex::new(None),
            cancel: AtomicBool::new(false),
            clock,
        }
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks runs left `running` by a previous process as `interrupted`.
    pub(crate) fn mark_interrupted(core: &Core) -> Result<u64, StoreError> {
        let tx = WriteTx::begin(&core.store)?;
        let mut n = 0;
        for (k, mut row) in ReadTx::begin(&core.store)?.entries(GC_RUNS)? {
            if row.state == "running" {
                row.state = "interrupted".into();
                tx.put(GC_RUNS, &k, &row)?;
                n += 1;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Creates the run's row and claims the one-run guard.
    pub(crate) fn begin(&self, core: &Core, dry_run: bool, by: &str) -> Result<RunRow, ApiError> {
        let mut running = self.guard();
        if let Some(id) = running.as_ref() {
            return Err(ApiError::FailedPrecondition(format!(
                "a GC run is already running: {id}"
            )));
        }
        let now = (self.clock)();
        let id = format!("gc-{now:012}-{:08x}", rand::random::<u32>());
        let row = RunRow {
            id: id.clone(),
            dry_run,
            by: by.to_owned(),
            started_at: now,
            finished_at: None,
            state: "running".into(),
            phase: "links".into(),
            counters: Counters::default(),
            error: None,
            items: Vec::new(),
        };
        let tx = WriteTx::begin(&core.store).map_err(store_err)?;
        let old = ReadTx::begin(&core.store)
            .map_err(store_err)?
            .entries(GC_RUNS)
            .map_err(store_err)?;
        for (k, _) in old.iter().take((old.len() + 1).saturating_sub(MAX_RUNS)) {
            tx.delete(GC_RUNS.def(), k).map_err(store_err)?;
        }
        tx.put(GC_RUNS, id.as_bytes(), &row).map_err(store_err)?;
        tx.commit().map_err(store_err)?;
        self.cancel.store(false, Ordering::SeqCst);
        *running = Some(id);
        Ok(row)
    }

    /// Asks run `id` to stop at its next batch boundary.
    pub(crate) fn cancel(&self, core: &Core, id: &str) -> Result<(), ApiError> {
        let running = self.guard();
        if running.as_deref() == Some(id) {
            self.cancel.store(true, Ordering::SeqCst);
            return Ok(());
        }
        let row = Self::get(core, id)?;
        Err(ApiError::FailedPrecondition(format!(
            "GC run {id} is not running ({})",
            row.state
        )))
    }

    /// An error that ends the run when a cancel was asked for.
    fn stop_if_cancelled(&self) -> Result<(), StoreError> {
        if self.cancel.load(Ordering::SeqCst) {
            return Err(StoreError::other(CANCELLED));
        }
        Ok(())
    }

    /// Performs run `id` (blocking), records how it ended, releases the guard.
    pub(crate) fn execute(
        &self,
        core: &Core,
        sessions: &Sessions,
        id: &str,
        dry_run: bool,
    ) -> RunRow {
        let result = if dry_run {
            self.dry(core, id)
        } else {
            self.sweep(core, sessions, id)
        };
        let finished = self.finish(core, id, result);
        *self.guard() = None;
        finished
    }

    /// `begin` then `execute`, on this thread (tests).
    #[cfg(test)]
    pub(crate) fn run_now(
        &self,
        core: &Core,
        sessions: &Sessions,
        dry_run: bool,
        by: &str,
    ) -> Result<RunRow, ApiError> {
        let row = self.begin(core, dry_run, by)?;
        Ok(self.execute(core, sessions, &row.id, dry_run))
    }

    fn finish(
        &self,
        core: &Core,
        id: &str,
        result: Result<(Counters, Vec<Item>), StoreError>,
    ) -> RunRow {
        let now = (self.clock)();
        let write = || -> Result<RunRow, StoreError> {
            let tx = WriteTx::begin(&core.store)?;
            let mut row = tx
                .get(GC_RUNS, id.as_bytes())?
                .ok_or_else(|| StoreError::other("gc run row vanished"))?;
            row.finished_at = Some(now);
            row.phase = "finished".into();
            match &result {
                Ok((c, items)) => {
                    row.state = "done".into();
                    row.counters = c.clone();
                    row.items = items.clone();
                }
                Err(_) if self.cancel.load(Ordering::SeqCst) => {
                    row.state = "cancelled".into();
                }
                Err(e) => {
                    row.state = "failed".into();
                    row.error = Some(e.to_string());
                }
            }
            tx.audit(AuditEvent {
                seq: 0,
                at: now,
                actor: row.by.clone(),
                action: "registry.gc".into(),
                target: id.to_owned(),
                source_ip: String::new(),
                result: row.state.clone(),
                detail: serde_json::to_string(&row.counters).unwrap_or_default(),
            })?;
            tx.put(GC_RUNS, id.as_bytes(), &row)?;
            tx.commit()?;
            Ok(row)
        };
        match write() {
            Ok(row) => row,
            Err(e) => {
                tracing::error!(error = %e, run = id, "recording the end of a GC run");
                RunRow {
                    id: id.to_owned(),
                    dry_run: false,
                    by: String::new(),
                    started_at: now,
                    finished_at: Some(now),
                    state: "failed".into(),
                    phase: "finished".into(),
                    counters: Counters::default(),
                    error: Some(e.to_string()),
                    items: Vec::new(),
                }
            }
        }
    }

    /// Steps 1–4 for real.
    fn sweep(
        &self,
        core: &Core,
        sessions: &Sessions,
        id: &str,
    ) -> Result<(Counters, Vec<Item>), StoreError> {
        let grace = self.grace;
        let mut p = Progress {
            id,
            phase: "links",
            counters: Counters::default(),
        };
        // Objects a crashed run recorded but did not delete.
        let leftover = sweep::pending(&core.store)?;
        self.delete_objects(core, &leftover)?;

        let mut cursor: Option<Vec<u8>> = None;
        loop {
            self.stop_if_cancelled()?;
            let now = (self.clock)();
            let (cands, next, seen) = sweep::scan(&core.store, LINKS, cursor.as_deref(), |l| {
                sweep::link_expired(l, now, grace)
            })?;
            p.counters.links_scanned += seen;
            let keys: Vec<Vec<u8>> = cands.into_iter().map(|(k, _)| k).collect();
            sweep::remove_links(&core.store, &keys, now, grace, &mut p)?;
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }

        p.phase = "blobs";
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            self.stop_if_cancelled()?;
            let now = (self.clock)();
            let (cands, next, seen) = sweep::scan(&core.store, BLOBS, cursor.as_deref(), |b| {
                sweep::blob_expired(b, now, grace)
            })?;
            p.counters.blobs_scanned += seen;
            let keys: Vec<Vec<u8>> = cands.into_iter().map(|(k, _)| k).collect();
            let (_, objects) = sweep::remove_blobs(&core.store, &keys, now, grace, &mut p)?;
            self.delete_objects(core, &objects)?;
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }

        p.phase = "orphans";
        let now = (self.clock)();
        let objects = core.fs.list_objects().map_err(StoreError::other)?;
        for chunk in objects.chunks(sweep::BATCH) {
            self.stop_if_cancelled()?;
            let tx = ReadTx::begin(&core.store)?;
            let mut doomed = Vec::new();
            for (key, mtime, _) in chunk {
                if sweep::older(*mtime, grace, now) && sweep::is_orphan(&tx, key)? {
                    doomed.push(key.clone());
                }
            }
            drop(tx);
            // Again in a fresh snapshot: a commit may have landed since.
            let tx = ReadTx::begin(&core.store)?;
            let mut confirmed = Vec::new();
            for key in doomed {
                if sweep::is_orphan(&tx, &key)? {
                    confirmed.push(key);
                }
            }
            drop(tx);
            for key in &confirmed {
                core.fs.delete_object(key).map_err(StoreError::other)?;
                p.counters.orphans_removed += 1;
            }
        }

        p.phase = "uploads";
        self.stop_if_cancelled()?;
        p.counters.uploads_removed += sessions.sweep(&core.fs) as u64;
        Ok((p.counters, Vec::new()))
    }

    fn delete_objects(&self, core: &Core, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            core.fs.delete_object(key).map_err(StoreError::other)?;
        }
        sweep::clear_pending(&core.store, keys)
    }

    /// Steps 1–3 evaluated now, in read transactions: what would go.
    fn dry(&self, core: &Core, _id: &str) -> Result<(Counters, Vec<Item>), StoreError> {
        let grace = self.grace;
        let now = (self.clock)();
        let mut c = Counters::default();
        let mut items = Vec::new();
        let push = |items: &mut Vec<Item>, it: Item| {
            if items.len() < MAX_ITEMS {
                items.push(it);
            }
        };
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            self.stop_if_cancelled()?;
            let (cands, next, seen) = sweep::scan(&core.store, LINKS, cursor.as_deref(), |l| {
                sweep::link_expired(l, now, grace)
            })?;
            c.links_scanned += seen;
            for (k, l) in cands {
                let (repo, digest) = split_key(&k);
                c.links_removed += 1;
                push(
                    &mut items,
                    Item {
                        kind: "link".into(),
                        repository: repo,
                        digest,
                        size: l.size,
                    },
                );
            }
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            self.stop_if_cancelled()?;
            let (cands, next, seen) = sweep::scan(&core.store, BLOBS, cursor.as_deref(), |b| {
                sweep::blob_expired(b, now, grace)
            })?;
            c.blobs_scanned += seen;
            for (k, b) in cands {
                c.blobs_removed += 1;
                c.bytes_reclaimed += b.size;
                let digest = String::from_utf8_lossy(&k).into_owned();
                push(
                    &mut items,
                    Item {
                        kind: "blob".into(),
                        repository: String::new(),
                        digest,
                        size: b.size,
                    },
                );
            }
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        let tx = ReadTx::begin(&core.store)?;
        for (key, mtime, size) in core.fs.list_objects().map_err(StoreError::other)? {
            if sweep::older(mtime, grace, now) && sweep::is_orphan(&tx, &key)? {
                c.orphans_removed += 1;
                c.bytes_reclaimed += size;
                push(
                    &mut items,
                    Item {
                        kind: "orphan".into(),
                        repository: String::new(),
                        digest: key,
                        size,
                    },
                );
            }
        }
        Ok((c, items))
    }

    /// Runs, newest first, at most `n`.
    pub(crate) fn list(core: &Core, n: usize) -> Result<Vec<RunRow>, ApiError> {
        ReadTx::begin(&core.store)
            .and_then(|tx| tx.last(GC_RUNS, None, n))
            .map_err(store_err)
    }

    /// One run.
    pub(crate) fn get(core: &Core, id: &str) -> Result<RunRow, ApiError> {
        ReadTx::begin(&core.store)
            .and_then(|tx| tx.get(GC_RUNS, id.as_bytes()))
            .map_err(store_err)?
            .ok_or_else(|| ApiError::NotFound(format!("no GC run {id}")))
    }
}

fn split_key(key: &[u8]) -> (String, String) {
    let i = key.iter().position(|b| *b == 0).unwrap_or(key.len());
    (
        String::from_utf8_lossy(&key[..i]).into_owned(),
        String::from_utf8_lossy(key.get(i + 1..).unwrap_or_default()).into_owned(),
    )
}

/// The production clock.
pub(crate) fn system_clock() -> Clock {
    Arc::new(unix_now)
}

/// Starts the periodic GC (every `gc_interval`) and retention (every
/// `retention_interval`) on the current tokio runtime; an interval of 0 is
/// off. The tasks end when the registry is dropped.
pub(crate) fn schedule(mcr: &Arc<crate::Mcr>) {
    periodic(mcr, mcr.config.gc_interval.get(), "GC", |m| {
        // A run already going (started by an operator) is left alone.
        if let Err(e) = m.gc_start("gc-scheduler", false) {
            tracing::debug!(error = %e, "scheduled GC skipped");
        }
    });
    periodic(mcr, mcr.config.retention_interval.get(), "retention", |m| {
        let m = m.clone();
        // Rules may walk every repository: off the async workers.
        tokio::task::spawn_blocking(move || {
            match m
                .core
                .retention_run(None, false, "retention-scheduler", unix_now())
            {
                Ok(r) => tracing::info!(report = ?r, "scheduled retention run"),
                Err(e) => tracing::warn!(error = %e, "scheduled retention run failed"),
            }
        });
    });
}

fn periodic(
    mcr: &Arc<crate::Mcr>,
    every: std::time::Duration,
    what: &'static str,
    job: impl Fn(&Arc<crate::Mcr>) + Send + 'static,
) {
    if every.is_zero() {
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(job = what, "no runtime: periodic job not scheduled");
        return;
    };
    let weak = Arc::downgrade(mcr);
    rt.spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(m) = weak.upgrade() else { return };
            job(&m);
        }
    });
}
