//! MCIAS end to end: `mcd controlplane` with curl (REST and gRPC over
//! HTTP/2) and mcctl, on 127.0.0.1.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::free_port;
use crate::support::curl;

mod mcctl;
pub(crate) mod passkey;
mod security;
mod sso;
mod ui;

pub(crate) struct Controlplane {
    child: Child,
    pub(crate) rest: String,
    pub(crate) grpc: String,
    pub(crate) ca: String,
    pub(crate) password: String,
}

impl Controlplane {
    pub(crate) fn start(dir: &Path, mcias: &str) -> Self {
        Self::start_with(dir, mcias, "", Stdio::inherit())
    }

    /// [`Self::start`] with more `[server]` keys and the process's stderr.
    pub(crate) fn start_with(dir: &Path, mcias: &str, server: &str, stderr: Stdio) -> Self {
        let ca = mc_service::tls::DevCa::load_or_create(dir).expect("ca");
        let tls = ca
            .issue(dir, "cp", &["localhost", "127.0.0.1"])
            .expect("cert");
        let (rest, grpc) = (free_port(), free_port());
        let d = dir.display();
        let config = dir.join("controlplane.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{d}\"\n[server]\nrest = \"127.0.0.1:{rest}\"\ngrpc = \"127.0.0.1:{grpc}\"\nadmin_socket = \"{d}/cp.sock\"\ndrain = \"1s\"\n{server}\n\
                 [tls]\ncert = \"{}\"\nkey = \"{}\"\n[log]\nlevel = \"warn\"\n[mcias]\n{mcias}",
                tls.cert.display(),
                tls.key.display()
            ),
        )
        .expect("config");
        let child = Command::new(crate::support::mcd())
            .args(["controlplane", "--config"])
            .arg(&config)
            .stdin(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn");
        let mut me = Self {
            child,
            rest: format!("https://127.0.0.1:{rest}"),
            grpc: format!("https://127.0.0.1:{grpc}"),
            ca: ca.cert_path.display().to_string(),
            password: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while curl(&["--cacert", &me.ca, &format!("{}/healthz", me.rest)]).0 != 200 {
            assert!(Instant::now() < deadline, "controlplane never became ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        let creds: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("mcias/bootstrap.json")).expect("bootstrap"),
        )
        .expect("json");
        me.password = creds["password"].as_str().expect("password").to_owned();
        me
    }

    /// A REST call; `token` as bearer, `body` as JSON.
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        crate::support::rest_call(&self.rest, &self.ca, method, path, token, body)
    }

    fn login(&self, user: &str, password: &str, service: Option<&str>) -> (u16, serde_json::Value) {
        let mut b = serde_json::json!({"username": user, "password": password});
        if let Some(s) = service {
            b["service_name"] = s.into();
        }
        self.call("POST", "/v1/auth/login", None, Some(b))
    }

    /// A password login from another loopback source address (`127.0.0.2`…).
    fn login_from(&self, source: &str, user: &str, password: &str) -> (u16, serde_json::Value) {
        let url = format!("{}/v1/auth/login", self.rest);
        let body = serde_json::json!({"username": user, "password": password}).to_string();
        let (code, text) = curl(&[
            "--interface",
            source,
            "--cacert",
            &self.ca,
            "-H",
            "content-type: application/json",
            "--data",
            &body,
            &url,
        ]);
        (
            code,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Creates a human account with the `user` role (as `admin`).
    pub(crate) fn create_user(&self, admin: &str, user: &str, password: &str) {
        let (code, body) = self.call(
            "POST",
            "/v1/iam/accounts",
            Some(admin),
            Some(serde_json::json!({"username": user, "password": password, "roles": ["user"]})),
        );
        assert_eq!(code, 201, "{body}");
    }

    pub(crate) fn token(&self, user: &str, password: &str) -> String {
        let (code, body) = self.login(user, password, None);
        assert_eq!(code, 200, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// A gRPC call without a message body of interest; returns `grpc-status`.
    pub(crate) fn grpc_status(&self, path: &str, token: Option<&str>) -> String {
        let url = format!("{}{path}", self.grpc);
        // A file of this call's own: a shared path raced with parallel tests
        // (a truncated frame read as "Missing request message").
        let frame = tempfile::NamedTempFile::new().expect("frame file");
        std::fs::write(frame.path(), [0_u8; 5]).expect("frame");
        let data = format!("@{}", frame.path().display());
        let auth = token.map(|t| format!("authorization: Bearer {t}"));
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "--http2",
            "--cacert",
            &self.ca,
            "-X",
            "POST",
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
        ])
        .args([
            "--data-binary",
            &data,
            "-o",
            "/dev/null",
            "-w",
            "%header{grpc-status}|%header{grpc-message}",
        ]);
        if let Some(a) = &auth {
            cmd.args(["-H", a]);
        }
        let out = cmd.arg(&url).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Controlplane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails unless each "action result" of `wants` is in the audit log.
fn assert_audited(cp: &Controlplane, admin: &str, action: &str, wants: &[&str]) {
    let seen = audit_seen(cp, admin, action);
    for want in wants {
        assert!(
            seen.iter().any(|s| s == want),
            "audit lacks {want}: {seen:?}"
        );
    }
}

/// The audit log as "action result" lines (newest first).
fn audit_seen(cp: &Controlplane, admin: &str, action: &str) -> Vec<String> {
    let (_, audit) = cp.call(
        "GET",
        &format!("/v1/iam/audit?limit=1000&action={action}"),
        Some(admin),
        None,
    );
    audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap_or(""),
                e["result"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Opens the UI login page with cookie jar `jar` (which keeps the
/// sign-in cookie) and returns the form's token (`csrf`).
fn login_form_token(cp: &Controlplane, jar: &str) -> String {
    let (code, html) = curl(&[
        "--cacert",
        &cp.ca,
        "-c",
        jar,
        "-b",
        jar,
        &format!("{}/ui/login", cp.rest),
    ]);
    assert_eq!(code, 200, "{html}");
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the login form has a token")
        .to_owned()
}

pub(crate) fn jwt_kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().expect("header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("b64");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    v["kid"].as_str().expect("kid").to_owned()
}

#[test]
fn login_policy_lockout_revocation_rotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(
        dir.path(),
        "lockout_after = 3\nlockout = \"2s\"\nrequests_per_minute_per_ip = 1000\nfailures_per_minute_per_ip = 1000\n",
    );
    let admin = cp.token("admin", &cp.password);
    let (code, me) = cp.call("GET", "/v1/iam/whoami", Some(&admin), None);
    assert_eq!((code, me["roles"][0].as_str()), (200, Some("admin")));

    // 401 for bad credentials, with the same message whether the user exists or not.
    let (c1, b1) = cp.login("admin", "not the password", None);
    let (c2, b2) = cp.login("nobody", "not the password", None);
    assert_eq!((c1, c2), (401, 401));
    assert_eq!(b1, b2);

    // Accounts: bad input refused with the field named; duplicates conflict.
    let (code, body) = cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(serde_json::json!({"username": "carol", "password": "short"})),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("password")
    );
    let carol_pw = "carol's long password";
    let (code, carol) = cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(serde_json::json!({"username": "carol", "password": carol_pw, "roles": ["user"]})),
    );
    assert_eq!(code, 201, "{carol}");
    let (code, _) = cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(serde_json::json!({"username": "carol", "password": carol_pw})),
    );
    assert_eq!(code, 409);
    let (code, _) = cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(serde_json::json!({"username": "bad name!", "password": carol_pw})),
    );
    assert_eq!(code, 400);
    let (code, _) = cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(serde_json::json!({"username": "ci", "type": "system", "roles": ["admin"]})),
    );
    assert_eq!(code, 400, "system accounts carry no roles");

    // A non-admin is refused admin methods (403), not asked to log in (401).
    let carol_token = cp.token("carol", carol_pw);
    assert_eq!(
        cp.call("GET", "/v1/iam/accounts", Some(&carol_token), None)
            .0,
        403
    );
    assert_eq!(cp.call("GET", "/v1/iam/accounts", None, None).0, 401);

    // Policy: a deny for users logging in to "mcr" is 403, distinct from 401; explain names the rule.
    let (code, rule) = cp.call(
        "POST",
        "/v1/iam/policy",
        Some(&admin),
        Some(serde_json::json!({"priority": 10, "effect": "deny", "roles": ["user"], "service_names": ["mcr"], "actions": ["auth:login"]})),
    );
    assert_eq!(code, 201, "{rule}");
    assert_eq!(cp.login("carol", carol_pw, Some("mcr")).0, 403);
    assert_eq!(cp.login("carol", carol_pw, Some("metacrypt")).0, 200);
    let (_, d) = cp.call(
        "POST",
        "/v1/iam/policy/explain",
        Some(&admin),
        Some(serde_json::json!({"account": "carol", "service_name": "mcr"})),
    );
    assert_eq!(
        (d["effect"].as_str(), d["rule_id"].as_str()),
        (Some("deny"), rule["id"].as_str())
    );
    // Dry run: a candidate allow at a lower priority does not beat a deny.
    let (_, d) = cp.call(
        "POST",
        "/v1/iam/policy/explain",
        Some(&admin),
        Some(serde_json::json!({"account": "carol", "service_name": "mcr", "candidate": {"priority": 1, "effect": "allow"}})),
    );
    assert_eq!(d["effect"], "deny");

    // Lockout after 3 failures: from an address carol never signed in from,
    // even the right password is refused until it passes, answered like a
    // wrong one (401, not 429: issue 12, item 7a).
    for _ in 0..3 {
        assert_eq!(
            cp.login_from("127.0.0.2", "carol", "wrong password xx").0,
            401
        );
    }
    let (code, locked) = cp.login_from("127.0.0.2", "carol", carol_pw);
    let (_, unknown) = cp.login_from("127.0.0.2", "nobody", carol_pw);
    assert_eq!((code, &locked), (401, &unknown));
    // The lock lasts 2 s (whole seconds): past it, the right password works again.
    std::thread::sleep(Duration::from_millis(2300));
    assert_eq!(
        cp.login_from("127.0.0.2", "carol", carol_pw).0,
        200,
        "admitted again after the lock"
    );

    // Revocation: logout and admin revoke take effect at once on MCIAS.
    let t = cp.token("carol", carol_pw);
    assert_eq!(cp.call("POST", "/v1/auth/logout", Some(&t), None).0, 204);
    assert_eq!(cp.call("GET", "/v1/iam/whoami", Some(&t), None).0, 401);
    let t = cp.token("carol", carol_pw);
    let (_, v) = cp.call(
        "POST",
        "/v1/auth/validate",
        None,
        Some(serde_json::json!({"token": t})),
    );
    let jti = v["jti"].as_str().expect("jti").to_owned();
    assert_eq!(
        cp.call(
            "DELETE",
            &format!("/v1/iam/tokens/{jti}"),
            Some(&admin),
            None
        )
        .0,
        200
    );
    let (_, v) = cp.call(
        "POST",
        "/v1/auth/validate",
        None,
        Some(serde_json::json!({"token": t})),
    );
    assert_eq!(v["valid"], false);
    // Disabling an account invalidates its tokens; re-enabling does not revive them.
    let t = cp.token("carol", carol_pw);
    let carol_id = carol["id"].as_str().expect("id");
    assert_eq!(
        cp.call(
            "PATCH",
            &format!("/v1/iam/accounts/{carol_id}"),
            Some(&admin),
            Some(serde_json::json!({"status": "disabled"}))
        )
        .0,
        200
    );
    assert_eq!(cp.call("GET", "/v1/iam/whoami", Some(&t), None).0, 401);
    assert_eq!(cp.login("carol", carol_pw, None).0, 403, "disabled");
    cp.call(
        "PATCH",
        &format!("/v1/iam/accounts/{carol_id}"),
        Some(&admin),
        Some(serde_json::json!({"status": "active"})),
    );
    assert_eq!(cp.call("GET", "/v1/iam/whoami", Some(&t), None).0, 401);
    // The last admin cannot lock themselves out.
    let admin_id = me["account_id"].as_str().expect("id");
    assert_eq!(
        cp.call(
            "PUT",
            &format!("/v1/iam/accounts/{admin_id}/roles"),
            Some(&admin),
            Some(serde_json::json!({"roles": ["user"]}))
        )
        .0,
        403
    );

    // Key rotation: old tokens keep working, new ones use the new key, JWKS has both.
    let before = jwt_kid(&admin);
    assert_eq!(
        cp.call("POST", "/v1/iam/keys/rotate", Some(&admin), None).0,
        200
    );
    assert_eq!(cp.call("GET", "/v1/iam/whoami", Some(&admin), None).0, 200);
    let fresh = cp.token("admin", &cp.password);
    assert_ne!(jwt_kid(&fresh), before);
    let (_, jwks) = cp.call("GET", "/v1/auth/jwks", None, None);
    let count = |kty: &str| {
        jwks["keys"]
            .as_array()
            .map(|k| k.iter().filter(|k| k["kty"] == kty).count())
    };
    // Ed25519 token keys and the RSA id_token keys both rotate.
    assert_eq!((count("OKP"), count("RSA")), (Some(2), Some(2)), "{jwks}");

    // System tokens: issued by an admin without a password, listable and revocable.
    let (code, _) = cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(serde_json::json!({"username": "ci", "type": "system"})),
    );
    assert_eq!(code, 201);
    let (code, st) = cp.call(
        "POST",
        "/v1/iam/tokens",
        Some(&fresh),
        Some(
            serde_json::json!({"account_id": "ci", "ttl_seconds": 3600, "description": "pipeline"}),
        ),
    );
    assert_eq!(code, 201, "{st}");
    let ci = st["token"].as_str().expect("token");
    assert_eq!(
        cp.call("GET", "/v1/iam/whoami", Some(ci), None).1["type"],
        "system"
    );
    assert_eq!(
        cp.login("ci", "", None).0,
        401,
        "system accounts cannot log in with a password"
    );

    // The audit log saw the decisions.
    let (_, audit) = cp.call(
        "GET",
        "/v1/iam/audit?action=auth.login&limit=500",
        Some(&fresh),
        None,
    );
    let results: Vec<_> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["result"].as_str())
        .collect();
    for r in ["ok", "bad_credentials", "denied", "locked", "disabled"] {
        assert!(results.contains(&r), "audit lacks {r}: {results:?}");
    }
}

#[test]
fn every_route_and_rpc_refuses_anonymous_callers_unless_public() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "");
    let admin = cp.token("admin", &cp.password);
    let pw = "a user's long password";
    cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(serde_json::json!({"username": "user1", "password": pw, "roles": ["user"]})),
    );
    let user = cp.token("user1", pw);
    let map = mc_mcias::methods::map();
    let mut checked = 0;
    for (key, req) in map.entries() {
        if let Some(path) = key.strip_prefix('/').map(|_| key) {
            // gRPC: anonymous → UNAUTHENTICATED (16); admin-only with a user token → PERMISSION_DENIED (7).
            let anon = cp.grpc_status(path, None);
            match req {
                mc_service::auth::Requirement::Public => assert!(
                    !anon.contains("missing bearer token"),
                    "{path} is public: {anon}"
                ),
                _ => assert!(
                    anon.starts_with("16|"),
                    "{path} without credentials: {anon}"
                ),
            }
            if req == mc_service::auth::Requirement::Admin {
                assert!(
                    cp.grpc_status(path, Some(&user)).starts_with("7|"),
                    "{path} with a user token"
                );
            }
        } else {
            let (method, path) = key.split_once(' ').expect("REST key");
            let path = path.replace("{id}", "x").replace("{jti}", "x");
            let (code, body) = cp.call(method, &path, None, None);
            let ui_page = path.starts_with("/ui/")
                && !path.starts_with("/ui/login")
                && !path.starts_with("/ui/assets/");
            match req {
                // The token endpoint and userinfo authenticate by protocol
                // (client secret, SSO access token) and say so with 401.
                mc_service::auth::Requirement::Public
                    if path.starts_with("/oauth2/") && code == 401 =>
                {
                    assert!(body["error"].is_string(), "{key}: {body}");
                }
                // UI pages: the session is a cookie; without it, the login page.
                mc_service::auth::Requirement::Public if ui_page => {
                    assert_eq!(code, 303, "{key} without a session goes to the login page");
                    let cookie = format!("cookie: mc_session={user}");
                    let url = format!("{}{path}", cp.rest);
                    let (with_user, _) =
                        curl(&["--cacert", &cp.ca, "-X", method, "-H", &cookie, &url]);
                    if path.starts_with("/ui/admin") {
                        assert_eq!(with_user, 403, "{key} with a user session");
                    } else if method == "POST" {
                        assert_eq!(with_user, 403, "{key} without a CSRF token");
                    }
                }
                mc_service::auth::Requirement::Public => assert_ne!(code, 401, "{key} is public"),
                _ => assert_eq!(code, 401, "{key} without credentials"),
            }
            if req == mc_service::auth::Requirement::Admin {
                assert_eq!(
                    cp.call(method, &path, Some(&user), None).0,
                    403,
                    "{key} with a user token"
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 60, "{checked} entries");
    // A route the map does not know is refused to everyone, admin included.
    let (code, _) = cp.call("GET", "/v1/iam/nonexistent", Some(&admin), None);
    assert_eq!(code, 404);
    // gRPC health is public and answers.
    assert!(
        cp.grpc_status("/grpc.health.v1.Health/Check", None)
            .starts_with("0|")
    );
}

#[test]
fn login_and_validate_are_rate_limited_per_ip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "requests_per_minute_per_ip = 10\n");
    let mut limited = 0;
    for _ in 0..15 {
        let (code, _) = cp.call(
            "POST",
            "/v1/auth/validate",
            None,
            Some(serde_json::json!({"token": "x"})),
        );
        if code == 429 {
            limited += 1;
        }
    }
    assert_eq!(
        limited, 5,
        "the 11th to 15th requests in a minute are refused"
    );
    assert_eq!(cp.login("admin", &cp.password, None).0, 429);
}

#[test]
fn mcctl_drives_mcias_with_a_saved_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "");
    let endpoints = dir.path().join("endpoints.json");
    std::fs::write(
        &endpoints,
        serde_json::json!({"controlplane": {"grpc": cp.grpc, "rest": cp.rest}, "ca_cert": cp.ca})
            .to_string(),
    )
    .expect("endpoints");
    let mcctl = |args: &[&str], stdin: &str| crate::support::run_mcctl(&endpoints, args, stdin);
    let out = mcctl(&["whoami"], "");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("mcctl login"));
    let out = mcctl(
        &["login", "--username", "admin"],
        &format!("{}\n", cp.password),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token_file = dir.path().join("mcctl-token");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&token_file)
            .expect("token")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let out = mcctl(
        &["iam", "accounts", "create", "dave", "--role", "user"],
        "dave's long password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mcctl(&["iam", "accounts", "list"], "");
    assert!(String::from_utf8_lossy(&out.stdout).contains("dave"));
    let out = mcctl(
        &["iam", "accounts", "create", "eve", "--role", "wizard"],
        "eve's long password\n",
    );
    assert!(!out.status.success(), "unknown role refused");
    let out = mcctl(
        &["iam", "policy", "explain", "dave", "--service", "mcr"],
        "",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("ALLOW"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // SSO clients over gRPC.
    let out = mcctl(
        &[
            "iam",
            "sso",
            "create",
            "grafana",
            "--redirect-uri",
            "https://grafana.example.net/login",
            "--tag",
            "ops",
        ],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains("client_secret: "),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mcctl(
        &[
            "iam",
            "sso",
            "update",
            "grafana",
            "--redirect-uri",
            "https://grafana.example.net/cb",
            "--id-token-alg",
            "EdDSA",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mcctl(&["iam", "sso", "list"], "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("grafana")
            && text.contains("EdDSA")
            && text.contains("https://grafana.example.net/cb"),
        "{text}"
    );
    let out = mcctl(
        &[
            "iam",
            "sso",
            "create",
            "bad",
            "--redirect-uri",
            "http://grafana.example.net/cb",
        ],
        "",
    );
    assert!(
        !out.status.success(),
        "plain http to a non-loopback host is refused"
    );
    let out = mcctl(&["iam", "sso", "delete", "grafana"], "");
    assert!(out.status.success());
    let out = mcctl(&["logout"], "");
    assert!(out.status.success());
    assert!(!token_file.exists());
}

/// A TOTP code from oathtool (RFC 6238), `offset` seconds from now.
pub(crate) fn oathtool(secret: &str, offset: i64) -> String {
    let out = Command::new("oathtool")
        .args([
            "--totp",
            "-b",
            secret,
            "--now",
            &format!("{offset:+} seconds"),
        ])
        .output()
        .expect("oathtool (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn totp_enrolment_and_single_use_codes_with_oathtool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "");
    let admin = cp.token("admin", &cp.password);
    let pw = "frank's long password";
    cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(serde_json::json!({"username": "frank", "password": pw, "roles": ["user"]})),
    );
    let frank = cp.token("frank", pw);

    // Enrolment needs the password, then a valid code to take effect.
    let (code, _) = cp.call(
        "POST",
        "/v1/iam/totp/enroll",
        Some(&frank),
        Some(serde_json::json!({"password": "wrong password!!"})),
    );
    assert_eq!(code, 401);
    let (code, e) = cp.call(
        "POST",
        "/v1/iam/totp/enroll",
        Some(&frank),
        Some(serde_json::json!({"password": pw})),
    );
    assert_eq!(code, 200, "{e}");
    let secret = e["secret"].as_str().expect("secret").to_owned();
    assert!(
        e["otpauth_url"]
            .as_str()
            .unwrap_or_default()
            .starts_with("otpauth://totp/Metacircular:frank"),
        "{e}"
    );
    assert_eq!(
        cp.login("frank", pw, None).0,
        200,
        "not required before confirmation"
    );
    assert_eq!(
        cp.call(
            "POST",
            "/v1/iam/totp/confirm",
            Some(&frank),
            Some(serde_json::json!({"code": "000000"}))
        )
        .0,
        400
    );
    let now_code = oathtool(&secret, 0);
    assert_eq!(
        cp.call(
            "POST",
            "/v1/iam/totp/confirm",
            Some(&frank),
            Some(serde_json::json!({"code": now_code}))
        )
        .0,
        204
    );

    // Now a login needs a code. Two-step: the first reply (401 totp_required)
    // carries a single-use nonce that stands in for the password.
    let first_step = || {
        let (code, body) = cp.login("frank", pw, None);
        assert_eq!(code, 401);
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("totp_required"),
            "{body}"
        );
        body["totp_nonce"].as_str().expect("nonce").to_owned()
    };
    let second_step = |nonce: &str, code: &str| {
        cp.call(
            "POST",
            "/v1/auth/login",
            None,
            Some(serde_json::json!({"username": "frank", "totp_nonce": nonce, "totp_code": code})),
        )
        .0
    };
    let next = oathtool(&secret, 30);
    let nonce = first_step();
    assert_eq!(second_step(&nonce, "123456"), 401, "wrong code");
    assert_eq!(
        second_step(&nonce, &next),
        401,
        "the nonce was spent by the wrong code"
    );
    let nonce = first_step();
    assert_eq!(
        second_step(&nonce, &next),
        200,
        "the next step's code is accepted (±1 step)"
    );
    let nonce = first_step();
    let stolen = serde_json::json!({"username": "admin", "totp_nonce": nonce, "totp_code": next});
    assert_eq!(
        cp.call("POST", "/v1/auth/login", None, Some(stolen)).0,
        401,
        "a nonce is bound to its account"
    );

    // One-step (password and code together): codes are single-use and never go back in time.
    let login_with = |code: &str| {
        cp.call(
            "POST",
            "/v1/auth/login",
            None,
            Some(serde_json::json!({"username": "frank", "password": pw, "totp_code": code})),
        )
    };
    assert_eq!(login_with("123456").0, 401);
    assert_eq!(
        login_with(&next).0,
        401,
        "already used in the two-step login"
    );
    assert_eq!(
        login_with(&now_code).0,
        401,
        "older than the last accepted code"
    );

    // Disabling needs the password (the session from before enrolment is still valid).
    assert_eq!(
        cp.call(
            "POST",
            "/v1/iam/totp/disable",
            Some(&frank),
            Some(serde_json::json!({"password": pw}))
        )
        .0,
        204
    );
    assert_eq!(cp.login("frank", pw, None).0, 200);
}

/// Another service verifies MCIAS tokens offline (JWKS) with a revocation
/// check, cached: a revocation reaches it within the cache TTL (here 1 s).
#[test]
fn a_verifying_service_sees_revocation_within_its_cache_ttl() {
    use mc_service::auth::TokenVerifier;
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "");
    let admin = cp.token("admin", &cp.password);
    cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(serde_json::json!({"username": "svc-mcr", "type": "system"})),
    );
    let (_, st) = cp.call(
        "POST",
        "/v1/iam/tokens",
        Some(&admin),
        Some(serde_json::json!({"account_id": "svc-mcr", "description": "mcr verifier"})),
    );
    let service_token = st["token"].as_str().expect("token").to_owned();
    let user_pw = "gina's long password";
    cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(serde_json::json!({"username": "gina", "password": user_pw, "roles": ["user"]})),
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let ca = std::fs::read(&cp.ca).expect("ca");
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca))
            .domain_name("localhost");
        let channel = tonic::transport::Endpoint::from_shared(cp.grpc.clone())
            .expect("url")
            .tls_config(tls)
            .expect("tls")
            .connect()
            .await
            .expect("connect");
        let remote = mc_service::auth::remote::RemoteVerifier::new(
            channel,
            service_token,
            cp.rest.clone(),
            "metacircular".into(),
        );
        // Login forwarded by the service, with its name: MCIAS policy decides.
        let (token, _) = remote
            .login("gina", user_pw, "", "mcr", &[])
            .await
            .expect("forwarded login");
        let verifier = mc_service::auth::CachedVerifier::new(remote, Duration::from_secs(1), 1000);
        let p = verifier.verify(&token).await.expect("valid");
        assert_eq!(
            (p.username.as_str(), p.roles.as_slice()),
            ("gina", &["user".to_owned()][..])
        );
        assert!(verifier.verify("not.a.token").await.is_err());

        // Revoke at MCIAS: the cached answer stands until the TTL, then the service sees it.
        let (_, v) = cp.call(
            "POST",
            "/v1/auth/validate",
            None,
            Some(serde_json::json!({"token": token})),
        );
        let jti = v["jti"].as_str().expect("jti").to_owned();
        assert_eq!(
            cp.call(
                "DELETE",
                &format!("/v1/iam/tokens/{jti}"),
                Some(&admin),
                None
            )
            .0,
            200
        );
        let revoked_at = Instant::now();
        let mut seen = false;
        while revoked_at.elapsed() < Duration::from_secs(30) {
            if verifier.verify(&token).await == Err(mc_service::auth::AuthError::Revoked) {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(seen, "the revocation never reached the verifying service");
        eprintln!(
            "revocation reached the verifying service after {:?}",
            revoked_at.elapsed()
        );

        // A password change revokes older tokens for remote verifiers too.
        let (token2, _) = verifier_login(&cp, "gina", user_pw);
        let new_pw = "gina's newer long password";
        assert_eq!(
            cp.call(
                "POST",
                "/v1/auth/password",
                Some(&token2),
                Some(serde_json::json!({"old_password": user_pw, "new_password": new_pw}))
            )
            .0,
            204
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(
            verifier.verify(&token2).await,
            Err(mc_service::auth::AuthError::Revoked)
        );
    });
}

fn verifier_login(cp: &Controlplane, user: &str, pw: &str) -> (String, i64) {
    let (code, body) = cp.login(user, pw, None);
    assert_eq!(code, 200, "{body}");
    (
        body["token"].as_str().expect("token").to_owned(),
        body["expires_at"].as_i64().unwrap_or(0),
    )
}

#[test]
fn admin_issued_reset_tokens_recover_an_account_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "");
    let admin = cp.token("admin", &cp.password);
    let old_pw = "hal's forgotten password";
    let (_, hal) = cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(serde_json::json!({"username": "hal", "password": old_pw, "roles": ["user"]})),
    );
    let hal_id = hal["id"].as_str().expect("id");
    let session = cp.token("hal", old_pw);
    let (code, reset) = cp.call(
        "POST",
        &format!("/v1/iam/accounts/{hal_id}/reset-token"),
        Some(&admin),
        Some(serde_json::json!({"ttl_seconds": 600})),
    );
    assert_eq!(code, 201, "{reset}");
    let token = reset["token"].as_str().expect("token").to_owned();
    let redeem = |pw: &str| {
        cp.call(
            "POST",
            "/v1/auth/reset",
            None,
            Some(serde_json::json!({"token": token, "new_password": pw})),
        )
        .0
    };
    assert_eq!(
        redeem("short"),
        400,
        "a weak password is refused and the token survives"
    );
    let new_pw = "hal's brand new password";
    assert_eq!(redeem(new_pw), 204);
    assert_eq!(
        redeem("yet another long password"),
        401,
        "a reset token works once"
    );
    assert_eq!(cp.login("hal", old_pw, None).0, 401);
    assert_eq!(cp.login("hal", new_pw, None).0, 200);
    assert_eq!(
        cp.call("GET", "/v1/iam/whoami", Some(&session), None).0,
        401,
        "older sessions are revoked"
    );
    let bogus = serde_json::json!({"token": "not-a-token", "new_password": new_pw});
    assert_eq!(cp.call("POST", "/v1/auth/reset", None, Some(bogus)).0, 401);
    let (code, _) = cp.call(
        "POST",
        &format!("/v1/iam/accounts/{hal_id}/reset-token"),
        Some(&admin),
        Some(serde_json::json!({"ttl_seconds": 999_999_999})),
    );
    assert_eq!(code, 400, "bounded lifetime");
}
