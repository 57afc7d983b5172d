//! MCNS's redb store: `<data_dir>/mcns/mcns.redb`.
//!
//! Tables (bytes → JSON): `zones` (zone name → [`ZoneSpec`], which holds the
//! serial), `records` (zone NUL name NUL type NUL value → [`RecordSpec`]) and
//! `tsig_keys` (key name → [`StoredKey`], the secret sealed with the key in
//! [`seal_key_path`], which `mcd snapshot` carries beside the store).
//! Every change is one write transaction that also writes the zone's new
//! serial, committed before the snapshot is published and the caller answered.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mc_kit::store::json::{self, JsonTable, ReadTx, WriteTx};
use mc_kit::store::{Migration, Schema, Store, StoreError};

use crate::model::{RecordSpec, ZoneName, ZoneSpec};

pub(crate) const ZONES: JsonTable<ZoneSpec> = JsonTable::new("zones");
pub(crate) const RECORDS: JsonTable<RecordSpec> = JsonTable::new("records");
pub(crate) const TSIG_KEYS: JsonTable<super::keys::StoredKey> = JsonTable::new("tsig_keys");

fn create_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    json::create_tables(txn, &[ZONES.def(), RECORDS.def()])
}

pub const SCHEMA: Schema = Schema {
    name: "mcns",
    migrations: &[
        Migration {
            to_version: 1,
            description: "zones, records",
            apply: create_tables,
        },
        Migration {
            to_version: 2,
            description: "TSIG keys for UPDATE (secrets sealed)",
            apply: create_key_table,
        },
    ],
};

fn create_key_table(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    json::create_tables(txn, &[TSIG_KEYS.def()])
}

/// The key that seals TSIG secrets in the store: a snapshot of the store
/// is useless without it.
pub fn seal_key_path(data_dir: &Path) -> PathBuf {
    path(data_dir).with_file_name("tsig-seal.key")
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("mcns").join("mcns.redb")
}

fn zone_prefix(zone: &ZoneName) -> Vec<u8> {
    let mut k = zone.as_str().as_bytes().to_vec();
    k.push(0);
    k
}

pub(crate) fn record_key(zone: &ZoneName, r: &RecordSpec) -> Vec<u8> {
    let mut k = zone_prefix(zone);
    k.extend_from_slice(r.name.as_bytes());
    k.push(0);
    k.extend_from_slice(r.rtype.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(r.value.as_bytes());
    k
}

/// Every zone with its records.
pub(crate) fn load(
    store: &Store,
) -> Result<BTreeMap<ZoneName, (ZoneSpec, Vec<RecordSpec>)>, StoreError> {
    let tx = ReadTx::begin(store)?;
    let mut out = BTreeMap::new();
    for spec in tx.all(ZONES)? {
        out.insert(spec.name.clone(), (spec, Vec::new()));
    }
    for (k, record) in tx.entries(RECORDS)? {
        let zone = k
            .split(|b| *b == 0)
            .next()
            .and_then(|z| std::str::from_utf8(z).ok())
            .and_then(|z| ZoneName::parse(z).ok());
        match zone.and_then(|z| out.get_mut(&z)) {
            Some((_, list)) => list.push(record),
            None => tracing::warn!("mcns store: record without a zone ignored"),
        }
    }
    Ok(out)
}

/// One change to apply atomically.
pub(crate) enum Op<'a> {
    PutZone(&'a ZoneSpec),
    DeleteZone(&'a ZoneName),
    PutRecord(&'a ZoneName, &'a RecordSpec),
    DeleteRecord(&'a ZoneName, &'a RecordSpec),
    /// Every record of the zone.
    DeleteRecords(&'a ZoneName),
}

/// Applies `ops` in one durable transaction.
pub(crate) fn apply(store: &Store, ops: &[Op<'_>]) -> Result<(), StoreError> {
    let tx = WriteTx::begin(store)?;
    for op in ops {
        match op {
            Op::PutZone(z) => tx.put(ZONES, z.name.as_str().as_bytes(), *z)?,
            Op::DeleteZone(z) => {
                tx.delete(ZONES.def(), z.as_str().as_bytes())?;
            }
            Op::PutRecord(z, r) => tx.put(RECORDS, &record_key(z, r), *r)?,
            Op::DeleteRecord(z, r) => {
                tx.delete(RECORDS.def(), &record_key(z, r))?;
            }
            Op::DeleteRecords(z) => {
                // One key range (the zone's prefix), not a scan of every record.
                let start = zone_prefix(z);
                let mut end = start.clone();
                if let Some(last) = end.last_mut() {
                    *last = 1;
                }
                let mut records = tx
                    .raw()
                    .open_table(RECORDS.def())
                    .map_err(StoreError::other)?;
                records
                    .retain_in(start.as_slice()..end.as_slice(), |_, _| false)
                    .map_err(StoreError::other)?;
            }
        }
    }
    tx.commit()
}
