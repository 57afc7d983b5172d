//! `mcctl proxy policies …`: per-route L7 policies (403 on match; first match wins).

use anyhow::bail;
use clap::Subcommand;
use mc_proto::proxy::v1 as pb;
use serde::Serialize;

use super::{Client, refused};
use crate::enums::name_or;
use crate::output::{Col, Out, Table, row};

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    List {
        #[arg(long)]
        listener: Option<String>,
        #[arg(long)]
        hostname: Option<String>,
    },
    /// Append a policy to an L7 route.
    Add {
        hostname: String,
        #[arg(long)]
        listener: Option<String>,
        /// 403 when the User-Agent contains this (case-insensitive).
        #[arg(
            long,
            conflicts_with = "require_header",
            required_unless_present = "require_header"
        )]
        block_user_agent: Option<String>,
        /// 403 unless this header is present: `NAME` or `NAME=VALUE`.
        #[arg(long)]
        require_header: Option<String>,
    },
    Remove {
        id: String,
    },
}

#[derive(Serialize)]
struct PolicyView {
    id: String,
    listener: String,
    hostname: String,
    kind: String,
    value: String,
    header_value: String,
    position: u32,
}

impl From<pb::L7Policy> for PolicyView {
    fn from(p: pb::L7Policy) -> Self {
        Self {
            kind: name_or::<pb::L7PolicyKind>(p.kind, "?"),
            id: p.id,
            listener: p.listener,
            hostname: p.hostname,
            value: p.value,
            header_value: p.header_value,
            position: p.position,
        }
    }
}

const TABLE: Table = Table(&[
    Col::left("ID", 16),
    Col::left("ROUTE", 28),
    Col::left("POS", 4),
    Col::left("KIND", 18),
    Col::left("MATCH", 0),
]);

pub(super) async fn run(c: &mut Client, out: Out, cmd: PolicyCommand) -> anyhow::Result<()> {
    match cmd {
        PolicyCommand::List { listener, hostname } => list(c, out, listener, hostname).await,
        PolicyCommand::Add {
            hostname,
            listener,
            block_user_agent,
            require_header,
        } => {
            let (kind, value, header_value) = match (block_user_agent, require_header) {
                (Some(ua), None) => (pb::L7PolicyKind::BlockUserAgent, ua, String::new()),
                (None, Some(h)) => match h.split_once('=') {
                    Some((n, v)) => (pb::L7PolicyKind::RequireHeader, n.to_owned(), v.to_owned()),
                    None => (pb::L7PolicyKind::RequireHeader, h, String::new()),
                },
                _ => bail!("give exactly one of --block-user-agent or --require-header"),
            };
            let policy = pb::L7Policy {
                id: String::new(),
                listener: listener.unwrap_or_default(),
                hostname,
                kind: kind.into(),
                value,
                header_value,
                position: 0,
            };
            add(c, out, policy).await
        }
        PolicyCommand::Remove { id } => remove(c, out, id).await,
    }
}

async fn list(
    c: &mut Client,
    out: Out,
    listener: Option<String>,
    hostname: Option<String>,
) -> anyhow::Result<()> {
    let ps: Vec<PolicyView> = c
        .list_l7_policies(pb::ListL7PoliciesRequest {
            listener: listener.unwrap_or_default(),
            hostname: hostname.unwrap_or_default(),
        })
        .await
        .map_err(refused)?
        .into_inner()
        .policies
        .into_iter()
        .map(PolicyView::from)
        .collect();
    out.show(&ps, || {
        TABLE.print(ps.iter().map(|p| {
            let m = if p.header_value.is_empty() {
                p.value.clone()
            } else {
                format!("{}={}", p.value, p.header_value)
            };
            row![p.id, p.hostname, p.position, p.kind, m]
        }));
    })
}

async fn add(c: &mut Client, out: Out, policy: pb::L7Policy) -> anyhow::Result<()> {
    let p = PolicyView::from(
        c.add_l7_policy(pb::AddL7PolicyRequest {
            policy: Some(policy),
        })
        .await
        .map_err(refused)?
        .into_inner(),
    );
    let line = format!(
        "policy {} on {} at position {}: {} {}",
        p.id, p.hostname, p.position, p.kind, p.value
    );
    out.done(&p, &line)
}

async fn remove(c: &mut Client, out: Out, id: String) -> anyhow::Result<()> {
    let removed = c
        .remove_l7_policy(pb::RemoveL7PolicyRequest { id: id.clone() })
        .await
        .map_err(refused)?
        .into_inner()
        .removed;
    if !removed {
        bail!("no policy {id}");
    }
    out.done(
        &serde_json::json!({ "removed": id }),
        &format!("removed policy {id}"),
    )
}
