//! Metacrypt's redb store: `<data_dir>/metacrypt/metacrypt.redb`, schema
//! `metacrypt`, opened through `mc_kit::store` (0600/0700, durable commits,
//! migrations in order, newer schemas refused).
//!
//! Tables (v1): `barrier_seal` (`config`: the slots), `barrier_mek`
//! (`current`), `barrier_keys` (mount id u64 BE ‖ DEK version u32 BE), and
//! the kit's `audit`. Barrier rows are plain JSON whose secrets are wrapped
//! keys; every engine value (later tables) is sealed in the envelope.
//!
//! Invariant: every change and its audit row commit in one transaction.

use mc_kit::store::json::{JsonTable, create_tables};
use mc_kit::store::{Migration, Schema, StoreError};

pub(crate) use mc_kit::store::audit::AUDIT;

use crate::barrier::{DekRecord, MekRecord, SealConfig};

pub(crate) const BARRIER_SEAL: JsonTable<SealConfig> = JsonTable::new("barrier_seal");
pub(crate) const BARRIER_MEK: JsonTable<MekRecord> = JsonTable::new("barrier_mek");
pub(crate) const BARRIER_KEYS: JsonTable<DekRecord> = JsonTable::new("barrier_keys");

pub(crate) const SEAL_KEY: &[u8] = b"config";
pub(crate) const MEK_KEY: &[u8] = b"current";

fn create(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(
        txn,
        &[
            BARRIER_SEAL.def(),
            BARRIER_MEK.def(),
            BARRIER_KEYS.def(),
            AUDIT.def(),
        ],
    )
}

pub(crate) const SCHEMA: Schema = Schema {
    name: "metacrypt",
    migrations: &[Migration {
        to_version: 1,
        description: "barrier tables and audit",
        apply: create,
    }],
};

/// The `barrier_keys` row key of a mount's DEK version.
pub(crate) fn dek_key(mount: u64, version: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&mount.to_be_bytes());
    k[8..].copy_from_slice(&version.to_be_bytes());
    k
}
