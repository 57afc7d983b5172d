//! The filesystem blob backend: `<data_dir>/mcr/blobs/<key>`.
//!
//! Invariant (crash safety): a blob file appears under `blobs/` only by
//! `rename` of a staged file that was `fdatasync`'d first, followed by an
//! `fsync` of the directory. A crash between rename and the redb commit
//! leaves a file no row names: invisible (an orphan for GC).

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use futures_util::stream;
use tokio::io::AsyncReadExt;

use super::{BlobStore, ByteStream, ObjectInfo, check_key, mkdir, sync_dir};

const CHUNK: usize = 256 * 1024;

/// Blob objects as files under one directory.
#[derive(Debug)]
pub(crate) struct FsBlobs {
    root: PathBuf,
}

impl FsBlobs {
    pub(crate) fn open(root: PathBuf) -> io::Result<Self> {
        mkdir(&root)?;
        Ok(Self { root })
    }

    fn path(&self, key: &str) -> io::Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

impl BlobStore for FsBlobs {
    fn backend(&self) -> &'static str {
        "filesystem"
    }

    fn put_from_file(&self, staged: &Path, key: &str) -> io::Result<()> {
        let dest = self.path(key)?;
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

    fn object_len(&self, key: &str) -> io::Result<Option<u64>> {
        match fs::metadata(self.path(key)?) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open_object(&self, key: &str) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(File::open(self.path(key)?)?))
    }

    fn read_range(
        &self,
        key: &str,
        first: u64,
        len: u64,
    ) -> BoxFuture<'static, io::Result<ByteStream>> {
        // Opened now, so a file GC unlinks later stays readable to this GET.
        let opened = self.path(key).and_then(|p| {
            let mut f = File::open(p)?;
            f.seek(SeekFrom::Start(first))?;
            Ok(f)
        });
        Box::pin(async move {
            let f = tokio::fs::File::from_std(opened?);
            let s = stream::unfold((f, len), |(mut f, left)| async move {
                if left == 0 {
                    return None;
                }
                let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
                let mut buf = vec![0_u8; want];
                match f.read(&mut buf).await {
                    Ok(0) => Some((
                        Err(io::Error::other("blob file shorter than its row")),
                        (f, 0),
                    )),
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(bytes::Bytes::from(buf)), (f, left - n as u64)))
                    }
                    Err(e) => Some((Err(e), (f, 0))),
                }
            });
            Ok(Box::pin(s) as ByteStream)
        })
    }

    fn list_objects(&self) -> io::Result<Vec<ObjectInfo>> {
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
        for alg in names(&self.root)? {
            for hh in names(&self.root.join(&alg))? {
                for file in names(&self.root.join(&alg).join(&hh))? {
                    let key = format!("{alg}/{hh}/{file}");
                    let Ok(meta) = fs::metadata(self.root.join(&key)) else {
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

    fn delete_object(&self, key: &str) -> io::Result<()> {
        match fs::remove_file(self.path(key)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
