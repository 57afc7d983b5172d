//! REST (JSON) adapter: `/v1/crypt/sys/…`. Each handler calls the
//! [`Metacrypt`] operation its gRPC twin calls; errors are `{"error": …}`;
//! `sys` bodies are limited to 64 KiB.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use mc_service::body::JsonBody;
use serde_json::{Value, json};

use crate::core::{Caller, InitInput, InitOutput, Metacrypt, Status, UnsealInputBody};
use crate::error::CryptError;

type Result<T> = std::result::Result<T, CryptError>;

/// Request bodies on `sys` routes.
pub const SYS_BODY_LIMIT: usize = 64 * 1024;

async fn status(State(m): State<Arc<Metacrypt>>) -> Result<Json<Status>> {
    Ok(Json(m.status()?))
}

async fn init(
    State(m): State<Arc<Metacrypt>>,
    c: Caller,
    JsonBody(input): JsonBody<InitInput>,
) -> Result<Json<InitOutput>> {
    Ok(Json(m.init(&c, input).await?))
}

async fn unseal(
    State(m): State<Arc<Metacrypt>>,
    c: Caller,
    JsonBody(input): JsonBody<UnsealInputBody>,
) -> Result<Json<Status>> {
    Ok(Json(m.unseal(&c, input).await?))
}

async fn seal(State(m): State<Arc<Metacrypt>>, c: Caller) -> Result<Json<Status>> {
    Ok(Json(m.seal(&c)?))
}

async fn rotate_mek(State(m): State<Arc<Metacrypt>>, c: Caller) -> Result<Json<Value>> {
    let v = m.rotate_mek(&c)?;
    Ok(Json(json!({"mek_version": v})))
}

pub fn router(m: Arc<Metacrypt>) -> Router {
    Router::new()
        .route("/v1/crypt/sys/status", get(status))
        .route("/v1/crypt/sys/init", post(init))
        .route("/v1/crypt/sys/unseal", post(unseal))
        .route("/v1/crypt/sys/seal", post(seal))
        .route("/v1/crypt/sys/barrier/rotate-mek", post(rotate_mek))
        .layer(DefaultBodyLimit::max(SYS_BODY_LIMIT))
        .with_state(m)
}
