//! DEK rotation per mount and the resumable `rewrap` job that reseals the
//! mount's rows under the newest DEK, then drops the older versions.
//!
//! Invariants: every sealed row names its DEK version, so rows under an
//! older version keep opening until the job's last transaction; a new
//! version is in memory before the rotation commits and current only
//! after; each batch is one write transaction that reseals its rows and
//! saves the cursor, so kill -9 loses nothing and the job resumes where it
//! stopped; the last transaction (under the key lock) reseals stragglers,
//! then deletes the old versions and the job row; memory follows it.

use std::sync::{Arc, PoisonError, Weak};
use std::time::{Duration, Instant};

use mc_kit::api::ApiError;
use mc_kit::store::Table;
use mc_kit::store::json::{ReadTx, WriteTx};
use redb::{ReadableTable, TableHandle};
use serde::{Deserialize, Serialize};

use super::keys::{Key, aad_dek, wrap};
use super::rings::copy_key;
use super::{Actor, Barrier, DekRecord, Unsealed, envelope, key_err, now_unix};
use crate::store::{BARRIER_JOBS, BARRIER_KEYS, dek_key};

/// How long a job waits for operations holding pre-rotation keys.
const QUIESCE_WAIT: Duration = Duration::from_secs(5);

/// `barrier_jobs/<mount id>`: one mount's rewrap job (plain; no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RewrapJob {
    pub(crate) mount: u64,
    /// Rows sealed under a lower version are resealed under this one.
    pub(crate) target: u32,
    /// Rows in scope when the job (re)started.
    pub(crate) rows_total: u64,
    pub(crate) rows_scanned: u64,
    pub(crate) rows_resealed: u64,
    /// The cursor: an index into the mount's table list, and the last row
    /// key done in that table.
    pub(crate) table: usize,
    pub(crate) after: Option<Vec<u8>>,
    pub(crate) started_at: i64,
    pub(crate) updated_at: i64,
}

/// What one step of a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// More to do; the job as saved.
    More(RewrapJob),
    /// Finished: old versions dropped (how many rows were resealed in all).
    Done { resealed: u64, dropped: u64 },
    /// No job for this mount.
    Idle,
}

fn job_key(mount: u64) -> [u8; 8] {
    mount.to_be_bytes()
}

fn jobs_actor() -> Actor {
    Actor {
        actor: "metacrypt-jobs".to_owned(),
        ip: String::new(),
    }
}

/// A raw row: key and stored bytes.
type Row = (Vec<u8>, Vec<u8>);

/// Up to `limit` rows of `table` under `prefix`, after `after`, in key order.
fn next_rows(
    tx: &WriteTx,
    table: Table,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<Row>, ApiError> {
    let t = tx.raw().open_table(table).map_err(ApiError::internal)?;
    let mut out = Vec::new();
    let start = after.unwrap_or(prefix);
    for row in t.range(start..).map_err(ApiError::internal)? {
        let (k, v) = row.map_err(ApiError::internal)?;
        let key = k.value();
        if !key.starts_with(prefix) || out.len() >= limit {
            break;
        }
        if after.is_some_and(|a| key == a) {
            continue;
        }
        out.push((key.to_vec(), v.value().to_vec()));
    }
    Ok(out)
}

/// How many rows of `tables` start with `prefix`.
fn count_rows(tx: &WriteTx, tables: &[Table], prefix: &[u8]) -> Result<u64, ApiError> {
    let mut n = 0;
    for table in tables {
        let t = tx.raw().open_table(*table).map_err(ApiError::internal)?;
        for row in t.range(prefix..).map_err(ApiError::internal)? {
            let (k, _) = row.map_err(ApiError::internal)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            n += 1;
        }
    }
    Ok(n)
}

impl Unsealed {
    /// `sealed` resealed under `target` when it names a lower DEK version;
    /// `None` when it is current (or not an envelope at all).
    fn reseal_below(
        &self,
        mount: u64,
        table: &str,
        row_key: &[u8],
        sealed: &[u8],
        target: u32,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let Ok(env) = envelope::parse(sealed) else {
            return Ok(None);
        };
        if env.dek_version >= target {
            return Ok(None);
        }
        let plain = self.open_row(mount, table, row_key, sealed)?;
        let (key, _) = self
            .rings
            .get(&mount)
            .and_then(|r| r.keys.get(&target))
            .ok_or_else(|| ApiError::internal("no target DEK"))?;
        envelope::seal(key, target, table, row_key, &plain)
            .map(Some)
            .map_err(ApiError::internal)
    }

    /// Each mount's DEK versions (ascending) and its current one.
    pub(crate) fn dek_versions(&self) -> Vec<(u64, u32, Vec<u32>)> {
        self.rings
            .iter()
            .map(|(m, r)| (*m, r.current, r.keys.keys().copied().collect()))
            .collect()
    }
}

impl Barrier {
    /// Rotates `mount`'s DEK: version v+1 becomes current, and its rewrap
    /// job over `tables` starts (or, running, is raised to v+1). Returns
    /// the new version and the job.
    pub(crate) fn rotate_dek(
        &self,
        mount: u64,
        tables: &[Table],
        who: &Actor,
    ) -> Result<(u32, RewrapJob), ApiError> {
        let _changing = self.key_lock();
        let keys = self.unsealed()?;
        let ring = keys
            .rings
            .get(&mount)
            .ok_or_else(|| ApiError::NotFound("no such mount".to_owned()))?;
        let version = ring
            .current
            .checked_add(1)
            .ok_or_else(|| ApiError::internal("DEK versions exhausted"))?;
        let key = Key::random().map_err(key_err)?;
        // In memory first (not current), so whoever sees the new rows has it.
        let mut staged = keys.copy()?;
        if let Some(r) = staged.rings.get_mut(&mount) {
            r.keys.insert(version, copy_key(&key).map_err(key_err)?);
        }
        self.swap_unsealed(&keys, staged);
        let staged = self.unsealed()?;
        if !staged
            .rings
            .get(&mount)
            .is_some_and(|r| r.keys.contains_key(&version))
        {
            return Err(ApiError::FailedPrecondition(
                "the keys changed; retry".to_owned(),
            ));
        }
        let tx = WriteTx::begin(&self.store)?;
        if tx.get(BARRIER_KEYS, &dek_key(mount, version))?.is_some() {
            return Err(ApiError::internal("DEK version in use"));
        }
        tx.put(
            BARRIER_KEYS,
            &dek_key(mount, version),
            &DekRecord {
                mek_version: keys.mek_version,
                wrapped: wrap(&keys.mek, &key, &aad_dek(mount, version, keys.mek_version))
                    .map_err(key_err)?,
                created_at: now_unix(),
            },
        )?;
        let now = now_unix();
        let job = RewrapJob {
            mount,
            target: version,
            rows_total: count_rows(&tx, tables, &job_key(mount))?,
            rows_scanned: 0,
            rows_resealed: 0,
            table: 0,
            after: None,
            started_at: tx
                .get(BARRIER_JOBS, &job_key(mount))?
                .map_or(now, |j| j.started_at),
            updated_at: now,
        };
        tx.put(BARRIER_JOBS, &job_key(mount), &job)?;
        tx.audit(who.event(
            "barrier.rotate_dek",
            "ok",
            format!(
                "mount={mount:016x} version={version} rows={}",
                job.rows_total
            ),
        ))?;
        tx.commit()?;
        let mut next = staged.copy()?;
        if let Some(r) = next.rings.get_mut(&mount) {
            r.current = version;
        }
        self.swap_unsealed(&staged, next);
        let mut old = self
            .pre_rotation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        old.push(Arc::downgrade(&keys));
        old.push(Arc::downgrade(&staged));
        Ok((version, job))
    }

    /// Waits (at most 5 s) until no operation holds keys from before a
    /// rotation, whose writes would still use the old current version.
    pub(crate) async fn quiesce(&self) {
        let deadline = Instant::now() + QUIESCE_WAIT;
        loop {
            let busy = {
                let mut old = self
                    .pre_rotation
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                old.retain(|w: &Weak<Unsealed>| w.strong_count() > 0);
                !old.is_empty()
            };
            if !busy || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Every job row.
    pub(crate) fn rewrap_jobs(&self) -> Result<Vec<RewrapJob>, ApiError> {
        Ok(ReadTx::begin(&self.store)?.all(BARRIER_JOBS)?)
    }

    /// One step of `mount`'s job over `tables`: a batch of at most `batch`
    /// rows in one transaction, or, once every table is done, the last
    /// transaction. Needs the barrier unsealed.
    pub(crate) fn rewrap_step(
        &self,
        mount: u64,
        tables: &[Table],
        batch: usize,
    ) -> Result<Step, ApiError> {
        let keys = self.unsealed()?;
        let tx = WriteTx::begin(&self.store)?;
        let Some(mut job) = tx.get(BARRIER_JOBS, &job_key(mount))? else {
            return Ok(Step::Idle);
        };
        if job.table >= tables.len() {
            drop(tx);
            return self.finish_rewrap(mount, tables);
        }
        let prefix = job_key(mount);
        let mut budget = batch.max(1);
        while budget > 0 && job.table < tables.len() {
            let table = tables[job.table];
            let rows = next_rows(&tx, table, &prefix, job.after.as_deref(), budget)?;
            for (k, v) in &rows {
                job.rows_scanned += 1;
                if let Some(new) = keys.reseal_below(mount, table.name(), k, v, job.target)? {
                    tx.put_raw(table, k, &new)?;
                    job.rows_resealed += 1;
                }
            }
            if rows.len() < budget {
                job.table += 1;
                job.after = None;
            } else {
                job.after = rows.last().map(|(k, _)| k.clone());
            }
            budget -= rows.len();
        }
        job.updated_at = now_unix();
        tx.put(BARRIER_JOBS, &job_key(mount), &job)?;
        tx.commit()?;
        Ok(Step::More(job))
    }

    /// The job's last transaction: stragglers resealed, versions below the
    /// target and the job row deleted, audited; then memory drops them.
    fn finish_rewrap(&self, mount: u64, tables: &[Table]) -> Result<Step, ApiError> {
        let _changing = self.key_lock();
        let keys = self.unsealed()?;
        let tx = WriteTx::begin(&self.store)?;
        let Some(job) = tx.get(BARRIER_JOBS, &job_key(mount))? else {
            return Ok(Step::Idle);
        };
        let prefix = job_key(mount);
        let mut stragglers = 0u64;
        for table in tables {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let rows = next_rows(&tx, *table, &prefix, after.as_deref(), 1024)?;
                for (k, v) in &rows {
                    if let Some(new) = keys.reseal_below(mount, table.name(), k, v, job.target)? {
                        tx.put_raw(*table, k, &new)?;
                        stragglers += 1;
                    }
                }
                match rows.last() {
                    Some((k, _)) if rows.len() == 1024 => after = Some(k.clone()),
                    _ => break,
                }
            }
        }
        let dropped = tx.delete_where(BARRIER_KEYS, |k, _| {
            k.starts_with(&prefix)
                && k.get(8..12)
                    .and_then(|v| <[u8; 4]>::try_from(v).ok())
                    .is_some_and(|v| u32::from_be_bytes(v) < job.target)
        })?;
        tx.delete(BARRIER_JOBS.def(), &prefix)?;
        let resealed = job.rows_resealed + stragglers;
        tx.audit(jobs_actor().event(
            "barrier.rewrap_done",
            "ok",
            format!(
                "mount={mount:016x} version={} resealed={resealed} stragglers={stragglers} dropped={dropped}",
                job.target
            ),
        ))?;
        tx.commit()?;
        let mut next = keys.copy()?;
        if let Some(r) = next.rings.get_mut(&mount) {
            r.keys.retain(|v, _| *v >= job.target);
        }
        self.swap_unsealed(&keys, next);
        Ok(Step::Done { resealed, dropped })
    }

    /// Deletes `mount`'s job row in `tx` (with the mount).
    pub(crate) fn delete_job(&self, tx: &WriteTx, mount: u64) -> Result<(), ApiError> {
        tx.delete(BARRIER_JOBS.def(), &job_key(mount))?;
        Ok(())
    }
}
