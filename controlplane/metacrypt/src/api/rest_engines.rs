//! REST for mounts and policy (`/v1/crypt/sys/mounts|policy…`, Admin, 64 KiB
//! bodies) and the kv engine (`/v1/crypt/{mount}/data|metadata|delete|
//! undelete|destroy/<path>`, `/v1/crypt/{mount}/config`; 4 MiB bodies).
//! Answers are the bare data object; lists are `GET …?list=true`.
//!
//! Invariant: every route here sits behind [`require_unsealed`], so while
//! sealed it answers 503 `{"error":"sealed"}` before its path, query or
//! body is read; each handler is one core call shared with gRPC.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mc_service::body::JsonBody;
use serde_json::{Value, json};

use super::rest::{SYS_BODY_LIMIT, require_unsealed};
use crate::core::{
    Caller, ExplainInput, Explained, KvConfig, KvConfigInput, KvDelete, KvList, KvMetadata,
    KvMetadataInput, KvVersion, KvWrite, Metacrypt, Mount, MountInput, MountUpdate, PolicyRule,
    RotatedDek,
};
use crate::error::CryptError;

type Result<T> = std::result::Result<T, CryptError>;
type M = State<Arc<Metacrypt>>;

/// Request bodies on engine routes.
pub const ENGINE_BODY_LIMIT: usize = 4 * 1024 * 1024;

async fn list_mounts(State(m): M) -> Result<Json<Value>> {
    Ok(Json(json!({"mounts": m.list_mounts()?})))
}

async fn create_mount(
    State(m): M,
    c: Caller,
    JsonBody(i): JsonBody<MountInput>,
) -> Result<Json<Mount>> {
    Ok(Json(m.create_mount(&c, i)?))
}

async fn get_mount(State(m): M, Path(name): Path<String>) -> Result<Json<Mount>> {
    Ok(Json(m.get_mount(&name)?))
}

async fn update_mount(
    State(m): M,
    c: Caller,
    Path(name): Path<String>,
    JsonBody(i): JsonBody<MountUpdate>,
) -> Result<Json<Mount>> {
    Ok(Json(m.update_mount(&c, &name, i)?))
}

async fn delete_mount(State(m): M, c: Caller, Path(name): Path<String>) -> Result<StatusCode> {
    m.delete_mount(&c, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A body (none is expected) is read and dropped, as for `rotate-mek`.
async fn rotate_dek(
    State(m): M,
    c: Caller,
    Path(name): Path<String>,
    _body: axum::body::Bytes,
) -> Result<Json<RotatedDek>> {
    Ok(Json(m.rotate_dek(&c, &name)?))
}

async fn list_rules(State(m): M) -> Result<Json<Value>> {
    Ok(Json(json!({"rules": m.list_rules()?})))
}

async fn create_rule(
    State(m): M,
    c: Caller,
    JsonBody(r): JsonBody<PolicyRule>,
) -> Result<Json<PolicyRule>> {
    Ok(Json(m.create_rule(&c, r)?))
}

async fn get_rule(State(m): M, Path(id): Path<String>) -> Result<Json<PolicyRule>> {
    Ok(Json(m.get_rule(&id)?))
}

async fn update_rule(
    State(m): M,
    c: Caller,
    Path(id): Path<String>,
    JsonBody(r): JsonBody<PolicyRule>,
) -> Result<Json<PolicyRule>> {
    Ok(Json(m.update_rule(&c, &id, r)?))
}

async fn delete_rule(State(m): M, c: Caller, Path(id): Path<String>) -> Result<StatusCode> {
    m.delete_rule(&c, &id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn explain(
    State(m): M,
    c: Caller,
    JsonBody(i): JsonBody<ExplainInput>,
) -> Result<Json<Explained>> {
    Ok(Json(m.explain(&c, i)?))
}

/// The query parameters kv routes take: `version=N`, `list=true`.
#[derive(Default)]
struct KvQuery {
    version: u64,
    list: bool,
}

fn kv_query(raw: Option<String>) -> Result<KvQuery> {
    let mut q = KvQuery::default();
    for pair in raw
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "version" => {
                q.version = v
                    .parse()
                    .map_err(|_| CryptError::invalid("version", "a non-negative integer"))?;
            }
            "list" => {
                q.list = match v {
                    "true" | "1" => true,
                    "false" | "0" | "" => false,
                    _ => return Err(CryptError::invalid("list", "true or false")),
                };
            }
            other => {
                return Err(CryptError::invalid(
                    other.to_owned(),
                    "unknown query parameter",
                ));
            }
        }
    }
    Ok(q)
}

/// A bad query is answered after the policy check, so a caller without
/// rights gets 403 whatever it sends (and learns nothing else).
fn refusal_first(
    m: &Metacrypt,
    c: &Caller,
    mount: &str,
    tree: &str,
    path: &str,
    list: bool,
    bad: CryptError,
) -> CryptError {
    m.kv_authorize_read(c, mount, tree, path, list)
        .err()
        .unwrap_or(bad)
}

async fn kv_read(
    State(m): M,
    c: Caller,
    Path((mount, path)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let q = kv_query(q)
        .and_then(|q| match q.list {
            true => Err(CryptError::invalid("list", "list under metadata/")),
            false => Ok(q),
        })
        .map_err(|e| refusal_first(&m, &c, &mount, "data", &path, false, e))?;
    let r = m.kv_read(&c, &mount, &path, q.version)?;
    Ok(match r.data {
        Some(_) => Json(r).into_response(),
        // Deleted or destroyed: 404 that still says which and when.
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({
                "error": if r.metadata.destroyed { "version destroyed" } else { "version deleted" },
                "data": null,
                "metadata": r.metadata,
            })),
        )
            .into_response(),
    })
}

async fn kv_write(
    State(m): M,
    c: Caller,
    Path((mount, path)): Path<(String, String)>,
    JsonBody(i): JsonBody<KvWrite>,
) -> Result<Json<KvVersion>> {
    Ok(Json(m.kv_write(&c, &mount, &path, &i)?))
}

async fn kv_patch(
    State(m): M,
    c: Caller,
    Path((mount, path)): Path<(String, String)>,
    JsonBody(i): JsonBody<KvWrite>,
) -> Result<Json<KvVersion>> {
    Ok(Json(m.kv_patch(&c, &mount, &path, &i)?))
}

async fn kv_delete_latest(
    State(m): M,
    c: Caller,
    Path((mount, path)): Path<(String, String)>,
) -> Result<StatusCode> {
    m.kv_delete_latest(&c, &mount, &path)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn kv_delete(
    State(m): M,
    c: Caller,
    Path((mount, path)): Path<(String, String)>,
    JsonBody(i): JsonBody<KvDelete>,
) -> Result<StatusCode> {
    m.kv_delete_versions(&c, &mount, &path, &i)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn kv_undelete(
    State(m): M,
    c: Caller,
    Path((mount, path)): Path<(String, String)>,
    JsonBody(i): JsonBody<KvDelete>,
) -> Result<StatusCode> {
    m.kv_undelete(&c, &mount, &path, &i)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn kv_destroy(
    State(m): M,
    c: Caller,
    Path((mount, path)): Path<(String, String)>,
    JsonBody(i): JsonBody<KvDelete>,
) -> Result<StatusCode> {
    m.kv_destroy(&c, &mount, &path, &i)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn kv_metadata(
    State(m): M,
    c: Caller,
    Path((mount, path)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let q = kv_query(q).map_err(|e| refusal_first(&m, &c, &mount, "metadata", &path, false, e))?;
    if q.list {
        let l: KvList = m.kv_list(&c, &mount, &path)?;
        return Ok(Json(l).into_response());
    }
    let md: KvMetadata = m.kv_read_metadata(&c, &mount, &path)?;
    Ok(Json(md).into_response())
}

async fn kv_list_root(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<KvList>> {
    // The root has no metadata of its own: GET lists it, with or without list=true.
    kv_query(q).map_err(|e| refusal_first(&m, &c, &mount, "metadata", "", true, e))?;
    Ok(Json(m.kv_list(&c, &mount, "")?))
}

async fn kv_write_metadata(
    State(m): M,
    c: Caller,
    Path((mount, path)): Path<(String, String)>,
    JsonBody(i): JsonBody<KvMetadataInput>,
) -> Result<Json<KvMetadata>> {
    Ok(Json(m.kv_write_metadata(&c, &mount, &path, &i)?))
}

async fn kv_delete_metadata(
    State(m): M,
    c: Caller,
    Path((mount, path)): Path<(String, String)>,
) -> Result<StatusCode> {
    m.kv_delete_metadata(&c, &mount, &path)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn kv_read_config(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
) -> Result<Json<KvConfig>> {
    Ok(Json(m.kv_read_config(&c, &mount)?))
}

async fn kv_write_config(
    State(m): M,
    c: Caller,
    Path(mount): Path<String>,
    JsonBody(i): JsonBody<KvConfigInput>,
) -> Result<Json<KvConfig>> {
    Ok(Json(m.kv_write_config(&c, &mount, &i)?))
}

/// Every (method, path) this router serves, for the method map's test.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/crypt/sys/mounts"),
    ("POST", "/v1/crypt/sys/mounts"),
    ("GET", "/v1/crypt/sys/mounts/{mount}"),
    ("PATCH", "/v1/crypt/sys/mounts/{mount}"),
    ("DELETE", "/v1/crypt/sys/mounts/{mount}"),
    ("POST", "/v1/crypt/sys/mounts/{mount}/rotate-dek"),
    ("GET", "/v1/crypt/sys/policy"),
    ("POST", "/v1/crypt/sys/policy"),
    ("POST", "/v1/crypt/sys/policy/explain"),
    ("GET", "/v1/crypt/sys/policy/{id}"),
    ("PUT", "/v1/crypt/sys/policy/{id}"),
    ("DELETE", "/v1/crypt/sys/policy/{id}"),
];

pub fn router(m: Arc<Metacrypt>) -> Router {
    let guard = axum::middleware::from_fn_with_state(m.clone(), require_unsealed);
    let sys = Router::new()
        .route("/v1/crypt/sys/mounts", get(list_mounts).post(create_mount))
        .route(
            "/v1/crypt/sys/mounts/{mount}",
            get(get_mount).patch(update_mount).delete(delete_mount),
        )
        .route("/v1/crypt/sys/mounts/{mount}/rotate-dek", post(rotate_dek))
        .route("/v1/crypt/sys/policy", get(list_rules).post(create_rule))
        .route("/v1/crypt/sys/policy/explain", post(explain))
        .route(
            "/v1/crypt/sys/policy/{id}",
            get(get_rule).put(update_rule).delete(delete_rule),
        )
        .route_layer(guard.clone())
        .layer(DefaultBodyLimit::max(SYS_BODY_LIMIT));
    let kv = Router::new()
        .route(
            "/v1/crypt/{mount}/data/{*path}",
            get(kv_read)
                .post(kv_write)
                .put(kv_write)
                .patch(kv_patch)
                .delete(kv_delete_latest),
        )
        .route(
            "/v1/crypt/{mount}/delete/{*path}",
            post(kv_delete).put(kv_delete),
        )
        .route(
            "/v1/crypt/{mount}/undelete/{*path}",
            post(kv_undelete).put(kv_undelete),
        )
        .route(
            "/v1/crypt/{mount}/destroy/{*path}",
            post(kv_destroy).put(kv_destroy),
        )
        .route(
            "/v1/crypt/{mount}/metadata/{*path}",
            get(kv_metadata)
                .post(kv_write_metadata)
                .put(kv_write_metadata)
                .delete(kv_delete_metadata),
        )
        .route("/v1/crypt/{mount}/metadata", get(kv_list_root))
        .route("/v1/crypt/{mount}/metadata/", get(kv_list_root))
        .route(
            "/v1/crypt/{mount}/config",
            get(kv_read_config)
                .post(kv_write_config)
                .put(kv_write_config),
        )
        .route_layer(guard)
        .layer(DefaultBodyLimit::max(ENGINE_BODY_LIMIT));
    sys.merge(kv).with_state(m)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use mc_service::auth::Principal;
    use tower::ServiceExt;

    use super::*;

    fn admin() -> Principal {
        crate::testing::principal("admin", &["admin"])
    }

    async fn send(app: &Router, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .expect("request");
        request.extensions_mut().insert(admin());
        let response = app.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn sealed_first_then_mounts_policy_and_kv_over_rest() {
        let dir = tempfile::tempdir().expect("tmp");
        let config = crate::config::MetacryptConfig {
            argon2_memory_kib: crate::config::ARGON2_MIN_MEMORY_KIB,
            argon2_iterations: 2,
            ..crate::config::MetacryptConfig::default()
        };
        let m = Arc::new(Metacrypt::open(&dir.path().join("m.redb"), config).expect("open"));
        let app = crate::api::router(m.clone());
        let sealed = (503, r#"{"error":"sealed"}"#.to_owned());
        // Sealed: even a malformed body or query is answered "sealed".
        for (method, path, body) in [
            ("POST", "/v1/crypt/sys/mounts", "not json"),
            ("GET", "/v1/crypt/sys/policy", ""),
            ("POST", "/v1/crypt/sys/policy/explain", "{"),
            ("GET", "/v1/crypt/secret/data/a?bogus=1", ""),
            ("POST", "/v1/crypt/secret/data/a", "]"),
            ("GET", "/v1/crypt/secret/metadata?list=true", ""),
            ("POST", "/v1/crypt/secret/config", "{}"),
        ] {
            assert_eq!(
                send(&app, method, path, body).await,
                sealed,
                "{method} {path}"
            );
        }
        let (code, body) = send(
            &app,
            "POST",
            "/v1/crypt/sys/init",
            r#"{"passphrase":"a long enough passphrase"}"#,
        )
        .await;
        assert_eq!(code, 200, "{body}");
        let (code, body) = send(
            &app,
            "POST",
            "/v1/crypt/sys/mounts",
            r#"{"name":"secret","type":"kv"}"#,
        )
        .await;
        assert_eq!(code, 200, "{body}");
        assert!(body.contains(r#""max_versions":10"#), "{body}");
        let (code, body) = send(
            &app,
            "POST",
            "/v1/crypt/secret/data/app/db",
            r#"{"data":{"pw":"s3cret"},"options":{"cas":0}}"#,
        )
        .await;
        assert_eq!(code, 200, "{body}");
        let (code, body) = send(&app, "GET", "/v1/crypt/secret/data/app/db", "").await;
        assert_eq!(code, 200, "{body}");
        assert!(body.contains(r#""pw":"s3cret""#), "{body}");
        assert_eq!(
            send(&app, "GET", "/v1/crypt/secret/metadata?list=true", "").await,
            (200, r#"{"keys":["app/"]}"#.to_owned())
        );
        let (code, _) = send(&app, "DELETE", "/v1/crypt/secret/data/app/db", "").await;
        assert_eq!(code, 204);
        let (code, body) = send(&app, "GET", "/v1/crypt/secret/data/app/db", "").await;
        assert_eq!(code, 404, "{body}");
        assert!(body.contains(r#""data":null"#), "{body}");
        let (code, body) = send(&app, "GET", "/v1/crypt/secret/data/a?version=x", "").await;
        assert_eq!(
            (code, body.as_str()),
            (400, r#"{"error":"version: a non-negative integer"}"#)
        );
        let (code, body) = send(
            &app,
            "POST",
            "/v1/crypt/sys/policy/explain",
            r#"{"path":"secret/data/x","capability":"read"}"#,
        )
        .await;
        assert_eq!(code, 200, "{body}");
        assert!(body.contains(r#""rule":"r-admin""#), "{body}");
        let (code, body) = send(&app, "GET", "/v1/crypt/sys/policy", "").await;
        assert!(code == 200 && body.contains(r#""paths":["*"]"#), "{body}");
    }
}
