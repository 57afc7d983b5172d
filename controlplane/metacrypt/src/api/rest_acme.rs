//! REST for ACME (RFC 8555): `/v1/acme/{mount}/{role}/…`, Public in the
//! method map (the JWS authenticates each POST). Every answer carries a
//! fresh `Replay-Nonce` and `Cache-Control: no-store`; refusals are RFC
//! 7807 problem documents.
//!
//! Invariant: each handler is one core call; the request's URL, which the
//! JWS `url` must equal, is built from the mount's `acme.base_url` or
//! `https://` and the `Host` header, the same way the directory's are.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::core::acme::{
    AcmeProblem as Problem, Body, MAX_JWS_BYTES, PROBLEM_CONTENT_TYPE as PROBLEM_TYPE, Reply,
};
use crate::core::{Caller, Metacrypt};

type M = State<Arc<Metacrypt>>;

/// The routes (Public in the map).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/acme/{mount}/{role}/directory"),
    ("GET", "/v1/acme/{mount}/{role}/new-nonce"),
    ("HEAD", "/v1/acme/{mount}/{role}/new-nonce"),
    ("POST", "/v1/acme/{mount}/{role}/new-account"),
    ("POST", "/v1/acme/{mount}/{role}/account/{id}"),
    ("POST", "/v1/acme/{mount}/{role}/new-order"),
    ("POST", "/v1/acme/{mount}/{role}/order/{id}"),
    ("POST", "/v1/acme/{mount}/{role}/order/{id}/finalize"),
    ("POST", "/v1/acme/{mount}/{role}/authz/{id}"),
    ("POST", "/v1/acme/{mount}/{role}/chall/{id}/{index}"),
    ("POST", "/v1/acme/{mount}/{role}/cert/{id}"),
    ("POST", "/v1/acme/{mount}/{role}/revoke-cert"),
    ("POST", "/v1/acme/{mount}/{role}/key-change"),
];

/// `https://host` from the `Host` header (bounded, no path characters).
fn origin(m: &Metacrypt, mount: &str, uri: &Uri, headers: &HeaderMap) -> Result<String, Problem> {
    if let Some(b) = m.acme_base_url(mount) {
        return Ok(b);
    }
    // HTTP/2 carries the host as `:authority` (in the URI), HTTP/1.1 as `Host`.
    let host = uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .ok_or_else(|| Problem::malformed("the request has no usable Host header"))?;
    Ok(format!("https://{host}"))
}

fn base(
    m: &Metacrypt,
    mount: &str,
    role: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<String, Problem> {
    Ok(format!(
        "{}/v1/acme/{mount}/{role}",
        origin(m, mount, uri, headers)?
    ))
}

/// Adds the headers every ACME answer carries.
fn finish(m: &Metacrypt, mut r: Response, index: Option<String>) -> Response {
    let h = r.headers_mut();
    if let Ok(n) = m.acme_nonce()
        && let Ok(v) = HeaderValue::from_str(&n)
    {
        h.insert("replay-nonce", v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(v) = index.and_then(|d| HeaderValue::from_str(&format!("<{d}>;rel=\"index\"")).ok())
    {
        h.append(header::LINK, v);
    }
    r
}

fn problem_response(p: &Problem) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::to_vec(p).unwrap_or_default();
    let mut r = (status, [(header::CONTENT_TYPE, PROBLEM_TYPE)], body).into_response();
    if let Some(v) = p
        .location
        .as_deref()
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn reply_response(r: Reply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    let mut resp = match r.body {
        Body::Json(serde_json::Value::Null) => status.into_response(),
        Body::Json(v) => (status, axum::Json(v)).into_response(),
        Body::Pem(p) => (
            status,
            [(header::CONTENT_TYPE, "application/pem-certificate-chain")],
            p,
        )
            .into_response(),
    };
    let h = resp.headers_mut();
    if let Some(v) = r.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        h.insert(header::LOCATION, v);
    }
    for l in r.links {
        if let Ok(v) = HeaderValue::from_str(&l) {
            h.append(header::LINK, v);
        }
    }
    resp
}

async fn directory(
    State(m): M,
    Path((mount, role)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let r =
        base(&m, &mount, &role, &uri, &headers).and_then(|b| m.acme_directory(&mount, &role, b));
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(p) => problem_response(&p),
    }
}

async fn new_nonce(
    State(m): M,
    Path((mount, role)): Path<(String, String)>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    // RFC 8555 §7.2: 200 for HEAD, 204 for GET.
    let status = if method == axum::http::Method::HEAD {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    };
    let dir = base(&m, &mount, &role, &uri, &headers)
        .ok()
        .map(|b| format!("{b}/directory"));
    match m.acme_nonce() {
        Ok(_) => finish(&m, status.into_response(), dir),
        Err(p) => problem_response(&p),
    }
}

async fn post_any(
    State(m): M,
    Path(params): Path<Vec<(String, String)>>,
    c: Caller,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (mount, role) = (get("mount"), get("role"));
    let prefix = format!("/v1/acme/{mount}/{role}/");
    let path = uri
        .path()
        .strip_prefix(&prefix)
        .unwrap_or_default()
        .to_owned();
    let base = match base(&m, &mount, &role, &uri, &headers) {
        Ok(b) => b,
        Err(p) => return finish(&m, problem_response(&p), None),
    };
    let index = Some(format!("{base}/directory"));
    let jose = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/jose+json"));
    if !jose {
        let p = Problem::malformed("Content-Type must be application/jose+json");
        return finish(&m, problem_response(&p), index);
    }
    let r = m
        .acme_post(&mount, &role, base, &path, &body, c.source)
        .await;
    let resp = match r {
        Ok(reply) => reply_response(reply),
        Err(p) => problem_response(&p),
    };
    finish(&m, resp, index)
}

pub fn router(m: Arc<Metacrypt>) -> Router {
    let mut posts = Router::new();
    for (method, path) in ROUTES {
        if *method == "POST" {
            posts = posts.route(path, post(post_any));
        }
    }
    // Sealed answers 503 before a JWS is read, like every engine route.
    let posts = posts.route_layer(axum::middleware::from_fn_with_state(
        m.clone(),
        crate::api::rest::require_unsealed,
    ));
    Router::new()
        .route("/v1/acme/{mount}/{role}/directory", get(directory))
        .route("/v1/acme/{mount}/{role}/new-nonce", get(new_nonce))
        .merge(posts)
        .layer(DefaultBodyLimit::max(MAX_JWS_BYTES))
        .with_state(m)
}
