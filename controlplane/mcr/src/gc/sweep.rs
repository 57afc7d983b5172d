//! The steps of a GC run, each split into a **scan** (one read transaction
//! over at most [`BATCH`] rows, yielding candidates) and an **apply** (one
//! write transaction that re-reads every candidate and acts only if it
//! still qualifies). Pushes commit between the two; the re-check inside the
//! write transaction is what makes that safe (redb serialises writers), and
//! the unit tests interleave pushes exactly there.

use mc_kit::store::json::{ReadTx, WriteTx};
use mc_kit::store::{Store, StoreError};
use redb::{ReadableDatabase, ReadableTable};
use serde::de::DeserializeOwned;

use super::tables::{Counters, GC_PENDING, GC_RUNS, Item, PendingRow, UNLINKED, UnlinkedRow};
use crate::store::{BLOBS, BlobRow, LINKS, LinkRow, key2};

/// Rows per transaction: each write transaction stays a few milliseconds.
pub(crate) const BATCH: usize = 512;

/// Whether whole seconds `at` lie more than `grace` before `now`. Strict,
/// because times are truncated to seconds: `at + grace < now` means more
/// than `grace` real seconds passed.
pub(crate) fn older(at: i64, grace: i64, now: i64) -> bool {
    at.saturating_add(grace) < now
}

/// A link GC may remove: unreferenced, and linked/unreferenced over `grace` ago.
pub(crate) fn link_expired(l: &LinkRow, now: i64, grace: i64) -> bool {
    l.refs == 0
        && older(
            l.linked_at.max(l.unreferenced_since.unwrap_or(0)),
            grace,
            now,
        )
}

/// A blob GC may delete: no repository has linked it for over `grace`.
pub(crate) fn blob_expired(b: &BlobRow, now: i64, grace: i64) -> bool {
    b.links == 0 && older(b.unlinked_at.unwrap_or(b.created_at), grace, now)
}

/// A scan's candidates (key, row), next cursor, and rows seen.
pub(crate) type Scanned<T> = (Vec<(Vec<u8>, T)>, Option<Vec<u8>>, u64);

/// Rows of `table` strictly after `after`, at most [`BATCH`], passing `keep`;
/// also the last key seen (the next cursor; `None` at the end).
pub(crate) fn scan<T: DeserializeOwned>(
    store: &Store,
    table: mc_kit::store::json::JsonTable<T>,
    after: Option<&[u8]>,
    mut keep: impl FnMut(&T) -> bool,
) -> Result<Scanned<T>, StoreError> {
    let txn = store.db().begin_read().map_err(StoreError::other)?;
    let t = txn.open_table(table.def()).map_err(StoreError::other)?;
    let rows = match after {
        Some(a) => t.range::<&[u8]>(a..).map_err(StoreError::other)?,
        None => t.iter().map_err(StoreError::other)?,
    };
    let mut out = Vec::new();
    let mut seen = 0u64;
    for row in rows {
        let (k, v) = row.map_err(StoreError::other)?;
        let k = k.value().to_vec();
        if after.is_some_and(|a| a == k.as_slice()) {
            continue;
        }
        let v: T = serde_json::from_slice(v.value()).map_err(StoreError::other)?;
        seen += 1;
        let full = seen as usize >= BATCH;
        let cursor = full.then(|| k.clone());
        if keep(&v) {
            out.push((k, v));
        }
        if full {
            return Ok((out, cursor, seen));
        }
    }
    Ok((out, None, seen))
}

fn split(key: &[u8]) -> (String, String) {
    let i = key.iter().position(|b| *b == 0).unwrap_or(key.len());
    let a = String::from_utf8_lossy(&key[..i]).into_owned();
    let b = String::from_utf8_lossy(key.get(i + 1..).unwrap_or_default()).into_owned();
    (a, b)
}

/// Step 1 (apply): removes the candidate links that still qualify, records
/// them in `unlinked`, decrements their blobs' `links` (setting
/// `unlinked_at` at 0); progress goes into the run's row in the same
/// transaction.
pub(crate) fn remove_links(
    store: &Store,
    candidates: &[Vec<u8>],
    now: i64,
    grace: i64,
    progress: &mut Progress<'_>,
) -> Result<Vec<Item>, StoreError> {
    let tx = WriteTx::begin(store)?;
    let mut items = Vec::new();
    for k in candidates {
        let Some(link) = tx.get(LINKS, k)? else {
            continue;
        };
        if !link_expired(&link, now, grace) {
            continue; // referenced or relinked since the scan
        }
        let (repo, digest) = split(k);
        tx.delete(LINKS.def(), k)?;
        tx.put(
            UNLINKED,
            &key2(&digest, &repo),
            &UnlinkedRow {
                at: now,
                size: link.size,
            },
        )?;
        if let Some(mut blob) = tx.get(BLOBS, digest.as_bytes())? {
            blob.links = blob.links.saturating_sub(1);
            if blob.links == 0 {
                blob.unlinked_at = Some(now);
            }
            tx.put(BLOBS, digest.as_bytes(), &blob)?;
        }
        progress.counters.links_removed += 1;
        items.push(Item {
            kind: "link".into(),
            repository: repo,
            digest,
            size: link.size,
        });
    }
    progress.save(&tx)?;
    tx.commit()?;
    Ok(items)
}

/// Step 2 (apply): deletes the candidate blob rows that still qualify and
/// their `unlinked` rows, recording each object in `gc_pending`; returns
/// the objects to delete once this transaction is committed.
pub(crate) fn remove_blobs(
    store: &Store,
    candidates: &[Vec<u8>],
    now: i64,
    grace: i64,
    progress: &mut Progress<'_>,
) -> Result<(Vec<Item>, Vec<String>), StoreError> {
    let tx = WriteTx::begin(store)?;
    let mut items = Vec::new();
    let mut objects = Vec::new();
    for k in candidates {
        let Some(blob) = tx.get(BLOBS, k)? else {
            continue;
        };
        if !blob_expired(&blob, now, grace) {
            continue; // linked again since the scan
        }
        let digest = String::from_utf8_lossy(k).into_owned();
        for repo in crate::store::keys_under(tx.raw(), UNLINKED.def(), &digest)? {
            tx.delete(UNLINKED.def(), &key2(&digest, &repo))?;
        }
        tx.delete(BLOBS.def(), k)?;
        tx.put(
            GC_PENDING,
            blob.object.as_bytes(),
            &PendingRow {
                digest: digest.clone(),
                deleted_at: now,
            },
        )?;
        progress.counters.blobs_removed += 1;
        progress.counters.bytes_reclaimed += blob.size;
        objects.push(blob.object.clone());
        items.push(Item {
            kind: "blob".into(),
            repository: String::new(),
            digest,
            size: blob.size,
        });
    }
    progress.save(&tx)?;
    tx.commit()?;
    Ok((items, objects))
}

/// Every `gc_pending` object key (left by this run or a crashed one).
pub(crate) fn pending(store: &Store) -> Result<Vec<String>, StoreError> {
    Ok(ReadTx::begin(store)?
        .entries(GC_PENDING)?
        .into_iter()
        .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
        .collect())
}

/// Forgets `gc_pending` rows whose objects are deleted.
pub(crate) fn clear_pending(store: &Store, keys: &[String]) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let tx = WriteTx::begin(store)?;
    for k in keys {
        tx.delete(GC_PENDING.def(), k.as_bytes())?;
    }
    tx.commit()
}

/// Step 3's decision for one object listed by the store, older than
/// `grace`: an orphan when no blob row names it and it is not pending.
pub(crate) fn is_orphan(tx: &ReadTx, key: &str) -> Result<bool, StoreError> {
    if tx.get(GC_PENDING, key.as_bytes())?.is_some() {
        return Ok(false);
    }
    let Some(digest) = crate::storage::Storage::digest_of_key(key) else {
        return Ok(false); // not ours to judge: never delete what we cannot name
    };
    Ok(tx
        .get(BLOBS, digest.as_bytes())?
        .is_none_or(|b| b.object != key))
}

/// A run's progress row, rewritten in each batch's transaction.
pub(crate) struct Progress<'a> {
    pub id: &'a str,
    pub phase: &'static str,
    pub counters: Counters,
}

impl Progress<'_> {
    pub(crate) fn save(&self, tx: &WriteTx) -> Result<(), StoreError> {
        if let Some(mut row) = tx.get(GC_RUNS, self.id.as_bytes())? {
            row.phase = self.phase.to_owned();
            row.counters = self.counters.clone();
            tx.put(GC_RUNS, self.id.as_bytes(), &row)?;
        }
        Ok(())
    }
}
