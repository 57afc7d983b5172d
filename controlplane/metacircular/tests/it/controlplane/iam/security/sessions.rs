//! Sessions and credentials under attack (issue 12, MCIAS items 1, 2, 3
//! and 5): store growth by any account holder, second-factor guessing, the
//! password re-check as an oracle, and renewals outliving policy and age.

use std::process::Command;

use serde_json::{Value, json};

use super::super::{Controlplane, oathtool};

/// A REST call whose JSON body goes through a file (bodies larger than a
/// command-line argument may be).
fn post_file(cp: &Controlplane, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), body.to_string()).expect("write body");
    let data = format!("@{}", file.path().display());
    let url = format!("{}{path}", cp.rest);
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .args(["--cacert", &cp.ca, "-X", "POST", &url])
        .args([
            "-H",
            "content-type: application/json",
            "--data-binary",
            &data,
        ]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("authorization: Bearer {t}")]);
    }
    let out = cmd.output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// A gRPC `Login` (fields hand-encoded: 1 username, 2 password, 5
/// service_name); its `grpc-status`.
fn grpc_login(cp: &Controlplane, username: &str, password: &str, service: &str) -> String {
    fn field(out: &mut Vec<u8>, n: u8, v: &str) {
        out.push((n << 3) | 2);
        let mut len = v.len();
        while len >= 0x80 {
            out.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(v.as_bytes());
    }
    let mut msg = Vec::new();
    field(&mut msg, 1, username);
    field(&mut msg, 2, password);
    field(&mut msg, 5, service);
    let mut frame = vec![0_u8];
    frame.extend_from_slice(&u32::try_from(msg.len()).expect("len").to_be_bytes());
    frame.extend_from_slice(&msg);
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), frame).expect("write frame");
    let out = Command::new("curl")
        .args(["-sS", "--http2", "--cacert", &cp.ca, "-X", "POST"])
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .args(["--data-binary", &format!("@{}", file.path().display())])
        .args([
            "-o",
            "/dev/null",
            "-w",
            "%header{grpc-status}|%header{grpc-message}",
        ])
        .arg(format!("{}/mc.iam.v1.Auth/Login", cp.grpc))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn store_size(dir: &std::path::Path) -> u64 {
    std::fs::metadata(dir.join("mcias/mcias.redb"))
        .expect("mcias.redb")
        .len()
}

/// Item 1: a login's service name was stored unbounded, twice per login
/// (token record and audit row). Now 100 logins with every field at its
/// maximum grow the store by a bounded amount, and one over the limit is
/// refused with 400 naming the field.
#[test]
fn maximal_logins_grow_the_store_boundedly_and_oversized_fields_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "requests_per_minute_per_ip = 1000\n");
    let login = |service: &str| {
        json!({
            "username": "admin",
            "password": cp.password,
            "service_name": service,
            "tags": (0..32).map(|i| format!("{i:02}{}", "t".repeat(62))).collect::<Vec<_>>(),
        })
    };
    let max = "s".repeat(128);
    let (code, body) = post_file(&cp, "/v1/auth/login", None, &login(&max));
    assert_eq!(code, 200, "{body}");
    let before = store_size(dir.path());
    for _ in 0..100 {
        let (code, body) = post_file(&cp, "/v1/auth/login", None, &login(&max));
        assert_eq!(code, 200, "{body}");
    }
    let grown = store_size(dir.path()).saturating_sub(before);
    assert!(
        grown < 2 * 1024 * 1024,
        "100 logins grew mcias.redb by {grown} bytes"
    );
    // One byte over, and far over: refused, naming the field.
    for service in ["s".repeat(129), "s".repeat(300_000)] {
        let (code, body) = post_file(&cp, "/v1/auth/login", None, &login(&service));
        assert_eq!(code, 400, "{body}");
        assert!(body.to_string().contains("service_name"), "{body}");
    }
    let (code, body) = post_file(
        &cp,
        "/v1/auth/login",
        None,
        &json!({"username": "u".repeat(300_000), "password": "x"}),
    );
    assert_eq!(code, 400, "{body}");
    // The gRPC twin goes through the same core call: InvalidArgument.
    let status = grpc_login(&cp, "admin", &cp.password, &"s".repeat(129));
    assert!(status.starts_with("3|"), "{status}");
    assert!(status.contains("service_name"), "{status}");
    let status = grpc_login(&cp, "admin", &cp.password, &max);
    assert!(status.starts_with("0|"), "{status}");
    assert!(store_size(dir.path()) < before + 2 * 1024 * 1024);
}

/// `user` (password `pw`) with TOTP enrolled and confirmed; its secret.
fn enrol_totp(cp: &Controlplane, admin: &str, user: &str, pw: &str) -> String {
    cp.create_user(admin, user, pw);
    let token = cp.token(user, pw);
    let (code, e) = cp.call(
        "POST",
        "/v1/iam/totp/enroll",
        Some(&token),
        Some(json!({"password": pw})),
    );
    assert_eq!(code, 200, "{e}");
    let secret = e["secret"].as_str().expect("secret").to_owned();
    let (code, e) = cp.call(
        "POST",
        "/v1/iam/totp/confirm",
        Some(&token),
        Some(json!({"code": oathtool(&secret, 0)})),
    );
    assert_eq!(code, 204, "{e}");
    secret
}

/// A six-digit code no step near now accepts.
fn wrong_code(secret: &str) -> String {
    let valid: Vec<String> = [-60, -30, 0, 30, 60]
        .iter()
        .map(|o| oathtool(secret, *o))
        .collect();
    (0..10)
        .map(|d| d.to_string().repeat(6))
        .find(|c| !valid.contains(c))
        .expect("a wrong code")
}

/// Item 2: with the password known, TOTP codes could be guessed at the
/// per-address rate forever, and each wrong code inflated the password
/// failure counter into a ~17 h lock. Now five wrong codes lock the second
/// step (429, even for the right code) and the password counter is untouched.
#[test]
fn guessing_totp_codes_locks_the_second_step_and_not_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "");
    let admin = cp.token("admin", &cp.password);
    let pw = "gina's long password";
    let secret = enrol_totp(&cp, &admin, "gina", pw);
    let attempt = |code: &str| {
        cp.call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"username": "gina", "password": pw, "totp_code": code})),
        )
    };
    let mut refused_after = None;
    for n in 1..=20 {
        let (code, body) = attempt(&wrong_code(&secret));
        if code == 429 {
            refused_after = Some(n);
            break;
        }
        assert_eq!(code, 401, "{body}");
    }
    assert_eq!(
        refused_after,
        Some(6),
        "five wrong codes lock the second step"
    );
    // Locked: the right code (of the next step, never used) is refused too.
    let (code, body) = attempt(&oathtool(&secret, 30));
    assert_eq!(code, 429, "{body}");
    // The password counter was not inflated: one wrong password is one
    // failure (401), not a lock.
    let (code, body) = cp.login("gina", "gina's wrong password", None);
    assert_eq!(code, 401, "{body}");
    let (_, accounts) = cp.call("GET", "/v1/iam/accounts", Some(&admin), None);
    let gina = accounts["accounts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["username"] == "gina"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(gina["locked_until"], 0, "{gina}");
}

/// Item 3: a session holder could guess the account's password through the
/// re-check of `/v1/auth/password` (and TOTP enrolment, passkey
/// registration…) at full speed, the right guess answering 200. Now wrong
/// re-checks count like failed logins: after five the session is revoked
/// (429), the token no longer validates, and the right password afterwards
/// does not answer 200.
#[test]
fn a_session_holder_guessing_the_password_loses_the_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "");
    let admin = cp.token("admin", &cp.password);
    let pw = "hugo's long password";
    cp.create_user(&admin, "hugo", pw);
    let stolen = cp.token("hugo", pw);
    let guess = |old: &str| {
        cp.call(
            "POST",
            "/v1/auth/password",
            Some(&stolen),
            Some(json!({"old_password": old, "new_password": "attacker's new password"})),
        )
    };
    let mut refused_after = None;
    for n in 1..=30 {
        let (code, body) = guess(&format!("guess number {n}"));
        if code != 401 {
            assert_eq!(code, 429, "{body}");
            refused_after = Some(n);
            break;
        }
    }
    assert_eq!(refused_after, Some(5), "the fifth wrong re-check ends it");
    let (code, body) = cp.call(
        "POST",
        "/v1/auth/validate",
        None,
        Some(json!({"token": stolen})),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["valid"], false, "the session is revoked: {body}");
    // The right password now changes nothing, on any re-checking route.
    let (code, _) = guess(pw);
    assert_ne!(code, 200);
    assert_ne!(code, 204);
    let (code, _) = cp.call(
        "POST",
        "/v1/iam/totp/enroll",
        Some(&stolen),
        Some(json!({"password": pw})),
    );
    assert_ne!(code, 200);
    // And the password is still the owner's (locked for now, like after
    // failed logins, rather than changed).
    let (code, body) = cp.login("hugo", "attacker's new password", None);
    assert_ne!(code, 200, "{body}");
}

/// Item 5: `/v1/auth/renew` issued fresh tokens after a deny rule had
/// blocked the account's logins. Now a renewal is decided like the login
/// (same service): 403.
#[test]
fn renew_after_a_deny_rule_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "");
    let admin = cp.token("admin", &cp.password);
    let pw = "iris's long password";
    cp.create_user(&admin, "iris", pw);
    let (code, body) = cp.login("iris", pw, Some("grafana"));
    assert_eq!(code, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_owned();
    let (code, body) = cp.call("POST", "/v1/auth/renew", Some(&token), None);
    assert_eq!(code, 200, "allowed: renews ({body})");
    let token = body["token"].as_str().expect("token").to_owned();
    let (code, rule) = cp.call(
        "POST",
        "/v1/iam/policy",
        Some(&admin),
        Some(json!({"priority": 10, "effect": "deny", "roles": ["user"], "service_names": ["grafana"], "actions": ["auth:login"]})),
    );
    assert_eq!(code, 201, "{rule}");
    assert_eq!(cp.login("iris", pw, Some("grafana")).0, 403);
    let (code, body) = cp.call("POST", "/v1/auth/renew", Some(&token), None);
    assert_eq!(code, 403, "renew after the deny rule: {body}");
    // The gRPC twin decides the same.
    let status = cp.grpc_status("/mc.iam.v1.Auth/Renew", Some(&token));
    assert!(status.starts_with("7|"), "gRPC PermissionDenied: {status}");
}

/// Item 5: chained renewals had no absolute limit. Now tokens carry the
/// original sign-in time and renewing past `max_session_age` is refused
/// (re-login needed).
#[test]
fn renew_past_the_maximum_session_age_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "max_session_age = \"3s\"\n");
    let token = cp.token("admin", &cp.password);
    let (code, body) = cp.call("POST", "/v1/auth/renew", Some(&token), None);
    assert_eq!(code, 200, "young: renews ({body})");
    let renewed = body["token"].as_str().expect("token").to_owned();
    std::thread::sleep(std::time::Duration::from_secs(4));
    let (code, body) = cp.call("POST", "/v1/auth/renew", Some(&renewed), None);
    assert_eq!(code, 401, "past the maximum age: {body}");
    // A new login starts a new session.
    let fresh = cp.token("admin", &cp.password);
    let (code, body) = cp.call("POST", "/v1/auth/renew", Some(&fresh), None);
    assert_eq!(code, 200, "{body}");
}
