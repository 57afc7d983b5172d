//! The public OCSP routes of a pki mount (RFC 6960 appendix A): `POST
//! /v1/pki/{mount}/ocsp` with an `application/ocsp-request` body, and `GET
//! /v1/pki/{mount}/ocsp/{request}` with the request base64-encoded (then
//! URL-encoded: `/` as `%2F`) in the path. Unauthenticated, like the CA and
//! CRL routes; listed in `rest_pki::PUBLIC_ROUTES`.
//!
//! Invariant: every answer is `200 application/ocsp-response` carrying an
//! OCSPResponse (bad input is a `malformedRequest` response); bodies over
//! `ocsp::MAX_REQUEST` are refused before they are read whole.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use x509_ocsp::OcspResponse;

use crate::core::Metacrypt;
use crate::engines::pki::ocsp::{MAX_REQUEST, status_only};

const OCSP_RESPONSE: &str = "application/ocsp-response";

fn reply(der: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, OCSP_RESPONSE)], der).into_response()
}

async fn post_ocsp(
    State(m): State<Arc<Metacrypt>>,
    Path(mount): Path<String>,
    body: Bytes,
) -> Response {
    reply(m.pki_ocsp(&mount, &body))
}

async fn get_ocsp(
    State(m): State<Arc<Metacrypt>>,
    Path((mount, request)): Path<(String, String)>,
) -> Response {
    // Base64 of MAX_REQUEST bytes is 4/3 as long; longer cannot be valid.
    if request.len() > MAX_REQUEST / 3 * 4 + 4 {
        return reply(status_only(OcspResponse::malformed_request()));
    }
    match base64::engine::general_purpose::STANDARD.decode(request.trim()) {
        Ok(der) => reply(m.pki_ocsp(&mount, &der)),
        Err(_) => reply(status_only(OcspResponse::malformed_request())),
    }
}

pub(crate) fn router(m: Arc<Metacrypt>) -> Router {
    Router::new()
        .route("/v1/pki/{mount}/ocsp", post(post_ocsp))
        .route("/v1/pki/{mount}/ocsp/{request}", get(get_ocsp))
        .layer(DefaultBodyLimit::max(MAX_REQUEST))
        .with_state(m)
}
