//! Blobs: GET/HEAD (with one `Range`), DELETE (unlinks from the repository).

use axum::body::Body;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::Action;
use super::range::{RangeAnswer, range};
use super::{Ctx, empty, parse_digest, set};
use crate::error::{Code, RegistryError};
use crate::model::RepoName;

pub(super) async fn get(ctx: &Ctx, repo: &RepoName, d: &str) -> Result<Response, RegistryError> {
    ctx.authorize(repo, &[Action::Pull]).await?;
    let digest = parse_digest(d)?;
    let Some(blob) = ctx.mcr.core.blob(repo, &digest)? else {
        return Err(
            RegistryError::not_found(Code::BlobUnknown, "blob unknown to registry")
                .detail(serde_json::json!({"digest": d})),
        );
    };
    let answer = range(
        ctx.headers
            .get(axum::http::header::RANGE)
            .and_then(|v| v.to_str().ok()),
        blob.size,
    );
    let (status, first, len) = match answer {
        RangeAnswer::Whole => (StatusCode::OK, 0, blob.size),
        RangeAnswer::Partial(r) => (StatusCode::PARTIAL_CONTENT, r.first, r.len()),
        RangeAnswer::Unsatisfiable => {
            let mut r = empty(StatusCode::RANGE_NOT_SATISFIABLE);
            set(&mut r, "content-range", &format!("bytes */{}", blob.size));
            return Ok(r);
        }
    };
    let body = if ctx.method == Method::HEAD {
        Body::empty()
    } else {
        let s = ctx
            .mcr
            .core
            .fs
            .read_range(&blob.object, first, len)
            .await
            .map_err(|e| {
                tracing::error!(digest = %digest, error = %e, "blob row without its object");
                RegistryError::not_found(Code::BlobUnknown, "blob unknown to registry")
            })?;
        Body::from_stream(s)
    };
    let mut r = (status, body).into_response();
    set(&mut r, "content-type", "application/octet-stream");
    set(&mut r, "content-length", &len.to_string());
    set(&mut r, "docker-content-digest", &digest.to_string());
    set(&mut r, "accept-ranges", "bytes");
    set(&mut r, "etag", &format!("\"{digest}\""));
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            &mut r,
            "content-range",
            &format!("bytes {first}-{}/{}", first + len - 1, blob.size),
        );
    }
    Ok(r)
}

pub(super) async fn delete(ctx: &Ctx, repo: &RepoName, d: &str) -> Result<Response, RegistryError> {
    let who = ctx.authorize(repo, &[Action::Delete]).await?;
    let digest = parse_digest(d)?;
    let core = ctx.mcr.clone();
    let repo = repo.clone();
    crate::core::blocking(move || core.core.delete_blob(&repo, &digest, &who.actor)).await?;
    Ok(empty(StatusCode::ACCEPTED))
}
