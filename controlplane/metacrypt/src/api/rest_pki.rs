//! REST for the pki engine: `/v1/crypt/{mount}/…` (ENGINE, behind
//! [`require_unsealed`], 64 KiB bodies) and the public, unauthenticated
//! `/v1/pki/{mount}/…` (CA, chains, CRLs as PEM or DER; no guard: they
//! read only clear public rows and answer while sealed).
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
use crate::core::{Caller, Metacrypt, PublicPki};
use crate::engines::pki::model::{
    CertRecord, Issued, IssuerInfo, RevokeAnswer, RevokeRequest, Role,
};
use crate::error::CryptError;

type Result<T> = std::result::Result<T, CryptError>;

/// Decodes a body after the policy check (see `core::pki`).
fn later<T: serde::de::DeserializeOwned>(v: Value) -> impl FnOnce() -> Result<T> {
    move || serde_json::from_value(v).map_err(|e| CryptError::invalid("body", e.to_string()))
}
type M = State<Arc<Metacrypt>>;

/// Request bodies on pki routes (a CSR is at most 16 KiB).
pub const PKI_BODY_LIMIT: usize = 64 * 1024;

/// The authenticated routes (ENGINE in the map).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/crypt/{mount}/root/generate"),
    ("POST", "/v1/crypt/{mount}/root/import"),
    ("GET", "/v1/crypt/{mount}/issuers"),
    ("GET", "/v1/crypt/{mount}/issuers/{name}"),
    ("POST", "/v1/crypt/{mount}/issuers/{name}"),
    ("POST", "/v1/crypt/{mount}/issuers/{name}/rotate"),
    ("GET", "/v1/crypt/{mount}/roles"),
    ("GET", "/v1/crypt/{mount}/roles/{name}"),
    ("POST", "/v1/crypt/{mount}/roles/{name}"),
    ("DELETE", "/v1/crypt/{mount}/roles/{name}"),
    ("POST", "/v1/crypt/{mount}/issue/{role}"),
    ("POST", "/v1/crypt/{mount}/sign-csr/{role}"),
    ("GET", "/v1/crypt/{mount}/certs"),
    ("GET", "/v1/crypt/{mount}/certs/{serial}"),
    ("POST", "/v1/crypt/{mount}/certs/{serial}/renew"),
    ("POST", "/v1/crypt/{mount}/revoke"),
    ("POST", "/v1/crypt/{mount}/crl/rotate"),
    ("POST", "/v1/crypt/{mount}/tidy"),
    ("POST", "/v1/crypt/{mount}/acme/{role}/eab"),
];

/// The public routes (Public in the map; served while sealed).
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/pki/{mount}/ca"),
    ("GET", "/v1/pki/{mount}/ca/der"),
    ("GET", "/v1/pki/{mount}/ca/chain"),
    ("GET", "/v1/pki/{mount}/crl"),
    ("GET", "/v1/pki/{mount}/crl/der"),
    ("GET", "/v1/pki/{mount}/issuer/{name}/ca"),
    ("GET", "/v1/pki/{mount}/issuer/{name}/chain"),
    ("GET", "/v1/pki/{mount}/issuer/{name}/crl"),
    // OCSP (served by `rest_ocsp`).
    ("POST", "/v1/pki/{mount}/ocsp"),
    ("GET", "/v1/pki/{mount}/ocsp/{request}"),
];

async fn root_generate(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    JsonBody(r): JsonBody<Value>,
) -> Result<Json<IssuerInfo>> {
    Ok(Json(m.pki_root_generate(&c, &mount, later(r))?))
}

async fn root_import(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    JsonBody(r): JsonBody<Value>,
) -> Result<Json<IssuerInfo>> {
    Ok(Json(m.pki_root_import(&c, &mount, later(r))?))
}

async fn issuers(State(m): M, c: Caller, Path(mount): Path<String>) -> Result<Json<Value>> {
    Ok(Json(json!({"issuers": m.pki_issuers(&c, &mount)?})))
}

async fn issuer(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
) -> Result<Json<IssuerInfo>> {
    Ok(Json(m.pki_issuer(&c, &mount, &name)?))
}

async fn create_issuer(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
    JsonBody(r): JsonBody<Value>,
) -> Result<Json<IssuerInfo>> {
    Ok(Json(m.pki_create_issuer(&c, &mount, &name, later(r))?))
}

async fn rotate_issuer(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
    _b: axum::body::Bytes,
) -> Result<Json<IssuerInfo>> {
    Ok(Json(m.pki_rotate_issuer(&c, &mount, &name)?))
}

async fn roles(State(m): M, c: Caller, Path(mount): Path<String>) -> Result<Json<Value>> {
    Ok(Json(json!({"roles": m.pki_roles(&c, &mount)?})))
}

async fn role(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
) -> Result<Json<Role>> {
    Ok(Json(m.pki_role(&c, &mount, &name)?))
}

async fn put_role(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
    JsonBody(r): JsonBody<Value>,
) -> Result<Json<Role>> {
    Ok(Json(m.pki_put_role(&c, &mount, &name, later(r))?))
}

async fn delete_role(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
) -> Result<StatusCode> {
    m.pki_delete_role(&c, &mount, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn issue(
    State(m): M,
    c: Caller,
    Path((mount, role)): Path<(String, String)>,
    JsonBody(r): JsonBody<Value>,
) -> Result<Json<Issued>> {
    Ok(Json(m.pki_issue(&c, &mount, &role, later(r))?))
}

async fn sign_csr(
    State(m): M,
    c: Caller,
    Path((mount, role)): Path<(String, String)>,
    JsonBody(r): JsonBody<Value>,
) -> Result<Json<Issued>> {
    Ok(Json(m.pki_sign(&c, &mount, &role, later(r))?))
}

async fn acme_eab(
    State(m): M,
    c: Caller,
    Path((mount, role)): Path<(String, String)>,
    JsonBody(r): JsonBody<Value>,
) -> Result<Json<crate::core::EabCreated>> {
    Ok(Json(m.acme_eab(&c, &mount, &role, later(r))?))
}

/// `after=<serial>` pages the list.
async fn certs(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let after = || query(q.as_deref(), "after");
    Ok(Json(json!({"serials": m.pki_certs(&c, &mount, after)?})))
}

async fn cert(
    State(m): M,
    c: Caller,
    Path((mount, serial)): Path<(String, String)>,
) -> Result<Json<CertRecord>> {
    Ok(Json(m.pki_cert(&c, &mount, &serial)?))
}

async fn renew(
    State(m): M,
    c: Caller,
    Path((mount, serial)): Path<(String, String)>,
    _b: axum::body::Bytes,
) -> Result<Json<Issued>> {
    Ok(Json(m.pki_renew(&c, &mount, &serial)?))
}

async fn revoke(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    JsonBody(r): JsonBody<Value>,
) -> Result<Json<RevokeAnswer>> {
    Ok(Json(m.pki_revoke(&c, &mount, later::<RevokeRequest>(r))?))
}

async fn rotate_crl(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    _b: axum::body::Bytes,
) -> Result<Json<Value>> {
    Ok(Json(json!({"issuers": m.pki_rotate_crl(&c, &mount)?})))
}

async fn tidy(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    _b: axum::body::Bytes,
) -> Result<Json<Value>> {
    Ok(Json(json!({"removed": m.pki_tidy(&c, &mount)?})))
}

/// One `key=value` of a query string (values are names, serials, numbers:
/// no percent-decoding needed; anything else is refused).
fn query(q: Option<&str>, key: &str) -> Result<Option<String>> {
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == key {
            if !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b':')
            {
                return Err(CryptError::invalid(key, "letters, digits, - _ :"));
            }
            return Ok(Some(v.to_owned()));
        }
    }
    Ok(None)
}

fn version(q: Option<&str>) -> Result<Option<u32>> {
    query(q, "version")?
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| CryptError::invalid("version", "a number"))
        })
        .transpose()
}

fn der_wanted(q: Option<&str>) -> Result<bool> {
    Ok(query(q, "der")?.is_some_and(|v| v == "true" || v == "1"))
}

fn answer(p: PublicPki, der_type: &'static str) -> Response {
    match p {
        PublicPki::Pem(s) => {
            ([(header::CONTENT_TYPE, "application/x-pem-file")], s).into_response()
        }
        PublicPki::Der(d) => ([(header::CONTENT_TYPE, der_type)], d).into_response(),
    }
}

fn pem(s: String) -> Response {
    answer(PublicPki::Pem(s), "")
}

const CERT_DER: &str = "application/pkix-cert";
const CRL_DER: &str = "application/pkix-crl";

async fn ca(State(m): M, Path(mount): Path<String>) -> Result<Response> {
    Ok(answer(m.pki_public_cert(&mount, None, false)?, CERT_DER))
}

async fn ca_der(State(m): M, Path(mount): Path<String>) -> Result<Response> {
    Ok(answer(m.pki_public_cert(&mount, None, true)?, CERT_DER))
}

async fn ca_chain(State(m): M, Path(mount): Path<String>) -> Result<Response> {
    Ok(pem(m.pki_public_chain(&mount, None, None)?))
}

async fn crl(State(m): M, Path(mount): Path<String>) -> Result<Response> {
    Ok(answer(
        m.pki_public_crl(&mount, None, None, false)?,
        CRL_DER,
    ))
}

async fn crl_der(State(m): M, Path(mount): Path<String>) -> Result<Response> {
    Ok(answer(m.pki_public_crl(&mount, None, None, true)?, CRL_DER))
}

async fn issuer_ca(
    State(m): M,
    Path((mount, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let der = der_wanted(q.as_deref())?;
    Ok(answer(
        m.pki_public_cert(&mount, Some(&name), der)?,
        CERT_DER,
    ))
}

async fn issuer_chain(
    State(m): M,
    Path((mount, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let v = version(q.as_deref())?;
    Ok(pem(m.pki_public_chain(&mount, Some(&name), v)?))
}

async fn issuer_crl(
    State(m): M,
    Path((mount, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let v = version(q.as_deref())?;
    let der = der_wanted(q.as_deref())?;
    Ok(answer(
        m.pki_public_crl(&mount, Some(&name), v, der)?,
        CRL_DER,
    ))
}

pub fn router(m: Arc<Metacrypt>) -> Router {
    let guard = axum::middleware::from_fn_with_state(m.clone(), require_unsealed);
    let engine = Router::new()
        .route("/v1/crypt/{mount}/root/generate", post(root_generate))
        .route("/v1/crypt/{mount}/root/import", post(root_import))
        .route("/v1/crypt/{mount}/issuers", get(issuers))
        .route(
            "/v1/crypt/{mount}/issuers/{name}",
            get(issuer).post(create_issuer),
        )
        .route(
            "/v1/crypt/{mount}/issuers/{name}/rotate",
            post(rotate_issuer),
        )
        .route("/v1/crypt/{mount}/roles", get(roles))
        .route(
            "/v1/crypt/{mount}/roles/{name}",
            get(role).post(put_role).delete(delete_role),
        )
        .route("/v1/crypt/{mount}/issue/{role}", post(issue))
        .route("/v1/crypt/{mount}/sign-csr/{role}", post(sign_csr))
        .route("/v1/crypt/{mount}/certs", get(certs))
        .route("/v1/crypt/{mount}/certs/{serial}", get(cert))
        .route("/v1/crypt/{mount}/certs/{serial}/renew", post(renew))
        .route("/v1/crypt/{mount}/revoke", post(revoke))
        .route("/v1/crypt/{mount}/crl/rotate", post(rotate_crl))
        .route("/v1/crypt/{mount}/tidy", post(tidy))
        .route("/v1/crypt/{mount}/acme/{role}/eab", post(acme_eab))
        .route_layer(guard)
        .layer(DefaultBodyLimit::max(PKI_BODY_LIMIT))
        .with_state(m.clone());
    let public = Router::new()
        .route("/v1/pki/{mount}/ca", get(ca))
        .route("/v1/pki/{mount}/ca/der", get(ca_der))
        .route("/v1/pki/{mount}/ca/chain", get(ca_chain))
        .route("/v1/pki/{mount}/crl", get(crl))
        .route("/v1/pki/{mount}/crl/der", get(crl_der))
        .route("/v1/pki/{mount}/issuer/{name}/ca", get(issuer_ca))
        .route("/v1/pki/{mount}/issuer/{name}/chain", get(issuer_chain))
        .route("/v1/pki/{mount}/issuer/{name}/crl", get(issuer_crl))
        .with_state(m);
    engine.merge(public)
}
