//! REST adapter: `/v1/registry/…` (JSON, errors `{"error": …}`). Each
//! handler is one call into [`super::ops`], the same one its gRPC twin
//! makes. Repository names are one percent-encoded path segment
//! (`apps%2Fweb`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use mc_service::body::JsonBody;
use mc_service::caller::Caller;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ops::{self, NamespaceUpdate, R, RepoUpdate};
use crate::Mcr;
use crate::policy::Rule;

type S = State<Arc<Mcr>>;

/// Default page size of listings.
const PAGE: usize = 100;

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    prefix: String,
    last: Option<String>,
    n: Option<usize>,
}

async fn list_repos(State(m): S, c: Caller, Query(q): Query<Page>) -> R<Json<Value>> {
    let r = ops::list_repositories(&m, &c, q.prefix, q.last, q.n.unwrap_or(PAGE)).await?;
    Ok(Json(json!({ "repositories": r })))
}

async fn get_repo(State(m): S, c: Caller, Path(name): Path<String>) -> R<Json<Value>> {
    Ok(Json(json!(ops::get_repository(&m, &c, &name).await?)))
}

async fn update_repo(
    State(m): S,
    c: Caller,
    Path(name): Path<String>,
    JsonBody(u): JsonBody<RepoUpdate>,
) -> R<Json<Value>> {
    Ok(Json(json!(ops::update_repository(&m, &c, &name, u).await?)))
}

async fn delete_repo(State(m): S, c: Caller, Path(name): Path<String>) -> R<StatusCode> {
    ops::delete_repository(&m, &c, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tags(
    State(m): S,
    c: Caller,
    Path(name): Path<String>,
    Query(q): Query<Page>,
) -> R<Json<Value>> {
    let t = ops::list_tags(&m, &c, &name, q.last, q.n.unwrap_or(PAGE)).await?;
    Ok(Json(json!({ "repository": name, "tags": t })))
}

async fn get_manifest(
    State(m): S,
    c: Caller,
    Path((name, reference)): Path<(String, String)>,
) -> R<Json<Value>> {
    Ok(Json(json!(
        ops::get_manifest(&m, &c, &name, &reference).await?
    )))
}

async fn get_namespace(State(m): S, Path(name): Path<String>) -> R<Json<Value>> {
    let s = ops::get_namespace(&m, &name).await?;
    Ok(Json(
        json!({"name": name, "public_pull": s.public_pull, "quota_bytes": s.quota_bytes}),
    ))
}

async fn update_namespace(
    State(m): S,
    c: Caller,
    Path(name): Path<String>,
    JsonBody(u): JsonBody<NamespaceUpdate>,
) -> R<Json<Value>> {
    let s = ops::update_namespace(&m, &c, &name, u).await?;
    Ok(Json(
        json!({"name": name, "public_pull": s.public_pull, "quota_bytes": s.quota_bytes}),
    ))
}

async fn get_quota(State(m): S, Path(name): Path<String>) -> R<Json<Value>> {
    Ok(Json(json!(ops::get_quota(&m, &name).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaBody {
    quota_bytes: u64,
}

async fn set_quota(
    State(m): S,
    c: Caller,
    Path(name): Path<String>,
    JsonBody(b): JsonBody<QuotaBody>,
) -> R<Json<Value>> {
    Ok(Json(json!(
        ops::set_quota(&m, &c, &name, b.quota_bytes).await?
    )))
}

async fn list_rules(State(m): S) -> R<Json<Value>> {
    Ok(Json(json!({ "rules": ops::list_rules(&m).await? })))
}

async fn create_rule(
    State(m): S,
    c: Caller,
    JsonBody(r): JsonBody<Rule>,
) -> R<(StatusCode, Json<Value>)> {
    let r = ops::create_rule(&m, &c, r).await?;
    Ok((StatusCode::CREATED, Json(json!(r))))
}

async fn get_rule(State(m): S, Path(id): Path<String>) -> R<Json<Value>> {
    Ok(Json(json!(ops::get_rule(&m, &id).await?)))
}

async fn update_rule(
    State(m): S,
    c: Caller,
    Path(id): Path<String>,
    JsonBody(r): JsonBody<Rule>,
) -> R<Json<Value>> {
    Ok(Json(json!(ops::update_rule(&m, &c, &id, r).await?)))
}

async fn delete_rule(State(m): S, c: Caller, Path(id): Path<String>) -> R<StatusCode> {
    ops::delete_rule(&m, &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn explain(State(m): S, JsonBody(e): JsonBody<ops::ExplainInput>) -> R<Json<Value>> {
    Ok(Json(json!(ops::explain(&m, e)?)))
}

#[derive(Deserialize)]
struct AuditQuery {
    before: Option<u64>,
    limit: Option<usize>,
    action: Option<String>,
    target: Option<String>,
}

async fn audit(State(m): S, Query(q): Query<AuditQuery>) -> R<Json<Value>> {
    let events = ops::audit(&m, q.before, q.limit.unwrap_or(PAGE), q.action, q.target).await?;
    Ok(Json(json!({ "events": events })))
}

/// The admin routes.
pub(crate) fn router(mcr: Arc<Mcr>) -> Router {
    Router::new()
        .route("/v1/registry/repositories", get(list_repos))
        .route(
            "/v1/registry/repositories/{repo}",
            get(get_repo).patch(update_repo).delete(delete_repo),
        )
        .route("/v1/registry/repositories/{repo}/tags", get(list_tags))
        .route(
            "/v1/registry/repositories/{repo}/manifests/{reference}",
            get(get_manifest),
        )
        .route(
            "/v1/registry/namespaces/{ns}",
            get(get_namespace).put(update_namespace),
        )
        .route("/v1/registry/quotas/{repo}", get(get_quota).put(set_quota))
        .route("/v1/registry/policy", get(list_rules).post(create_rule))
        .route(
            "/v1/registry/policy/{id}",
            get(get_rule).put(update_rule).delete(delete_rule),
        )
        .route("/v1/registry/policy/explain", post(explain))
        .route("/v1/registry/audit", get(audit))
        .with_state(mcr)
}
