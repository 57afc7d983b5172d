//! REST (JSON) adapter: `/v1/crypt/sys/…`. Each handler calls the
//! [`Metacrypt`] operation its gRPC twin calls; errors are `{"error": …}`;
//! `sys` bodies are limited to 64 KiB.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use mc_service::body::JsonBody;
use serde_json::{Value, json};

use crate::core::{
    AddSlotInput, AuditPage, AuditQuery, Caller, ChangePassphraseInput, InitInput, InitOutput,
    JobsView, Material, Metacrypt, RekeyOutput, ReshareInput, Reshared, SlotAdded, Status,
    UnsealInputBody,
};
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
    Ok(Json(m.seal(&c).await?))
}

/// A body (none is expected) is read and dropped: answering while a client
/// is still sending would reset its connection (a flake in the sealed sweep).
async fn rotate_mek(
    State(m): State<Arc<Metacrypt>>,
    c: Caller,
    _body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let v = m.rotate_mek(&c)?;
    Ok(Json(json!({"mek_version": v})))
}

async fn list_slots(State(m): State<Arc<Metacrypt>>) -> Result<Json<Value>> {
    Ok(Json(json!({"slots": m.list_slots()?})))
}

async fn change_passphrase(
    State(m): State<Arc<Metacrypt>>,
    c: Caller,
    JsonBody(input): JsonBody<ChangePassphraseInput>,
) -> Result<Json<Value>> {
    Ok(Json(json!({"slot": m.change_passphrase(&c, input).await?})))
}

async fn reshare(
    State(m): State<Arc<Metacrypt>>,
    c: Caller,
    JsonBody(input): JsonBody<ReshareInput>,
) -> Result<Json<Reshared>> {
    Ok(Json(m.reshare(&c, input).await?))
}

async fn remove_slot(
    State(m): State<Arc<Metacrypt>>,
    c: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
    JsonBody(input): JsonBody<Material>,
) -> Result<axum::http::StatusCode> {
    m.remove_slot(&c, &id, input).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn rekey(
    State(m): State<Arc<Metacrypt>>,
    c: Caller,
    JsonBody(input): JsonBody<Material>,
) -> Result<Json<RekeyOutput>> {
    Ok(Json(m.rekey(&c, input).await?))
}

async fn jobs(State(m): State<Arc<Metacrypt>>) -> Result<Json<JobsView>> {
    Ok(Json(m.jobs()?))
}

/// `?since=&until=&actor=&action=&before=&limit=`, each refused by name
/// when malformed.
fn audit_query(raw: Option<&str>) -> Result<AuditQuery> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|_| CryptError::invalid("query", "not URL-encoded"))?;
    let mut q = AuditQuery::default();
    let int = |k: &str, v: &str| -> Result<i64> {
        v.parse()
            .map_err(|_| CryptError::invalid(k.to_owned(), "an integer"))
    };
    let uint = |k: &str, v: &str| -> Result<u64> {
        v.parse()
            .map_err(|_| CryptError::invalid(k.to_owned(), "a non-negative integer"))
    };
    for (k, v) in pairs {
        match k.as_str() {
            "since" => q.since = int(&k, &v)?,
            "until" => q.until = int(&k, &v)?,
            "actor" => q.actor = v,
            "action" => q.action = v,
            "before" => q.before = uint(&k, &v)?,
            "limit" => {
                q.limit = u32::try_from(uint(&k, &v)?)
                    .map_err(|_| CryptError::invalid("limit", "1 to 1000"))?;
            }
            _ => return Err(CryptError::invalid(k, "unknown query parameter")),
        }
    }
    Ok(q)
}

async fn audit(
    State(m): State<Arc<Metacrypt>>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Json<AuditPage>> {
    Ok(Json(m.audit_query(&audit_query(raw.as_deref())?)?))
}

async fn add_slot(
    State(m): State<Arc<Metacrypt>>,
    c: Caller,
    JsonBody(input): JsonBody<AddSlotInput>,
) -> Result<Json<SlotAdded>> {
    Ok(Json(m.add_slot(&c, input).await?))
}

/// The engines' guard (a `route_layer` on every non-`sys` route): while
/// sealed it answers 503 `{"error":"sealed"}` before the path or body is read.
pub async fn require_unsealed(
    State(m): State<Arc<Metacrypt>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match m.require_unsealed() {
        Ok(()) => next.run(request).await,
        Err(e) => {
            mc_service::body::drain_refused(request).await;
            e.into_response()
        }
    }
}

pub fn router(m: Arc<Metacrypt>) -> Router {
    Router::new()
        // Slots need the unsealed barrier: sealed answers 503 before the body is read.
        .route(
            "/v1/crypt/sys/barrier/slots",
            get(list_slots).post(add_slot),
        )
        .route(
            "/v1/crypt/sys/barrier/slots/{id}",
            axum::routing::delete(remove_slot),
        )
        .route("/v1/crypt/sys/barrier/passphrase", post(change_passphrase))
        .route("/v1/crypt/sys/barrier/shamir", post(reshare))
        .route("/v1/crypt/sys/barrier/rekey", post(rekey))
        .route("/v1/crypt/sys/jobs", get(jobs))
        .route("/v1/crypt/sys/audit", get(audit))
        .route_layer(axum::middleware::from_fn_with_state(
            m.clone(),
            require_unsealed,
        ))
        .route("/v1/crypt/sys/status", get(status))
        .route("/v1/crypt/sys/init", post(init))
        .route("/v1/crypt/sys/unseal", post(unseal))
        .route("/v1/crypt/sys/seal", post(seal))
        .route("/v1/crypt/sys/barrier/rotate-mek", post(rotate_mek))
        .layer(DefaultBodyLimit::max(SYS_BODY_LIMIT))
        .with_state(m)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn send(router: &Router, method: &str, path: &str, body: &str) -> (u16, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .expect("request");
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn sealed_engine_routes_answer_503_and_sys_routes_name_bad_fields() {
        let dir = tempfile::tempdir().expect("tmp");
        let config = crate::config::MetacryptConfig {
            argon2_memory_kib: crate::config::ARGON2_MIN_MEMORY_KIB,
            argon2_iterations: 2,
            ..crate::config::MetacryptConfig::default()
        };
        let m = Arc::new(Metacrypt::open(&dir.path().join("m.redb"), config).expect("open"));
        // A stand-in engine route behind the guard.
        let engine = Router::new()
            .route(
                "/v1/crypt/{mount}/{*rest}",
                axum::routing::any(|| async { "engine" }),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                m.clone(),
                require_unsealed,
            ))
            .with_state(m.clone());
        let app = router(m.clone()).merge(engine);

        let sealed = (503, r#"{"error":"sealed"}"#.to_owned());
        assert_eq!(
            send(&app, "POST", "/v1/crypt/transit/encrypt/k", "{}").await,
            sealed
        );
        assert_eq!(
            send(&app, "GET", "/v1/crypt/secret/data/a", "").await,
            sealed
        );
        let (code, body) = send(&app, "GET", "/v1/crypt/sys/status", "").await;
        assert_eq!(code, 200, "{body}");
        assert!(body.contains(r#""state":"uninitialized""#), "{body}");
        let (code, body) = send(
            &app,
            "POST",
            "/v1/crypt/sys/init",
            r#"{"passphrase":"short"}"#,
        )
        .await;
        assert_eq!(
            (code, body.as_str()),
            (400, r#"{"error":"passphrase: at least 12 characters"}"#)
        );
        let (code, body) = send(&app, "POST", "/v1/crypt/sys/init", "not json").await;
        assert_eq!(code, 400, "{body}");
        assert!(body.contains("body"), "{body}");
        let (code, body) = send(
            &app,
            "POST",
            "/v1/crypt/sys/unseal",
            r#"{"passphrase":"x"}"#,
        )
        .await;
        assert_eq!(code, 409, "not initialized: {body}");

        let (code, body) = send(
            &app,
            "POST",
            "/v1/crypt/sys/init",
            r#"{"passphrase":"a long enough passphrase"}"#,
        )
        .await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(
            send(&app, "GET", "/v1/crypt/secret/data/a", "").await,
            (200, "engine".to_owned())
        );
        let (code, _) = send(&app, "POST", "/v1/crypt/sys/seal", "").await;
        assert_eq!(code, 200);
        assert_eq!(
            send(&app, "GET", "/v1/crypt/secret/data/a", "").await,
            sealed
        );

        // gRPC: the same error is UNAVAILABLE "sealed".
        let status = tonic::Status::from(crate::error::sealed());
        assert_eq!(
            (status.code(), status.message()),
            (tonic::Code::Unavailable, "sealed")
        );
    }
}
