//! `MountSealer`: the kit's [`Sealer`] over one mount's DEK ring, so engine
//! rows (and, later, other services' sealed values) are sealed in the
//! barrier's envelope.
//!
//! Invariant: as the trait promises, a value is bound to its location
//! (AAD = envelope header ‖ table ‖ 0 ‖ row key), and a sealer holds its
//! own reference to the unsealed keys, so it keeps working until dropped
//! even if the barrier seals meanwhile (seal waits for such holders).

use std::sync::Arc;

use mc_kit::api::ApiError;
use mc_kit::seal::{SealError, Sealer};
use mc_kit::store::Table;
use mc_kit::store::json::WriteTx;
use redb::{ReadableDatabase, ReadableTable, TableHandle};
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::Unsealed;

/// Seals `value` (as JSON) for row `key` of `table` with `mount`'s current DEK.
pub(crate) fn put_sealed<T: Serialize>(
    tx: &WriteTx,
    keys: &Unsealed,
    mount: u64,
    table: Table,
    key: &[u8],
    value: &T,
) -> Result<(), ApiError> {
    let plain = Zeroizing::new(serde_json::to_vec(value).map_err(ApiError::internal)?);
    let sealed = keys.seal_row(mount, table.name(), key, &plain)?;
    Ok(tx.put_raw(table, key, &sealed)?)
}

/// Opens a sealed JSON row (any failure is `Internal`, logged by the barrier).
pub(crate) fn open_sealed<T: DeserializeOwned>(
    keys: &Unsealed,
    mount: u64,
    table: Table,
    key: &[u8],
    sealed: &[u8],
) -> Result<T, ApiError> {
    let plain = keys.open_row(mount, table.name(), key, sealed)?;
    serde_json::from_slice(&plain).map_err(ApiError::internal)
}

/// Reads and opens one row inside a write transaction.
pub(crate) fn get_sealed<T: DeserializeOwned>(
    tx: &WriteTx,
    keys: &Unsealed,
    mount: u64,
    table: Table,
    key: &[u8],
) -> Result<Option<T>, ApiError> {
    tx.get_raw(table, key)?
        .map(|b| open_sealed(keys, mount, table, key, &b))
        .transpose()
}

/// A read snapshot of the store for sealed reads.
pub(crate) struct Snapshot(redb::ReadTransaction);

impl Snapshot {
    pub(crate) fn begin(store: &mc_kit::store::Store) -> Result<Self, ApiError> {
        store
            .db()
            .begin_read()
            .map(Self)
            .map_err(ApiError::internal)
    }

    /// Reads and opens one row.
    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        keys: &Unsealed,
        mount: u64,
        table: Table,
        key: &[u8],
    ) -> Result<Option<T>, ApiError> {
        let t = self.0.open_table(table).map_err(ApiError::internal)?;
        let v = t.get(key).map_err(ApiError::internal)?;
        v.map(|v| open_sealed(keys, mount, table, key, v.value()))
            .transpose()
    }

    /// Every row whose key starts with `prefix`, opened, in key order.
    pub(crate) fn scan<T: DeserializeOwned>(
        &self,
        keys: &Unsealed,
        mount: u64,
        table: Table,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>, ApiError> {
        let t = self.0.open_table(table).map_err(ApiError::internal)?;
        let mut out = Vec::new();
        for row in t.range(prefix..).map_err(ApiError::internal)? {
            let (k, v) = row.map_err(ApiError::internal)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            let key = k.value().to_vec();
            let value = open_sealed(keys, mount, table, &key, v.value())?;
            out.push((key, value));
        }
        Ok(out)
    }

    /// The keys (not the values) under `prefix`, at most `limit` of them.
    pub(crate) fn keys(
        &self,
        table: Table,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, ApiError> {
        let t = self.0.open_table(table).map_err(ApiError::internal)?;
        let mut out = Vec::new();
        for row in t.range(prefix..).map_err(ApiError::internal)? {
            let (k, _) = row.map_err(ApiError::internal)?;
            if !k.value().starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push(k.value().to_vec());
        }
        Ok(out)
    }
}

/// Deletes every row of `table` whose key starts with `prefix` (a mount's
/// rows on unmount, a KV path's versions); returns how many.
pub(crate) fn purge_prefix(tx: &WriteTx, table: Table, prefix: &[u8]) -> Result<u64, ApiError> {
    let mut t = tx.raw().open_table(table).map_err(ApiError::internal)?;
    let doomed: Vec<Vec<u8>> = t
        .range(prefix..)
        .map_err(ApiError::internal)?
        .map_while(|row| {
            row.ok()
                .map(|(k, _)| k.value().to_vec())
                .filter(|k| k.starts_with(prefix))
        })
        .collect();
    for k in &doomed {
        t.remove(k.as_slice()).map_err(ApiError::internal)?;
    }
    Ok(doomed.len() as u64)
}

/// Up to `limit` row keys of `table` under `prefix` after `after` (from
/// the start when `None`), in key order: a bounded pass resumes from its
/// last key.
pub(crate) fn keys_after(
    tx: &WriteTx,
    table: Table,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<Vec<u8>>, ApiError> {
    let t = tx.raw().open_table(table).map_err(ApiError::internal)?;
    let mut out = Vec::new();
    for row in t
        .range(after.unwrap_or(prefix)..)
        .map_err(ApiError::internal)?
    {
        let (k, _) = row.map_err(ApiError::internal)?;
        let key = k.value();
        if !key.starts_with(prefix) || out.len() >= limit {
            break;
        }
        if after != Some(key) {
            out.push(key.to_vec());
        }
    }
    Ok(out)
}

/// Seals with `mount`'s current DEK; opens with the version an envelope names.
pub(crate) struct MountSealer {
    keys: Arc<Unsealed>,
    mount: u64,
}

#[cfg_attr(not(test), allow(dead_code))] // the seam for other services' values
impl MountSealer {
    pub(crate) fn new(keys: Arc<Unsealed>, mount: u64) -> Self {
        Self { keys, mount }
    }
}

impl Sealer for MountSealer {
    fn seal(&self, table: &str, key: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        self.keys
            .seal_row(self.mount, table, key, plain)
            .map_err(|_| SealError::Seal)
    }

    fn open(
        &self,
        table: &str,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if super::envelope::parse(sealed).is_err() {
            return Err(SealError::Malformed {
                table: table.to_owned(),
            });
        }
        self.keys
            .open_row(self.mount, table, key, sealed)
            .map_err(|_| SealError::Open {
                table: table.to_owned(),
            })
    }
}

/// Writes a public row in clear (CA certificates, chains, CRLs): only into
/// a table listed in `store::PUBLIC_TABLES`, so nothing else becomes
/// readable while sealed by accident.
pub(crate) fn put_public(
    tx: &WriteTx,
    table: Table,
    key: &[u8],
    value: &[u8],
) -> Result<(), ApiError> {
    if !crate::store::PUBLIC_TABLES
        .iter()
        .any(|t| t.name() == table.name())
    {
        return Err(ApiError::internal(format!(
            "{} is not a public table",
            table.name()
        )));
    }
    Ok(tx.put_raw(table, key, value)?)
}
