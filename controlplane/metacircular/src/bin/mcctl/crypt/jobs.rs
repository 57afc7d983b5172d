//! `mcctl crypt jobs` (admin): running DEK rewrap jobs, each mount's DEK
//! versions and the periodic tasks' last runs; and the follower
//! `mounts rotate-dek --wait` uses (indicatif progress on a terminal only,
//! on stderr, so `--json` stdout stays one document).

use std::time::Duration;

use mc_proto::crypt::v1 as pb;
use pb::barrier_client::BarrierClient;
use serde::Serialize;

use crate::iam::client::{Authed, refused};
use crate::output::{Col, Out, Table, row, utc};

#[derive(Serialize)]
pub(crate) struct JobView {
    kind: String,
    mount: String,
    target_version: u32,
    rows_total: u64,
    rows_scanned: u64,
    rows_resealed: u64,
    started_at: i64,
    updated_at: i64,
}

#[derive(Serialize)]
struct RingView {
    mount: String,
    current: u32,
    versions: Vec<u32>,
}

#[derive(Serialize)]
struct TaskView {
    name: String,
    every_secs: u64,
    runs: u64,
    last_run: i64,
    outcome: String,
}

#[derive(Serialize)]
struct JobsView {
    jobs: Vec<JobView>,
    rings: Vec<RingView>,
    tasks: Vec<TaskView>,
}

fn job_view(j: pb::JobInfo) -> JobView {
    JobView {
        kind: j.kind,
        mount: j.mount,
        target_version: j.target_version,
        rows_total: j.rows_total,
        rows_scanned: j.rows_scanned,
        rows_resealed: j.rows_resealed,
        started_at: j.started_at,
        updated_at: j.updated_at,
    }
}

const JOBS: Table = Table(&[
    Col::left("JOB", 8),
    Col::left("MOUNT", 16),
    Col::right("TARGET", 6),
    Col::right("SCANNED", 9),
    Col::right("OF", 9),
    Col::right("RESEALED", 9),
]);
const RINGS: Table = Table(&[
    Col::left("MOUNT", 16),
    Col::right("CURRENT", 7),
    Col::left("VERSIONS", 0),
]);
const TASKS: Table = Table(&[
    Col::left("TASK", 24),
    Col::right("EVERY", 7),
    Col::right("RUNS", 6),
    Col::left("LAST RUN", 20),
    Col::left("OUTCOME", 0),
]);

pub(crate) async fn list(c: &mut BarrierClient<Authed>, out: Out) -> anyhow::Result<()> {
    let r = c
        .list_jobs(pb::ListJobsRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    let view = JobsView {
        jobs: r.jobs.into_iter().map(job_view).collect(),
        rings: r
            .rings
            .into_iter()
            .map(|g| RingView {
                mount: g.mount,
                current: g.current,
                versions: g.versions,
            })
            .collect(),
        tasks: r
            .tasks
            .into_iter()
            .map(|t| TaskView {
                name: t.name,
                every_secs: t.every_secs,
                runs: t.runs,
                last_run: t.last_run,
                outcome: t.outcome,
            })
            .collect(),
    };
    out.show(&view, || {
        if view.jobs.is_empty() {
            println!("no job running");
        } else {
            JOBS.print(view.jobs.iter().map(|j| {
                row![
                    j.kind,
                    j.mount,
                    j.target_version,
                    j.rows_scanned,
                    j.rows_total,
                    j.rows_resealed
                ]
            }));
        }
        println!();
        RINGS.print(view.rings.iter().map(|g| {
            let versions: Vec<String> = g.versions.iter().map(u32::to_string).collect();
            row![g.mount, g.current, versions.join(",")]
        }));
        if !view.tasks.is_empty() {
            println!();
            TASKS.print(view.tasks.iter().map(|t| {
                let every = if t.every_secs == 0 {
                    "-".to_owned()
                } else {
                    format!("{}s", t.every_secs)
                };
                row![t.name, every, t.runs, utc(t.last_run), t.outcome]
            }));
        }
    })
}

/// Polls until `mount` has no rewrap job, showing progress on a terminal.
/// Ends with an error when the job reports one (it resumes by itself).
pub(crate) async fn follow(c: &mut BarrierClient<Authed>, mount: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("rewrap {msg} [{bar:30}] {pos}/{len} rows")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(mount.to_owned());
    let task = format!("rewrap {mount}");
    let first = c
        .list_jobs(pb::ListJobsRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    let runs_before = first
        .tasks
        .iter()
        .find(|t| t.name == task)
        .map_or(0, |t| t.runs);
    loop {
        let r = c
            .list_jobs(pb::ListJobsRequest {})
            .await
            .map_err(refused)?
            .into_inner();
        let Some(j) = r.jobs.into_iter().find(|j| j.mount == mount) else {
            bar.finish_and_clear();
            return Ok(());
        };
        if let Some(t) = r.tasks.iter().find(|t| t.name == task)
            && t.runs > runs_before
            && t.outcome.starts_with("error")
        {
            bar.abandon();
            anyhow::bail!(
                "the rewrap of {mount} stopped ({}); it resumes by itself",
                t.outcome
            );
        }
        bar.set_length(j.rows_total);
        bar.set_position(j.rows_scanned.min(j.rows_total));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
