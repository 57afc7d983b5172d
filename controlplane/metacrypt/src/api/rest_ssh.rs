//! REST for the ssh engine: `/v1/crypt/{mount}/…` (ENGINE, behind
//! [`require_unsealed`], 64 KiB bodies) and the public, unauthenticated
//! `/v1/ssh/{mount}/ca` (the CA public key line) and `/v1/ssh/{mount}/krl`
//! (the KRL's bytes); no guard on those: they read only clear public rows
//! and answer while sealed.
//!
//! Invariant: each handler is one core call; the public handlers take no
//! caller and no body.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mc_service::body::JsonBody;
use serde_json::{Value, json};

use super::rest::require_unsealed;
use crate::core::{Caller, Metacrypt};
use crate::engines::ssh::model::{CaInfo, CertRecord, Profile, RevokeAnswer, Signed};
use crate::error::CryptError;

type Result<T> = std::result::Result<T, CryptError>;
type M = State<Arc<Metacrypt>>;

/// Request bodies on ssh routes.
pub const SSH_BODY_LIMIT: usize = 64 * 1024;

/// Decodes a body after the policy check (see `core::ssh`).
pub(crate) fn later<T: serde::de::DeserializeOwned>(v: Value) -> impl FnOnce() -> Result<T> {
    move || serde_json::from_value(v).map_err(|e| CryptError::invalid("body", e.to_string()))
}

/// The authenticated routes (ENGINE in the map).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/crypt/{mount}/ca"),
    ("GET", "/v1/crypt/{mount}/ca"),
    ("GET", "/v1/crypt/{mount}/profiles"),
    ("GET", "/v1/crypt/{mount}/profiles/{name}"),
    ("POST", "/v1/crypt/{mount}/profiles/{name}"),
    ("DELETE", "/v1/crypt/{mount}/profiles/{name}"),
    ("POST", "/v1/crypt/{mount}/sign-key/{profile}"),
    ("GET", "/v1/crypt/{mount}/issued"),
    ("GET", "/v1/crypt/{mount}/issued/{serial}"),
    ("POST", "/v1/crypt/{mount}/krl/revoke"),
    ("POST", "/v1/crypt/{mount}/issued/tidy"),
];

/// The public routes (Public in the map; served while sealed).
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/ssh/{mount}/ca"),
    ("GET", "/v1/ssh/{mount}/krl"),
];

async fn create_ca(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    JsonBody(r): JsonBody<Value>,
) -> Result<Json<CaInfo>> {
    Ok(Json(m.ssh_create_ca(&c, &mount, later(r))?))
}

async fn ca(State(m): M, c: Caller, Path(mount): Path<String>) -> Result<Json<CaInfo>> {
    Ok(Json(m.ssh_ca(&c, &mount)?))
}

async fn profiles(State(m): M, c: Caller, Path(mount): Path<String>) -> Result<Json<Value>> {
    Ok(Json(json!({"profiles": m.ssh_profiles(&c, &mount)?})))
}

async fn profile(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
) -> Result<Json<Profile>> {
    Ok(Json(m.ssh_profile(&c, &mount, &name)?))
}

async fn put_profile(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
    JsonBody(r): JsonBody<Value>,
) -> Result<Json<Profile>> {
    Ok(Json(m.ssh_put_profile(&c, &mount, &name, later(r))?))
}

async fn delete_profile(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
) -> Result<StatusCode> {
    m.ssh_delete_profile(&c, &mount, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn sign(
    State(m): M,
    c: Caller,
    Path((mount, profile)): Path<(String, String)>,
    JsonBody(r): JsonBody<Value>,
) -> Result<Json<Signed>> {
    Ok(Json(m.ssh_sign(&c, &mount, &profile, later(r))?))
}

/// `after=<serial>` pages the list.
async fn issued(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let after = || after_param(q.as_deref());
    Ok(Json(json!({"serials": m.ssh_issued(&c, &mount, after)?})))
}

fn after_param(q: Option<&str>) -> Result<Option<u64>> {
    for pair in q.unwrap_or("").split('&') {
        if let Some(v) = pair.strip_prefix("after=") {
            return v
                .parse()
                .map(Some)
                .map_err(|_| CryptError::invalid("after", "a serial number"));
        }
    }
    Ok(None)
}

async fn cert(
    State(m): M,
    c: Caller,
    Path((mount, serial)): Path<(String, String)>,
) -> Result<Json<CertRecord>> {
    Ok(Json(m.ssh_cert(&c, &mount, &serial)?))
}

async fn revoke(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    JsonBody(r): JsonBody<Value>,
) -> Result<Json<RevokeAnswer>> {
    Ok(Json(m.ssh_revoke(&c, &mount, later(r))?))
}

/// Takes no body (one is ignored).
async fn tidy(State(m): M, c: Caller, Path(mount): Path<String>) -> Result<Json<Value>> {
    let removed = m.ssh_tidy(&c, &mount)?;
    Ok(Json(json!({ "removed": removed })))
}

async fn public_key(State(m): M, Path(mount): Path<String>) -> Result<Response> {
    let line = m.ssh_public_key(&mount)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], line).into_response())
}

async fn krl(State(m): M, Path(mount): Path<String>) -> Result<Response> {
    let bytes = m.ssh_public_krl(&mount)?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

pub fn router(m: Arc<Metacrypt>) -> Router {
    let guard = axum::middleware::from_fn_with_state(m.clone(), require_unsealed);
    let engine = Router::new()
        .route("/v1/crypt/{mount}/ca", get(ca).post(create_ca))
        .route("/v1/crypt/{mount}/profiles", get(profiles))
        .route(
            "/v1/crypt/{mount}/profiles/{name}",
            get(profile).post(put_profile).delete(delete_profile),
        )
        .route("/v1/crypt/{mount}/sign-key/{profile}", post(sign))
        .route("/v1/crypt/{mount}/issued", get(issued))
        .route("/v1/crypt/{mount}/issued/{serial}", get(cert))
        .route("/v1/crypt/{mount}/krl/revoke", post(revoke))
        .route("/v1/crypt/{mount}/issued/tidy", post(tidy))
        .route_layer(guard)
        .layer(DefaultBodyLimit::max(SSH_BODY_LIMIT))
        .with_state(m.clone());
    let public = Router::new()
        .route("/v1/ssh/{mount}/ca", get(public_key))
        .route("/v1/ssh/{mount}/krl", get(krl))
        .with_state(m);
    engine.merge(public)
}
