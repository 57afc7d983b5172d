//! The control plane's own store: this node's identity.
//!
//! `<data_dir>/controlplane/controlplane.redb`, table `node`:
//! `id` → a random 128-bit id (hex) made on first start, `created` → Unix seconds.

use std::path::Path;

use mc_kit::clock::unix_now;
use mc_kit::store::json::ReadTx;
use mc_kit::store::{Migration, Schema, Store, StoreError, Table};
use redb::TableDefinition;

const NODE: Table = TableDefinition::new("node");

fn create_node(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut node = txn.open_table(NODE).map_err(StoreError::other)?;
    let id: u128 = rand::random();
    let created = unix_now();
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
    let id = ReadTx::begin(store)?.get_raw(NODE, b"id")?;
    id.map(|v| String::from_utf8_lossy(&v).into_owned())
        .ok_or_else(|| StoreError::other("node id missing"))
}
