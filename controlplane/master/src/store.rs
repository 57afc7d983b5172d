//! The master's redb store (`<data_dir>/mcp/mcp.redb`): registered nodes
//! with their last heartbeat, deployed services (the definition that was
//! deployed successfully and its node), deploy records (every attempt's
//! steps, kept per service, newest last, at most [`MAX_RECORDS`] each), and
//! snapshots (one row per archive file under `<data_dir>/mcp/snapshots/`),
//! the data-plane audit trail (`audit`), and the next scheduled snapshot
//! of each service with a schedule (`schedule`).
//!
//! Invariants: a service row changes only together with the deploy record
//! of the attempt that succeeded (one transaction); a failed attempt adds
//! only its record. Each commit is durable before the RPC answers.

use mc_kit::store::json::{JsonTable, ReadTx, WriteTx, create_tables};
use mc_kit::store::{Migration, Schema, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::spec::ServiceDef;

/// Deploy records kept per service.
pub(crate) const MAX_RECORDS: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NodeRow {
    pub(crate) name: String,
    /// `NodeRole` as its proto number.
    pub(crate) role: i32,
    pub(crate) address: String,
    pub(crate) arch: String,
    pub(crate) agent_version: String,
    pub(crate) registered_at: i64,
    /// Unix milliseconds of the last heartbeat (or the registration).
    pub(crate) last_heartbeat_ms: i64,
    pub(crate) load: Load,
    /// The last probe after missed heartbeats (rows before it have none).
    #[serde(default)]
    pub(crate) probe: Option<Probe>,
}

/// A probe of a node's agent (`grpc.health.v1` over its TLS listener).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Probe {
    /// Unix milliseconds.
    pub(crate) at_ms: i64,
    /// The agent answered (SERVING or not).
    pub(crate) reached: bool,
    /// It answered SERVING.
    pub(crate) ok: bool,
    pub(crate) message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Load {
    pub(crate) cpu: f64,
    pub(crate) memory_used: u64,
    pub(crate) memory_total: u64,
    pub(crate) disk_free: u64,
    pub(crate) containers: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServiceRow {
    pub(crate) def: ServiceDef,
    pub(crate) node: String,
    pub(crate) deployed_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Step {
    pub(crate) step: String,
    pub(crate) success: bool,
    pub(crate) message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeployRecord {
    pub(crate) service: String,
    pub(crate) node: String,
    pub(crate) at: i64,
    /// Who asked (account id).
    pub(crate) by: String,
    pub(crate) action: String,
    pub(crate) success: bool,
    pub(crate) steps: Vec<Step>,
}

/// A stored snapshot: `<snapshots dir>/<service>/<id>.tar`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotRow {
    pub(crate) id: String,
    pub(crate) service: String,
    pub(crate) node: String,
    pub(crate) created_at: i64,
    pub(crate) bytes: u64,
    pub(crate) sha256: String,
}

pub(crate) const NODES: JsonTable<NodeRow> = JsonTable::new("nodes");
pub(crate) const SERVICES: JsonTable<ServiceRow> = JsonTable::new("services");
/// Key: `<service>/<at as 20 digits>/<n>`, so a prefix scan is in time order.
pub(crate) const RECORDS: JsonTable<DeployRecord> = JsonTable::new("deploy_records");
/// Key: the snapshot id (`<service>-<unix seconds>-<random>`).
pub(crate) const SNAPSHOTS: JsonTable<SnapshotRow> = JsonTable::new("snapshots");
/// Key: the service; value: the Unix second its next scheduled snapshot is
/// due.
pub(crate) const SCHEDULE: JsonTable<i64> = JsonTable::new("snapshot_schedule");

fn create(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[NODES.def(), SERVICES.def(), RECORDS.def()])
}

fn create_v2(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[SNAPSHOTS.def()])
}

fn create_v3(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[crate::audit::AUDIT.def()])
}

fn create_v4(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[SCHEDULE.def()])
}

pub(crate) const SCHEMA: Schema = Schema {
    name: "mcp",
    migrations: &[
        Migration {
            to_version: 1,
            description: "nodes, services, deploy records",
            apply: create,
        },
        Migration {
            to_version: 2,
            description: "snapshots",
            apply: create_v2,
        },
        Migration {
            to_version: 3,
            description: "data-plane audit trail",
            apply: create_v3,
        },
        Migration {
            to_version: 4,
            description: "snapshot schedule",
            apply: create_v4,
        },
    ],
};

pub(crate) fn snapshot(store: &Store, id: &str) -> Result<Option<SnapshotRow>, StoreError> {
    ReadTx::begin(store)?.get(SNAPSHOTS, id.as_bytes())
}

/// Snapshots of `service` (all when empty), newest first.
pub(crate) fn snapshots(store: &Store, service: &str) -> Result<Vec<SnapshotRow>, StoreError> {
    let mut all: Vec<SnapshotRow> = ReadTx::begin(store)?
        .all(SNAPSHOTS)?
        .into_iter()
        .filter(|s| service.is_empty() || s.service == service)
        .collect();
    all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    Ok(all)
}

/// Adds `row` and deletes the rows of its service beyond the newest `keep`;
/// returns the deleted rows (their files are the caller's to delete).
pub(crate) fn add_snapshot(
    store: &Store,
    row: &SnapshotRow,
    keep: usize,
) -> Result<Vec<SnapshotRow>, StoreError> {
    let mut mine = snapshots(store, &row.service)?;
    mine.push(row.clone());
    mine.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let old: Vec<SnapshotRow> = mine.into_iter().skip(keep).collect();
    let tx = WriteTx::begin(store)?;
    tx.put(SNAPSHOTS, row.id.as_bytes(), row)?;
    for o in &old {
        tx.delete(SNAPSHOTS.def(), o.id.as_bytes())?;
    }
    tx.commit()?;
    Ok(old)
}

/// When `service`'s next scheduled snapshot is due (Unix seconds).
pub(crate) fn next_snapshot(store: &Store, service: &str) -> Result<Option<i64>, StoreError> {
    ReadTx::begin(store)?.get(SCHEDULE, service.as_bytes())
}

/// Sets (`Some`) or clears the next scheduled snapshot of `service`.
pub(crate) fn set_next_snapshot(
    store: &Store,
    service: &str,
    at: Option<i64>,
) -> Result<(), StoreError> {
    let tx = WriteTx::begin(store)?;
    match at {
        Some(at) => tx.put(SCHEDULE, service.as_bytes(), &at)?,
        None => {
            tx.delete(SCHEDULE.def(), service.as_bytes())?;
        }
    }
    tx.commit()
}

pub(crate) fn node(store: &Store, name: &str) -> Result<Option<NodeRow>, StoreError> {
    ReadTx::begin(store)?.get(NODES, name.as_bytes())
}

pub(crate) fn nodes(store: &Store) -> Result<Vec<NodeRow>, StoreError> {
    ReadTx::begin(store)?.all(NODES)
}

pub(crate) fn put_node(store: &Store, row: &NodeRow) -> Result<(), StoreError> {
    let tx = WriteTx::begin(store)?;
    tx.put(NODES, row.name.as_bytes(), row)?;
    tx.commit()
}

pub(crate) fn service(store: &Store, name: &str) -> Result<Option<ServiceRow>, StoreError> {
    ReadTx::begin(store)?.get(SERVICES, name.as_bytes())
}

pub(crate) fn services(store: &Store) -> Result<Vec<ServiceRow>, StoreError> {
    ReadTx::begin(store)?.all(SERVICES)
}

fn record_key(r: &DeployRecord, n: usize) -> Vec<u8> {
    format!("{}/{:020}/{n:04}", r.service, r.at.max(0)).into_bytes()
}

/// Records of `service`, oldest first.
#[cfg(test)]
pub(crate) fn records(store: &Store, service: &str) -> Result<Vec<DeployRecord>, StoreError> {
    let prefix = format!("{service}/");
    Ok(ReadTx::begin(store)?
        .entries(RECORDS)?
        .into_iter()
        .filter(|(k, _)| k.starts_with(prefix.as_bytes()))
        .map(|(_, v)| v)
        .collect())
}

/// The newest record of `service` whose action is `action` (keys are in
/// time order).
pub(crate) fn last_record(
    store: &Store,
    service: &str,
    action: &str,
) -> Result<Option<DeployRecord>, StoreError> {
    let prefix = format!("{service}/");
    Ok(ReadTx::begin(store)?
        .entries(RECORDS)?
        .into_iter()
        .filter(|(k, v)| k.starts_with(prefix.as_bytes()) && v.action == action)
        .map(|(_, v)| v)
        .next_back())
}

/// What a finished operation changes in the service table.
pub(crate) enum Change<'a> {
    Keep,
    Put(&'a ServiceRow),
    Delete,
}

/// Appends `record` (dropping the oldest beyond [`MAX_RECORDS`]) and applies
/// `change`, in one transaction.
pub(crate) fn finish(
    store: &Store,
    record: &DeployRecord,
    change: Change<'_>,
) -> Result<(), StoreError> {
    let tx = WriteTx::begin(store)?;
    let prefix = format!("{}/", record.service);
    let mine = |k: &[u8]| k.starts_with(prefix.as_bytes());
    // Keys are in time order: count this service's records, then drop the
    // oldest beyond the bound (key order makes the first ones the oldest).
    let mut count = 0usize;
    tx.delete_where(RECORDS, |k, _| {
        count += usize::from(mine(k));
        false
    })?;
    let mut excess = (count + 1).saturating_sub(MAX_RECORDS);
    tx.delete_where(RECORDS, |k, _| {
        let drop = excess > 0 && mine(k);
        excess -= usize::from(drop);
        drop
    })?;
    let mut n = 0;
    while tx.get(RECORDS, &record_key(record, n))?.is_some() {
        n += 1;
    }
    tx.put(RECORDS, &record_key(record, n), record)?;
    match change {
        Change::Keep => {}
        Change::Put(row) => tx.put(SERVICES, row.def.name.as_bytes(), row)?,
        Change::Delete => {
            tx.delete(SERVICES.def(), record.service.as_bytes())?;
            tx.delete(SCHEDULE.def(), record.service.as_bytes())?;
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at: i64, success: bool) -> DeployRecord {
        DeployRecord {
            service: "web".into(),
            node: "a".into(),
            at,
            by: "admin".into(),
            action: "deploy".into(),
            success,
            steps: Vec::new(),
        }
    }

    #[test]
    fn snapshots_keep_the_newest_per_service_and_list_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("mcp/mcp.redb"), &SCHEMA).expect("open");
        let snap = |service: &str, at: i64| SnapshotRow {
            id: format!("{service}-{at}-00000000"),
            service: service.into(),
            node: "a".into(),
            created_at: at,
            bytes: 1,
            sha256: "00".repeat(32),
        };
        add_snapshot(&store, &snap("db", 1), 2).expect("add");
        add_snapshot(&store, &snap("web", 1), 2).expect("add");
        add_snapshot(&store, &snap("web", 2), 2).expect("add");
        let dropped = add_snapshot(&store, &snap("web", 3), 2).expect("add");
        assert_eq!(dropped, vec![snap("web", 1)]);
        let ids = |service: &str| -> Vec<String> {
            snapshots(&store, service)
                .expect("list")
                .into_iter()
                .map(|s| s.id)
                .collect()
        };
        assert_eq!(ids("web"), ["web-3-00000000", "web-2-00000000"]);
        assert_eq!(ids("db"), ["db-1-00000000"]);
        assert_eq!(ids("").len(), 3);
        assert_eq!(snapshot(&store, "web-1-00000000").expect("get"), None);
    }

    #[test]
    fn records_are_bounded_and_rows_change_only_with_their_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("mcp/mcp.redb"), &SCHEMA).expect("open");
        let def = crate::spec::ServiceDef {
            name: "web".into(),
            node: String::new(),
            components: Vec::new(),
            snapshots: None,
        };
        let row = ServiceRow {
            def,
            node: "a".into(),
            deployed_at: 1,
        };
        finish(&store, &record(1, true), Change::Put(&row)).expect("finish");
        finish(&store, &record(1, false), Change::Keep).expect("finish");
        assert_eq!(service(&store, "web").expect("read"), Some(row));
        for at in 2..40 {
            finish(&store, &record(at, false), Change::Keep).expect("finish");
        }
        let all = records(&store, "web").expect("records");
        assert_eq!(all.len(), MAX_RECORDS);
        assert_eq!(all.last().map(|r| r.at), Some(39));
        finish(&store, &record(40, true), Change::Delete).expect("finish");
        assert_eq!(service(&store, "web").expect("read"), None);
    }
}
