//! The data-plane audit trail (table `dataplane_audit`, key: big-endian
//! sequence number): every change an operator or a system account made to
//! a node's MC-Proxy or MCNS through the control plane — who (account id
//! and name), what (method, target, a compact summary without secrets),
//! when, from where, and the outcome.
//!
//! Invariant: the row is written (durably) *before* the call leaves for the
//! node, with result `sent`, and updated with the outcome after; a call
//! whose row cannot be written is not sent. So a change is never made
//! without its row, also when the master is killed mid-call (the row then
//! stays `sent`). At most [`MAX_EVENTS`] rows are kept (the oldest go).

use mc_kit::api::ApiError;
use mc_kit::store::json::{JsonTable, ReadTx, WriteTx};
use mc_kit::store::{Store, StoreError};
use mc_proto::deploy::v1 as pb;
use serde::{Deserialize, Serialize};

/// Rows kept.
pub(crate) const MAX_EVENTS: u64 = 100_000;
/// Default and largest page of a query.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;
/// Rows read per step while filtering backwards.
const PAGE: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AuditRow {
    pub(crate) seq: u64,
    pub(crate) at: i64,
    pub(crate) actor: String,
    pub(crate) account: String,
    pub(crate) node: String,
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) summary: String,
    pub(crate) source_ip: String,
    pub(crate) result: String,
    pub(crate) detail: String,
}

pub(crate) const AUDIT: JsonTable<AuditRow> = JsonTable::new("dataplane_audit");

fn last_seq(tx: &WriteTx) -> Result<u64, StoreError> {
    use redb::ReadableTable;
    let t = tx
        .raw()
        .open_table(AUDIT.def())
        .map_err(StoreError::other)?;
    let last = t.last().map_err(StoreError::other)?;
    match last {
        Some((k, _)) => {
            let b: [u8; 8] = k
                .value()
                .try_into()
                .map_err(|_| StoreError::other("bad audit key"))?;
            Ok(u64::from_be_bytes(b))
        }
        None => Ok(0),
    }
}

/// Appends `row` (its `seq` assigned) and drops the row [`MAX_EVENTS`]
/// behind it; returns the sequence number once durable.
pub(crate) fn append(store: &Store, mut row: AuditRow) -> Result<u64, StoreError> {
    let tx = WriteTx::begin(store)?;
    let seq = last_seq(&tx)? + 1;
    row.seq = seq;
    tx.put(AUDIT, &seq.to_be_bytes(), &row)?;
    if let Some(old) = seq.checked_sub(MAX_EVENTS).filter(|o| *o > 0) {
        tx.delete(AUDIT.def(), &old.to_be_bytes())?;
    }
    tx.commit()?;
    Ok(seq)
}

/// Sets the outcome of row `seq`.
pub(crate) fn finish(
    store: &Store,
    seq: u64,
    result: &str,
    detail: &str,
) -> Result<(), StoreError> {
    let tx = WriteTx::begin(store)?;
    let key = seq.to_be_bytes();
    if let Some(mut row) = tx.get(AUDIT, &key)? {
        row.result = result.to_owned();
        row.detail = detail.to_owned();
        tx.put(AUDIT, &key, &row)?;
    }
    tx.commit()
}

/// Rows newest first, filtered: at or after `since_unix`, by `actor` (id or
/// name), by `node`; at most `limit` (default 50, at most 1000).
pub(crate) fn query(
    store: &Store,
    q: &pb::QueryDataPlaneAuditRequest,
) -> Result<pb::QueryDataPlaneAuditResponse, ApiError> {
    let limit = match q.limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    } as usize;
    let r = ReadTx::begin(store).map_err(ApiError::internal)?;
    let mut out = Vec::new();
    let mut before: Option<[u8; 8]> = None;
    'scan: loop {
        let page = r
            .last(AUDIT, before.as_ref().map(<[u8; 8]>::as_slice), PAGE)
            .map_err(ApiError::internal)?;
        let Some(oldest) = page.last() else { break };
        before = Some(oldest.seq.to_be_bytes());
        let short = page.len() < PAGE;
        for row in page {
            if row.at < q.since_unix {
                break 'scan;
            }
            let actor = q.actor.is_empty() || q.actor == row.actor || q.actor == row.account;
            let node = q.node.is_empty() || q.node == row.node;
            if actor && node {
                out.push(to_pb(row));
                if out.len() >= limit {
                    break 'scan;
                }
            }
        }
        if short {
            break;
        }
    }
    Ok(pb::QueryDataPlaneAuditResponse { events: out })
}

fn to_pb(r: AuditRow) -> pb::DataPlaneAuditEvent {
    pb::DataPlaneAuditEvent {
        seq: r.seq,
        at_unix: r.at,
        actor: r.actor,
        account: r.account,
        node: r.node,
        method: r.method,
        target: r.target,
        summary: r.summary,
        source_ip: r.source_ip,
        result: r.result,
        detail: r.detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("m.redb"), &crate::store::SCHEMA).expect("open");
        (dir, s)
    }

    fn row(at: i64, account: &str, node: &str) -> AuditRow {
        AuditRow {
            at,
            actor: format!("id-{account}"),
            account: account.to_owned(),
            node: node.to_owned(),
            method: "proxy.UpsertRoute".to_owned(),
            result: "sent".to_owned(),
            ..AuditRow::default()
        }
    }

    #[test]
    fn rows_are_queried_newest_first_with_filters_and_finished_in_place() {
        let (_d, s) = store();
        for i in 0..600 {
            let who = if i % 2 == 0 { "root" } else { "web" };
            let node = if i % 3 == 0 { "a" } else { "b" };
            assert_eq!(
                append(&s, row(1000 + i, who, node)).expect("append"),
                (i + 1) as u64
            );
        }
        finish(&s, 600, "ok", "").expect("finish");
        let q = |since, actor: &str, node: &str, limit| {
            query(
                &s,
                &pb::QueryDataPlaneAuditRequest {
                    since_unix: since,
                    actor: actor.to_owned(),
                    node: node.to_owned(),
                    limit,
                },
            )
            .expect("query")
            .events
        };
        let all = q(0, "", "", 0);
        assert_eq!(all.len(), 50);
        assert_eq!(all[0].seq, 600);
        assert_eq!(all[0].result, "ok");
        assert_eq!(all[1].result, "sent");
        assert_eq!(q(0, "", "", 5000).len(), 600);
        let web = q(0, "web", "", 1000);
        assert_eq!(web.len(), 300);
        assert!(web.iter().all(|e| e.account == "web"));
        assert_eq!(q(0, "id-web", "a", 1000).len(), 100);
        let recent = q(1590, "", "", 1000);
        assert_eq!(recent.len(), 10);
        assert!(recent.iter().all(|e| e.at_unix >= 1590));
    }
}
