//! `mcctl crypt audit` (admin): Metacrypt's audit rows, newest first, over
//! `mc.crypt.v1.Audit/Query`, filtered by time, actor and action prefix;
//! `--before` continues a page (the `next_before` a page printed).

use clap::Args;
use mc_proto::crypt::v1 as pb;
use pb::audit_client::AuditClient;
use serde::Serialize;

use crate::iam::client::{Authed, refused};
use crate::output::{Col, Out, Table, row, utc};

#[derive(Args)]
pub(crate) struct AuditArgs {
    /// Rows at most this old (e.g. 30m, 12h, 7d).
    #[arg(long, value_parser = parse_age)]
    since: Option<u64>,
    /// Account id of the actor (exact).
    #[arg(long, default_value = "")]
    actor: String,
    /// Action prefix, e.g. `kv.` or `barrier.unseal`.
    #[arg(long, default_value = "")]
    action: String,
    /// Rows at most (1 to 1000).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Rows older than this sequence number (a previous page's next_before).
    #[arg(long, default_value_t = 0)]
    before: u64,
}

fn parse_age(s: &str) -> Result<u64, String> {
    let d: mc_kit::config::Duration = s.parse()?;
    Ok(d.get().as_secs())
}

#[derive(Serialize)]
struct EventView {
    seq: u64,
    at: i64,
    actor: String,
    action: String,
    target: String,
    source_ip: String,
    result: String,
    detail: String,
}

#[derive(Serialize)]
struct PageView {
    events: Vec<EventView>,
    next_before: u64,
}

const TABLE: Table = Table(&[
    Col::right("SEQ", 6),
    Col::left("AT", 20),
    Col::left("ACTOR", 20),
    Col::left("ACTION", 22),
    Col::left("RESULT", 12),
    Col::left("TARGET", 30),
    Col::left("DETAIL", 0),
]);

pub(crate) async fn run(
    c: &mut AuditClient<Authed>,
    out: Out,
    args: AuditArgs,
) -> anyhow::Result<()> {
    let since = args.since.map_or(0, |age| {
        let now = u64::try_from(mc_kit::clock::unix_now()).unwrap_or(0);
        i64::try_from(now.saturating_sub(age)).unwrap_or(0)
    });
    let page = c
        .query(pb::AuditQueryRequest {
            since,
            until: 0,
            actor: args.actor,
            action: args.action,
            before: args.before,
            limit: args.limit,
        })
        .await
        .map_err(refused)?
        .into_inner();
    let view = PageView {
        events: page
            .events
            .into_iter()
            .map(|e| EventView {
                seq: e.seq,
                at: e.at,
                actor: e.actor,
                action: e.action,
                target: e.target,
                source_ip: e.source_ip,
                result: e.result,
                detail: e.detail,
            })
            .collect(),
        next_before: page.next_before,
    };
    out.show(&view, || {
        TABLE.print_rows(view.events.iter().map(|e| {
            row![
                e.seq,
                utc(e.at),
                e.actor,
                e.action,
                e.result,
                e.target,
                e.detail
            ]
        }));
        if view.next_before > 0 {
            println!("more: --before {}", view.next_before);
        }
    })
}
