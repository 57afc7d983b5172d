//! `fsck` and `status`: the blob rows held against the blob store, and the
//! registry's totals.
//!
//! Read-only: fsck reports, the operator acts (a missing object is restored
//! from a backup; an orphan is GC's to delete after `grace`). Rows are read
//! in batches, each from its own read snapshot, and objects are listed after
//! the rows, so an object committed meanwhile is re-checked against the
//! store before it is called an orphan, and one pending deletion by GC
//! (`gc_pending`) is not one.

use std::io::Read;

use mc_kit::store::json::ReadTx;
use serde::Serialize;

use super::{Core, R};
use crate::gc::sweep;
use crate::gc::tables::GC_RUNS;
use crate::registry::digest::{Digest, Hasher};
use crate::store::{BLOBS, MANIFESTS, REPOS, TAGS};

/// At most this many findings of each kind are listed (all are counted).
pub(crate) const MAX_FINDINGS: usize = 1000;

/// One problem: the blob's digest, its object key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Finding {
    pub digest: String,
    pub object: String,
    pub detail: String,
}

/// Findings of one kind: how many, and the first [`MAX_FINDINGS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Findings {
    pub count: u64,
    pub items: Vec<Finding>,
}

impl Findings {
    fn add(&mut self, digest: &str, object: &str, detail: String) {
        self.count += 1;
        if self.items.len() < MAX_FINDINGS {
            self.items.push(Finding {
                digest: digest.to_owned(),
                object: object.to_owned(),
                detail,
            });
        }
    }
}

/// What a run found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct FsckReport {
    pub verified_content: bool,
    pub blobs_checked: u64,
    pub bytes_checked: u64,
    pub objects_listed: u64,
    /// Rows whose object is gone: pulls of it answer 404.
    pub missing: Findings,
    /// Objects whose length differs from the row's size.
    pub size_mismatch: Findings,
    /// Objects whose bytes do not hash to their digest (`verify_content` only).
    pub content_mismatch: Findings,
    /// Objects no row names and GC has not scheduled: crashed commits, or
    /// files put there by hand. GC removes them `grace` after their mtime.
    pub orphans: Findings,
}

impl FsckReport {
    /// No missing, mismatched or orphaned object.
    pub(crate) fn clean(&self) -> bool {
        self.missing.count
            + self.size_mismatch.count
            + self.content_mismatch.count
            + self.orphans.count
            == 0
    }
}

/// The registry's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct StorageStatus {
    pub backend: String,
    pub repositories: u64,
    pub manifests: u64,
    pub tags: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
    /// Stored blobs no manifest references (in no repository): what GC
    /// frees once their links and rows are `gc_grace` old. A blob uploaded
    /// for a manifest not pushed yet counts until that push.
    pub reclaimable_blobs: u64,
    pub reclaimable_bytes: u64,
    /// The repositories with the most reclaimable bytes (blobs they link
    /// that no manifest references), most first.
    pub reclaimable_by_repository: Vec<super::inspect::RepoReclaimable>,
    /// Why the blob store did not answer a probe; empty when it did.
    pub backend_error: String,
    /// Free bytes where uploads stage (`[mcr] min_free` applies to it).
    pub data_free_bytes: u64,
    /// The newest GC run: id, state, finish time (0 while running or never).
    pub last_gc_id: String,
    pub last_gc_state: String,
    pub last_gc_finished_at: i64,
}

/// Where a running fsck is, as `progress` callbacks see it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct FsckProgress {
    /// `blobs` (rows against objects), then `objects` (listing against rows).
    pub phase: &'static str,
    pub blobs_checked: u64,
    /// Blob rows when the run started (rows may come and go meanwhile).
    pub blobs_total: u64,
    pub bytes_checked: u64,
    pub objects_listed: u64,
}

impl FsckReport {
    fn progress(&self, phase: &'static str, blobs_total: u64) -> FsckProgress {
        FsckProgress {
            phase,
            blobs_checked: self.blobs_checked,
            blobs_total,
            bytes_checked: self.bytes_checked,
            objects_listed: self.objects_listed,
        }
    }
}

impl Core {
    /// Checks every blob row against its object, then every object against
    /// the rows. With `verify_content`, every object is read and hashed.
    #[cfg(test)]
    pub(crate) fn fsck(&self, verify_content: bool) -> R<FsckReport> {
        self.fsck_with(verify_content, &mut |_| {})
    }

    /// [`Self::fsck`], calling `progress` after each blob and once per phase.
    pub(crate) fn fsck_with(
        &self,
        verify_content: bool,
        progress: &mut dyn FnMut(FsckProgress),
    ) -> R<FsckReport> {
        let mut report = FsckReport {
            verified_content: verify_content,
            ..FsckReport::default()
        };
        let total = ReadTx::begin(&self.store)?.len(BLOBS)?;
        progress(report.progress("blobs", total));
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let (rows, next, _) = sweep::scan(&self.store, BLOBS, cursor.as_deref(), |_| true)?;
            for (key, blob) in rows {
                progress(report.progress("blobs", total));
                let digest = String::from_utf8_lossy(&key).into_owned();
                report.blobs_checked += 1;
                match self.fs.object_len(&blob.object) {
                    Ok(None) => report
                        .missing
                        .add(&digest, &blob.object, "no object".into()),
                    Ok(Some(len)) if len != blob.size => report.size_mismatch.add(
                        &digest,
                        &blob.object,
                        format!("{len} bytes, the row says {}", blob.size),
                    ),
                    Ok(Some(len)) => {
                        report.bytes_checked += len;
                        if verify_content
                            && let Some(got) = self.hash_object(&digest, &blob.object)?
                        {
                            report.content_mismatch.add(
                                &digest,
                                &blob.object,
                                format!("the bytes hash to {got}"),
                            );
                        }
                    }
                    Err(e) => report.missing.add(&digest, &blob.object, e.to_string()),
                }
            }
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        progress(report.progress("objects", total));
        let objects = self.fs.list_objects()?;
        let tx = ReadTx::begin(&self.store)?;
        for (key, mtime, _) in objects {
            report.objects_listed += 1;
            if sweep::is_orphan(&tx, &key)? {
                let digest = crate::storage::Storage::digest_of_key(&key).unwrap_or_default();
                report
                    .orphans
                    .add(&digest, &key, format!("no row names it (mtime {mtime})"));
            }
        }
        progress(report.progress("objects", total));
        Ok(report)
    }

    /// The digest `object`'s bytes hash to, when it is not `digest`.
    fn hash_object(&self, digest: &str, object: &str) -> R<Option<String>> {
        let want = Digest::parse(digest)
            .map_err(|_| crate::error::RegistryError::internal("a blob row's key is no digest"))?;
        let mut f = self.fs.open_object(object)?;
        let mut h = Hasher::new(want.algorithm());
        let mut buf = vec![0_u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let got = h.finish();
        Ok((got != want).then(|| got.to_string()))
    }

    /// Counts of the registry's tables and its newest GC run.
    pub(crate) fn status(&self) -> R<StorageStatus> {
        let tx = ReadTx::begin(&self.store)?;
        let mut s = StorageStatus {
            backend: self.fs.backend().into(),
            backend_error: self
                .fs
                .probe()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
            data_free_bytes: self.fs.free_bytes().unwrap_or(0),
            repositories: tx.len(REPOS)?,
            manifests: tx.len(MANIFESTS)?,
            tags: tx.len(TAGS)?,
            ..StorageStatus::default()
        };
        let referenced = super::inspect::referenced_digests(self)?;
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let (rows, next, _) = sweep::scan(&self.store, BLOBS, cursor.as_deref(), |_| true)?;
            for (key, b) in rows {
                s.blobs += 1;
                s.blob_bytes += b.size;
                if !referenced.contains(&key) {
                    s.reclaimable_blobs += 1;
                    s.reclaimable_bytes += b.size;
                }
            }
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        s.reclaimable_by_repository = super::inspect::by_repository(self, &referenced)?;
        if let Some(run) = tx.last(GC_RUNS, None, 1)?.into_iter().next() {
            s.last_gc_id = run.id;
            s.last_gc_state = run.state;
            s.last_gc_finished_at = run.finished_at.unwrap_or(0);
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mc_kit::store::Store;

    use super::super::Core;
    use crate::model::RepoName;
    use crate::registry::digest::{Algorithm, Digest};
    use crate::storage::Storage;

    fn core(dir: &std::path::Path) -> Core {
        let store =
            Arc::new(Store::open(&dir.join("mcr.redb"), &crate::store::SCHEMA).expect("store"));
        Core {
            store,
            fs: Storage::open_fs(dir).expect("fs"),
        }
    }

    fn push(c: &Core, dir: &std::path::Path, bytes: &[u8], n: u32) -> (Digest, std::path::PathBuf) {
        let repo = RepoName::parse("apps/web").expect("name");
        let d = Digest::of(Algorithm::Sha256, bytes);
        let staged = dir.join(format!("staged-{n}"));
        std::fs::write(&staged, bytes).expect("stage");
        let inc = format!("{n:016x}");
        c.commit_upload(&repo, &d, staged, &inc, bytes.len() as u64)
            .expect("commit");
        let path = dir.join("blobs").join(Storage::object_key(&d, &inc));
        (d, path)
    }

    #[test]
    fn fsck_finds_missing_resized_altered_and_orphaned_objects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = core(dir.path());
        let blobs: Vec<_> = (0..4_u8)
            .map(|i| push(&c, dir.path(), &[i; 100], u32::from(i) + 1))
            .collect();
        let mut seen = Vec::new();
        let clean = c.fsck_with(true, &mut |p| seen.push(p)).expect("fsck");
        assert!(clean.clean(), "{clean:?}");
        // Progress: the blobs phase counting up to the total, then objects.
        assert_eq!(
            seen.first()
                .map(|p| (p.phase, p.blobs_checked, p.blobs_total)),
            Some(("blobs", 0, 4))
        );
        let last = seen.last().cloned().unwrap_or_default();
        assert_eq!(
            (last.phase, last.blobs_checked, last.objects_listed),
            ("objects", 4, 4)
        );
        assert!(
            seen.windows(2)
                .all(|w| w[0].blobs_checked <= w[1].blobs_checked)
        );
        assert_eq!(
            (
                clean.blobs_checked,
                clean.objects_listed,
                clean.bytes_checked
            ),
            (4, 4, 400)
        );
        let status = c.status().expect("status");
        assert_eq!(
            (status.blobs, status.blob_bytes, status.repositories),
            (4, 400, 1)
        );
        // No manifest references them yet: all four are reclaimable.
        assert_eq!(
            (status.reclaimable_blobs, status.reclaimable_bytes),
            (4, 400)
        );

        std::fs::remove_file(&blobs[0].1).expect("remove");
        std::fs::write(&blobs[1].1, [1_u8; 99]).expect("shorten");
        std::fs::write(&blobs[2].1, [9_u8; 100]).expect("alter");
        let stray = Digest::of(Algorithm::Sha256, b"stray");
        let stray_path = dir
            .path()
            .join("blobs")
            .join(Storage::object_key(&stray, "00000000000000ff"));
        std::fs::create_dir_all(stray_path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&stray_path, b"stray").expect("orphan");

        let quick = c.fsck(false).expect("fsck");
        assert_eq!(quick.missing.count, 1);
        assert_eq!(quick.missing.items[0].digest, blobs[0].0.to_string());
        assert_eq!(quick.size_mismatch.count, 1);
        assert!(
            quick.size_mismatch.items[0].detail.contains("99 bytes"),
            "{quick:?}"
        );
        assert_eq!(
            quick.content_mismatch.count, 0,
            "not without verify_content"
        );
        assert_eq!(quick.orphans.count, 1);
        assert_eq!(quick.orphans.items[0].digest, stray.to_string());
        assert!(!quick.clean());

        let full = c.fsck(true).expect("fsck");
        assert_eq!(full.content_mismatch.count, 1);
        assert_eq!(
            full.content_mismatch.items[0].digest,
            blobs[2].0.to_string()
        );
        assert_eq!(
            full.content_mismatch.items[0].detail,
            format!(
                "the bytes hash to {}",
                Digest::of(Algorithm::Sha256, &[9_u8; 100])
            )
        );
    }
}
