//! Route tests of the UI against a temporary store, with a stand-in token
//! verifier: rendering and escaping, CSRF and cross-site refusal, admin
//! pages, policy's 403, the sealed notice, transit pages without key
//! material, and policy rules created and edited through forms.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use mc_service::auth::{AuthError, Principal, TokenVerifier};
use mc_service::ui::Csrf;
use serde_json::json;
use tower::ServiceExt;

use crate::core::transit::{CreateKey, Dialect};
use crate::core::{Metacrypt, MountInput, UnsealInputBody};
use crate::testing::{PASS, admin, principal};

/// Tokens `admin` and `bob` (no roles); anything else is refused.
struct Tokens;

impl TokenVerifier for Tokens {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthError>> + Send + 'a>> {
        Box::pin(async move {
            match token {
                "admin" => Ok(principal("admin", &["admin"])),
                "bob" => Ok(principal("bob", &[])),
                _ => Err(AuthError::Invalid("unknown".to_owned())),
            }
        })
    }
}

struct Env {
    _dir: tempfile::TempDir,
    m: Arc<Metacrypt>,
    app: Router,
    csrf: Arc<Csrf>,
}

async fn env() -> Env {
    let (dir, m, admin) = crate::testing::unsealed().await;
    let _ = m.ui_verifier.set(Arc::new(Tokens));
    for (name, kind) in [("secret", "kv"), ("transit", "transit"), ("ssh", "ssh")] {
        m.create_mount(
            &admin,
            MountInput {
                name: name.to_owned(),
                kind: kind.to_owned(),
                ..MountInput::default()
            },
        )
        .expect("mount");
    }
    let csrf = Arc::new(Csrf::new().expect("key"));
    let app = super::router_with(m.clone(), csrf.clone());
    Env {
        _dir: dir,
        m,
        app,
        csrf,
    }
}

impl Env {
    async fn send(&self, req: Request<Body>) -> (u16, String, axum::http::HeaderMap) {
        let r = self.app.clone().oneshot(req).await.expect("infallible");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned(), headers)
    }

    async fn get(&self, who: &str, path: &str) -> (u16, String) {
        let req = Request::get(path)
            .header(header::COOKIE, format!("__Host-mc_session={who}"))
            .body(Body::empty())
            .expect("request");
        let (s, b, _) = self.send(req).await;
        (s, b)
    }

    /// A form POST as `who`, with that session's CSRF token unless `csrf` says otherwise.
    async fn post_with(
        &self,
        who: &str,
        path: &str,
        form: &[(&str, &str)],
        csrf: Option<&str>,
    ) -> (u16, String) {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        if let Some(t) = csrf {
            fields.push(("csrf", t));
        }
        let body = serde_urlencoded::to_string(&fields).expect("form");
        let req = Request::post(path)
            .header(header::COOKIE, format!("__Host-mc_session={who}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("request");
        let (s, b, _) = self.send(req).await;
        (s, b)
    }

    async fn post(&self, who: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let token = self.csrf.token(&format!("jti-{who}"));
        self.post_with(who, path, form, Some(&token)).await
    }
}

#[tokio::test]
async fn kv_pages_write_read_and_escape_secret_values() {
    let e = env().await;
    let evil = r#"{"pw":"<script>alert(1)</script>","n":1}"#;
    let (s, body) = e
        .post(
            "admin",
            "/ui/crypt/kv/secret/write",
            &[("path", "app/db"), ("data", evil), ("cas", "0")],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("Saved version 1"), "{body}");
    // A second write from the same (stale) form: the CAS check refuses it.
    let (s, body) = e
        .post(
            "admin",
            "/ui/crypt/kv/secret/write",
            &[("path", "app/db"), ("data", r#"{"a":"b"}"#), ("cas", "0")],
        )
        .await;
    assert_eq!(s, 400, "{body}");

    let (s, body) = e.get("admin", "/ui/crypt/kv/secret").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("/ui/crypt/kv/secret?path=app%2F"), "{body}");
    let req = Request::get("/ui/crypt/kv?mount=secret")
        .header(header::COOKIE, "__Host-mc_session=admin")
        .body(Body::empty())
        .expect("request");
    let (s, _, h) = e.send(req).await;
    assert_eq!(s, 303);
    assert_eq!(h[header::LOCATION], "/ui/crypt/kv/secret");
    let (s, body) = e.get("admin", "/ui/crypt/kv/secret?path=app/").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("db"), "{body}");
    let (s, body) = e.get("admin", "/ui/crypt/kv/secret?path=app/db").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(r#"<td id="current">1</td>"#), "{body}");
    assert!(
        !body.contains("alert"),
        "metadata pages show no value: {body}"
    );

    let req = Request::post("/ui/crypt/kv/secret/read")
        .header(header::COOKIE, "__Host-mc_session=admin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "path=app%2Fdb&version=1&csrf={}",
            e.csrf.token("jti-admin")
        )))
        .expect("request");
    let (s, body, headers) = e.send(req).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{body}"
    );
    assert!(!body.contains("<script>alert"), "escaped: {body}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert!(
        headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("csp")
            .contains("script-src 'self'")
    );

    // Delete, undelete, destroy: the same kv operations as REST.
    let (s, body) = e
        .post(
            "admin",
            "/ui/crypt/kv/secret/delete",
            &[("path", "app/db"), ("versions", "1")],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let read = e.m.kv_read(&admin(), "secret", "app/db", 1).expect("read");
    assert!(read.data.is_none(), "deleted");
    let (s, _) = e
        .post(
            "admin",
            "/ui/crypt/kv/secret/undelete",
            &[("path", "app/db"), ("versions", "1")],
        )
        .await;
    assert_eq!(s, 200);
    let read = e.m.kv_read(&admin(), "secret", "app/db", 1).expect("read");
    assert_eq!(
        read.data.expect("data")["pw"],
        json!("<script>alert(1)</script>")
    );
    let (s, body) = e
        .post(
            "admin",
            "/ui/crypt/kv/secret/write",
            &[("path", "app/x"), ("data", "[1]")],
        )
        .await;
    assert_eq!(s, 400, "not an object: {body}");
}

#[tokio::test]
async fn posts_without_the_sessions_csrf_token_or_from_another_site_are_refused() {
    let e = env().await;
    let form = [("path", "a"), ("data", r#"{"k":"v"}"#)];
    let (s, body) = e
        .post_with("admin", "/ui/crypt/kv/secret/write", &form, None)
        .await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    let bobs = e.csrf.token("jti-bob");
    let (s, _) = e
        .post_with("admin", "/ui/crypt/kv/secret/write", &form, Some(&bobs))
        .await;
    assert_eq!(s, 403, "another session's token");
    let other = Csrf::new().expect("key").token("jti-admin");
    let (s, _) = e
        .post_with("admin", "/ui/crypt/kv/secret/write", &form, Some(&other))
        .await;
    assert_eq!(s, 403, "another UI's (or process's) token");
    let (s, _) = e
        .post_with("admin", "/ui/crypt/admin/seal", &[], None)
        .await;
    assert_eq!(s, 403);
    let req = Request::post("/ui/crypt/admin/seal")
        .header(header::COOKIE, "__Host-mc_session=admin")
        .header("sec-fetch-site", "cross-site")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("csrf={}", e.csrf.token("jti-admin"))))
        .expect("request");
    let (s, _, _) = e.send(req).await;
    assert_eq!(s, 403, "cross-site");
    assert!(
        e.m.kv_read(&admin(), "secret", "a", 0).is_err(),
        "nothing was written"
    );
    assert!(!e.m.status().expect("status").sealed, "nothing was sealed");
}

#[tokio::test]
async fn sessions_admin_pages_policy_and_the_sealed_notice() {
    let e = env().await;
    // No session: to MCIAS's sign-in page, coming back here.
    let req = Request::get("/ui/crypt/kv/secret?path=a")
        .body(Body::empty())
        .expect("request");
    let (s, _, h) = e.send(req).await;
    assert_eq!(s, 303);
    assert_eq!(
        h[header::LOCATION],
        "/ui/login?return_to=%2Fui%2Fcrypt%2Fkv%2Fsecret%3Fpath%3Da"
    );
    let (s, _) = e.get("nobody", "/ui/crypt/").await;
    assert_eq!(s, 303, "a bad token is no session");

    // A user without the admin role: status yes, admin pages no.
    let (s, body) = e.get("bob", "/ui/crypt/").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(r#"<td id="state">unsealed</td>"#), "{body}");
    assert!(!body.contains("Seal now"), "no admin forms: {body}");
    for path in ["/ui/crypt/admin/policy", "/ui/crypt/admin/mounts"] {
        assert_eq!(e.get("bob", path).await.0, 403, "{path}");
    }
    // No rule gives bob the kv paths: the 403 page, from the core's policy.
    let (s, body) = e.get("bob", "/ui/crypt/kv/secret?path=app/db").await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains(r#"id="forbidden""#), "{body}");
    let (s, _) = e
        .post(
            "bob",
            "/ui/crypt/kv/secret/write",
            &[("path", "a"), ("data", r#"{"k":"v"}"#)],
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(e.get("bob", "/ui/crypt/keys/transit").await.0, 403);

    // Sealed: every engine page is the sealed notice; the admin unseals here.
    let (s, body) = e.post("admin", "/ui/crypt/admin/seal", &[]).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(r#"id="unseal""#), "{body}");
    let (s, body) = e.get("admin", "/ui/crypt/kv/secret?path=app/db").await;
    assert_eq!(s, 503, "{body}");
    assert!(body.contains(r#"id="sealed""#), "{body}");
    assert_eq!(e.get("bob", "/ui/crypt/keys/transit").await.0, 503);
    let (s, _) = e
        .post(
            "admin",
            "/ui/crypt/admin/unseal",
            &[("passphrase", "wrong passphrase")],
        )
        .await;
    assert!(s == 403 || s == 400 || s == 401 || s == 429, "refused: {s}");
    assert!(e.m.status().expect("status").sealed);
    e.m.unseal(
        &admin(),
        UnsealInputBody {
            reset: true,
            ..UnsealInputBody::default()
        },
    )
    .await
    .ok();
}

#[tokio::test]
async fn policy_rules_are_created_edited_and_explained_through_forms() {
    let e = env().await;
    let (s, body) = e
        .post(
            "admin",
            "/ui/crypt/admin/policy",
            &[
                ("priority", "50"),
                ("effect", "allow"),
                ("enabled", "true"),
                ("description", "bob <reads>"),
                ("paths", "secret/data/app/*, secret/metadata/app/*"),
                ("capabilities", "read"),
                ("capabilities", "list"),
                ("accounts", "bob"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("bob &lt;reads&gt;"), "escaped: {body}");
    let rules = e.m.list_rules().expect("rules");
    let rule = rules
        .iter()
        .find(|r| r.description == "bob <reads>")
        .expect("created");
    e.m.kv_write(
        &admin(),
        "secret",
        "app/db",
        &crate::core::KvWrite {
            data: serde_json::from_value(json!({"k": "v"})).expect("map"),
            ..Default::default()
        },
    )
    .expect("write");
    assert_eq!(e.get("bob", "/ui/crypt/kv/secret?path=app/db").await.0, 200);

    // Edit: bob loses the rule's paths; the same page now answers 403.
    let (s, body) = e
        .get("admin", &format!("/ui/crypt/admin/policy/{}", rule.id))
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("secret/data/app/*"), "{body}");
    let (s, body) = e
        .post(
            "admin",
            &format!("/ui/crypt/admin/policy/{}", rule.id),
            &[
                ("priority", "50"),
                ("effect", "allow"),
                ("enabled", "true"),
                ("description", "edited"),
                ("paths", "secret/data/other/*"),
                ("capabilities", "read"),
                ("accounts", "bob"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("secret/data/other/*"), "{body}");
    assert_eq!(e.get("bob", "/ui/crypt/kv/secret?path=app/db").await.0, 403);

    let (s, body) = e
        .post(
            "admin",
            "/ui/crypt/admin/explain",
            &[
                ("path", "secret/data/other/x"),
                ("capability", "read"),
                ("username", "bob"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(r#"id="verdict""#), "{body}");
    assert!(body.contains(&rule.id), "names the rule: {body}");

    let (s, _) = e
        .post(
            "admin",
            "/ui/crypt/admin/policy",
            &[("paths", "secret/*"), ("capabilities", "fly")],
        )
        .await;
    assert_eq!(s, 400, "an unknown capability changes nothing");
    let (s, _) = e
        .post(
            "admin",
            &format!("/ui/crypt/admin/policy/{}/delete", rule.id),
            &[],
        )
        .await;
    assert_eq!(s, 200);
    assert!(e.m.get_rule(&rule.id).is_err(), "deleted");
}

#[tokio::test]
async fn transit_key_pages_show_metadata_and_never_key_material() {
    let e = env().await;
    let req: CreateKey = serde_json::from_value(json!({"exportable": true})).expect("req");
    e.m.transit_create_key(&admin(), "transit", "k1", &req)
        .expect("create");
    e.m.transit_rotate_key(&admin(), "transit", "k1")
        .expect("rotate");
    let exported =
        e.m.transit_export_key(
            &admin(),
            "transit",
            "encryption-key",
            "k1",
            None,
            Dialect::Native,
        )
        .expect("export");
    let (s, body) = e.get("admin", "/ui/crypt/keys/transit").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("/ui/crypt/keys/transit/k1"), "{body}");
    let (s, body) = e.get("admin", "/ui/crypt/keys/transit/k1").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(r#"<td id="latest_version">2</td>"#), "{body}");
    assert!(body.contains("aes256-gcm"), "{body}");
    let keys = exported["keys"].as_object().expect("keys");
    assert_eq!(keys.len(), 2);
    for material in keys.values() {
        let m = material.as_str().expect("b64");
        assert!(m.len() > 20);
        assert!(!body.contains(m), "key material on the page");
    }
}

#[tokio::test]
async fn ssh_ca_page_shows_the_public_key_profiles_and_serials_never_the_private_key() {
    let e = env().await;
    let (s, body) = e.get("admin", "/ui/crypt/ssh/ssh").await;
    assert_eq!(s, 409, "no CA yet: {body}");
    let ca =
        e.m.ssh_create_ca(&admin(), "ssh", || Ok(Default::default()))
            .expect("ca");
    e.m.ssh_put_profile(&admin(), "ssh", "ops", || {
        serde_json::from_value(json!({"allowed_principals": ["alice"]}))
            .map_err(|e| crate::error::CryptError::invalid("p", e.to_string()))
    })
    .expect("profile");
    let (s, body) = e.get("admin", "/ui/crypt/ssh").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("/ui/crypt/ssh/ssh"), "{body}");
    let (s, body) = e.get("admin", "/ui/crypt/ssh/ssh").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(&ca.public_key), "{body}");
    assert!(body.contains("<li>ops</li>"), "{body}");
    assert!(body.contains(r#"<td id="next_serial">1</td>"#), "{body}");
    assert!(!body.contains("PRIVATE"), "{body}");
    assert_eq!(e.get("bob", "/ui/crypt/ssh/ssh").await.0, 403);
}

#[tokio::test]
async fn audit_page_filters_rows_for_admins_only() {
    let e = env().await;
    assert_eq!(e.get("bob", "/ui/crypt/admin/audit").await.0, 403);
    let (s, body) = e.get("admin", "/ui/crypt/admin/audit").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(r#"id="events""#), "{body}");
    assert!(body.contains("mount.create"), "{body}");
    // Filtered by action prefix: only those rows.
    let (s, body) = e
        .get(
            "admin",
            "/ui/crypt/admin/audit?action=barrier.init&since=1h",
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains("barrier.init") && !body.contains("mount.create"),
        "{body}"
    );
    // A bad filter is the core's 400, named.
    let (s, body) = e.get("admin", "/ui/crypt/admin/audit?limit=5000").await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("limit: 1 to 1000"), "{body}");
    let (s, body) = e.get("admin", "/ui/crypt/admin/audit?since=soon").await;
    assert_eq!(s, 400, "{body}");
}

#[tokio::test]
async fn slot_forms_change_the_passphrase_and_rekey_with_current_material() {
    let e = env().await;
    assert_eq!(e.get("bob", "/ui/crypt/admin/slots").await.0, 403);
    let (s, body) = e.get("admin", "/ui/crypt/admin/slots").await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains(r#"id="slots""#) && body.contains(r#"id="rekey""#),
        "{body}"
    );
    let new = "a new passphrase for the ui";
    // A wrong current passphrase: refused, nothing changes.
    let (s, body) = e
        .post(
            "admin",
            "/ui/crypt/admin/slots/passphrase",
            &[
                ("passphrase", "not the passphrase"),
                ("new_passphrase", new),
            ],
        )
        .await;
    assert_eq!(s, 403, "{body}");
    let (s, body) = e
        .post(
            "admin",
            "/ui/crypt/admin/slots/passphrase",
            &[("passphrase", PASS), ("new_passphrase", new)],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("Passphrase changed"), "{body}");
    let (s, body) = e
        .post(
            "admin",
            "/ui/crypt/admin/slots/rekey",
            &[("passphrase", new)],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("Rekeyed: root key version 2"), "{body}");
    // The new passphrase still opens after a seal.
    e.m.seal(&admin()).await.expect("seal");
    e.m.unseal(
        &admin(),
        UnsealInputBody {
            passphrase: Some(new.to_owned()),
            ..UnsealInputBody::default()
        },
    )
    .await
    .expect("unseal with the new passphrase");
}

#[tokio::test]
async fn user_page_makes_a_key_encrypts_and_decrypts_for_the_recipient_only() {
    let e = env().await;
    e.m.create_mount(
        &admin(),
        MountInput {
            name: "user".to_owned(),
            kind: "user".to_owned(),
            ..MountInput::default()
        },
    )
    .expect("mount");
    let (s, body) = e.get("admin", "/ui/crypt/user/user").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(r#"id="no-key""#), "{body}");
    let (s, body) = e.post("admin", "/ui/crypt/user/user/init", &[]).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains(r#"id="own-key""#) && !body.contains("private"),
        "{body}"
    );
    let (s, body) = e
        .post(
            "admin",
            "/ui/crypt/user/user/encrypt",
            &[("to", "admin"), ("plaintext", "hello <b>me</b>")],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let ct = body
        .split("mcuser:v1:")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .map(|t| format!("mcuser:v1:{t}"))
        .expect("ciphertext");
    let (s, body) = e
        .post(
            "admin",
            "/ui/crypt/user/user/decrypt",
            &[("ciphertext", &ct)],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains("hello &lt;b&gt;me&lt;/b&gt;"),
        "escaped: {body}"
    );
    let (s, body) = e.post("admin", "/ui/crypt/user/user/rotate", &[]).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(r#"<td id="latest">2</td>"#), "{body}");
    // No rule gives bob the user paths: the 403 page.
    assert_eq!(e.get("bob", "/ui/crypt/user/user").await.0, 403);
}
