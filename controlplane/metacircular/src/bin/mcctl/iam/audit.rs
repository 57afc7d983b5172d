//! `mcctl iam audit`: the audit log, newest first.

use clap::Args;
use mc_proto::iam::v1 as pb;
use pb::audit_client::AuditClient;
use serde::Serialize;

use super::client::{Authed, refused};
use crate::output::{Col, Out, Table, row, utc};

#[derive(Args)]
pub(crate) struct AuditArgs {
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Action prefix, e.g. `auth.login`.
    #[arg(long, default_value = "")]
    action: String,
}

#[derive(Serialize)]
struct EventView {
    seq: u64,
    at_unix: i64,
    actor: String,
    action: String,
    target: String,
    source_ip: String,
    result: String,
    detail: String,
}

/// Printed without a header, as it always was.
const TABLE: Table = Table(&[
    Col::right("SEQ", 6),
    Col::left("AT", 20),
    Col::left("ACTION", 18),
    Col::left("RESULT", 16),
    Col::left("TARGET", 36),
    Col::left("SOURCE", 15),
    Col::left("DETAIL", 0),
]);

pub(super) async fn run(
    c: &mut AuditClient<Authed>,
    out: Out,
    args: AuditArgs,
) -> anyhow::Result<()> {
    let events: Vec<EventView> = c
        .query_audit(pb::QueryAuditRequest {
            limit: args.limit,
            action: args.action,
            ..Default::default()
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
            action: e.action,
            target: e.target,
            source_ip: e.source_ip,
            result: e.result,
            detail: e.detail,
        })
        .collect();
    out.show(&events, || {
        TABLE.print_rows(events.iter().map(|e| {
            row![
                e.seq,
                utc(e.at_unix),
                e.action,
                e.result,
                e.target,
                e.source_ip,
                e.detail
            ]
        }));
    })
}
