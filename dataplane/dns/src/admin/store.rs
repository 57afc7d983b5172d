//! MCNS's redb store: `<data_dir>/mcns/mcns.redb`.
//!
//! Tables (bytes → JSON): `zones` (zone name → [`ZoneSpec`], which holds the
//! serial) and `records` (zone NUL name NUL type NUL value → [`RecordSpec`]).
//! Every change is one write transaction that also writes the zone's new
//! serial, committed before the snapshot is published and the caller answered.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mc_kit::store::{Migration, Schema, Store, StoreError, Table};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::model::{RecordSpec, ZoneName, ZoneSpec};

pub(crate) const ZONES: Table = TableDefinition::new("zones");
pub(crate) const RECORDS: Table = TableDefinition::new("records");

fn create_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    for t in [ZONES, RECORDS] {
        txn.open_table(t).map_err(StoreError::other)?;
    }
    Ok(())
}

pub const SCHEMA: Schema = Schema {
    name: "mcns",
    migrations: &[Migration {
        to_version: 1,
        description: "zones, records",
        apply: create_tables,
    }],
};

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
    let txn = store.db().begin_read().map_err(StoreError::other)?;
    let zones = txn.open_table(ZONES).map_err(StoreError::other)?;
    let records = txn.open_table(RECORDS).map_err(StoreError::other)?;
    let mut out = BTreeMap::new();
    for row in zones.iter().map_err(StoreError::other)? {
        let (_, v) = row.map_err(StoreError::other)?;
        let spec: ZoneSpec = serde_json::from_slice(v.value()).map_err(StoreError::other)?;
        out.insert(spec.name.clone(), (spec, Vec::new()));
    }
    for row in records.iter().map_err(StoreError::other)? {
        let (k, v) = row.map_err(StoreError::other)?;
        let zone = k
            .value()
            .split(|b| *b == 0)
            .next()
            .and_then(|z| std::str::from_utf8(z).ok())
            .and_then(|z| ZoneName::parse(z).ok());
        let record: RecordSpec = serde_json::from_slice(v.value()).map_err(StoreError::other)?;
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
    let txn = store.db().begin_write().map_err(StoreError::other)?;
    {
        let mut zones = txn.open_table(ZONES).map_err(StoreError::other)?;
        let mut records = txn.open_table(RECORDS).map_err(StoreError::other)?;
        for op in ops {
            match op {
                Op::PutZone(z) => {
                    let bytes = serde_json::to_vec(z).map_err(StoreError::other)?;
                    zones
                        .insert(z.name.as_str().as_bytes(), bytes.as_slice())
                        .map_err(StoreError::other)?;
                }
                Op::DeleteZone(z) => {
                    zones
                        .remove(z.as_str().as_bytes())
                        .map_err(StoreError::other)?;
                }
                Op::PutRecord(z, r) => {
                    let bytes = serde_json::to_vec(r).map_err(StoreError::other)?;
                    records
                        .insert(record_key(z, r).as_slice(), bytes.as_slice())
                        .map_err(StoreError::other)?;
                }
                Op::DeleteRecord(z, r) => {
                    records
                        .remove(record_key(z, r).as_slice())
                        .map_err(StoreError::other)?;
                }
                Op::DeleteRecords(z) => {
                    let start = zone_prefix(z);
                    let mut end = start.clone();
                    if let Some(last) = end.last_mut() {
                        *last = 1;
                    }
                    records
                        .retain_in(start.as_slice()..end.as_slice(), |_, _| false)
                        .map_err(StoreError::other)?;
                }
            }
        }
    }
    txn.commit().map_err(StoreError::other)
}
