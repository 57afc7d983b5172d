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
        File::open(staged)?.sync_data()?;
        fs::rename(staged, &dest)?;
        sync_dir(dir)
    }

    /// Opens an object for reading.
    pub(crate) fn open_object(&self, key: &str) -> io::Result<File> {
        File::open(self.object_path(key)?)
    }

    /// Deletes an object (a duplicate copy that lost a commit race).
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
        let mut removed = 0;
        for entry in fs::read_dir(&self.uploads)? {
            let entry = entry?;
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
