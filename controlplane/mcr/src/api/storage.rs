//! The storage admin adapters: REST `GET /v1/registry/status`, `POST
//! /v1/registry/fsck` and gRPC `mc.registry.v1.Storage`, both thin over
//! [`Core::status`](crate::core::Core::status) and
//! [`Core::fsck`](crate::core::Core::fsck). Admins only (`crate::methods`).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use mc_kit::api::ApiError;
use mc_proto::registry::v1 as pb;
use mc_service::body::JsonBody;
use serde::Deserialize;
use tonic::{Request, Response, Status};

use super::ops::api;
use crate::Mcr;
use crate::core::blocking;
use crate::core::fsck::{Findings, FsckProgress, FsckReport, StorageStatus};

/// Progress events a slow client has not read yet are dropped, never
/// waited for: the check does not slow down for its watcher.
const PROGRESS_BUFFER: usize = 16;

async fn status_of(m: &Arc<Mcr>) -> Result<StorageStatus, ApiError> {
    let m = m.clone();
    blocking(move || m.core.status()).await.map_err(api)
}

/// Runs fsck on the blocking pool, telling `progress` where it is.
async fn fsck_of(
    m: &Arc<Mcr>,
    verify_content: bool,
    mut progress: impl FnMut(FsckProgress) + Send + 'static,
) -> Result<FsckReport, ApiError> {
    let m = m.clone();
    let report = blocking(move || m.core.fsck_with(verify_content, &mut progress))
        .await
        .map_err(api)?;
    tracing::info!(
        blobs = report.blobs_checked,
        missing = report.missing.count,
        size_mismatch = report.size_mismatch.count,
        content_mismatch = report.content_mismatch.count,
        orphans = report.orphans.count,
        "registry fsck"
    );
    Ok(report)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FsckBody {
    #[serde(default)]
    verify_content: bool,
}

async fn status(State(m): State<Arc<Mcr>>) -> Result<Json<StorageStatus>, ApiError> {
    Ok(Json(status_of(&m).await?))
}

async fn fsck(
    State(m): State<Arc<Mcr>>,
    JsonBody(b): JsonBody<FsckBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let r = fsck_of(&m, b.verify_content, |_| {}).await?;
    let mut v = serde_json::to_value(&r).map_err(|e| ApiError::Internal(e.to_string()))?;
    v["clean"] = serde_json::Value::Bool(r.clean());
    Ok(Json(v))
}

/// `/v1/registry/status` and `/v1/registry/fsck`.
pub(crate) fn router(m: Arc<Mcr>) -> Router {
    Router::new()
        .route("/v1/registry/status", get(status))
        .route("/v1/registry/fsck", post(fsck))
        .with_state(m)
}

fn findings_pb(f: Findings) -> pb::FsckFindings {
    pb::FsckFindings {
        count: f.count,
        items: f
            .items
            .into_iter()
            .map(|i| pb::FsckFinding {
                digest: i.digest,
                object: i.object,
                detail: i.detail,
            })
            .collect(),
    }
}

/// `mc.registry.v1.Storage`.
#[derive(Clone)]
pub(crate) struct StorageService(pub Arc<Mcr>);

#[tonic::async_trait]
impl pb::storage_server::Storage for StorageService {
    async fn status(
        &self,
        _: Request<pb::StorageStatusRequest>,
    ) -> Result<Response<pb::StorageStatus>, Status> {
        let s = status_of(&self.0).await?;
        Ok(Response::new(pb::StorageStatus {
            backend: s.backend,
            repositories: s.repositories,
            manifests: s.manifests,
            tags: s.tags,
            blobs: s.blobs,
            blob_bytes: s.blob_bytes,
            reclaimable_blobs: s.reclaimable_blobs,
            reclaimable_bytes: s.reclaimable_bytes,
            reclaimable_by_repository: s
                .reclaimable_by_repository
                .into_iter()
                .map(|r| pb::RepositoryReclaimable {
                    repository: r.repository,
                    blobs: r.blobs,
                    bytes: r.bytes,
                })
                .collect(),
            backend_error: s.backend_error,
            data_free_bytes: s.data_free_bytes,
            last_gc_id: s.last_gc_id,
            last_gc_state: s.last_gc_state,
            last_gc_finished_at: s.last_gc_finished_at,
        }))
    }

    type FsckStream =
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<pb::FsckEvent, Status>> + Send>>;

    /// Progress events (one per blob, dropped when the client lags), then
    /// the report; the check runs to its end even if the client leaves.
    async fn fsck(
        &self,
        r: Request<pb::FsckRequest>,
    ) -> Result<Response<Self::FsckStream>, Status> {
        let verify = r.into_inner().verify_content;
        let (tx, mut rx) = tokio::sync::mpsc::channel(PROGRESS_BUFFER);
        let progress = tx.clone();
        let m = self.0.clone();
        tokio::spawn(async move {
            let last = fsck_of(&m, verify, move |p| {
                let event = pb::fsck_event::Event::Progress(pb::FsckProgress {
                    phase: p.phase.into(),
                    blobs_checked: p.blobs_checked,
                    blobs_total: p.blobs_total,
                    bytes_checked: p.bytes_checked,
                    objects_listed: p.objects_listed,
                });
                let _ = progress.try_send(Ok(pb::FsckEvent { event: Some(event) }));
            })
            .await
            .map(|r| pb::FsckEvent {
                event: Some(pb::fsck_event::Event::Report(report_pb(r))),
            })
            .map_err(Status::from);
            let _ = tx.send(last).await;
        });
        let s = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Response::new(Box::pin(s)))
    }
}

fn report_pb(r: FsckReport) -> pb::FsckReport {
    let clean = r.clean();
    pb::FsckReport {
        verified_content: r.verified_content,
        blobs_checked: r.blobs_checked,
        bytes_checked: r.bytes_checked,
        objects_listed: r.objects_listed,
        missing: Some(findings_pb(r.missing)),
        size_mismatch: Some(findings_pb(r.size_mismatch)),
        content_mismatch: Some(findings_pb(r.content_mismatch)),
        orphans: Some(findings_pb(r.orphans)),
        clean,
    }
}

/// Adds `mc.registry.v1.Storage` to the process's gRPC router.
pub(crate) fn add_grpc(m: Arc<Mcr>, routes: &mut tonic::service::RoutesBuilder) {
    routes.add_service(pb::storage_server::StorageServer::new(StorageService(m)));
}
