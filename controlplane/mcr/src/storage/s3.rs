//! The S3-compatible blob backend (Garage, MinIO, SeaweedFS, AWS) through
//! `object_store`'s `AmazonS3`: objects at `<prefix>blobs/<key>`.
//!
//! Invariants: an object is written only from a complete, verified staged
//! file (`put_from_file`: one PUT up to [`PART`], else a multipart upload
//! that S3 makes visible only at its completion, aborted on any error), so
//! a crash mid-upload leaves at most an unfinished multipart upload, never
//! a half-visible object. The secret key is held in `Zeroizing` and never
//! printed (`Debug` shows `[redacted]`).
//!
//! `object_store` is async and the core is blocking (it runs on the
//! blocking pool): every S3 call runs on this module's own small runtime
//! and blocking callers wait on a channel, so no call can panic for being
//! made inside another runtime.

use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    Certificate, ClientOptions, GetOptions, ObjectStore, ObjectStoreExt, RetryConfig,
    WriteMultipart,
};
use tokio::io::AsyncReadExt;
use zeroize::Zeroizing;

use super::{BlobStore, ByteStream, ObjectInfo, check_key};

/// Part size of multipart uploads (S3's minimum is 5 MiB except the last).
const PART: usize = 16 << 20;
/// Parts in flight per upload.
const PARTS_IN_FLIGHT: usize = 4;
/// Staged-file reads while uploading.
const READ: usize = 1 << 20;

/// Where the bucket is and how to sign for it (`[mcr] s3_*`).
#[derive(Clone)]
pub(crate) struct S3Config {
    /// `https://…`, or `http://` to a loopback address; empty: AWS for `region`.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    /// Prepended to every key (`""` or ending in `/`).
    pub prefix: String,
    /// Path-style requests (`endpoint/bucket/key`), as self-hosted stores want.
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    /// PEM CA certificates trusted besides the platform's roots (`s3_ca_cert`).
    pub ca_cert: Vec<u8>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("ca_cert_bytes", &self.ca_cert.len())
            .finish()
    }
}

/// The runtime every S3 request runs on (built once, lives for the process).
fn runtime() -> io::Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mcr-s3")
        .enable_all()
        .build()?;
    Ok(RT.get_or_init(|| rt))
}

/// Runs `fut` on the S3 runtime and waits for it on a std channel, which
/// blocks this thread (the caller is on the blocking pool) but never panics.
fn wait<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> io::Result<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| io::Error::other("the S3 request was dropped"))
}

/// [`wait`] for an `object_store` call.
fn block<T: Send + 'static>(
    fut: impl Future<Output = object_store::Result<T>> + Send + 'static,
) -> io::Result<T> {
    wait(fut)?.map_err(to_io)
}

fn to_io(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => {
            io::Error::new(io::ErrorKind::NotFound, e.to_string())
        }
        e => io::Error::other(chain(&e)),
    }
}

/// An error with its causes (`reqwest` keeps a TLS failure's reason in
/// its source chain, not in its message).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    for _ in 0..8 {
        let Some(cause) = next else { break };
        let m = cause.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        next = cause.source();
    }
    out
}

/// Whether a GET found its object (sent before any chunk).
type Found = tokio::sync::oneshot::Receiver<object_store::Result<()>>;
/// The chunks of a GET's body.
type Chunks = tokio::sync::mpsc::Receiver<io::Result<Bytes>>;

/// Blob objects in one bucket under one prefix.
#[derive(Debug)]
pub(crate) struct S3Blobs {
    store: Arc<AmazonS3>,
    /// The same bucket without retries, for [`BlobStore::probe`]: a TLS or
    /// credentials problem is reported at once instead of after a minute
    /// of backoff.
    once: Arc<AmazonS3>,
    /// `<prefix>blobs/`.
    root: String,
}

impl S3Blobs {
    pub(crate) fn open(c: &S3Config) -> io::Result<Self> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&c.bucket)
            .with_region(&c.region)
            .with_access_key_id(&c.access_key_id)
            .with_secret_access_key(c.secret_access_key.as_str())
            .with_virtual_hosted_style_request(!c.path_style);
        if !c.ca_cert.is_empty() {
            // Set before `with_allow_http`, which edits the same options.
            let mut options = ClientOptions::new();
            for cert in Certificate::from_pem_bundle(&c.ca_cert).map_err(to_io)? {
                options = options.with_root_certificate(cert);
            }
            b = b.with_client_options(options);
        }
        if !c.endpoint.is_empty() {
            b = b
                .with_endpoint(&c.endpoint)
                .with_allow_http(c.endpoint.starts_with("http://"));
        }
        let once = b
            .clone()
            .with_retry(RetryConfig {
                max_retries: 0,
                retry_timeout: std::time::Duration::from_secs(10),
                ..RetryConfig::default()
            })
            .build()
            .map_err(to_io)?;
        let store = b.build().map_err(to_io)?;
        Ok(Self {
            store: Arc::new(store),
            once: Arc::new(once),
            root: format!("{}blobs/", c.prefix),
        })
    }

    fn path(&self, key: &str) -> io::Result<ObjectPath> {
        check_key(key)?;
        Ok(ObjectPath::from(format!("{}{key}", self.root)))
    }

    /// Streams `path`'s bytes `first..first+len` into `tx` (on the S3
    /// runtime); the first message says whether the object was found.
    fn spawn_get(&self, path: ObjectPath, first: u64, len: u64) -> io::Result<(Found, Chunks)> {
        let (found_tx, found_rx) = tokio::sync::oneshot::channel();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let store = self.store.clone();
        runtime()?.spawn(async move {
            let opts = GetOptions {
                range: Some((first..first + len).into()),
                ..GetOptions::default()
            };
            // An empty range is not a valid HTTP range: ask for the head.
            let opts = if len == 0 {
                GetOptions {
                    head: true,
                    ..GetOptions::default()
                }
            } else {
                opts
            };
            let mut body = match store.get_opts(&path, opts).await {
                Ok(r) if len > 0 => r.into_stream(),
                Ok(_) => {
                    let _ = found_tx.send(Ok(()));
                    return;
                }
                Err(e) => {
                    let _ = found_tx.send(Err(e));
                    return;
                }
            };
            let _ = found_tx.send(Ok(()));
            while let Some(chunk) = body.next().await {
                let failed = chunk.is_err();
                if tx.send(chunk.map_err(to_io)).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok((found_rx, rx))
    }
}

impl BlobStore for S3Blobs {
    fn backend(&self) -> &'static str {
        "s3"
    }

    fn put_from_file(&self, staged: &Path, key: &str) -> io::Result<()> {
        let path = self.path(key)?;
        let store = self.store.clone();
        let file = staged.to_owned();
        block(async move {
            let mut f = tokio::fs::File::open(&file).await.map_err(io_to_store)?;
            let size = f.metadata().await.map_err(io_to_store)?.len();
            if size <= PART as u64 {
                let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                f.read_to_end(&mut buf).await.map_err(io_to_store)?;
                store.put(&path, Bytes::from(buf).into()).await?;
                return Ok(());
            }
            let upload = store.put_multipart(&path).await?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
            let mut buf = vec![0_u8; READ];
            loop {
                let n = match f.read(&mut buf).await {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = w.abort().await;
                        return Err(io_to_store(e));
                    }
                };
                if n == 0 {
                    break;
                }
                if let Err(e) = w.wait_for_capacity(PARTS_IN_FLIGHT).await {
                    let _ = w.abort().await;
                    return Err(e);
                }
                w.write(&buf[..n]);
            }
            w.finish().await?;
            Ok(())
        })?;
        // As the filesystem's rename does: the staged bytes are consumed.
        std::fs::remove_file(staged)
    }

    fn object_len(&self, key: &str) -> io::Result<Option<u64>> {
        let path = self.path(key)?;
        let store = self.store.clone();
        match block(async move { store.head(&path).await }) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn probe(&self, key: &str) -> io::Result<()> {
        let path = self.path(key)?;
        let store = self.once.clone();
        match block(async move { store.head(&path).await }) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn open_object(&self, key: &str) -> io::Result<Box<dyn Read + Send>> {
        let path = self.path(key)?;
        let len = self
            .object_len(key)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such object"))?;
        let (found, rx) = self.spawn_get(path, 0, len)?;
        wait(found)?
            .map_err(|_| io::Error::other("the S3 request was dropped"))?
            .map_err(to_io)?;
        Ok(Box::new(ChannelReader {
            rx: Some(rx),
            current: Bytes::new(),
        }))
    }

    fn read_range(
        &self,
        key: &str,
        first: u64,
        len: u64,
    ) -> BoxFuture<'static, io::Result<ByteStream>> {
        let started = self.path(key).and_then(|p| self.spawn_get(p, first, len));
        Box::pin(async move {
            let (found, rx) = started?;
            found
                .await
                .map_err(|_| io::Error::other("the S3 request was dropped"))?
                .map_err(to_io)?;
            let s = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|chunk| (chunk, rx))
            });
            Ok(Box::pin(s) as ByteStream)
        })
    }

    fn list_objects(&self) -> io::Result<Vec<ObjectInfo>> {
        let store = self.store.clone();
        let root = self.root.clone();
        let prefix = ObjectPath::from(root.trim_end_matches('/'));
        let mut out: Vec<ObjectInfo> = block(async move {
            let mut listed = store.list(Some(&prefix));
            let mut out = Vec::new();
            while let Some(meta) = listed.next().await {
                let meta = meta?;
                // Objects under the prefix that are not blob keys (someone
                // else's) are neither listed nor ever deleted.
                let Some(key) = meta.location.as_ref().strip_prefix(root.as_str()) else {
                    continue;
                };
                if check_key(key).is_err() {
                    continue;
                }
                out.push((key.to_owned(), meta.last_modified.timestamp(), meta.size));
            }
            Ok(out)
        })?;
        out.sort();
        Ok(out)
    }

    fn delete_object(&self, key: &str) -> io::Result<()> {
        let path = self.path(key)?;
        let store = self.store.clone();
        match block(async move { store.delete(&path).await }) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn io_to_store(e: io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "mcr staging",
        source: Box::new(e),
    }
}

/// A blocking `Read` over chunks an S3 GET task sends.
struct ChannelReader {
    /// `None` once the stream ended or failed.
    rx: Option<Chunks>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            let Some(mut rx) = self.rx.take() else {
                return Ok(0);
            };
            let (chunk, rx) = wait(async move { (rx.recv().await, rx) })?;
            match chunk {
                Some(chunk) => {
                    self.current = chunk?;
                    self.rx = Some(rx);
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
