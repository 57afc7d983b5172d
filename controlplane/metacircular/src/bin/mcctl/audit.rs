//! `mcctl audit`: the control plane's data-plane audit trail — every change
//! made to a node's MC-Proxy or MCNS through the control plane (`mcctl
//! proxy|dns … --node`), newest first, filtered by time, account and node.

use anyhow::Context;
use clap::Args;
use mc_proto::deploy::v1 as pb;
use serde::Serialize;

use crate::endpoints::Endpoints;
use crate::iam::client::refused;
use crate::output::{Col, Out, Table, row, utc};

#[derive(Args)]
pub(crate) struct AuditArgs {
    /// Only changes at or after this: Unix seconds, or an age such as `1h`, `30m`.
    #[arg(long)]
    since: Option<String>,
    /// Only this account (name or id).
    #[arg(long, default_value = "")]
    actor: String,
    /// Only this node.
    #[arg(long, default_value = "")]
    node: String,
    /// At most this many (at most 1000).
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

#[derive(Serialize)]
struct EventView {
    seq: u64,
    at_unix: i64,
    actor: String,
    account: String,
    node: String,
    method: String,
    target: String,
    summary: String,
    source_ip: String,
    result: String,
    detail: String,
}

const TABLE: Table = Table(&[
    Col::right("SEQ", 6),
    Col::left("AT", 20),
    Col::left("ACCOUNT", 14),
    Col::left("NODE", 10),
    Col::left("METHOD", 22),
    Col::left("TARGET", 28),
    Col::left("SOURCE", 15),
    Col::left("RESULT", 10),
    Col::left("SUMMARY", 0),
]);

/// `--since` as Unix seconds.
fn since(s: &str) -> anyhow::Result<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let d: mc_kit::config::Duration = s
        .parse()
        .map_err(|e| anyhow::anyhow!("--since: {e} (Unix seconds, or an age such as 1h)"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("clock")?;
    let ago = now.saturating_sub(d.get());
    Ok(i64::try_from(ago.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) async fn run(e: &Endpoints, out: Out, args: AuditArgs) -> anyhow::Result<()> {
    let since_unix = args.since.as_deref().map(since).transpose()?.unwrap_or(0);
    let mut c = crate::mcp::client(e).await?;
    let events: Vec<EventView> = c
        .query_data_plane_audit(pb::QueryDataPlaneAuditRequest {
            since_unix,
            actor: args.actor,
            node: args.node,
            limit: args.limit,
        })
        .await
        .map_err(refused)?
        .into_inner()
        .events
        .into_iter()
        .map(|e| EventView {
            seq: e.seq,
            at_unix: e.at_unix,
            actor: e.actor,
            account: e.account,
            node: e.node,
            method: e.method,
            target: e.target,
            summary: e.summary,
            source_ip: e.source_ip,
            result: e.result,
            detail: e.detail,
        })
        .collect();
    out.show(&events, || {
        TABLE.print(events.iter().map(|e| {
            row![
                e.seq,
                utc(e.at_unix),
                e.account,
                e.node,
                e.method,
                e.target,
                e.source_ip,
                e.result,
                e.summary
            ]
        }));
    })
}
