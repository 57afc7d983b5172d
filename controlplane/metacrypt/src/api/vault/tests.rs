//! The facade through its router (the auth layer is the host's: the
//! principal is inserted as the layer would).

use axum::body::Body;
use axum::http::Request;
use mc_service::auth::Principal;
use serde_json::Value;
use tower::ServiceExt;

use super::*;

fn admin() -> Principal {
    crate::testing::principal("admin", &["admin"])
}

async fn send(app: &Router, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body.to_owned()))
        .expect("request");
    request.extensions_mut().insert(admin());
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn facade_speaks_vault_over_the_same_core_calls() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = crate::config::MetacryptConfig {
        argon2_memory_kib: crate::config::ARGON2_MIN_MEMORY_KIB,
        argon2_iterations: 2,
        ..crate::config::MetacryptConfig::default()
    };
    let m = Arc::new(Metacrypt::open(&dir.path().join("m.redb"), config).expect("open"));
    let app = crate::api::router(m.clone());
    // Uninitialized: health 501, seal-status answers, engines are sealed.
    let (code, body) = send(&app, "GET", "/v1/sys/health", "").await;
    assert_eq!((code, &body["initialized"]), (501, &Value::Bool(false)));
    let sealed = serde_json::json!({"errors": ["Vault is sealed"]});
    for (method, path, body) in [
        ("POST", "/v1/transit/encrypt/k", "{"),
        ("GET", "/v1/secret/data/a?bogus", ""),
        ("POST", "/v1/sys/mounts/x", "{}"),
    ] {
        assert_eq!(
            send(&app, method, path, body).await,
            (503, sealed.clone()),
            "{path}"
        );
    }
    m.init(
        &Caller::default(),
        crate::core::InitInput {
            passphrase: Some("a long enough passphrase".into()),
            ..Default::default()
        },
    )
    .await
    .expect("init");
    let (code, body) = send(&app, "GET", "/v1/sys/seal-status", "").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (body["sealed"].clone(), body["t"].clone()),
        (Value::Bool(false), 1.into())
    );
    let (code, _) = send(&app, "GET", "/v1/sys/health", "").await;
    assert_eq!(code, 200);

    let (code, body) = send(
        &app,
        "POST",
        "/v1/sys/mounts/transit",
        r#"{"type":"transit"}"#,
    )
    .await;
    assert_eq!(code, 204, "{body}");
    let (code, body) = send(
        &app,
        "POST",
        "/v1/transit/keys/k",
        r#"{"type":"aes256-gcm96"}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["type"], "aes256-gcm96", "{body}");
    assert_eq!(body["lease_id"], "", "{body}");
    let (code, body) = send(
        &app,
        "PUT",
        "/v1/transit/encrypt/k",
        r#"{"plaintext":"aGVsbG8="}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let ct = body["data"]["ciphertext"].as_str().expect("ct").to_owned();
    assert!(ct.starts_with("vault:v1:"), "{ct}");
    let (code, body) = send(
        &app,
        "POST",
        "/v1/transit/decrypt/k",
        &format!(r#"{{"batch_input":[{{"ciphertext":"{ct}"}},{{"ciphertext":"nope"}}]}}"#),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["data"]["batch_results"][0]["plaintext"], "aGVsbG8=",
        "{body}"
    );
    assert!(
        body["data"]["batch_results"][1]["error"].is_string(),
        "{body}"
    );
    let (code, body) = send(&app, "GET", "/v1/transit/keys?list=true", "").await;
    assert_eq!(
        (code, body["data"]["keys"].clone()),
        (200, serde_json::json!(["k"]))
    );
    let (code, body) = send(&app, "DELETE", "/v1/transit/keys/k", "").await;
    assert_eq!(code, 400, "deletion not allowed: {body}");
    assert!(body["errors"][0].is_string(), "{body}");
    let (code, body) = send(&app, "GET", "/v1/transit/keys/missing", "").await;
    assert_eq!((code, body), (404, serde_json::json!({"errors": []})));

    // kv v2: CAS, deleted version 404 with metadata, list.
    let (code, _) = send(
        &app,
        "POST",
        "/v1/sys/mounts/secret",
        r#"{"type":"kv","options":{"version":"2"}}"#,
    )
    .await;
    assert_eq!(code, 204);
    let w = r#"{"data":{"pw":"x"},"options":{"cas":0}}"#;
    let (code, body) = send(&app, "POST", "/v1/secret/data/app/db", w).await;
    assert_eq!(
        (code, body["data"]["version"].clone()),
        (200, 1.into()),
        "{body}"
    );
    let (code, body) = send(&app, "POST", "/v1/secret/data/app/db", w).await;
    assert_eq!(code, 400, "CAS conflict: {body}");
    let (code, body) = send(&app, "GET", "/v1/secret/data/app/db?version=1", "").await;
    assert_eq!(
        (code, body["data"]["data"]["pw"].clone()),
        (200, "x".into()),
        "{body}"
    );
    let (code, _) = send(&app, "DELETE", "/v1/secret/data/app/db", "").await;
    assert_eq!(code, 204);
    let (code, body) = send(&app, "GET", "/v1/secret/data/app/db", "").await;
    assert_eq!(code, 404, "{body}");
    assert!(body["data"]["data"].is_null(), "{body}");
    assert!(
        body["data"]["metadata"]["deletion_time"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    let (code, body) = send(&app, "GET", "/v1/secret/metadata/?list=true", "").await;
    assert_eq!(
        (code, body["data"]["keys"].clone()),
        (200, serde_json::json!(["app/"]))
    );
    let (code, _) = send(&app, "GET", "/v1/secret/metadata/none/?list=true", "").await;
    assert_eq!(code, 404);
    // An engine of the other type, and the native tree, are not the facade's.
    let (code, _) = send(&app, "POST", "/v1/secret/encrypt/k", "{}").await;
    assert_eq!(code, 404);
    let (code, body) = send(&app, "GET", "/v1/auth/token/lookup-self", "").await;
    assert_eq!(
        (code, body["data"]["display_name"].clone()),
        (200, "admin".into())
    );
    let (code, _) = send(&app, "PUT", "/v1/sys/seal", "").await;
    assert_eq!(code, 204);
    let (code, body) = send(&app, "GET", "/v1/sys/health", "").await;
    assert_eq!((code, body["sealed"].clone()), (503, Value::Bool(true)));
    assert_eq!(
        send(&app, "GET", "/v1/secret/data/app/db", "").await,
        (503, sealed)
    );
}

#[test]
fn durations_are_answered_in_gos_form() {
    for (secs, text) in [
        (0, "0s"),
        (45, "45s"),
        (90, "1m30s"),
        (3600, "1h0m0s"),
        (90_061, "25h1m1s"),
    ] {
        assert_eq!(super::go_duration(secs), text);
    }
}

proptest::proptest! {
    /// What the facade answers it also reads back: Go's form round-trips.
    #[test]
    fn answered_durations_read_back(secs in 0u64..=(10 * 365 * 86_400)) {
        let text = super::go_duration(secs);
        let back = super::decode::duration_secs("d", &Value::from(text.clone()));
        proptest::prop_assert_eq!(back.ok(), Some(secs), "{}", text);
    }
}
