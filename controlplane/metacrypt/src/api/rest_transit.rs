//! REST for the transit engine (`/v1/crypt/{mount}/keys…`, `encrypt|decrypt|
//! rewrap|sign|verify|hmac/{name}`, `datakey/{kind}/{name}`, `export/…`,
//! `random`, `hash`; 4 MiB bodies). Fields are Vault's; answers are the
//! bare data object, a batch is `{"batch_results": […]}` with Vault's status.
//!
//! Invariant: every route sits behind [`require_unsealed`] (503 before the
//! path, query or body is read) and is one core call shared with gRPC.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::rest::require_unsealed;
use super::rest_engines::ENGINE_BODY_LIMIT;
use crate::core::transit::{
    ConfigKey, CreateKey, DatakeyRequest, DecryptItem, Dialect, HashRequest, RandomRequest,
    RewrapItem, SignItem, VerifyItem,
};
use crate::core::{Answer, Batched, Caller, EncryptRequest, HmacRequest, Metacrypt, SignRequest};
use crate::error::CryptError;

type Result<T> = std::result::Result<T, CryptError>;
type M = State<Arc<Metacrypt>>;

/// A JSON body that may be empty (then `T::default()`), with or without a
/// content type, as Vault's API takes it.
fn body<T: DeserializeOwned + Default>(b: &Bytes) -> Result<T> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(b).map_err(|e| CryptError::invalid("body", e.to_string()))
}

fn reply<T: Serialize>(a: Answer<T>) -> Response {
    match a {
        Answer::One(v) => Json(v).into_response(),
        Answer::Batch { results, status } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            (code, Json(results)).into_response()
        }
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct TrimInput {
    #[serde(deserialize_with = "crate::core::transit::flexible_u32")]
    min_available_version: Option<u32>,
}

async fn list_keys(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<serde_json::Value>> {
    match q.as_deref() {
        None | Some("") | Some("list=true") => {}
        Some(_) => return Err(CryptError::invalid("query", "only list=true")),
    }
    Ok(Json(json!({"keys": m.transit_list_keys(&c, &mount)?})))
}

async fn create_key(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
    b: Bytes,
) -> Result<Json<serde_json::Value>> {
    Ok(Json(m.transit_create_key(
        &c,
        &mount,
        &name,
        &body::<CreateKey>(&b)?,
    )?))
}

async fn read_key(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>> {
    Ok(Json(m.transit_read_key(
        &c,
        &mount,
        &name,
        Dialect::Native,
    )?))
}

async fn delete_key(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
) -> Result<StatusCode> {
    m.transit_delete_key(&c, &mount, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn config_key(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
    b: Bytes,
) -> Result<Json<serde_json::Value>> {
    Ok(Json(m.transit_config_key(
        &c,
        &mount,
        &name,
        &body::<ConfigKey>(&b)?,
    )?))
}

/// The body (Vault sends none) is read and ignored: answering before a
/// client finished sending would reset its connection.
async fn rotate_key(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
    _body: Bytes,
) -> Result<Json<serde_json::Value>> {
    Ok(Json(m.transit_rotate_key(&c, &mount, &name)?))
}

async fn trim_key(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
    b: Bytes,
) -> Result<Json<serde_json::Value>> {
    let t: TrimInput = body(&b)?;
    Ok(Json(m.transit_trim_key(
        &c,
        &mount,
        &name,
        t.min_available_version,
    )?))
}

async fn export(
    State(m): M,
    c: Caller,
    Path((mount, kind, name)): Path<(String, String, String)>,
) -> Result<Json<serde_json::Value>> {
    Ok(Json(m.transit_export_key(
        &c,
        &mount,
        &kind,
        &name,
        None,
        Dialect::Native,
    )?))
}

async fn export_version(
    State(m): M,
    c: Caller,
    Path((mount, kind, name, version)): Path<(String, String, String, String)>,
) -> Result<Json<serde_json::Value>> {
    Ok(Json(m.transit_export_key(
        &c,
        &mount,
        &kind,
        &name,
        Some(&version),
        Dialect::Native,
    )?))
}

async fn encrypt(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
    b: Bytes,
) -> Result<Response> {
    Ok(reply(m.transit_encrypt(
        &c,
        &mount,
        &name,
        &body::<EncryptRequest>(&b)?,
    )?))
}

async fn decrypt(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
    b: Bytes,
) -> Result<Response> {
    Ok(reply(m.transit_decrypt(
        &c,
        &mount,
        &name,
        &body::<Batched<DecryptItem>>(&b)?,
    )?))
}

async fn rewrap(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
    b: Bytes,
) -> Result<Response> {
    Ok(reply(m.transit_rewrap(
        &c,
        &mount,
        &name,
        &body::<Batched<RewrapItem>>(&b)?,
    )?))
}

async fn datakey(
    State(m): M,
    c: Caller,
    Path((mount, kind, name)): Path<(String, String, String)>,
    b: Bytes,
) -> Result<Response> {
    Ok(reply(m.transit_datakey(
        &c,
        &mount,
        &kind,
        &name,
        &body::<Batched<DatakeyRequest>>(&b)?,
    )?))
}

async fn sign(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
    b: Bytes,
) -> Result<Response> {
    Ok(reply(m.transit_sign(
        &c,
        &mount,
        &name,
        &body::<SignRequest<SignItem>>(&b)?,
    )?))
}

async fn sign_hash(
    State(m): M,
    c: Caller,
    Path((mount, name, hash)): Path<(String, String, String)>,
    b: Bytes,
) -> Result<Response> {
    let mut r: SignRequest<SignItem> = body(&b)?;
    r.params.hash_algorithm = Some(hash);
    Ok(reply(m.transit_sign(&c, &mount, &name, &r)?))
}

async fn verify(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
    b: Bytes,
) -> Result<Response> {
    Ok(reply(m.transit_verify(
        &c,
        &mount,
        &name,
        &body::<SignRequest<VerifyItem>>(&b)?,
    )?))
}

async fn verify_hash(
    State(m): M,
    c: Caller,
    Path((mount, name, hash)): Path<(String, String, String)>,
    b: Bytes,
) -> Result<Response> {
    let mut r: SignRequest<VerifyItem> = body(&b)?;
    r.params.hash_algorithm = Some(hash);
    Ok(reply(m.transit_verify(&c, &mount, &name, &r)?))
}

async fn hmac(
    State(m): M,
    c: Caller,
    Path((mount, name)): Path<(String, String)>,
    b: Bytes,
) -> Result<Response> {
    Ok(reply(m.transit_hmac(
        &c,
        &mount,
        &name,
        &body::<HmacRequest>(&b)?,
    )?))
}

async fn hmac_algo(
    State(m): M,
    c: Caller,
    Path((mount, name, algo)): Path<(String, String, String)>,
    b: Bytes,
) -> Result<Response> {
    let mut r: HmacRequest = body(&b)?;
    r.params.algorithm = Some(algo);
    Ok(reply(m.transit_hmac(&c, &mount, &name, &r)?))
}

async fn random(State(m): M, c: Caller, Path(mount): Path<String>, b: Bytes) -> Result<Response> {
    Ok(Json(m.transit_random(&c, &mount, &body::<RandomRequest>(&b)?)?).into_response())
}

async fn random_n(
    State(m): M,
    c: Caller,
    Path((mount, n)): Path<(String, String)>,
    b: Bytes,
) -> Result<Response> {
    let mut r: RandomRequest = body(&b)?;
    r.url_bytes = Some(n);
    Ok(Json(m.transit_random(&c, &mount, &r)?).into_response())
}

async fn hash(State(m): M, c: Caller, Path(mount): Path<String>, b: Bytes) -> Result<Response> {
    Ok(Json(m.transit_hash(&c, &mount, &body::<HashRequest>(&b)?)?).into_response())
}

async fn hash_algo(
    State(m): M,
    c: Caller,
    Path((mount, algo)): Path<(String, String)>,
    b: Bytes,
) -> Result<Response> {
    let mut r: HashRequest = body(&b)?;
    r.algorithm = Some(algo);
    Ok(Json(m.transit_hash(&c, &mount, &r)?).into_response())
}

/// Every (method, path) this router serves, for the method map (all `ENGINE`).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/crypt/{mount}/keys"),
    ("POST", "/v1/crypt/{mount}/keys/{name}"),
    ("GET", "/v1/crypt/{mount}/keys/{name}"),
    ("DELETE", "/v1/crypt/{mount}/keys/{name}"),
    ("POST", "/v1/crypt/{mount}/keys/{name}/config"),
    ("POST", "/v1/crypt/{mount}/keys/{name}/rotate"),
    ("POST", "/v1/crypt/{mount}/keys/{name}/trim"),
    ("GET", "/v1/crypt/{mount}/export/{kind}/{name}"),
    ("GET", "/v1/crypt/{mount}/export/{kind}/{name}/{version}"),
    ("POST", "/v1/crypt/{mount}/encrypt/{name}"),
    ("POST", "/v1/crypt/{mount}/decrypt/{name}"),
    ("POST", "/v1/crypt/{mount}/rewrap/{name}"),
    ("POST", "/v1/crypt/{mount}/datakey/{kind}/{name}"),
    ("POST", "/v1/crypt/{mount}/sign/{name}"),
    ("POST", "/v1/crypt/{mount}/sign/{name}/{hash}"),
    ("POST", "/v1/crypt/{mount}/verify/{name}"),
    ("POST", "/v1/crypt/{mount}/verify/{name}/{hash}"),
    ("POST", "/v1/crypt/{mount}/hmac/{name}"),
    ("POST", "/v1/crypt/{mount}/hmac/{name}/{algo}"),
    ("POST", "/v1/crypt/{mount}/random"),
    ("POST", "/v1/crypt/{mount}/random/{bytes}"),
    ("POST", "/v1/crypt/{mount}/hash"),
    ("POST", "/v1/crypt/{mount}/hash/{algo}"),
];

pub fn router(m: Arc<Metacrypt>) -> Router {
    let guard = axum::middleware::from_fn_with_state(m.clone(), require_unsealed);
    Router::new()
        .route("/v1/crypt/{mount}/keys", get(list_keys))
        .route(
            "/v1/crypt/{mount}/keys/{name}",
            post(create_key).get(read_key).delete(delete_key),
        )
        .route("/v1/crypt/{mount}/keys/{name}/config", post(config_key))
        .route("/v1/crypt/{mount}/keys/{name}/rotate", post(rotate_key))
        .route("/v1/crypt/{mount}/keys/{name}/trim", post(trim_key))
        .route("/v1/crypt/{mount}/export/{kind}/{name}", get(export))
        .route(
            "/v1/crypt/{mount}/export/{kind}/{name}/{version}",
            get(export_version),
        )
        .route("/v1/crypt/{mount}/encrypt/{name}", post(encrypt))
        .route("/v1/crypt/{mount}/decrypt/{name}", post(decrypt))
        .route("/v1/crypt/{mount}/rewrap/{name}", post(rewrap))
        .route("/v1/crypt/{mount}/datakey/{kind}/{name}", post(datakey))
        .route("/v1/crypt/{mount}/sign/{name}", post(sign))
        .route("/v1/crypt/{mount}/sign/{name}/{hash}", post(sign_hash))
        .route("/v1/crypt/{mount}/verify/{name}", post(verify))
        .route("/v1/crypt/{mount}/verify/{name}/{hash}", post(verify_hash))
        .route("/v1/crypt/{mount}/hmac/{name}", post(hmac))
        .route("/v1/crypt/{mount}/hmac/{name}/{algo}", post(hmac_algo))
        .route("/v1/crypt/{mount}/random", post(random))
        .route("/v1/crypt/{mount}/random/{bytes}", post(random_n))
        .route("/v1/crypt/{mount}/hash", post(hash))
        .route("/v1/crypt/{mount}/hash/{algo}", post(hash_algo))
        .route_layer(guard)
        .layer(DefaultBodyLimit::max(ENGINE_BODY_LIMIT))
        .with_state(m)
}
