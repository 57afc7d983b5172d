//! Retention's admin adapters: REST `/v1/registry/retention…` and gRPC
//! `mc.registry.v1.Retention`, both over the same `Core` operations
//! (`super::retention`); admins only (`crate::methods`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use mc_kit::api::ApiError;
use mc_kit::clock::unix_now;
use mc_proto::registry::v1 as pb;
use mc_service::body::JsonBody;
use mc_service::caller::Caller;
use serde::Deserialize;
use tonic::{Request, Status};

use super::retention::{Report, Rule};
use crate::Mcr;
use crate::model::RepoName;

impl Mcr {
    /// Runs retention now, off the async workers.
    pub(crate) async fn retention_run(
        self: &Arc<Self>,
        repository: &str,
        dry_run: bool,
        by: String,
    ) -> Result<Report, ApiError> {
        let only = if repository.is_empty() {
            None
        } else {
            Some(
                RepoName::parse(repository)
                    .ok_or_else(|| ApiError::invalid("repository", "not a repository name"))?,
            )
        };
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            me.core
                .retention_run(only.as_ref(), dry_run, &by, unix_now())
        })
        .await
        .map_err(ApiError::internal)?
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    #[serde(default)]
    repository: String,
    #[serde(default)]
    dry_run: bool,
}

async fn list(State(m): State<Arc<Mcr>>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        serde_json::json!({ "rules": m.core.retention_rules()? }),
    ))
}

async fn create(
    State(m): State<Arc<Mcr>>,
    JsonBody(rule): JsonBody<Rule>,
) -> Result<Response, ApiError> {
    Ok((StatusCode::CREATED, Json(m.core.retention_put(rule, true)?)).into_response())
}

async fn replace(
    State(m): State<Arc<Mcr>>,
    Path(id): Path<String>,
    JsonBody(rule): JsonBody<Rule>,
) -> Result<Json<Rule>, ApiError> {
    if rule.id != id {
        return Err(ApiError::invalid("id", "must equal the id in the path"));
    }
    Ok(Json(m.core.retention_put(rule, false)?))
}

async fn remove(State(m): State<Arc<Mcr>>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    m.core.retention_delete(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn run(
    State(m): State<Arc<Mcr>>,
    caller: Caller,
    JsonBody(b): JsonBody<RunBody>,
) -> Result<Json<Report>, ApiError> {
    let by = caller.require()?.username.clone();
    Ok(Json(m.retention_run(&b.repository, b.dry_run, by).await?))
}

/// `/v1/registry/retention` (GET, POST), `…/{id}` (PUT, DELETE), `…/run` (POST).
pub(crate) fn router(m: Arc<Mcr>) -> Router {
    Router::new()
        .route("/v1/registry/retention", post(create).get(list))
        .route("/v1/registry/retention/run", post(run))
        .route("/v1/registry/retention/{id}", put(replace).delete(remove))
        .with_state(m)
}

fn rule_to_pb(r: Rule) -> pb::RetentionRule {
    pb::RetentionRule {
        id: r.id,
        repositories: r.repositories,
        keep_last: r.keep_last,
        keep_tags: r.keep_tags,
        untagged_older_than: r.untagged_older_than.unwrap_or_default(),
        enabled: r.enabled,
    }
}

fn rule_from_pb(r: pb::RetentionRule) -> Rule {
    Rule {
        id: r.id,
        repositories: r.repositories,
        keep_last: r.keep_last,
        keep_tags: r.keep_tags,
        untagged_older_than: (!r.untagged_older_than.is_empty()).then_some(r.untagged_older_than),
        enabled: r.enabled,
    }
}

/// `mc.registry.v1.Retention`.
#[derive(Clone)]
pub(crate) struct RetentionService(pub Arc<Mcr>);

type Reply<T> = Result<tonic::Response<T>, Status>;

#[tonic::async_trait]
impl pb::retention_server::Retention for RetentionService {
    async fn list(
        &self,
        _r: Request<pb::RetentionListRequest>,
    ) -> Reply<pb::RetentionListResponse> {
        let rules = self
            .0
            .core
            .retention_rules()?
            .into_iter()
            .map(rule_to_pb)
            .collect();
        Ok(tonic::Response::new(pb::RetentionListResponse { rules }))
    }

    async fn put(&self, r: Request<pb::RetentionRule>) -> Reply<pb::RetentionRule> {
        let rule = self
            .0
            .core
            .retention_put(rule_from_pb(r.into_inner()), false)?;
        Ok(tonic::Response::new(rule_to_pb(rule)))
    }

    async fn delete(
        &self,
        r: Request<pb::RetentionDeleteRequest>,
    ) -> Reply<pb::RetentionDeleteResponse> {
        self.0.core.retention_delete(&r.into_inner().id)?;
        Ok(tonic::Response::new(pb::RetentionDeleteResponse {}))
    }

    async fn run(&self, r: Request<pb::RetentionRunRequest>) -> Reply<pb::RetentionReport> {
        let by = Caller::from_grpc(&r).require()?.username.clone();
        let q = r.into_inner();
        let rep = self.0.retention_run(&q.repository, q.dry_run, by).await?;
        Ok(tonic::Response::new(pb::RetentionReport {
            dry_run: rep.dry_run,
            repositories: rep.repositories,
            tags_deleted: rep.tags_deleted,
            manifests_deleted: rep.manifests_deleted,
            bytes: rep.bytes,
            skipped: rep.skipped,
            tags: rep
                .tags
                .into_iter()
                .map(|t| pb::RetentionTag {
                    repository: t.repository,
                    tag: t.tag,
                    digest: t.digest,
                })
                .collect(),
            manifests: rep
                .manifests
                .into_iter()
                .map(|m| pb::RetentionManifest {
                    repository: m.repository,
                    digest: m.digest,
                    size: m.size,
                })
                .collect(),
        }))
    }
}

pub(crate) fn add_grpc(m: Arc<Mcr>, routes: &mut tonic::service::RoutesBuilder) {
    routes.add_service(pb::retention_server::RetentionServer::new(
        RetentionService(m),
    ));
}
