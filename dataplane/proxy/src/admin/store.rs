//! MC-Proxy's redb store: `<data_dir>/mc-proxy/mc-proxy.redb`.
//!
//! Tables (bytes → JSON): `listeners` (name), `routes` (listener NUL
//! hostname), `firewall_rules` (rule key), `firewall_limits` (one row), `certificates` (name; the key sealed),
//! `l7_policies` (id). Every
//! admin change is one write transaction, committed before the new snapshot
//! is published and before the caller is answered.

use std::path::{Path, PathBuf};

use mc_kit::store::{Migration, Schema, Store, StoreError, Table};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) const LISTENERS: Table = TableDefinition::new("listeners");
pub const ROUTES: Table = TableDefinition::new("routes");
pub(crate) const FIREWALL_RULES: Table = TableDefinition::new("firewall_rules");
pub(crate) const FIREWALL_LIMITS: Table = TableDefinition::new("firewall_limits");
pub(crate) const CERTIFICATES: Table = TableDefinition::new("certificates");
pub(crate) const L7_POLICIES: Table = TableDefinition::new("l7_policies");

fn create_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    for t in [LISTENERS, ROUTES, FIREWALL_RULES, FIREWALL_LIMITS] {
        txn.open_table(t).map_err(StoreError::other)?;
    }
    Ok(())
}

fn create_l7_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    for t in [CERTIFICATES, L7_POLICIES] {
        txn.open_table(t).map_err(StoreError::other)?;
    }
    Ok(())
}

pub const SCHEMA: Schema = Schema {
    name: "mc-proxy",
    migrations: &[
        Migration {
            to_version: 1,
            description: "listeners, routes, firewall",
            apply: create_tables,
        },
        Migration {
            to_version: 2,
            description: "L7: certificates (keys sealed), per-route policies",
            apply: create_l7_tables,
        },
    ],
};

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("mc-proxy").join("mc-proxy.redb")
}

pub(crate) fn route_key(listener: &str, hostname: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(listener.len() + hostname.len() + 1);
    k.extend_from_slice(listener.as_bytes());
    k.push(0);
    k.extend_from_slice(hostname.as_bytes());
    k
}

/// Every value of `table`, decoded.
pub(crate) fn load_all<T: DeserializeOwned>(
    store: &Store,
    table: Table,
) -> Result<Vec<T>, StoreError> {
    let txn = store.db().begin_read().map_err(StoreError::other)?;
    let t = txn.open_table(table).map_err(StoreError::other)?;
    let mut out = Vec::new();
    for row in t.iter().map_err(StoreError::other)? {
        let (_, v) = row.map_err(StoreError::other)?;
        out.push(serde_json::from_slice(v.value()).map_err(StoreError::other)?);
    }
    Ok(out)
}

/// One change to apply atomically.
pub(crate) enum Op<'a> {
    Put(Table, Vec<u8>, &'a dyn ErasedJson),
    Delete(Table, Vec<u8>),
}

/// Lets `Op::Put` carry any serializable value.
pub(crate) trait ErasedJson {
    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error>;
}

impl<T: Serialize> ErasedJson for T {
    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// Applies `ops` in one durable transaction.
pub(crate) fn apply(store: &Store, ops: &[Op<'_>]) -> Result<(), StoreError> {
    let txn = store.db().begin_write().map_err(StoreError::other)?;
    for op in ops {
        match op {
            Op::Put(table, key, value) => {
                let bytes = value.to_json().map_err(StoreError::other)?;
                txn.open_table(*table)
                    .map_err(StoreError::other)?
                    .insert(key.as_slice(), bytes.as_slice())
                    .map_err(StoreError::other)?;
            }
            Op::Delete(table, key) => {
                txn.open_table(*table)
                    .map_err(StoreError::other)?
                    .remove(key.as_slice())
                    .map_err(StoreError::other)?;
            }
        }
    }
    txn.commit().map_err(StoreError::other)
}
