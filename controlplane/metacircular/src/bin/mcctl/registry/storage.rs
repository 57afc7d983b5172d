//! `mcctl registry status` and `mcctl registry fsck`: MCR's totals and the
//! consistency check of its blob store over `mc.registry.v1.Storage`
//! (admin). `fsck` exits non-zero when it found anything, so a cron job or
//! a script notices.

use clap::Subcommand;
use mc_proto::registry::v1 as pb;
use pb::storage_client::StorageClient;
use serde::Serialize;

use super::human;
use crate::endpoints::Endpoints;
use crate::iam::client::{Authed, authed, refused};
use crate::output::{Out, spinner, utc};

#[derive(Subcommand)]
pub(crate) enum StorageCommand {
    /// Totals: repositories, manifests, tags, blobs and their bytes, what GC would
    /// reclaim, the last GC run (admin).
    Status,
    /// Check every blob row against its file and every file against the rows (admin).
    Fsck {
        /// Also read every blob and check that it hashes to its digest.
        #[arg(long)]
        verify_content: bool,
    },
}

#[derive(Serialize)]
struct StatusView {
    backend: String,
    /// Why the store did not answer a probe; empty when it did.
    backend_error: String,
    data_free_bytes: u64,
    repositories: u64,
    manifests: u64,
    tags: u64,
    blobs: u64,
    blob_bytes: u64,
    reclaimable_blobs: u64,
    reclaimable_bytes: u64,
    /// Most reclaimable bytes first (blobs a repository links that no
    /// manifest in any repository references).
    reclaimable_by_repository: Vec<RepoReclaimableView>,
    last_gc_id: String,
    last_gc_state: String,
    last_gc_finished_at_unix: i64,
}

#[derive(Serialize)]
struct RepoReclaimableView {
    repository: String,
    blobs: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct FindingView {
    digest: String,
    object: String,
    detail: String,
}

#[derive(Serialize)]
struct FindingsView {
    count: u64,
    items: Vec<FindingView>,
}

impl From<Option<pb::FsckFindings>> for FindingsView {
    fn from(f: Option<pb::FsckFindings>) -> Self {
        let f = f.unwrap_or_default();
        Self {
            count: f.count,
            items: f
                .items
                .into_iter()
                .map(|i| FindingView {
                    digest: i.digest,
                    object: i.object,
                    detail: i.detail,
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct FsckView {
    clean: bool,
    verified_content: bool,
    blobs_checked: u64,
    bytes_checked: u64,
    objects_listed: u64,
    missing: FindingsView,
    size_mismatch: FindingsView,
    content_mismatch: FindingsView,
    orphans: FindingsView,
}

fn print_fsck(v: &FsckView) {
    println!(
        "checked {} blobs ({}{}), {} files",
        v.blobs_checked,
        human(v.bytes_checked),
        if v.verified_content {
            ", content hashed"
        } else {
            ""
        },
        v.objects_listed
    );
    for (label, f) in [
        ("missing", &v.missing),
        ("size mismatch", &v.size_mismatch),
        ("content mismatch", &v.content_mismatch),
        ("orphan", &v.orphans),
    ] {
        for i in &f.items {
            println!("{label}: {} ({}): {}", i.digest, i.object, i.detail);
        }
        if f.count > f.items.len() as u64 {
            println!("{label}: {} more", f.count - f.items.len() as u64);
        }
    }
    println!("{}", if v.clean { "clean" } else { "problems found" });
}

/// Reads the `Fsck` stream: progress into `bar`, then the report.
async fn follow_fsck(
    c: &mut StorageClient<Authed>,
    verify_content: bool,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<pb::FsckReport> {
    let mut events = c
        .fsck(pb::FsckRequest { verify_content })
        .await
        .map_err(refused)?
        .into_inner();
    while let Some(e) = events.message().await.map_err(refused)? {
        match e.event {
            Some(pb::fsck_event::Event::Progress(p)) => bar.set_message(format!(
                "{}: {}/{} blobs checked ({}), {} objects listed",
                p.phase,
                p.blobs_checked,
                p.blobs_total,
                human(p.bytes_checked),
                p.objects_listed
            )),
            Some(pb::fsck_event::Event::Report(r)) => return Ok(r),
            None => {}
        }
    }
    anyhow::bail!("the fsck stream ended without a report")
}

pub(crate) async fn run(
    endpoints: &Endpoints,
    out: Out,
    cmd: StorageCommand,
) -> anyhow::Result<()> {
    let (ch, bearer) = authed(endpoints).await?;
    let mut c = StorageClient::with_interceptor(ch, bearer);
    match cmd {
        StorageCommand::Status => {
            let s = c
                .status(pb::StorageStatusRequest {})
                .await
                .map_err(refused)?
                .into_inner();
            let v = StatusView {
                backend: s.backend,
                backend_error: s.backend_error,
                data_free_bytes: s.data_free_bytes,
                repositories: s.repositories,
                manifests: s.manifests,
                tags: s.tags,
                blobs: s.blobs,
                blob_bytes: s.blob_bytes,
                reclaimable_blobs: s.reclaimable_blobs,
                reclaimable_bytes: s.reclaimable_bytes,
                reclaimable_by_repository: s
                    .reclaimable_by_repository
                    .into_iter()
                    .map(|r| RepoReclaimableView {
                        repository: r.repository,
                        blobs: r.blobs,
                        bytes: r.bytes,
                    })
                    .collect(),
                last_gc_id: s.last_gc_id,
                last_gc_state: s.last_gc_state,
                last_gc_finished_at_unix: s.last_gc_finished_at,
            };
            out.show(&v, || {
                if v.backend_error.is_empty() {
                    println!("backend: {}", v.backend);
                } else {
                    println!("backend: {} (unreachable: {})", v.backend, v.backend_error);
                }
                println!("data directory: {} free", human(v.data_free_bytes));
                println!(
                    "{} repositories, {} manifests, {} tags",
                    v.repositories, v.manifests, v.tags
                );
                println!("{} blobs, {}", v.blobs, human(v.blob_bytes));
                println!(
                    "reclaimable: {} in {} blobs no manifest references (GC frees them after gc_grace)",
                    human(v.reclaimable_bytes),
                    v.reclaimable_blobs
                );
                for r in &v.reclaimable_by_repository {
                    println!(
                        "  {}: {} in {} blobs",
                        r.repository,
                        human(r.bytes),
                        r.blobs
                    );
                }
                if v.last_gc_id.is_empty() {
                    println!("last GC: never");
                } else {
                    println!(
                        "last GC: {} {} {}",
                        v.last_gc_id,
                        v.last_gc_state,
                        if v.last_gc_finished_at_unix > 0 {
                            utc(v.last_gc_finished_at_unix)
                        } else {
                            "-".into()
                        }
                    );
                }
            })
        }
        StorageCommand::Fsck { verify_content } => {
            let bar = spinner(format!(
                "checking the blob store{}",
                if verify_content {
                    " and hashing every blob"
                } else {
                    ""
                }
            ));
            let r = follow_fsck(&mut c, verify_content, &bar).await;
            bar.finish_and_clear();
            let r = r?;
            let v = FsckView {
                clean: r.clean,
                verified_content: r.verified_content,
                blobs_checked: r.blobs_checked,
                bytes_checked: r.bytes_checked,
                objects_listed: r.objects_listed,
                missing: r.missing.into(),
                size_mismatch: r.size_mismatch.into(),
                content_mismatch: r.content_mismatch.into(),
                orphans: r.orphans.into(),
            };
            out.show(&v, || print_fsck(&v))?;
            if !v.clean {
                anyhow::bail!("the registry's blob store has problems (listed above)");
            }
            Ok(())
        }
    }
}
