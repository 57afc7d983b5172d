//! The `/v2/` API (OCI distribution-spec 1.1): one catch-all route whose
//! path [`route::parse`] splits, then one handler per endpoint.
//!
//! Invariant: every answer under `/v2` is registry-shaped (errors from
//! `crate::error`) and carries `Docker-Distribution-API-Version`.

pub(crate) mod auth;
mod blobs;
pub(crate) mod decide;
pub mod digest;
mod hashing;
pub mod manifest;
mod manifests;
pub mod range;
pub mod route;
mod tags;
mod uploads;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use mc_service::auth::{Principal, SourceAddr};

use crate::Mcr;
use crate::error::{Code, RegistryError};
use route::Route;

/// What every handler gets from the request.
pub(crate) struct Ctx {
    pub mcr: Arc<Mcr>,
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Vec<(String, String)>,
    pub principal: Option<Principal>,
    pub source: Option<std::net::IpAddr>,
}

impl Ctx {
    pub(crate) fn param(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn source_ip(&self) -> String {
        self.source.map(|s| s.to_string()).unwrap_or_default()
    }

    pub(crate) async fn authorize(
        &self,
        repo: &crate::model::RepoName,
        actions: &[auth::Action],
    ) -> Result<auth::Authorized, RegistryError> {
        self.mcr
            .auth
            .authorize(
                &self.headers,
                self.principal.clone(),
                self.source_ip(),
                repo,
                actions,
            )
            .await
    }
}

/// The router: `/v2/` and `/v2/{*path}`, every method.
pub(crate) fn router(mcr: Arc<Mcr>) -> axum::Router {
    use axum::routing::any;
    axum::Router::new()
        .route("/v2/", any(serve))
        .route("/v2/{*path}", any(serve))
        .layer(axum::middleware::map_response(version_header))
        .with_state(mcr)
}

async fn version_header(mut r: Response) -> Response {
    r.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    r
}

async fn serve(State(mcr): State<Arc<Mcr>>, req: Request) -> Response {
    match dispatch(mcr, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn method_not_allowed() -> RegistryError {
    RegistryError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::Unsupported,
        "method not allowed on this endpoint",
    )
}

async fn dispatch(mcr: Arc<Mcr>, req: Request) -> Result<Response, RegistryError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let rest = path.strip_prefix("/v2/").unwrap_or("");
    let route = route::parse(rest).map_err(|e| match e {
        route::RouteError::NameInvalid => {
            RegistryError::bad(Code::NameInvalid, "invalid repository name")
        }
        route::RouteError::NotFound => {
            RegistryError::not_found(Code::Unsupported, "no such endpoint")
        }
    })?;
    let query: Vec<(String, String)> = match parts.uri.query() {
        Some(q) => serde_urlencoded::from_str(q)
            .map_err(|_| RegistryError::bad(Code::Unsupported, "malformed query string"))?,
        None => Vec::new(),
    };
    if query.len() > 64 {
        return Err(RegistryError::bad(
            Code::Unsupported,
            "too many query parameters",
        ));
    }
    let source = parts
        .extensions
        .get::<SourceAddr>()
        .map(|s| s.0)
        .or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        });
    let ctx = Ctx {
        mcr,
        method: parts.method.clone(),
        headers: parts.headers,
        query,
        principal: parts.extensions.get::<Principal>().cloned(),
        source,
    };
    let m = &ctx.method;
    let get = *m == Method::GET || *m == Method::HEAD;
    match route {
        Route::Base if get => {
            ctx.mcr
                .auth
                .check_base(&ctx.headers, ctx.principal.clone())
                .await?;
            Ok(axum::Json(serde_json::json!({})).into_response())
        }
        Route::Token if *m == Method::GET => Ok(ctx
            .mcr
            .auth
            .token(&ctx.headers, &ctx.query, ctx.source)
            .await),
        Route::Token if *m == Method::POST => {
            let form = axum::body::to_bytes(body, 64 * 1024)
                .await
                .map_err(|_| RegistryError::bad(Code::Unsupported, "form too large"))?;
            let mut params: Vec<(String, String)> = serde_urlencoded::from_bytes(&form)
                .map_err(|_| RegistryError::bad(Code::Unsupported, "malformed form"))?;
            params.truncate(64);
            Ok(ctx.mcr.auth.token(&ctx.headers, &params, ctx.source).await)
        }
        Route::Catalog if get => tags::catalog(&ctx).await,
        Route::Tags(repo) if get => tags::list(&ctx, &repo).await,
        Route::Referrers(repo, d) if get => tags::referrers(&ctx, &repo, &d).await,
        Route::Manifest(repo, r) => match m.as_str() {
            "GET" | "HEAD" => manifests::get(&ctx, &repo, &r).await,
            "PUT" => manifests::put(&ctx, &repo, &r, body).await,
            "DELETE" => manifests::delete(&ctx, &repo, &r).await,
            _ => Err(method_not_allowed()),
        },
        Route::Blob(repo, d) => match m.as_str() {
            "GET" | "HEAD" => blobs::get(&ctx, &repo, &d).await,
            "DELETE" => blobs::delete(&ctx, &repo, &d).await,
            _ => Err(method_not_allowed()),
        },
        Route::UploadStart(repo) if *m == Method::POST => uploads::start(&ctx, &repo, body).await,
        Route::Upload(repo, id) => match m.as_str() {
            "GET" => uploads::status(&ctx, &repo, &id).await,
            "PATCH" => uploads::patch(&ctx, &repo, &id, body).await,
            "PUT" => uploads::put(&ctx, &repo, &id, body).await,
            "DELETE" => uploads::cancel(&ctx, &repo, &id).await,
            _ => Err(method_not_allowed()),
        },
        _ => Err(method_not_allowed()),
    }
}

/// Sets a header from a string (values we build are always valid).
pub(crate) fn set(r: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// An empty response with a status.
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut r = status.into_response();
    set(&mut r, "content-length", "0");
    r
}

/// Parses a digest or answers 400 `DIGEST_INVALID`.
pub(crate) fn parse_digest(s: &str) -> Result<digest::Digest, RegistryError> {
    digest::Digest::parse(s).map_err(|e| {
        RegistryError::bad(Code::DigestInvalid, e.to_string())
            .detail(serde_json::json!({"digest": s}))
    })
}
