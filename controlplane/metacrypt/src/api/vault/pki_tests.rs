//! The pki paths of the facade through its router, with the principal the
//! auth layer would insert (admin: the seeded rule allows every path; carol:
//! no rule names her).

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

async fn send(
    app: &axum::Router,
    who: &str,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String, Vec<u8>) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body.to_owned()))
        .expect("request");
    let roles: &[&str] = if who == "admin" { &["admin"] } else { &[] };
    request
        .extensions_mut()
        .insert(crate::testing::principal(who, roles));
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, kind, bytes.to_vec())
}

async fn json(app: &axum::Router, method: &str, path: &str, body: &str) -> (u16, Value) {
    let (code, _, b) = send(app, "admin", method, path, body).await;
    (code, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

fn csr(names: &[&str]) -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut p = rcgen::CertificateParams::new(names).expect("params");
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.serialize_request(&key).expect("csr").pem().expect("pem")
}

#[tokio::test]
async fn vault_pki_paths_run_the_native_calls_in_vaults_shapes() {
    let (_d, m, _) = crate::testing::unsealed().await;
    let app = crate::api::router(m.clone());
    let (code, body) = json(&app, "POST", "/v1/sys/mounts/pki_int", r#"{"type":"pki"}"#).await;
    assert_eq!(code, 204, "{body}");
    let (code, body) = json(
        &app,
        "POST",
        "/v1/pki_int/root/generate/internal",
        r#"{"common_name":"Test Root","key_type":"ec","key_bits":256,"ttl":"87600h"}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let root = body["data"]["certificate"]
        .as_str()
        .expect("cert")
        .to_owned();
    assert_eq!(body["data"]["issuing_ca"], root.as_str());
    assert_eq!(
        body["data"]["serial_number"].as_str().map(|s| s.len()),
        Some(47)
    );
    let (code, body) = json(&app, "POST", "/v1/pki_int/root/generate/exported", "{}").await;
    assert_eq!(code, 400, "{body}");

    // Roles: Vault's fields in and out; LIST.
    let role = json!({"name": "web", "allowed_domains": "example.test,example.org",
        "allow_subdomains": true, "key_type": "ec", "max_ttl": "72h", "ttl": "1h",
        "enforce_hostnames": true, "generate_lease": false});
    let (code, body) = json(&app, "POST", "/v1/pki_int/roles/web", &role.to_string()).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = json(&app, "GET", "/v1/pki_int/roles/web", "").await;
    assert_eq!(code, 200, "{body}");
    let d = &body["data"];
    assert_eq!(d["allowed_domains"], json!(["example.test", "example.org"]));
    assert_eq!(
        (d["key_type"].clone(), d["key_bits"].clone()),
        ("ec".into(), 256.into())
    );
    assert_eq!(
        (d["ttl"].clone(), d["max_ttl"].clone()),
        (3600.into(), 259_200.into())
    );
    assert_eq!(d["client_flag"], true, "Vault's default");
    let (code, body) = json(&app, "GET", "/v1/pki_int/roles?list=true", "").await;
    assert_eq!((code, body["data"]["keys"].clone()), (200, json!(["web"])));
    // A Vault field with a meaning here not honoured: refused by name, nothing written.
    let (code, body) = json(
        &app,
        "POST",
        "/v1/pki_int/roles/other",
        r#"{"allow_any_name":true}"#,
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .is_some_and(|e| e.starts_with("allow_any_name")),
        "{body}"
    );
    let (code, _) = json(&app, "GET", "/v1/pki_int/roles/other", "").await;
    assert_eq!(code, 404);

    // Issue: Vault's response fields.
    let (code, body) = json(
        &app,
        "POST",
        "/v1/pki_int/issue/web",
        r#"{"common_name":"a.example.test","alt_names":"b.example.test","ttl":"30m"}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let d = &body["data"];
    for k in ["certificate", "issuing_ca", "private_key", "serial_number"] {
        assert!(d[k].as_str().is_some_and(|s| !s.is_empty()), "{k}: {body}");
    }
    assert_eq!(d["private_key_type"], "ec");
    assert_eq!(d["ca_chain"], json!([root.as_str()]));
    assert!(d["expiration"].as_i64().is_some(), "{body}");
    assert_eq!(body["lease_id"], "");
    let serial = d["serial_number"].as_str().expect("serial").to_owned();
    let (code, body) = json(
        &app,
        "POST",
        "/v1/pki_int/issue/web",
        r#"{"common_name":"evil.test"}"#,
    )
    .await;
    assert_eq!(code, 400, "outside the role: {body}");

    // Sign on a pki mount is pki's (transit's elsewhere); sign-verbatim uses the CSR's names.
    let (code, body) = json(
        &app,
        "POST",
        "/v1/pki_int/sign/web",
        &json!({"csr": csr(&["c.example.test"]), "common_name": "c.example.test"}).to_string(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(body["data"]["private_key"].is_null(), "{body}");
    let (code, body) = json(
        &app,
        "POST",
        "/v1/pki_int/sign-verbatim/web",
        &json!({"csr": csr(&["d.example.org"])}).to_string(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, _) = json(
        &app,
        "POST",
        "/v1/pki_int/sign-verbatim",
        &json!({"csr": csr(&["d.example.org"])}).to_string(),
    )
    .await;
    assert_eq!(code, 404, "no role named default");

    // Certs: LIST, read by Vault's serial forms, revoke.
    let (code, body) = json(&app, "GET", "/v1/pki_int/certs?list=true", "").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["keys"].as_array().map(Vec::len), Some(3));
    assert!(
        body["data"]["keys"]
            .as_array()
            .is_some_and(|k| k.contains(&json!(serial)))
    );
    let dashed = serial.replace(':', "-");
    let (code, body) = json(&app, "GET", &format!("/v1/pki_int/cert/{dashed}"), "").await;
    assert_eq!(
        (code, body["data"]["revocation_time"].clone()),
        (200, 0.into()),
        "{body}"
    );
    let (code, body) = json(
        &app,
        "POST",
        "/v1/pki_int/revoke",
        &json!({"serial_number": serial}).to_string(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["state"], "revoked");
    let (_, body) = json(&app, "GET", &format!("/v1/pki_int/cert/{serial}"), "").await;
    assert!(
        body["data"]["revocation_time"]
            .as_i64()
            .is_some_and(|t| t > 0),
        "{body}"
    );

    // Public reads: PEM and DER with their types.
    let (code, kind, b) = send(&app, "anyone", "GET", "/v1/pki_int/ca/pem", "").await;
    assert_eq!(
        (code, String::from_utf8_lossy(&b).trim()),
        (200, root.as_str())
    );
    assert!(kind.contains("pem"), "{kind}");
    let (code, kind, b) = send(&app, "anyone", "GET", "/v1/pki_int/ca", "").await;
    assert_eq!((code, kind.as_str()), (200, "application/pkix-cert"));
    assert_eq!(b.first(), Some(&0x30), "DER");
    let (code, _, b) = send(&app, "anyone", "GET", "/v1/pki_int/crl/pem", "").await;
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&b).starts_with("-----BEGIN X509 CRL-----"));
    let (code, body) = json(&app, "POST", "/v1/pki_int/tidy", "{}").await;
    assert_eq!(code, 202, "{body}");
    assert!(body["warnings"][0].is_string(), "{body}");

    // A caller without rules: Vault's 403 on every authenticated pki path,
    // whatever the body; the public reads still answer.
    for (method, path, body) in [
        ("POST", "/v1/pki_int/issue/web", r#"{"bogus":1}"#),
        ("POST", "/v1/pki_int/sign/web", "{}"),
        ("POST", "/v1/pki_int/revoke", "{}"),
        ("GET", "/v1/pki_int/certs?list=true", ""),
        ("GET", "/v1/pki_int/roles/web", ""),
        (
            "POST",
            "/v1/pki_int/roles/web",
            r#"{"allow_any_name":true}"#,
        ),
        ("POST", "/v1/pki_int/root/generate/exported", "{}"),
    ] {
        let (code, _, b) = send(&app, "carol", method, path, body).await;
        assert_eq!(
            (
                code,
                serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null)
            ),
            (403, json!({"errors": ["permission denied"]})),
            "{method} {path}"
        );
    }
    let (code, _, _) = send(&app, "carol", "GET", "/v1/pki_int/ca/pem", "").await;
    assert_eq!(code, 200);
}

#[test]
fn serials_and_chains_take_vaults_forms() {
    assert_eq!(colon("0aff10"), "0a:ff:10");
    assert_eq!(native_serial("0a-ff-10"), "0a:ff:10");
    let c = "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n";
    assert_eq!(pem_blocks(c).len(), 2);
    assert!(pem_blocks(c)[1].contains("\nB\n"));
    assert_eq!(key_types("ec", 384).ok(), Some(vec![KeyType::EcP384]));
    assert!(key_types("ec", 521).is_err());
    assert!(key_types("dsa", 0).is_err());
}

#[test]
fn pki_paths_decode_and_refuse_by_name() {
    let d = |m: &str, op: &str, parts: &[&str], pki: bool| {
        decode(m, op, parts, false, None, b"{}", pki).map(|r| r.is_ok())
    };
    assert_eq!(d("POST", "sign", &["web"], true), Some(true));
    assert_eq!(d("POST", "sign", &["web"], false), None, "transit's sign");
    assert_eq!(d("POST", "issue", &[""], true), None);
    assert_eq!(d("GET", "issue", &["web"], true), None);
    assert_eq!(d("GET", "ca", &["pem"], false), Some(true));
    assert_eq!(
        decode("POST", "revoke", &[], false, None, b"[1]", false).map(|r| r.is_ok()),
        Some(false)
    );
    let refused = |v: Value| match issue_request(v, false) {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    assert_eq!(refused(json!({"format": "der"})), "format: only pem");
    assert_eq!(
        refused(json!({"format": "pem", "private_key_format": "pkcs8"})),
        "ok"
    );
    assert_eq!(
        refused(json!({"uri_sans": "spiffe://x"})),
        "uri_sans: not supported by this facade"
    );
    assert_eq!(
        refused(json!({"frob": 1})),
        "frob: not supported by this facade"
    );
    assert_eq!(refused(json!({"ttl": "1x"})).split(':').next(), Some("ttl"));
}

proptest::proptest! {
    /// Any body, field or value: a request or a refusal naming a field, never a panic.
    #[test]
    fn any_vault_body_is_translated_or_refused_by_name(
        k in "[a-z_]{1,24}",
        text in ".{0,40}",
        n in proptest::prelude::any::<i64>(),
        flag in proptest::prelude::any::<bool>(),
    ) {
        for v in [json!({&k: text}), json!({&k: n}), json!({&k: flag}), json!({&k: [text.clone()]})] {
            for e in [
                issue_request(v.clone(), true).err(),
                issue_request(v.clone(), false).err(),
                verbatim_request(v.clone()).err(),
                role_from_vault(v.clone()).err(),
                root_request("internal", v.clone()).err(),
            ]
            .into_iter()
            .flatten()
            {
                proptest::prop_assert!(matches!(e, CryptError::Invalid(_)), "{e}");
            }
        }
    }
}
