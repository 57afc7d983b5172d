//! `mcctl registry gc …`: MCR's online garbage collection over
//! `mc.registry.v1.Gc` (admin). `gc start` follows the run it started with
//! a progress line (indicatif, on a terminal only; stderr, so `--json`
//! stdout stays one document) until it ends, then prints what it removed
//! or, with `--dry-run`, what would go. Pushes and pulls continue meanwhile.

use anyhow::Context;
use clap::Subcommand;
use mc_proto::registry::v1 as pb;
use pb::gc_client::GcClient;
use serde::Serialize;

use crate::endpoints::Endpoints;
use crate::iam::client::{Authed, authed, refused};
use crate::output::{Col, Out, Table, row, utc};

#[derive(Subcommand)]
pub(crate) enum GcCommand {
    /// Start a GC run and follow it to the end over a watch stream (admin).
    Start {
        /// List what would be removed; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Return once the run has started instead of following it.
        #[arg(long)]
        detach: bool,
    },
    /// Recent runs, newest first.
    List {
        /// At most this many (1–100).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
    },
    /// One run, with its counters (and a dry run's items).
    Show { id: String },
    /// Stop a running run at its next batch boundary (what it did holds).
    Cancel { id: String },
}

#[derive(Serialize)]
struct Counters {
    links_scanned: u64,
    links_removed: u64,
    blobs_scanned: u64,
    blobs_removed: u64,
    bytes_reclaimed: u64,
    orphans_removed: u64,
    uploads_removed: u64,
}

#[derive(Serialize)]
struct Item {
    kind: String,
    repository: String,
    digest: String,
    size: u64,
}

#[derive(Serialize)]
struct RunView {
    id: String,
    dry_run: bool,
    by: String,
    started_at_unix: i64,
    finished_at_unix: i64,
    state: String,
    phase: String,
    counters: Counters,
    error: String,
    items: Vec<Item>,
}

impl From<pb::GcRun> for RunView {
    fn from(r: pb::GcRun) -> Self {
        let c = r.counters.unwrap_or_default();
        Self {
            id: r.id,
            dry_run: r.dry_run,
            by: r.by,
            started_at_unix: r.started_at,
            finished_at_unix: r.finished_at,
            state: r.state,
            phase: r.phase,
            counters: Counters {
                links_scanned: c.links_scanned,
                links_removed: c.links_removed,
                blobs_scanned: c.blobs_scanned,
                blobs_removed: c.blobs_removed,
                bytes_reclaimed: c.bytes_reclaimed,
                orphans_removed: c.orphans_removed,
                uploads_removed: c.uploads_removed,
            },
            error: r.error,
            items: r
                .items
                .into_iter()
                .map(|i| Item {
                    kind: i.kind,
                    repository: i.repository,
                    digest: i.digest,
                    size: i.size,
                })
                .collect(),
        }
    }
}

const RUNS: Table = Table(&[
    Col::left("ID", 30),
    Col::left("STARTED", 20),
    Col::left("STATE", 11),
    Col::left("DRY", 3),
    Col::right("LINKS", 7),
    Col::right("BLOBS", 7),
    Col::right("BYTES", 12),
    Col::left("BY", 0),
]);

const ITEMS: Table = Table(&[
    Col::left("KIND", 6),
    Col::right("SIZE", 12),
    Col::left("REPOSITORY", 24),
    Col::left("DIGEST", 0),
]);

fn summary(r: &RunView) -> Vec<String> {
    let c = &r.counters;
    row![
        r.id,
        utc(r.started_at_unix),
        r.state,
        if r.dry_run { "yes" } else { "no" },
        c.links_removed,
        c.blobs_removed + c.orphans_removed,
        c.bytes_reclaimed,
        r.by,
    ]
}

fn print_run(r: &RunView) {
    let c = &r.counters;
    println!(
        "run:      {}{}",
        r.id,
        if r.dry_run { " (dry run)" } else { "" }
    );
    println!("state:    {} (phase {})", r.state, r.phase);
    println!("by:       {}", r.by);
    println!("started:  {}", utc(r.started_at_unix));
    println!("finished: {}", utc(r.finished_at_unix));
    let verb = if r.dry_run { "would remove" } else { "removed" };
    println!(
        "links:    {} scanned, {} {verb}",
        c.links_scanned, c.links_removed
    );
    println!(
        "blobs:    {} scanned, {} {verb}, {} orphans",
        c.blobs_scanned, c.blobs_removed, c.orphans_removed
    );
    println!("bytes:    {}", c.bytes_reclaimed);
    println!("uploads:  {} expired sessions removed", c.uploads_removed);
    if !r.error.is_empty() {
        println!("error:    {}", r.error);
    }
    if !r.items.is_empty() {
        println!();
        ITEMS.print(
            r.items
                .iter()
                .map(|i| row![i.kind, i.size, i.repository, i.digest]),
        );
    }
}

/// Follows the run over `Gc/Watch` until it leaves `running`, showing
/// progress on a terminal.
async fn follow(c: &mut GcClient<Authed>, id: &str) -> anyhow::Result<pb::GcRun> {
    let bar = crate::output::spinner(format!("GC run {id}"));
    let mut runs = c
        .watch(pb::GcGetRequest { id: id.to_owned() })
        .await
        .map_err(refused)?
        .into_inner();
    let mut last = None;
    // Bounded: the stream ends when the run does, and a run cut by a
    // restart ends as `interrupted`.
    while let Some(r) = runs.message().await.map_err(refused)? {
        let k = r.counters.unwrap_or_default();
        bar.set_message(format!(
            "{}: links {} scanned / {} removed, blobs {} scanned / {} removed, {} bytes",
            r.phase,
            k.links_scanned,
            k.links_removed,
            k.blobs_scanned,
            k.blobs_removed,
            k.bytes_reclaimed
        ));
        last = Some(r);
    }
    bar.finish_and_clear();
    last.ok_or_else(|| anyhow::anyhow!("the watch of GC run {id} ended without a row"))
}

pub(crate) async fn run(endpoints: &Endpoints, out: Out, cmd: GcCommand) -> anyhow::Result<()> {
    let (ch, bearer) = authed(endpoints).await?;
    let mut c = GcClient::with_interceptor(ch, bearer);
    match cmd {
        GcCommand::Start { dry_run, detach } => {
            let started = c
                .start(pb::GcStartRequest { dry_run })
                .await
                .map_err(refused)?
                .into_inner();
            let r = if detach {
                started
            } else {
                follow(&mut c, &started.id).await?
            };
            let failed = r.state == "failed";
            let view = RunView::from(r);
            out.show(&view, || print_run(&view))?;
            if failed {
                anyhow::bail!("GC run {} failed: {}", view.id, view.error);
            }
            Ok(())
        }
        GcCommand::List { limit } => {
            let runs: Vec<RunView> = c
                .list(pb::GcListRequest { limit })
                .await
                .map_err(refused)?
                .into_inner()
                .runs
                .into_iter()
                .map(RunView::from)
                .collect();
            out.show(&runs, || RUNS.print(runs.iter().map(summary)))
        }
        GcCommand::Show { id } => {
            let r = c
                .get(pb::GcGetRequest { id: id.clone() })
                .await
                .map_err(refused)
                .with_context(|| format!("GC run {id}"))?
                .into_inner();
            let view = RunView::from(r);
            out.show(&view, || print_run(&view))
        }
        GcCommand::Cancel { id } => {
            c.cancel(pb::GcCancelRequest { id: id.clone() })
                .await
                .map_err(refused)
                .with_context(|| format!("GC run {id}"))?;
            // The run stops at its next batch boundary: follow it there.
            let view = RunView::from(follow(&mut c, &id).await?);
            out.show(&view, || print_run(&view))
        }
    }
}
