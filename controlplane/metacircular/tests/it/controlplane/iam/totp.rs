//! TOTP enrolment and single-use codes, with codes from `oathtool`.

use super::*;

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
