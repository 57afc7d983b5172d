//! Blob storage and the upload staging area: the only module that creates,
//! renames or deletes blob objects and files under `<data_dir>/mcr/`.
//!
//! Objects live behind one seam, [`BlobStore`]: the filesystem (`fs.rs`,
//! `<data_dir>/mcr/blobs/<key>`) or an S3-compatible bucket (`s3.rs`,
//! `<prefix>blobs/<key>`). Keys are `<alg>/<hex[0..2]>/<hex>.<inc>`, never
//! modified once written; `inc` makes each stored copy a distinct object, so
//! deleting an old copy can never remove a new upload of the same digest.
//! Uploads are staged locally on every backend: `uploads/<uuid>/data` and
//! `uploads/<uuid>/session.json`.
//!
//! Invariant (crash safety): an object appears under its key only once
//! complete and verified (a rename of a synced file, or a completed S3
//! upload of one); partial bytes only ever exist under `uploads/`, which
//! nothing serves. A crash between the object's write and the redb commit
//! leaves an object no row names: invisible (an orphan for GC).

mod fs;
mod s3;

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use futures_util::future::BoxFuture;

pub(crate) use s3::S3Config;

use crate::registry::digest::Digest;

/// A blob's bytes as the GET handler streams them.
pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = io::Result<bytes::Bytes>> + Send>>;

/// One listed object: (key, last modified in Unix seconds, size).
pub(crate) type ObjectInfo = (String, i64, u64);

/// Where blob objects live. Blocking methods run on the blocking pool
/// (the core's callers); `read_range` is awaited by the GET handler.
pub(crate) trait BlobStore: Send + Sync + std::fmt::Debug {
    /// `filesystem` or `s3`, for `status`.
    fn backend(&self) -> &'static str;
    /// Stores a verified, synced staged file as `key` (the staged file is
    /// gone afterwards); the object is visible only once complete.
    fn put_from_file(&self, staged: &Path, key: &str) -> io::Result<()>;
    /// An object's length; `None` when it does not exist.
    fn object_len(&self, key: &str) -> io::Result<Option<u64>>;
    /// Whether the store answers at all: [`Self::object_len`] of a key
    /// no blob has, answered promptly (no retries) with the first error.
    fn probe(&self, key: &str) -> io::Result<()> {
        self.object_len(key).map(|_| ())
    }
    /// A blocking reader of a whole object (fsck's hash).
    fn open_object(&self, key: &str) -> io::Result<Box<dyn Read + Send>>;
    /// `len` bytes from `first`, streamed; the future fails when the
    /// object does not exist.
    fn read_range(
        &self,
        key: &str,
        first: u64,
        len: u64,
    ) -> BoxFuture<'static, io::Result<ByteStream>>;
    /// Every object, sorted by key (GC's orphan step, fsck).
    fn list_objects(&self) -> io::Result<Vec<ObjectInfo>>;
    /// Deletes an object; deleting a missing one succeeds.
    fn delete_object(&self, key: &str) -> io::Result<()>;
}

/// Which backend holds the objects (`[mcr] storage`).
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Filesystem,
    S3(S3Config),
}

/// The blob store and the upload staging area.
#[derive(Debug, Clone)]
pub(crate) struct Storage {
    objects: Arc<dyn BlobStore>,
    uploads: PathBuf,
}

fn mkdir(p: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
}

fn sync_dir(p: &Path) -> io::Result<()> {
    File::open(p)?.sync_all()
}

/// Keys are made by [`Storage::object_key`] (alg/hh/hex.inc); refuse
/// anything else before it reaches a path or a bucket.
fn check_key(key: &str) -> io::Result<()> {
    let ok = key.split('/').count() == 3
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'.')
        && !key.contains("..");
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad object key",
        ))
    }
}

impl Storage {
    /// Opens (creating) `<dir>/uploads` and, on the filesystem backend,
    /// `<dir>/blobs`.
    pub(crate) fn open(dir: &Path, backend: &Backend) -> io::Result<Self> {
        let objects: Arc<dyn BlobStore> = match backend {
            Backend::Filesystem => Arc::new(fs::FsBlobs::open(dir.join("blobs"))?),
            Backend::S3(c) => Arc::new(s3::S3Blobs::open(c)?),
        };
        let uploads = dir.join("uploads");
        mkdir(&uploads)?;
        Ok(Self { objects, uploads })
    }

    /// The filesystem backend under `dir` (tests).
    #[cfg(test)]
    pub(crate) fn open_fs(dir: &Path) -> io::Result<Self> {
        Self::open(dir, &Backend::Filesystem)
    }

    /// The object key of a new copy of `digest`.
    pub(crate) fn object_key(digest: &Digest, inc: &str) -> String {
        let hex = digest.hex();
        // A Digest has at least 64 hex characters (its invariant).
        let hh = hex.get(..2).unwrap_or("00");
        format!("{}/{hh}/{hex}.{inc}", digest.algorithm().name())
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

    /// Bytes an unprivileged writer may still use on the filesystem holding
    /// the upload staging area (the data directory), from `statvfs`.
    pub(crate) fn free_bytes(&self) -> io::Result<u64> {
        let s = rustix::fs::statvfs(&self.uploads)?;
        Ok(s.f_bavail.saturating_mul(s.f_frsize))
    }

    /// Whether the store answers: a HEAD of a key no blob ever has (absent
    /// is an answer); the error says why not (TLS, credentials, network).
    pub(crate) fn probe(&self) -> io::Result<()> {
        const NEVER: &str =
            "sha256/00/0000000000000000000000000000000000000000000000000000000000000000.probe";
        self.objects.probe(NEVER)
    }

    /// The backend's name (`filesystem`, `s3`).
    pub(crate) fn backend(&self) -> &'static str {
        self.objects.backend()
    }

    /// See [`BlobStore::put_from_file`].
    pub(crate) fn put_from_file(&self, staged: &Path, key: &str) -> io::Result<()> {
        self.objects.put_from_file(staged, key)
    }

    /// See [`BlobStore::object_len`].
    pub(crate) fn object_len(&self, key: &str) -> io::Result<Option<u64>> {
        self.objects.object_len(key)
    }

    /// See [`BlobStore::open_object`].
    pub(crate) fn open_object(&self, key: &str) -> io::Result<Box<dyn Read + Send>> {
        self.objects.open_object(key)
    }

    /// See [`BlobStore::read_range`].
    pub(crate) fn read_range(
        &self,
        key: &str,
        first: u64,
        len: u64,
    ) -> BoxFuture<'static, io::Result<ByteStream>> {
        self.objects.read_range(key, first, len)
    }

    /// See [`BlobStore::list_objects`].
    pub(crate) fn list_objects(&self) -> io::Result<Vec<ObjectInfo>> {
        self.objects.list_objects()
    }

    /// Deletes an object (a duplicate copy that lost a commit race, or GC).
    pub(crate) fn delete_object(&self, key: &str) -> io::Result<()> {
        self.objects.delete_object(key)
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
        std::fs::read(self.session_dir(uuid)?.join("session.json"))
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
        for entry in std::fs::read_dir(&self.uploads)? {
            let entry = entry?;
            if entry.file_name().to_str().is_some_and(&live) {
                continue;
            }
            let idle = std::fs::metadata(entry.path().join("data"))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_none_or(|age| age > ttl);
            if idle {
                std::fs::remove_dir_all(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes a session (cancel, completion, failed verification).
    pub(crate) fn remove_session(&self, uuid: &str) -> io::Result<()> {
        match std::fs::remove_dir_all(self.session_dir(uuid)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
