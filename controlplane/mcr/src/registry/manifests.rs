//! Manifests: GET/HEAD by tag or digest, PUT (validated, `?tag=`,
//! `OCI-Subject`), DELETE (a tag, or a manifest by digest).

use axum::body::Body;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::Action;
use super::digest::{Algorithm, Digest};
use super::manifest::{self, MAX_MANIFEST};
use super::{Ctx, empty, set};
use crate::core::Reference;
use crate::error::{Code, RegistryError};
use crate::model::{RepoName, valid_tag};

const MAX_TAGS: usize = 10;

pub(super) async fn get(ctx: &Ctx, repo: &RepoName, r: &str) -> Result<Response, RegistryError> {
    ctx.authorize(repo, &[Action::Pull]).await?;
    let reference = Reference::parse(r)?;
    let m = ctx.mcr.core.manifest(repo, &reference)?;
    let len = m.bytes.len();
    let body = if ctx.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(m.bytes)
    };
    let mut resp = (StatusCode::OK, body).into_response();
    set(&mut resp, "content-type", &m.media_type);
    set(&mut resp, "content-length", &len.to_string());
    set(&mut resp, "docker-content-digest", &m.digest);
    set(&mut resp, "etag", &format!("\"{}\"", m.digest));
    Ok(resp)
}

pub(super) async fn put(
    ctx: &Ctx,
    repo: &RepoName,
    r: &str,
    body: Body,
) -> Result<Response, RegistryError> {
    let who = ctx.authorize(repo, &[Action::Pull, Action::Push]).await?;
    let reference = Reference::parse(r)?;
    let mut tags: Vec<String> = Vec::new();
    if let Reference::Tag(t) = &reference {
        tags.push(t.clone());
    }
    for (k, v) in &ctx.query {
        if k == "tag" {
            if !valid_tag(v) {
                return Err(RegistryError::bad(Code::TagInvalid, "invalid tag")
                    .detail(serde_json::json!({"tag": v})));
            }
            if !tags.contains(v) {
                tags.push(v.clone());
            }
        }
    }
    for t in &tags {
        ctx.mcr.auth.authorize_tag(&who, repo, Action::Push, t)?;
    }
    if tags.len() > MAX_TAGS {
        return Err(RegistryError::bad(
            Code::TagInvalid,
            format!("at most {MAX_TAGS} tags per push"),
        ));
    }
    let too_large = || {
        RegistryError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::SizeInvalid,
            format!("manifests are at most {MAX_MANIFEST} bytes"),
        )
    };
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST)
        .await
        .map_err(|_| too_large())?;
    let content_type = ctx
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let invalid = |e: manifest::Invalid| RegistryError::bad(Code::ManifestInvalid, e.0);
    let media_type = manifest::media_type(content_type, &bytes).map_err(invalid)?;
    let parsed = manifest::parse(&media_type, &bytes).map_err(invalid)?;
    let digest = match &reference {
        Reference::Digest(d) => {
            let got = Digest::of(d.algorithm(), &bytes);
            if &got != d {
                return Err(RegistryError::bad(
                    Code::DigestInvalid,
                    "the manifest does not match the digest in the URL",
                )
                .detail(serde_json::json!({"digest": d.to_string()})));
            }
            got
        }
        Reference::Tag(_) => Digest::of(Algorithm::Sha256, &bytes),
    };
    let subject = parsed.subject.as_ref().map(|s| s.digest.to_string());
    let mcr = ctx.mcr.clone();
    let (rp, d, t) = (repo.clone(), digest.clone(), tags.clone());
    let query_tags: Vec<String> = ctx
        .query
        .iter()
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| v.clone())
        .collect();
    crate::core::blocking(move || {
        mcr.core
            .put_manifest(&rp, &d, &parsed, &bytes, &t, &who.actor)
    })
    .await?;
    let mut resp = empty(StatusCode::CREATED);
    set(
        &mut resp,
        "location",
        &format!("/v2/{repo}/manifests/{digest}"),
    );
    set(&mut resp, "docker-content-digest", &digest.to_string());
    if let Some(s) = subject {
        set(&mut resp, "oci-subject", &s);
    }
    for t in query_tags {
        if let Ok(v) = axum::http::HeaderValue::from_str(&t) {
            resp.headers_mut().append("oci-tag", v);
        }
    }
    Ok(resp)
}

pub(super) async fn delete(ctx: &Ctx, repo: &RepoName, r: &str) -> Result<Response, RegistryError> {
    let who = ctx.authorize(repo, &[Action::Delete]).await?;
    let reference = Reference::parse(r)?;
    if let Reference::Tag(t) = &reference {
        ctx.mcr.auth.authorize_tag(&who, repo, Action::Delete, t)?;
    }
    let mcr = ctx.mcr.clone();
    let repo = repo.clone();
    crate::core::blocking(move || match reference {
        Reference::Tag(t) => mcr.core.delete_tag(&repo, &t, &who.actor),
        Reference::Digest(d) => mcr.core.delete_manifest(&repo, &d, &who.actor),
    })
    .await?;
    Ok(empty(StatusCode::ACCEPTED))
}
