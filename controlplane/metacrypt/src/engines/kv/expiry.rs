//! The `kv expiry` task's work on one kv mount: every version whose
//! deletion time, set from `delete_version_after` when it was written, has
//! passed is destroyed (its data row deleted, the version marked
//! destroyed), in batches of at most `batch` paths, each batch one write
//! transaction with one `kv.destroy` audit row per path it changed.
//!
//! Invariant: only versions marked `expires` are destroyed; a version a
//! caller soft-deleted stays undeletable until a caller destroys it.

use mc_kit::store::json::WriteTx;

use super::PathMeta;
use super::ops::{audit, data_key};
use crate::barrier::sealer::{get_sealed, keys_after, put_sealed};
use crate::core::run::Authorized;
use crate::error::CryptError;
use crate::store::{KV_DATA, KV_META};

/// What one pass over a mount did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expired {
    pub(crate) paths: u64,
    pub(crate) versions: u64,
}

/// Destroys the versions expired at `now` in one batch of paths after
/// `after`; returns what it did and where the next batch starts (`None`:
/// the mount is done).
fn batch(
    a: &Authorized<'_>,
    now: i64,
    after: Option<&[u8]>,
    size: usize,
    done: &mut Expired,
) -> Result<Option<Vec<u8>>, CryptError> {
    let (keys, id) = (a.keys(), a.mount().id);
    let tx = WriteTx::begin(a.store())?;
    let prefix = id.to_be_bytes();
    let rows = keys_after(&tx, KV_META, &prefix, after, size)?;
    for row in &rows {
        let Some(mut meta) = get_sealed::<PathMeta>(&tx, keys, id, KV_META, row)? else {
            continue;
        };
        let path = String::from_utf8_lossy(&row[prefix.len()..]).into_owned();
        let mut gone = Vec::new();
        for (v, vm) in &mut meta.versions {
            if vm.expires && !vm.destroyed && vm.deletion_time <= now {
                vm.destroyed = true;
                tx.delete(KV_DATA, &data_key(id, &path, *v))?;
                gone.push(v.to_string());
            }
        }
        if gone.is_empty() {
            continue;
        }
        put_sealed(&tx, keys, id, KV_META, row, &meta)?;
        let detail = format!("versions={} (delete_version_after)", gone.join(","));
        audit(a, &tx, "kv.destroy", &path, detail)?;
        done.paths += 1;
        done.versions += gone.len() as u64;
    }
    tx.commit()?;
    Ok((rows.len() >= size).then(|| rows.last().cloned()).flatten())
}

/// Every batch of the mount, as of `now`.
pub(crate) fn destroy_expired(
    a: &Authorized<'_>,
    now: i64,
    size: usize,
) -> Result<Expired, CryptError> {
    let mut done = Expired::default();
    let mut after = None;
    loop {
        match batch(a, now, after.as_deref(), size.max(1), &mut done)? {
            Some(next) => after = Some(next),
            None => return Ok(done),
        }
    }
}
