//! Content discovery: tags list (`n`/`last`, `Link`), catalog, referrers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::Action;
use super::manifest::OCI_INDEX;
use super::{Ctx, parse_digest, set};
use crate::error::{Code, RegistryError};
use crate::model::RepoName;

const TAGS_PAGE: usize = 1000;
const TAGS_UNASKED: usize = 10_000;
const CATALOG_DEFAULT: usize = 100;
const CATALOG_PAGE: usize = 1000;
const REFERRERS_PAGE: usize = 1000;

/// `n` (capped at `max`) or `default`.
fn page(ctx: &Ctx, default: usize, max: usize) -> Result<usize, RegistryError> {
    match ctx.param("n") {
        None => Ok(default),
        Some(n) => n
            .parse::<usize>()
            .map(|n| n.min(max))
            .map_err(|_| RegistryError::bad(Code::Unsupported, "n must be a number")),
    }
}

fn link(r: &mut Response, path: &str, n: usize, last: &str) {
    let q = serde_urlencoded::to_string([("n", n.to_string()), ("last", last.to_owned())])
        .unwrap_or_default();
    set(r, "link", &format!("<{path}?{q}>; rel=\"next\""));
}

pub(super) async fn list(ctx: &Ctx, repo: &RepoName) -> Result<Response, RegistryError> {
    ctx.authorize(repo, &[Action::Pull]).await?;
    let n = page(ctx, TAGS_UNASKED, TAGS_PAGE)?;
    let last = ctx.param("last");
    let Some(mut tags) = ctx.mcr.core.tags(repo, last, n + 1)? else {
        return Err(RegistryError::not_found(
            Code::NameUnknown,
            "repository name not known to registry",
        ));
    };
    let more = tags.len() > n;
    tags.truncate(n);
    let mut r =
        axum::Json(serde_json::json!({"name": repo.as_str(), "tags": tags})).into_response();
    if more && let Some(l) = tags.last() {
        link(&mut r, &format!("/v2/{repo}/tags/list"), n, l);
    }
    Ok(r)
}

pub(super) async fn catalog(ctx: &Ctx) -> Result<Response, RegistryError> {
    let principal = ctx
        .mcr
        .auth
        .authorize_catalog(&ctx.headers, ctx.principal.clone())
        .await?;
    let n = page(ctx, CATALOG_DEFAULT, CATALOG_PAGE)?;
    let mut last = ctx.param("last").map(str::to_owned);
    let mut out = Vec::new();
    let mut more = false;
    // Filtered by pull rights: read on until a page is full.
    'pages: for _ in 0..64 {
        let names = ctx.mcr.core.catalog(last.as_deref(), CATALOG_PAGE)?;
        if names.is_empty() {
            break;
        }
        last = names.last().cloned();
        for name in names {
            if ctx.mcr.policy.allows(&principal, &name, Action::Pull) {
                if out.len() == n {
                    more = true;
                    break 'pages;
                }
                out.push(name);
            }
        }
    }
    let mut r = axum::Json(serde_json::json!({"repositories": out})).into_response();
    if more && let Some(l) = out.last() {
        link(&mut r, "/v2/_catalog", n, l);
    }
    Ok(r)
}

pub(super) async fn referrers(
    ctx: &Ctx,
    repo: &RepoName,
    d: &str,
) -> Result<Response, RegistryError> {
    ctx.authorize(repo, &[Action::Pull]).await?;
    let subject = parse_digest(d)?;
    let filter = ctx.param("artifactType");
    let manifests = ctx
        .mcr
        .core
        .referrers(repo, &subject, filter, REFERRERS_PAGE)?;
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let bytes = serde_json::to_vec(&body).map_err(RegistryError::internal)?;
    let mut r = (StatusCode::OK, bytes).into_response();
    set(&mut r, "content-type", OCI_INDEX);
    if filter.is_some() {
        set(&mut r, "oci-filters-applied", "artifactType");
    }
    Ok(r)
}
