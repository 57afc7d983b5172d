//! The local admin socket every process serves (`mc.admin.v1.Admin`):
//! status and online snapshots. Access control is the socket's 0600 mode.
//!
//! A snapshot is only a backup if it restores: each store's key files (the
//! keys its sealed rows open with) are copied beside its `.redb` snapshot,
//! 0600, named `<store>-<stamp>.<key file name>`, and [`restore_key_files`]
//! puts them back. The snapshot directory is therefore as secret as the
//! data directory (docs/design/ops.md, "Backups").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mc_proto::admin::v1::admin_client::AdminClient;
use mc_proto::admin::v1::admin_server::{Admin, AdminServer};
use mc_proto::admin::v1::{
    SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse, StoreSnapshot,
};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::health::Health;
use mc_kit::store::{Store, StoreError};

/// Extra facts a component reports in `Status.details`.
pub type Details = Arc<dyn Fn() -> BTreeMap<String, String> + Send + Sync>;

/// One open store as the admin socket snapshots it.
#[derive(Clone)]
pub struct AdminStore {
    pub name: &'static str,
    pub store: Arc<Store>,
    /// Files outside the store its sealed rows need (copied with it).
    pub key_files: Vec<PathBuf>,
}

impl AdminStore {
    pub fn new(name: &'static str, store: Arc<Store>, key_files: Vec<PathBuf>) -> Self {
        Self {
            name,
            store,
            key_files,
        }
    }
}

/// The `mc.admin.v1.Admin` implementation for one process.
#[derive(Clone)]
pub struct AdminService {
    component: &'static str,
    health: Health,
    stores: Vec<AdminStore>,
    snapshot_dir: PathBuf,
    details: Details,
}

impl AdminService {
    pub fn new(
        component: &'static str,
        health: Health,
        stores: Vec<AdminStore>,
        snapshot_dir: PathBuf,
        details: Details,
    ) -> AdminServer<Self> {
        AdminServer::new(Self {
            component,
            health,
            stores,
            snapshot_dir,
            details,
        })
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(StatusResponse {
            component: self.component.to_owned(),
            version: mc_kit::version::VERSION.to_owned(),
            uptime_seconds: self.health.uptime_seconds(),
            ready: self.health.is_ready(),
            details: (self.details)().into_iter().collect(),
        }))
    }

    async fn snapshot(
        &self,
        request: Request<SnapshotRequest>,
    ) -> Result<Response<SnapshotResponse>, Status> {
        let dir = match request.into_inner().dir {
            d if d.is_empty() => self.snapshot_dir.clone(),
            d if Path::new(&d).is_absolute() => PathBuf::from(d),
            d => {
                return Err(Status::invalid_argument(format!(
                    "dir `{d}` must be an absolute path"
                )));
            }
        };
        let stores = self.stores.clone();
        let snapshots = tokio::task::spawn_blocking(move || snapshot_stores(&stores, &dir))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        Ok(Response::new(SnapshotResponse { snapshots }))
    }
}

/// Snapshots each store to `dir/<name>-<UTC stamp>.redb`, its key files
/// beside it.
pub fn snapshot_stores(
    stores: &[AdminStore],
    dir: &Path,
) -> Result<Vec<StoreSnapshot>, StoreError> {
    create_private_dir(dir)?;
    let stamp = utc_stamp(std::time::SystemTime::now());
    stores
        .iter()
        .map(|s| {
            let path = dir.join(format!("{}-{stamp}.redb", s.name));
            let stats = s.store.snapshot_to(&path)?;
            let mut key_files = Vec::new();
            for key in &s.key_files {
                // A key the service has not created yet seals nothing yet.
                if key.exists() {
                    let copy = key_snapshot_path(&path, key)?;
                    copy_private(key, &copy)?;
                    key_files.push(copy.display().to_string());
                }
            }
            Ok(StoreSnapshot {
                store: s.name.to_owned(),
                path: path.display().to_string(),
                bytes: stats.bytes,
                tables: stats.tables,
                entries: stats.entries,
                key_files,
            })
        })
        .collect()
}

/// Where `key`'s copy sits beside the store snapshot `snapshot`:
/// `<snapshot stem>.<key file name>`.
pub fn key_snapshot_path(snapshot: &Path, key: &Path) -> Result<PathBuf, StoreError> {
    match (snapshot.file_stem(), key.file_name()) {
        (Some(stem), Some(name)) => {
            let mut file = stem.to_owned();
            file.push(".");
            file.push(name);
            Ok(snapshot.with_file_name(file))
        }
        _ => Err(StoreError::other(format!(
            "cannot name the copy of {} beside {}",
            key.display(),
            snapshot.display()
        ))),
    }
}

/// What [`restore_key_files`] did with one key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRestore {
    /// Copied from the snapshot into place.
    Restored { key: PathBuf, from: PathBuf },
    /// The key in place already equals the snapshot's.
    Unchanged { key: PathBuf },
    /// Replaced a different key, kept at `kept` (the restored store no
    /// longer opens with it, but data sealed elsewhere might).
    Replaced { key: PathBuf, kept: PathBuf },
    /// The snapshot carries no copy (older snapshot, or the key did not
    /// exist yet); the key in place, if any, is left alone.
    Missing { key: PathBuf, expected: PathBuf },
}

/// Puts back the key files that a store snapshot carries, atomically and
/// 0600; call after the store itself was restored.
pub fn restore_key_files(snapshot: &Path, keys: &[PathBuf]) -> Result<Vec<KeyRestore>, StoreError> {
    let mut done = Vec::new();
    for key in keys {
        let from = key_snapshot_path(snapshot, key)?;
        if !from.is_file() {
            done.push(KeyRestore::Missing {
                key: key.clone(),
                expected: from,
            });
            continue;
        }
        let wanted = std::fs::read(&from)
            .map_err(|e| StoreError::other(format!("{}: {e}", from.display())))?;
        match std::fs::read(key) {
            Ok(current) if current == wanted => {
                done.push(KeyRestore::Unchanged { key: key.clone() });
                continue;
            }
            Ok(_) => {
                let kept = key.with_file_name(format!(
                    "{}.before-restore-{}",
                    key.file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default(),
                    utc_stamp(std::time::SystemTime::now())
                ));
                copy_private(key, &kept)?;
                copy_private(&from, key)?;
                done.push(KeyRestore::Replaced {
                    key: key.clone(),
                    kept,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = key.parent() {
                    create_private_dir(parent)?;
                }
                copy_private(&from, key)?;
                done.push(KeyRestore::Restored {
                    key: key.clone(),
                    from,
                });
            }
            Err(e) => return Err(StoreError::other(format!("{}: {e}", key.display()))),
        }
    }
    Ok(done)
}

/// Copies `from` to `to` through a temporary file: 0600, synced, renamed.
fn copy_private(from: &Path, to: &Path) -> Result<(), StoreError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |p: &Path, e: std::io::Error| StoreError::other(format!("{}: {e}", p.display()));
    let bytes = std::fs::read(from).map_err(|e| err(from, e))?;
    let tmp = to.with_file_name(format!(
        ".{}.tmp",
        to.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| err(&tmp, e))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| err(&tmp, e))?;
    std::fs::rename(&tmp, to).map_err(|e| err(to, e))
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| StoreError::other(format!("{}: {e}", dir.display())))?;
    }
    Ok(())
}

/// `20261124T091500Z`: sortable, filesystem-safe UTC.
pub fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A client for the admin socket at `path`.
pub async fn connect(path: &Path) -> Result<AdminClient<Channel>, tonic::transport::Error> {
    Ok(AdminClient::new(channel(path).await?))
}

/// A gRPC channel over the Unix socket at `path`, for any service served there.
pub async fn channel(path: &Path) -> Result<Channel, tonic::transport::Error> {
    let path = path.to_owned();
    // The URI is required by the API but unused: the connector dials the socket.
    Endpoint::from_static("http://admin.socket")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(hyper_util::rt::TokioIo::new)
            }
        }))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_travel_with_their_snapshot_and_come_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let snap = dir.path().join("snapshots");
        std::fs::create_dir(&snap).expect("mkdir");
        let snapshot = snap.join("mcias-20261206T000000Z.redb");
        let key = dir.path().join("live").join("master.key");
        let copy = key_snapshot_path(&snapshot, &key).expect("path");
        assert_eq!(copy, snap.join("mcias-20261206T000000Z.master.key"));

        // No copy in the snapshot: reported, nothing written.
        let r = restore_key_files(&snapshot, std::slice::from_ref(&key)).expect("restore");
        assert!(matches!(&r[..], [KeyRestore::Missing { .. }]));
        assert!(!key.exists());

        // Into an empty data dir: restored, 0600.
        copy_private(
            &{
                let k = dir.path().join("k");
                std::fs::write(&k, b"key-one").expect("write");
                k
            },
            &copy,
        )
        .expect("copy");
        let r = restore_key_files(&snapshot, std::slice::from_ref(&key)).expect("restore");
        assert!(matches!(&r[..], [KeyRestore::Restored { .. }]));
        assert_eq!(std::fs::read(&key).expect("read"), b"key-one");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // Again: unchanged.
        let r = restore_key_files(&snapshot, std::slice::from_ref(&key)).expect("restore");
        assert!(matches!(&r[..], [KeyRestore::Unchanged { .. }]));

        // Over a different key: replaced, the old one kept.
        std::fs::write(&key, b"key-two").expect("write");
        let r = restore_key_files(&snapshot, std::slice::from_ref(&key)).expect("restore");
        let [KeyRestore::Replaced { kept, .. }] = &r[..] else {
            panic!("expected a replacement, got {r:?}");
        };
        assert_eq!(std::fs::read(kept).expect("read"), b"key-two");
        assert_eq!(std::fs::read(&key).expect("read"), b"key-one");
    }

    #[test]
    fn utc_stamps() {
        let at = |s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(utc_stamp(at(0)), "19700101T000000Z");
        assert_eq!(utc_stamp(at(951_782_400)), "20000229T000000Z");
        assert_eq!(utc_stamp(at(1_795_511_701)), "20261124T091501Z");
    }
}
