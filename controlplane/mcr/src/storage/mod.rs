//! The filesystem blob store and the upload staging area: the only module
//! that creates, renames or deletes files under `<data_dir>/mcr/`.
//!
//! Layout: `blobs/<alg>/<hex[0..2]>/<hex>.<inc>` (0600, never modified;
//! `inc` makes each stored copy a distinct file, so deleting an old copy can
//! never remove a new upload of the same digest), `uploads/<uuid>/data` and
//! `uploads/<uuid>/session.json`.
//!
//! Invariant (crash safety): a blob file appears under `blobs/` only by
//! `rename` of a staged file that was `fdatasync`'d first, followed by an
//! `fsync` of the directory; partial bytes only ever exist under
//! `uploads/`, which nothing serves. A crash between rename and the redb
//! commit leaves a file no row names: invisible (an orphan for GC).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::registry::digest::Digest;

/// Blob objects and upload staging under one directory.
#[derive(Debug, Clone)]
pub(crate) struct FsStore {
    blobs: PathBuf,
    uploads: PathBuf,
}

fn mkdir(p: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(p)
}

fn sync_dir(p: &Path) -> io::Result<()> {
    File::open(p)?.sync_all()
}

impl FsStore {
    /// Opens (creating) `<dir>/blobs` and `<dir>/uploads`.
    pub(crate) fn open(dir: &Path) -> io::Result<Self> {
        let s = Self {
            blobs: dir.join("blobs"),
            uploads: dir.join("uploads"),
        };
        mkdir(&s.blobs)?;
        mkdir(&s.uploads)?;
        Ok(s)
    }

    /// The object key of a new copy of `digest`.
    pub(crate) fn object_key(digest: &Digest, inc: &str) -> String {
        let hex = digest.hex();
        // A Digest has at least 64 hex characters (its invariant).
        let hh = hex.get(..2).unwrap_or("00");
        format!("{}/{hh}/{hex}.{inc}", digest.algorithm().name())
    }

    fn object_path(&self, key: &str) -> io::Result<PathBuf> {
        // Keys are made by `object_key` (alg/hh/hex.inc); refuse anything else.
        let ok = key.split('/').count() == 3
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'.')
            && !key.contains("..");
        if !ok {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad object key",
            ));
        }
        Ok(self.blobs.join(key))
    }

    /// Moves a verified, synced staged file into place as `key`.
    pub(crate) fn put_from_file(&self, staged: &Path, key: &str) -> io::Result<()> {
        let dest = self.object_path(key)?;
        let dir = dest
            .parent()
            .ok_or_else(|| io::Error::other("object without a directory"))?;
        if !dir.exists() {
            mkdir(dir)?;
            if let Some(alg_dir) = dir.parent() {
                sync_dir(alg_dir)?;
                if let Some(root) = alg_dir.parent() {
                    sync_dir(root)?;
                }
            }
        }
        let f = File::open(staged)?;
        f.sync_data()?;
        // GC's orphan step spares objects younger than `grace` by mtime: a
        // file moved into place is fresh until its row commits.
        f.set_modified(std::time::SystemTime::now())?;
        drop(f);
        fs::rename(staged, &dest)?;
        sync_dir(dir)
    }

    /// An object's length; `None` when it does not exist.
    pub(crate) fn object_len(&self, key: &str) -> io::Result<Option<u64>> {
        match fs::metadata(self.object_path(key)?) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens an object for reading.
    pub(crate) fn open_object(&self, key: &str) -> io::Result<File> {
        File::open(self.object_path(key)?)
    }

    /// The digest (`alg:hex`) an object key stores, if it is one of ours.
    pub(crate) fn digest_of_key(key: &str) -> Option<String> {
        let mut parts = key.split('/');
        let (alg, hh, file) = (parts.next()?, parts.next()?, parts.next()?);
        let (hex, inc) = file.split_once('.')?;
        if parts.next().is_some() || inc.is_empty() || hex.get(..2) != Some(hh) {
            return None;
        }
        let d = format!("{alg}:{hex}");
        Digest::parse(&d).ok().map(|d| d.to_string())
    }

    /// Every object: (key, mtime in Unix seconds, size), for GC's orphan
    /// step. Entries that vanish while listing are skipped.
    pub(crate) fn list_objects(&self) -> io::Result<Vec<(String, i64, u64)>> {
        let mut out = Vec::new();
        let names = |p: &Path| -> io::Result<Vec<String>> {
            match fs::read_dir(p) {
                Ok(rd) => Ok(rd
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        };
        for alg in names(&self.blobs)? {
            for hh in names(&self.blobs.join(&alg))? {
                for file in names(&self.blobs.join(&alg).join(&hh))? {
                    let key = format!("{alg}/{hh}/{file}");
                    let Ok(meta) = fs::metadata(self.blobs.join(&key)) else {
                        continue;
                    };
                    let mtime = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                    out.push((key, mtime, meta.len()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Deletes an object (a duplicate copy that lost a commit race, or GC).
    pub(crate) fn delete_object(&self, key: &str) -> io::Result<()> {
        match fs::remove_file(self.object_path(key)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn session_dir(&self, uuid: &str) -> io::Result<PathBuf> {
        let ok = !uuid.is_empty()
            && uuid.len() <= 64
            && uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        if !ok {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such session"));
        }
        Ok(self.uploads.join(uuid))
    }

    /// Creates a session's directory, its empty `data` and its
    /// `session.json` (written once).
    pub(crate) fn create_session(&self, uuid: &str, meta: &[u8]) -> io::Result<()> {
        let dir = self.session_dir(uuid)?;
        mkdir(&dir)?;
        OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(dir.join("data"))?;
        let mut f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(dir.join("session.json"))?;
        io::Write::write_all(&mut f, meta)?;
        Ok(())
    }

    /// A session's `session.json`, if the session exists.
    pub(crate) fn session_meta(&self, uuid: &str) -> io::Result<Vec<u8>> {
        fs::read(self.session_dir(uuid)?.join("session.json"))
    }

    /// A session's staged data file.
    pub(crate) fn session_data(&self, uuid: &str) -> io::Result<PathBuf> {
        Ok(self.session_dir(uuid)?.join("data"))
    }

    /// Opens a session's data for appending at `offset` (the file is cut
    /// back to `offset` first: bytes of a failed request are never kept).
    pub(crate) fn session_writer(&self, uuid: &str, offset: u64) -> io::Result<File> {
        let f = OpenOptions::new()
            .write(true)
            .open(self.session_data(uuid)?)?;
        f.set_len(offset)?;
        Ok(f)
    }

    /// Removes sessions whose data was last written more than `ttl` ago
    /// (at start: the in-memory sessions of a previous process are gone).
    pub(crate) fn expire_sessions(&self, ttl: std::time::Duration) -> io::Result<usize> {
        self.expire_sessions_except(ttl, |_| false)
    }

    /// As [`Self::expire_sessions`], sparing sessions `live` names (those
    /// the process holds in memory decide their own expiry).
    pub(crate) fn expire_sessions_except(
        &self,
        ttl: std::time::Duration,
        live: impl Fn(&str) -> bool,
    ) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.uploads)? {
            let entry = entry?;
            if entry.file_name().to_str().is_some_and(&live) {
                continue;
            }
            let idle = fs::metadata(entry.path().join("data"))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_none_or(|age| age > ttl);
            if idle {
                fs::remove_dir_all(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes a session (cancel, completion, failed verification).
    pub(crate) fn remove_session(&self, uuid: &str) -> io::Result<()> {
        match fs::remove_dir_all(self.session_dir(uuid)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::digest::Algorithm;

    #[test]
    fn a_committed_object_appears_only_by_rename_and_staging_is_elsewhere() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = FsStore::open(dir.path()).expect("open");
        s.create_session("0123-abcd", b"{}").expect("session");
        let data = s.session_data("0123-abcd").expect("data");
        std::fs::write(&data, b"hello").expect("write");
        let d = Digest::of(Algorithm::Sha256, b"hello");
        let key = FsStore::object_key(&d, "0123abcd");
        assert!(s.open_object(&key).is_err(), "not visible before commit");
        s.put_from_file(&data, &key).expect("put");
        assert!(!data.exists(), "moved, not copied");
        let mut got = String::new();
        io::Read::read_to_string(&mut s.open_object(&key).expect("open"), &mut got).expect("read");
        assert_eq!(got, "hello");
        assert!(key.starts_with("sha256/2c/2cf24dba"));
        assert!(s.open_object("../../etc/passwd").is_err());
        assert!(s.session_meta("../x").is_err());
        s.remove_session("0123-abcd").expect("remove");
        assert!(s.session_meta("0123-abcd").is_err());
    }
}
