//! The control plane's own store: this node's identity.
//!
//! `<data_dir>/controlplane/controlplane.redb`, table `node`:
//! `id` → a random 128-bit id (hex) made on first start, `created` → Unix seconds.

use std::path::Path;

use mc_kit::store::{Migration, Schema, Store, StoreError, Table};
use redb::{ReadableDatabase, TableDefinition};

const NODE: Table = TableDefinition::new("node");

fn create_node(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut node = txn.open_table(NODE).map_err(StoreError::other)?;
    let id: u128 = rand::random();
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    node.insert(b"id".as_slice(), format!("{id:032x}").as_bytes())
        .map_err(StoreError::other)?;
    node.insert(b"created".as_slice(), created.to_string().as_bytes())
        .map_err(StoreError::other)?;
    Ok(())
}

pub const SCHEMA: Schema = Schema {
    name: "controlplane",
    migrations: &[Migration {
        to_version: 1,
        description: "node identity",
        apply: create_node,
    }],
};

/// Where the store lives under `data_dir`.
pub fn store_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("controlplane").join("controlplane.redb")
}

/// This node's id.
pub fn node_id(store: &Store) -> Result<String, StoreError> {
    let txn = store.db().begin_read().map_err(StoreError::other)?;
    let table = txn.open_table(NODE).map_err(StoreError::other)?;
    let id = table
        .get(b"id".as_slice())
        .map_err(StoreError::other)?
        .map(|v| String::from_utf8_lossy(v.value()).into_owned());
    id.ok_or_else(|| StoreError::other("node id missing"))
}
