//! `sys/mounts/{mount}/rotate-dek`, `sys/jobs`, and the loop that runs
//! Metacrypt's background work while unsealed: each mount's DEK rewrap
//! job (resumable, `barrier::rewrap`) and the periodic tasks
//! (`core/tasks.rs`), each with its last run and outcome.
//!
//! Invariants: nothing runs while sealed (every step takes the unsealed
//! keys, or stops with `sealed`); a job's batches run one at a time on the
//! blocking pool with a pause between them; the loop holds only a weak
//! reference, so dropping Metacrypt ends it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use mc_kit::store::Table;
use redb::TableHandle;
use serde::Serialize;

use super::{Caller, Metacrypt};
use crate::barrier::rewrap::Step;
use crate::barrier::{Actor, SYS_MOUNT};
use crate::error::CryptError;
use crate::store::{MOUNTS, POLICY, PUBLIC_TABLES};

/// How often the loop looks for work (a rotation also wakes it).
const TICK: Duration = Duration::from_secs(1);

/// What `rotate-dek` answers.
#[derive(Debug, Clone, Serialize)]
pub struct RotatedDek {
    pub mount: String,
    pub dek_version: u32,
    /// Rows the rewrap job will look at.
    pub rows: u64,
}

/// A running rewrap job.
#[derive(Debug, Clone, Serialize)]
pub struct JobInfo {
    pub kind: &'static str,
    pub mount: String,
    pub target_version: u32,
    pub rows_total: u64,
    pub rows_scanned: u64,
    pub rows_resealed: u64,
    pub started_at: i64,
    pub updated_at: i64,
}

/// A mount's DEK versions.
#[derive(Debug, Clone, Serialize)]
pub struct RingInfo {
    pub mount: String,
    pub current: u32,
    pub versions: Vec<u32>,
}

/// A periodic task or a finished job: its last run and outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TaskInfo {
    pub name: String,
    /// 0 for work that runs on demand (rewrap).
    pub every_secs: u64,
    pub runs: u64,
    /// Runs that ended in an error.
    pub failures: u64,
    pub last_run: i64,
    /// `ok: …` or `error: …`.
    pub outcome: String,
}

/// `GET sys/jobs`.
#[derive(Debug, Clone, Serialize)]
pub struct JobsView {
    pub jobs: Vec<JobInfo>,
    pub rings: Vec<RingInfo>,
    pub tasks: Vec<TaskInfo>,
}

/// The loop's shared state: its wake-up and the tasks' last outcomes.
#[derive(Default)]
pub(crate) struct Jobs {
    wake: tokio::sync::Notify,
    tasks: Mutex<BTreeMap<String, TaskInfo>>,
}

impl Jobs {
    /// Records a run of `name` (every `every` seconds; 0 on demand).
    pub(crate) fn record(&self, name: &str, every: u64, outcome: Result<String, String>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let t = tasks.entry(name.to_owned()).or_default();
        t.name = name.to_owned();
        t.every_secs = every;
        t.runs += 1;
        t.last_run = mc_kit::clock::unix_now();
        t.outcome = match outcome {
            Ok(s) => format!("ok: {s}"),
            Err(e) => {
                t.failures += 1;
                format!("error: {e}")
            }
        };
    }

    pub(crate) fn list(&self) -> Vec<TaskInfo> {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

impl Metacrypt {
    /// The mount's name by id (`sys` for the barrier's own ring).
    fn mount_name(&self, id: u64) -> Result<Option<String>, CryptError> {
        if id == SYS_MOUNT {
            return Ok(Some("sys".to_owned()));
        }
        let keys = self.barrier.unsealed()?;
        Ok(self
            .view(&keys)?
            .mounts
            .values()
            .find(|m| m.id == id)
            .map(|m| m.name.clone()))
    }

    /// The tables holding `mount`'s sealed rows.
    fn sealed_tables(&self, mount: u64) -> Result<Vec<Table>, CryptError> {
        if mount == SYS_MOUNT {
            return Ok(vec![MOUNTS, POLICY]);
        }
        let keys = self.barrier.unsealed()?;
        let view = self.view(&keys)?;
        let m = view
            .mounts
            .values()
            .find(|m| m.id == mount)
            .ok_or_else(|| CryptError::internal("a rewrap job names no mount"))?;
        let engine = self
            .engines()
            .get(&m.kind)
            .ok_or_else(|| CryptError::internal("a mount of an unknown type"))?;
        Ok(engine
            .tables()
            .iter()
            .filter(|t| !PUBLIC_TABLES.iter().any(|p| p.name() == t.name()))
            .copied()
            .collect())
    }

    /// Rotates a mount's DEK (`sys` for the barrier's own rows) and starts
    /// its rewrap job.
    pub fn rotate_dek(&self, c: &Caller, name: &str) -> Result<RotatedDek, CryptError> {
        let keys = self.barrier.unsealed()?;
        let id = if name == "sys" {
            SYS_MOUNT
        } else {
            self.view(&keys)?
                .mounts
                .get(name)
                .map(|m| m.id)
                .ok_or_else(|| CryptError::NotFound(format!("no mount named {name}")))?
        };
        drop(keys);
        let tables = self.sealed_tables(id)?;
        let who = Actor {
            actor: c.actor(),
            ip: c.ip(),
        };
        let (version, job) = self.barrier.rotate_dek(id, &tables, &who)?;
        self.changed();
        self.jobs.wake.notify_one();
        Ok(RotatedDek {
            mount: name.to_owned(),
            dek_version: version,
            rows: job.rows_total,
        })
    }

    /// Running jobs, every mount's DEK versions, the tasks' last runs.
    pub fn jobs(&self) -> Result<JobsView, CryptError> {
        let keys = self.barrier.unsealed()?;
        let view = self.view(&keys)?;
        let name = |id: u64| {
            if id == SYS_MOUNT {
                "sys".to_owned()
            } else {
                view.mounts
                    .values()
                    .find(|m| m.id == id)
                    .map_or_else(|| format!("{id:016x}"), |m| m.name.clone())
            }
        };
        let jobs = self
            .barrier
            .rewrap_jobs()?
            .into_iter()
            .map(|j| JobInfo {
                kind: "rewrap",
                mount: name(j.mount),
                target_version: j.target,
                rows_total: j.rows_total,
                rows_scanned: j.rows_scanned,
                rows_resealed: j.rows_resealed,
                started_at: j.started_at,
                updated_at: j.updated_at,
            })
            .collect();
        let rings = keys
            .dek_versions()
            .into_iter()
            .map(|(id, current, versions)| RingInfo {
                mount: name(id),
                current,
                versions,
            })
            .collect();
        Ok(JobsView {
            jobs,
            rings,
            tasks: self.jobs.list(),
        })
    }

    /// Runs every rewrap job to its end (or until sealed); returns how
    /// many finished.
    pub async fn run_rewrap_jobs(self: &Arc<Self>) -> Result<usize, CryptError> {
        let mut finished = 0;
        for job in self.barrier.rewrap_jobs()? {
            let tables = self.sealed_tables(job.mount)?;
            let name = self
                .mount_name(job.mount)?
                .unwrap_or_else(|| format!("{:016x}", job.mount));
            self.barrier.quiesce().await;
            loop {
                let me = self.clone();
                let t = tables.clone();
                let batch = self.config.rewrap_batch_rows;
                let step = tokio::task::spawn_blocking(move || {
                    me.barrier.rewrap_step(job.mount, &t, batch)
                })
                .await
                .map_err(CryptError::internal)?;
                match step {
                    Ok(Step::More(_)) => tokio::time::sleep(self.config.rewrap_pause.get()).await,
                    Ok(Step::Done { resealed, dropped }) => {
                        tracing::info!(mount = %name, resealed, dropped, "metacrypt: rewrap done");
                        self.jobs.record(
                            &format!("rewrap {name}"),
                            0,
                            Ok(format!(
                                "version {}: {resealed} rows resealed, {dropped} old versions dropped",
                                job.target
                            )),
                        );
                        self.changed();
                        finished += 1;
                        break;
                    }
                    Ok(Step::Idle) => break,
                    Err(e) => {
                        self.jobs
                            .record(&format!("rewrap {name}"), 0, Err(e.to_string()));
                        return Err(e);
                    }
                }
            }
        }
        Ok(finished)
    }

    /// One pass of the loop: the rewrap jobs, then the periodic tasks due.
    async fn jobs_pass(self: &Arc<Self>, due: &mut super::tasks::Due) {
        if self.barrier.unsealed().is_err() {
            return;
        }
        if let Err(e) = self.run_rewrap_jobs().await {
            tracing::warn!(error = %e, "metacrypt: rewrap job stopped (it resumes)");
        }
        self.run_due_tasks(due).await;
    }

    /// Starts the background loop (needs a tokio runtime).
    pub fn start_jobs(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::error!("metacrypt: no tokio runtime; background jobs do not run");
            return;
        };
        rt.spawn(async move {
            let mut due = super::tasks::Due::new();
            loop {
                let Some(m) = weak.upgrade() else { return };
                m.jobs_pass(&mut due).await;
                let wake = async { m.jobs.wake.notified().await };
                let _ = tokio::time::timeout(TICK, wake).await;
            }
        });
    }
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
