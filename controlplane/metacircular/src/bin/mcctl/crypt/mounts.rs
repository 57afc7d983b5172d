//! `mcctl crypt mounts list|create|get|delete|rotate-dek` (admin).

use clap::Subcommand;
use mc_proto::crypt::v1 as pb;
use pb::barrier_client::BarrierClient;
use pb::mounts_client::MountsClient;
use serde::Serialize;

use crate::iam::client::{Authed, refused};
use crate::output::{Col, Out, Table, row};

#[derive(Subcommand)]
pub(crate) enum MountsCommand {
    /// Every mount.
    List,
    /// Mount an engine: `--type kv` (config as a JSON object, e.g.
    /// '{"max_versions":20,"cas_required":true}').
    Create {
        name: String,
        #[arg(long = "type")]
        kind: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long, default_value = "")]
        config: String,
    },
    Get {
        name: String,
    },
    /// Delete a mount and everything in it (its key ring first: the data is
    /// unreadable the moment this answers).
    Delete {
        name: String,
    },
    /// A new data key for the mount (`sys`: the barrier's own rows); a
    /// rewrap job reseals its rows, then the old versions are dropped.
    RotateDek {
        name: String,
        /// Follow the rewrap job until it ends (progress on a terminal).
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Serialize)]
struct MountView {
    id: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    description: String,
    config: serde_json::Value,
    created_at: i64,
}

impl From<pb::MountInfo> for MountView {
    fn from(m: pb::MountInfo) -> Self {
        Self {
            id: format!("{:016x}", m.id),
            name: m.name,
            kind: m.r#type,
            description: m.description,
            config: serde_json::from_str(&m.config_json).unwrap_or(serde_json::Value::Null),
            created_at: m.created_at,
        }
    }
}

const TABLE: Table = Table(&[
    Col::left("NAME", 16),
    Col::left("TYPE", 8),
    Col::left("ID", 16),
    Col::left("CONFIG", 40),
    Col::left("DESCRIPTION", 0),
]);

impl MountView {
    fn row(&self) -> Vec<String> {
        row![self.name, self.kind, self.id, self.config, self.description]
    }
}

pub(crate) async fn run(
    c: &mut MountsClient<Authed>,
    barrier: &mut BarrierClient<Authed>,
    out: Out,
    cmd: MountsCommand,
) -> anyhow::Result<()> {
    match cmd {
        MountsCommand::List => {
            let mounts: Vec<MountView> = c
                .list(pb::ListMountsRequest {})
                .await
                .map_err(refused)?
                .into_inner()
                .mounts
                .into_iter()
                .map(MountView::from)
                .collect();
            out.show(&mounts, || TABLE.print(mounts.iter().map(MountView::row)))
        }
        MountsCommand::Create {
            name,
            kind,
            description,
            config,
        } => {
            let m: MountView = c
                .create(pb::CreateMountRequest {
                    name,
                    r#type: kind,
                    description,
                    config_json: config,
                })
                .await
                .map_err(refused)?
                .into_inner()
                .into();
            out.show(&m, || TABLE.print([m.row()]))
        }
        MountsCommand::Get { name } => {
            let m: MountView = c
                .get(pb::GetMountRequest { name })
                .await
                .map_err(refused)?
                .into_inner()
                .into();
            out.show(&m, || TABLE.print([m.row()]))
        }
        MountsCommand::Delete { name } => {
            c.delete(pb::DeleteMountRequest { name: name.clone() })
                .await
                .map_err(refused)?;
            out.done(
                &serde_json::json!({"deleted": name}),
                &format!("mount {name} deleted"),
            )
        }
        MountsCommand::RotateDek { name, wait } => {
            let r = c
                .rotate_dek(pb::RotateDekRequest { name: name.clone() })
                .await
                .map_err(refused)?
                .into_inner();
            if wait {
                super::jobs::follow(barrier, &r.mount).await?;
            }
            let done = if wait { "done" } else { "running" };
            out.done(
                &serde_json::json!({
                    "mount": r.mount,
                    "dek_version": r.dek_version,
                    "rows": r.rows,
                    "rewrap": done,
                }),
                &format!(
                    "mount {} now writes with DEK version {}; rewrap of {} rows {done}",
                    r.mount, r.dek_version, r.rows
                ),
            )
        }
    }
}
