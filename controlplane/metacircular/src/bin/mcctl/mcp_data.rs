//! `mcctl snapshot|snapshots|restore|migrate`: a service's `/srv/<service>`
//! through `mc.deploy.v1.Master` (human admins). Snapshots are kept on the
//! master; a restore or a migration that did not succeed prints its steps
//! and exits non-zero. A spinner shows on a terminal (stderr).

use anyhow::bail;
use mc_proto::deploy::v1 as pb;
use serde::Serialize;

use crate::endpoints::Endpoints;
use crate::iam::client::refused;
use crate::mcp::{StepView, client, print_steps, step_views};
use crate::output::{Col, Out, Table, row, spinner, utc};

#[derive(Serialize)]
struct SnapshotView {
    id: String,
    service: String,
    node: String,
    created_at_unix: i64,
    bytes: u64,
    sha256: String,
}

impl From<pb::Snapshot> for SnapshotView {
    fn from(s: pb::Snapshot) -> Self {
        Self {
            id: s.id,
            service: s.service,
            node: s.node,
            created_at_unix: s.created_at_unix,
            bytes: s.bytes,
            sha256: s.sha256,
        }
    }
}

const SNAPSHOTS: Table = Table(&[
    Col::left("ID", 34),
    Col::left("SERVICE", 12),
    Col::left("NODE", 10),
    Col::right("BYTES", 10),
    Col::left("CREATED", 22).gap(2),
    Col::left("SHA256", 0),
]);

fn print_snapshots(all: &[SnapshotView]) {
    SNAPSHOTS.print(all.iter().map(|s| {
        row![
            s.id,
            s.service,
            s.node,
            s.bytes,
            utc(s.created_at_unix),
            s.sha256
        ]
    }));
}

pub(crate) async fn snapshot(e: &Endpoints, out: Out, service: String) -> anyhow::Result<()> {
    let mut c = client(e).await?;
    let bar = spinner(format!("snapshotting {service}"));
    let r = c
        .create_snapshot(pb::CreateSnapshotRequest { service })
        .await;
    bar.finish_and_clear();
    let view = SnapshotView::from(r.map_err(refused)?.into_inner());
    out.show(&view, || print_snapshots(std::slice::from_ref(&view)))
}

pub(crate) async fn snapshots(
    e: &Endpoints,
    out: Out,
    service: Option<String>,
) -> anyhow::Result<()> {
    let r = client(e)
        .await?
        .list_snapshots(pb::ListSnapshotsRequest {
            service: service.unwrap_or_default(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    let views: Vec<SnapshotView> = r.snapshots.into_iter().map(SnapshotView::from).collect();
    out.show(&views, || {
        print_snapshots(&views);
        if r.next_at_unix > 0 {
            println!("next scheduled snapshot: {}", utc(r.next_at_unix));
        }
    })
}

#[derive(Serialize)]
struct DataView {
    action: &'static str,
    subject: String,
    success: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    snapshot_id: String,
    steps: Vec<StepView>,
}

fn finish(out: Out, view: &DataView, done: &str) -> anyhow::Result<()> {
    out.show(view, || {
        print_steps(&view.steps);
        if view.success {
            println!("{done}");
        }
    })?;
    if !view.success {
        bail!("{} {} failed (steps above)", view.action, view.subject);
    }
    Ok(())
}

pub(crate) async fn restore(e: &Endpoints, out: Out, snapshot: String) -> anyhow::Result<()> {
    let mut c = client(e).await?;
    let bar = spinner(format!("restoring {snapshot}"));
    let r = c
        .restore_snapshot(pb::RestoreSnapshotRequest {
            snapshot_id: snapshot.clone(),
            node: String::new(),
            force: true,
        })
        .await;
    bar.finish_and_clear();
    let r = r.map_err(refused)?.into_inner();
    let view = DataView {
        action: "restore",
        subject: snapshot,
        success: r.success,
        snapshot_id: String::new(),
        steps: step_views(r.steps),
    };
    let done = format!("restored {}", view.subject);
    finish(out, &view, &done)
}

pub(crate) async fn migrate(
    e: &Endpoints,
    out: Out,
    service: String,
    node: String,
) -> anyhow::Result<()> {
    let mut c = client(e).await?;
    let bar = spinner(format!("migrating {service} to {node}"));
    let r = c
        .migrate_service(pb::MigrateServiceRequest {
            service: service.clone(),
            node: node.clone(),
        })
        .await;
    bar.finish_and_clear();
    let r = r.map_err(refused)?.into_inner();
    let view = DataView {
        action: "migrate",
        subject: service,
        success: r.success,
        snapshot_id: r.snapshot_id,
        steps: step_views(r.steps),
    };
    let done = format!("{} now runs on {node}", view.subject);
    finish(out, &view, &done)
}
