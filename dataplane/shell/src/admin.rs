//! The local admin socket every process serves (`mc.admin.v1.Admin`):
//! status and online snapshots. Access control is the socket's 0600 mode.

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

/// The `mc.admin.v1.Admin` implementation for one process.
#[derive(Clone)]
pub struct AdminService {
    component: &'static str,
    health: Health,
    stores: Vec<(&'static str, Arc<Store>)>,
    snapshot_dir: PathBuf,
    details: Details,
}

impl AdminService {
    pub fn new(
        component: &'static str,
        health: Health,
        stores: Vec<(&'static str, Arc<Store>)>,
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

/// Snapshots each store to `dir/<name>-<UTC stamp>.redb`.
pub fn snapshot_stores(
    stores: &[(&'static str, Arc<Store>)],
    dir: &Path,
) -> Result<Vec<StoreSnapshot>, StoreError> {
    create_private_dir(dir)?;
    let stamp = utc_stamp(std::time::SystemTime::now());
    stores
        .iter()
        .map(|(name, store)| {
            let path = dir.join(format!("{name}-{stamp}.redb"));
            let stats = store.snapshot_to(&path)?;
            Ok(StoreSnapshot {
                store: (*name).to_owned(),
                path: path.display().to_string(),
                bytes: stats.bytes,
                tables: stats.tables,
                entries: stats.entries,
            })
        })
        .collect()
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
    fn utc_stamps() {
        let at = |s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(utc_stamp(at(0)), "19700101T000000Z");
        assert_eq!(utc_stamp(at(951_782_400)), "20000229T000000Z");
        assert_eq!(utc_stamp(at(1_795_511_701)), "20261124T091501Z");
    }
}
