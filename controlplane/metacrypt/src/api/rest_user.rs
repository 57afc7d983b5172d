//! REST for the user engine (`/v1/crypt/{mount}/self`, `self/rotate`,
//! `public/{account}`, `encrypt`, `decrypt`; 4 MiB bodies). Plaintexts are
//! base64, as in transit; answers are the bare data object.
//!
//! Invariant: every route sits behind [`require_unsealed`] (503 before the
//! path or body is read) and is one core call shared with gRPC `UserCrypto`.
//! The routes sit beside transit's `encrypt|decrypt/{name}` and `keys/…`
//! without overlapping them, so a transit key may be named `self`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use super::rest::require_unsealed;
use super::rest_engines::ENGINE_BODY_LIMIT;
use crate::core::{
    Caller, Metacrypt, UserDecrypt, UserDecrypted, UserEncrypt, UserEncrypted, UserKeyInfo,
};
use crate::error::CryptError;

type Result<T> = std::result::Result<T, CryptError>;
type M = State<Arc<Metacrypt>>;

/// The user engine's REST routes (all `ENGINE` in the map).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/crypt/{mount}/self"),
    ("POST", "/v1/crypt/{mount}/self"),
    ("POST", "/v1/crypt/{mount}/self/rotate"),
    ("GET", "/v1/crypt/{mount}/public/{account}"),
    ("POST", "/v1/crypt/{mount}/encrypt"),
    ("POST", "/v1/crypt/{mount}/decrypt"),
];

/// A JSON body that may be empty (then `T::default()`, which the core
/// refuses by field after the policy check).
fn body<T: DeserializeOwned + Default>(b: &Bytes) -> Result<T> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(b).map_err(|e| CryptError::invalid("body", e.to_string()))
}

async fn own_key(State(m): M, c: Caller, Path(mount): Path<String>) -> Result<Json<UserKeyInfo>> {
    Ok(Json(m.user_own_key(&c, &mount)?))
}

/// A body (none is expected) is read and dropped.
async fn init_key(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    _b: Bytes,
) -> Result<Json<UserKeyInfo>> {
    Ok(Json(m.user_init_key(&c, &mount)?))
}

async fn rotate_key(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    _b: Bytes,
) -> Result<Json<UserKeyInfo>> {
    Ok(Json(m.user_rotate_key(&c, &mount)?))
}

async fn public_key(
    State(m): M,
    c: Caller,
    Path((mount, account)): Path<(String, String)>,
) -> Result<Json<UserKeyInfo>> {
    Ok(Json(m.user_public_key(&c, &mount, &account)?))
}

async fn encrypt(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    b: Bytes,
) -> Result<Json<UserEncrypted>> {
    let input = body::<UserEncrypt>(&b)?;
    Ok(Json(m.user_encrypt(&c, &mount, &input)?))
}

async fn decrypt(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    b: Bytes,
) -> Result<Json<UserDecrypted>> {
    Ok(Json(m.user_decrypt(
        &c,
        &mount,
        &body::<UserDecrypt>(&b)?,
    )?))
}

pub fn router(m: Arc<Metacrypt>) -> Router {
    let guard = axum::middleware::from_fn_with_state(m.clone(), require_unsealed);
    Router::new()
        .route("/v1/crypt/{mount}/self", get(own_key).post(init_key))
        .route("/v1/crypt/{mount}/self/rotate", post(rotate_key))
        .route("/v1/crypt/{mount}/public/{account}", get(public_key))
        .route("/v1/crypt/{mount}/encrypt", post(encrypt))
        .route("/v1/crypt/{mount}/decrypt", post(decrypt))
        .route_layer(guard)
        .layer(DefaultBodyLimit::max(ENGINE_BODY_LIMIT))
        .with_state(m)
}
