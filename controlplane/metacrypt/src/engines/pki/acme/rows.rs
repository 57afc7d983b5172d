//! Reading and writing the `acme` table: sealed rows keyed
//! mount id ‖ kind ‖ id, through the barrier's sealer like every engine row.

use mc_kit::store::json::WriteTx;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::problem::{Kind, Problem};
use crate::barrier::sealer::{Snapshot, get_sealed, put_sealed};
use crate::core::run::Authorized;
use crate::error::CryptError;
use crate::store::mount_key;

pub(crate) use super::super::tables::ACME;

/// A failure below ACME (store, barrier) as a problem document.
pub(crate) fn internal(e: CryptError) -> Problem {
    match e {
        CryptError::Unavailable(s) => Problem::new(Kind::ServerInternal, s).with_status(503),
        CryptError::NotFound(s) => Problem::malformed(s).with_status(404),
        CryptError::Invalid(i) => Problem::malformed(i.to_string()),
        other => {
            tracing::warn!(error = %other, "acme: internal error");
            Problem::new(Kind::ServerInternal, "internal error")
        }
    }
}

pub(crate) fn key(a: &Authorized<'_>, kind: u8, id: &str) -> Vec<u8> {
    let mut rest = Vec::with_capacity(1 + id.len());
    rest.push(kind);
    rest.extend_from_slice(id.as_bytes());
    mount_key(a.mount().id, &rest)
}

pub(crate) fn get<T: DeserializeOwned>(
    a: &Authorized<'_>,
    kind: u8,
    id: &str,
) -> Result<Option<T>, Problem> {
    Snapshot::begin(a.store())
        .and_then(|s| s.get(a.keys(), a.mount().id, ACME, &key(a, kind, id)))
        .map_err(internal)
}

pub(crate) fn get_tx<T: DeserializeOwned>(
    a: &Authorized<'_>,
    tx: &WriteTx,
    kind: u8,
    id: &str,
) -> Result<Option<T>, Problem> {
    get_sealed(tx, a.keys(), a.mount().id, ACME, &key(a, kind, id)).map_err(internal)
}

pub(crate) fn put<T: Serialize>(
    a: &Authorized<'_>,
    tx: &WriteTx,
    kind: u8,
    id: &str,
    value: &T,
) -> Result<(), Problem> {
    put_sealed(tx, a.keys(), a.mount().id, ACME, &key(a, kind, id), value).map_err(internal)
}

pub(crate) fn delete(a: &Authorized<'_>, tx: &WriteTx, kind: u8, id: &str) -> Result<(), Problem> {
    tx.delete(ACME, &key(a, kind, id))
        .map(|_| ())
        .map_err(|e| internal(e.into()))
}

/// How many rows of `kind` the mount holds, counting up to `limit`.
pub(crate) fn count(a: &Authorized<'_>, kind: u8, limit: usize) -> Result<usize, Problem> {
    let prefix = mount_key(a.mount().id, &[kind]);
    Snapshot::begin(a.store())
        .and_then(|s| s.keys(ACME, &prefix, limit))
        .map(|k| k.len())
        .map_err(internal)
}

/// Every row of `kind`, opened (bounded by the kind's limit).
pub(crate) fn scan<T: DeserializeOwned>(a: &Authorized<'_>, kind: u8) -> Result<Vec<T>, Problem> {
    let prefix = mount_key(a.mount().id, &[kind]);
    Snapshot::begin(a.store())
        .and_then(|s| s.scan(a.keys(), a.mount().id, ACME, &prefix))
        .map(|rows| rows.into_iter().map(|(_, v)| v).collect())
        .map_err(internal)
}

/// Every row of `kind` with its id, opened (bounded by the kind's limit).
pub(crate) fn scan_keyed<T: DeserializeOwned>(
    a: &Authorized<'_>,
    kind: u8,
) -> Result<Vec<(String, T)>, Problem> {
    let prefix = mount_key(a.mount().id, &[kind]);
    Snapshot::begin(a.store())
        .and_then(|s| s.scan(a.keys(), a.mount().id, ACME, &prefix))
        .map(|rows| {
            rows.into_iter()
                .map(|(k, v)| {
                    let id = k.get(prefix.len()..).unwrap_or_default();
                    (String::from_utf8_lossy(id).into_owned(), v)
                })
                .collect()
        })
        .map_err(internal)
}

pub(crate) fn begin(a: &Authorized<'_>) -> Result<WriteTx, Problem> {
    WriteTx::begin(a.store()).map_err(|e| internal(e.into()))
}

pub(crate) fn commit(tx: WriteTx) -> Result<(), Problem> {
    tx.commit().map_err(|e| internal(e.into()))
}

/// An audit row for an ACME change, in `tx`.
pub(crate) fn audit(
    a: &Authorized<'_>,
    tx: &WriteTx,
    action: &str,
    path: &str,
    detail: String,
) -> Result<(), Problem> {
    super::super::ops::audit(a, tx, action, path, detail).map_err(internal)
}
