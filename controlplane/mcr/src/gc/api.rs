//! GC's admin adapters: REST `/v1/registry/gc…` and gRPC `mc.registry.v1.Gc`,
//! both thin over the same four operations on [`Mcr`] (start, list, get, cancel).
//! The auth map admits admins only (`crate::methods`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use mc_kit::api::ApiError;
use mc_proto::registry::v1 as pb;
use mc_service::body::JsonBody;
use mc_service::caller::Caller;
use serde::Deserialize;
use tonic::{Request, Status};

use super::tables::RunRow;
use crate::Mcr;

/// Default and largest page of runs.
const LIST_DEFAULT: usize = 20;
const LIST_MAX: usize = 100;

impl Mcr {
    /// Starts a GC run in the background; the row as it starts.
    pub(crate) fn gc_start(self: &Arc<Self>, by: &str, dry_run: bool) -> Result<RunRow, ApiError> {
        let row = self.gc.begin(&self.core, dry_run, by)?;
        let me = self.clone();
        let id = row.id.clone();
        tokio::task::spawn_blocking(move || {
            let done = me.gc.execute(&me.core, &me.sessions, &id, dry_run);
            tracing::info!(run = %done.id, state = %done.state, counters = ?done.counters, "GC run finished");
        });
        Ok(row)
    }

    pub(crate) fn gc_list(&self, limit: usize) -> Result<Vec<RunRow>, ApiError> {
        let n = if limit == 0 {
            LIST_DEFAULT
        } else {
            limit.min(LIST_MAX)
        };
        super::Gc::list(&self.core, n)
    }

    pub(crate) fn gc_get(&self, id: &str) -> Result<RunRow, ApiError> {
        check_id(id)?;
        super::Gc::get(&self.core, id)
    }

    /// Asks the running run `id` to stop; the run's row as it stands.
    pub(crate) fn gc_cancel(&self, id: &str) -> Result<RunRow, ApiError> {
        check_id(id)?;
        self.gc.cancel(&self.core, id)?;
        tracing::info!(run = id, "GC run cancel asked");
        super::Gc::get(&self.core, id)
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.len() > 64 {
        return Err(ApiError::invalid("id", "at most 64 characters"));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    limit: usize,
}

async fn start(
    State(m): State<Arc<Mcr>>,
    caller: Caller,
    JsonBody(b): JsonBody<StartBody>,
) -> Result<Response, ApiError> {
    let by = caller.require()?.username.clone();
    let row = m.gc_start(&by, b.dry_run)?;
    Ok((StatusCode::ACCEPTED, Json(row)).into_response())
}

async fn list(
    State(m): State<Arc<Mcr>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let runs = m.gc_list(q.limit)?;
    Ok(Json(serde_json::json!({ "runs": runs })))
}

async fn one(State(m): State<Arc<Mcr>>, Path(id): Path<String>) -> Result<Json<RunRow>, ApiError> {
    Ok(Json(m.gc_get(&id)?))
}

async fn cancel(State(m): State<Arc<Mcr>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let row = m.gc_cancel(&id)?;
    Ok((StatusCode::ACCEPTED, Json(row)).into_response())
}

/// `/v1/registry/gc` (POST start, GET list), `/v1/registry/gc/{id}` and its `cancel`.
pub(crate) fn router(m: Arc<Mcr>) -> Router {
    Router::new()
        .route("/v1/registry/gc", get(list).post(start))
        .route("/v1/registry/gc/{id}", get(one))
        .route("/v1/registry/gc/{id}/cancel", axum::routing::post(cancel))
        .with_state(m)
}

fn to_pb(r: RunRow) -> pb::GcRun {
    let c = r.counters;
    pb::GcRun {
        id: r.id,
        dry_run: r.dry_run,
        by: r.by,
        started_at: r.started_at,
        finished_at: r.finished_at.unwrap_or(0),
        state: r.state,
        phase: r.phase,
        counters: Some(pb::GcCounters {
            links_scanned: c.links_scanned,
            links_removed: c.links_removed,
            blobs_scanned: c.blobs_scanned,
            blobs_removed: c.blobs_removed,
            bytes_reclaimed: c.bytes_reclaimed,
            orphans_removed: c.orphans_removed,
            uploads_removed: c.uploads_removed,
        }),
        error: r.error.unwrap_or_default(),
        items: r
            .items
            .into_iter()
            .map(|i| pb::GcItem {
                kind: i.kind,
                repository: i.repository,
                digest: i.digest,
                size: i.size,
            })
            .collect(),
    }
}

/// `mc.registry.v1.Gc`.
#[derive(Clone)]
pub(crate) struct GcService(pub Arc<Mcr>);

#[tonic::async_trait]
impl pb::gc_server::Gc for GcService {
    async fn start(
        &self,
        r: Request<pb::GcStartRequest>,
    ) -> Result<tonic::Response<pb::GcRun>, Status> {
        let caller = Caller::from_grpc(&r);
        let by = caller.require()?.username.clone();
        let row = self.0.gc_start(&by, r.into_inner().dry_run)?;
        Ok(tonic::Response::new(to_pb(row)))
    }

    async fn list(
        &self,
        r: Request<pb::GcListRequest>,
    ) -> Result<tonic::Response<pb::GcListResponse>, Status> {
        let limit = usize::try_from(r.into_inner().limit).unwrap_or(LIST_MAX);
        let runs = self.0.gc_list(limit)?.into_iter().map(to_pb).collect();
        Ok(tonic::Response::new(pb::GcListResponse { runs }))
    }

    async fn get(
        &self,
        r: Request<pb::GcGetRequest>,
    ) -> Result<tonic::Response<pb::GcRun>, Status> {
        Ok(tonic::Response::new(to_pb(
            self.0.gc_get(&r.into_inner().id)?,
        )))
    }

    async fn cancel(
        &self,
        r: Request<pb::GcCancelRequest>,
    ) -> Result<tonic::Response<pb::GcRun>, Status> {
        Ok(tonic::Response::new(to_pb(
            self.0.gc_cancel(&r.into_inner().id)?,
        )))
    }

    type WatchStream =
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<pb::GcRun, Status>> + Send>>;

    /// The run's row, then each change of it (looked at every
    /// [`WATCH_EVERY`]) until it leaves `running`. Bounded: a run cut by a
    /// restart is marked `interrupted` when the registry starts again.
    async fn watch(
        &self,
        r: Request<pb::GcGetRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, Status> {
        let id = r.into_inner().id;
        let first = to_pb(self.0.gc_get(&id)?);
        let m = self.0.clone();
        let s =
            futures_util::stream::unfold((Some(first), None::<pb::GcRun>), move |(next, last)| {
                let (m, id) = (m.clone(), id.clone());
                async move {
                    if last.as_ref().is_some_and(|l| l.state != "running") {
                        return None;
                    }
                    let mut row = next;
                    loop {
                        let r = match row.take() {
                            Some(r) => r,
                            None => {
                                tokio::time::sleep(WATCH_EVERY).await;
                                match m.gc_get(&id) {
                                    Ok(r) => to_pb(r),
                                    Err(e) => return Some((Err(Status::from(e)), (None, None))),
                                }
                            }
                        };
                        if last.as_ref() != Some(&r) {
                            return Some((Ok(r.clone()), (None, Some(r))));
                        }
                    }
                }
            });
        Ok(tonic::Response::new(Box::pin(s)))
    }
}

/// How often `Watch` looks at a running run's row.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Adds `mc.registry.v1.Gc` to the process's gRPC router.
pub(crate) fn add_grpc(m: Arc<Mcr>, routes: &mut tonic::service::RoutesBuilder) {
    routes.add_service(pb::gc_server::GcServer::new(GcService(m)));
}
