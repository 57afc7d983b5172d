//! SSO end to end: a standard OIDC relying party (Authlib) completes the
//! code + PKCE flow against a running MCIAS and verifies the id_token (RS256
//! and EdDSA); the refusals are checked with curl holding the browser cookie.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use super::Controlplane;

pub(super) const REDIRECT: &str = "http://127.0.0.1:9/cb";
/// RFC 7636 appendix B.
pub(super) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// curl without following redirects: (status, Location, body).
fn fetch(args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{redirect_url}",
        ])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let (code, loc) = tail.split_once(' ').unwrap_or((tail, ""));
    (code.parse().unwrap_or(0), loc.to_owned(), body.to_owned())
}

pub(super) fn param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.replace("%20", " ").replace("%2D", "-"))
    })
}

/// The relying party script, run with Debian's Python (python3-authlib).
fn rp(cp: &Controlplane, client: &str, secret: &str, user: &str, pw: &str, method: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc/rp.py");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .args([&cp.rest, &cp.ca, client, secret, REDIRECT, user, pw, method])
        .output()
        .expect("python3 (scripts/test installs python3-authlib)");
    assert!(
        out.status.success(),
        "relying party failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("rp json")
}

pub(super) fn create_client(cp: &Controlplane, admin: &str, body: Value) -> String {
    let (code, c) = cp.call("POST", "/v1/sso/clients", Some(admin), Some(body));
    assert_eq!(code, 201, "{c}");
    c["client_secret"].as_str().expect("secret").to_owned()
}

/// Signs in through the UI login form; the cookie lands in `jar`.
pub(super) fn browser_login(cp: &Controlplane, jar: &str, user: &str, pw: &str) {
    let token = super::login_form_token(cp, jar);
    let (code, loc, body) = fetch(&[
        "--cacert",
        &cp.ca,
        "-c",
        jar,
        "-b",
        jar,
        "--data-urlencode",
        &format!("csrf={token}"),
        "--data-urlencode",
        &format!("username={user}"),
        "--data-urlencode",
        &format!("password={pw}"),
        "--data-urlencode",
        "return_to=/ui/",
        &format!("{}/ui/login", cp.rest),
    ]);
    assert_eq!(code, 303, "{body}");
    assert!(loc.ends_with("/ui/"), "{loc}");
}

pub(super) fn authorize(cp: &Controlplane, jar: &str, query: &str) -> (u16, String, String) {
    fetch(&[
        "--cacert",
        &cp.ca,
        "-b",
        jar,
        &format!("{}/oauth2/authorize?{query}", cp.rest),
    ])
}

pub(super) fn good_query(client: &str) -> String {
    format!(
        "response_type=code&client_id={client}&redirect_uri={}&scope=openid&state=st8&nonce=n1&code_challenge={CHALLENGE}&code_challenge_method=S256",
        sso_pct(REDIRECT)
    )
}

fn sso_pct(s: &str) -> String {
    s.replace(':', "%3A").replace('/', "%2F")
}

pub(super) fn exchange(
    cp: &Controlplane,
    client: &str,
    secret: &str,
    code: &str,
    verifier: &str,
) -> (u16, Value) {
    let (status, _, body) = fetch(&[
        "--cacert",
        &cp.ca,
        "-u",
        &format!("{client}:{secret}"),
        "--data-urlencode",
        "grant_type=authorization_code",
        "--data-urlencode",
        &format!("code={code}"),
        "--data-urlencode",
        &format!("redirect_uri={REDIRECT}"),
        "--data-urlencode",
        &format!("code_verifier={verifier}"),
        &format!("{}/oauth2/token", cp.rest),
    ]);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn userinfo(cp: &Controlplane, token: &str) -> u16 {
    fetch(&[
        "--cacert",
        &cp.ca,
        "-H",
        &format!("authorization: Bearer {token}"),
        &format!("{}/oauth2/userinfo", cp.rest),
    ])
    .0
}

#[test]
fn oidc_code_flow_with_a_standard_relying_party_and_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(
        dir.path(),
        "sso_code_ttl = \"2s\"\nrequests_per_minute_per_ip = 10000\nfailures_per_minute_per_ip = 1000\n",
    );
    let admin = cp.token("admin", &cp.password);
    let pw = "alice's long password";
    cp.create_user(&admin, "alice", pw);
    // Registration validates: plain http only for loopback, no fragments.
    for bad in ["http://app.example.net/cb", "https://app.example.net/cb#x"] {
        let (code, body) = cp.call(
            "POST",
            "/v1/sso/clients",
            Some(&admin),
            Some(json!({"client_id": "bad", "redirect_uris": [bad]})),
        );
        assert_eq!(code, 400, "{bad}: {body}");
    }
    let rs = create_client(
        &cp,
        &admin,
        json!({"client_id": "app1", "name": "App one", "redirect_uris": [REDIRECT], "tags": ["sso"]}),
    );
    let ed = create_client(
        &cp,
        &admin,
        json!({"client_id": "app2", "redirect_uris": [REDIRECT], "id_token_signed_response_alg": "EdDSA"}),
    );
    let (code, list) = cp.call("GET", "/v1/sso/clients", Some(&admin), None);
    assert_eq!(code, 200);
    assert_eq!(list["clients"].as_array().map(Vec::len), Some(2));
    assert!(
        !list.to_string().contains("secret"),
        "secrets never leave: {list}"
    );

    // The relying party, RS256 with client_secret_basic, EdDSA with client_secret_post.
    let started = Instant::now();
    let a = rp(&cp, "app1", &rs, "alice", pw, "client_secret_basic");
    let flow = started.elapsed();
    assert_eq!(a["alg"], "RS256", "{a}");
    assert_eq!(a["preferred_username"], "alice");
    assert_eq!(a["nonce_ok"], true);
    assert_eq!(a["userinfo"]["preferred_username"], "alice");
    let b = rp(&cp, "app2", &ed, "alice", pw, "client_secret_post");
    assert_eq!(b["alg"], "EdDSA", "{b}");
    assert_ne!(a["kid"], b["kid"]);
    // The SSO access token is for the client, not for MCIAS's own API.
    let (code, _) = cp.call("GET", "/v1/iam/whoami", a["access_token"].as_str(), None);
    assert_eq!(code, 401);
    eprintln!(
        "full OIDC flow (discovery, login, code, token, JWKS, userinfo) via Authlib: {flow:?}"
    );

    // Rotation: new kids of both kinds sign, the old ones stay published.
    let (code, _) = cp.call("POST", "/v1/iam/keys/rotate", Some(&admin), None);
    assert_eq!(code, 200);
    let (_, jwks) = cp.call("GET", "/v1/auth/jwks", None, None);
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(4), "{jwks}");
    let c = rp(&cp, "app1", &rs, "alice", pw, "client_secret_basic");
    assert_eq!(c["alg"], "RS256");
    assert_ne!(c["kid"], a["kid"], "the new RSA key signs after rotation");

    // Arriving from another site without the (SameSite=Strict) cookie: a
    // same-origin reload instead of the login form.
    let url = format!("{}/oauth2/authorize?{}", cp.rest, good_query("app1"));
    let (code, loc, body) = fetch(&["--cacert", &cp.ca, "-H", "sec-fetch-site: cross-site", &url]);
    assert!(
        code == 200 && loc.is_empty() && body.contains("http-equiv=\"refresh\""),
        "{body}"
    );

    let jar = dir.path().join("jar").display().to_string();
    browser_login(&cp, &jar, "alice", pw);

    // Unknown client or unregistered redirect_uri: an error page, no redirect.
    let (code, loc, _) = authorize(&cp, &jar, &good_query("app1").replace("9%2Fcb", "9%2Fevil"));
    assert_eq!((code, loc.as_str()), (400, ""));
    let (code, loc, _) = authorize(&cp, &jar, &good_query("nope"));
    assert_eq!((code, loc.as_str()), (400, ""));
    // No PKCE, or plain PKCE: refused back to the client.
    for q in [
        good_query("app1").replace(
            &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
            "",
        ),
        good_query("app1").replace("S256", "plain"),
    ] {
        let (code, loc, _) = authorize(&cp, &jar, &q);
        assert_eq!(code, 303);
        assert_eq!(
            param(&loc, "error").as_deref(),
            Some("invalid_request"),
            "{loc}"
        );
        assert_eq!(param(&loc, "state").as_deref(), Some("st8"));
    }

    // A code works once, with the right secret and verifier; a replay is
    // refused and revokes what the code gave.
    let (code, loc, _) = authorize(&cp, &jar, &good_query("app1"));
    assert_eq!(code, 303, "{loc}");
    let c1 = param(&loc, "code").expect("code");
    let (status, body) = exchange(&cp, "app1", "wrong secret", &c1, VERIFIER);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = exchange(&cp, "app1", &rs, &c1, VERIFIER);
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().expect("access").to_owned();
    assert_eq!(userinfo(&cp, &access), 200);
    let (status, body) = exchange(&cp, "app1", &rs, &c1, VERIFIER);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        userinfo(&cp, &access),
        401,
        "a replayed code revokes its token"
    );

    // A wrong verifier, and a code used by another client.
    let (_, loc, _) = authorize(&cp, &jar, &good_query("app1"));
    let c2 = param(&loc, "code").expect("code");
    let wrong = "x".repeat(43);
    let (status, body) = exchange(&cp, "app1", &rs, &c2, &wrong);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (_, loc, _) = authorize(&cp, &jar, &good_query("app1"));
    let c3 = param(&loc, "code").expect("code");
    let (status, _) = exchange(&cp, "app2", &ed, &c3, VERIFIER);
    assert_eq!(status, 400);

    // An expired code (sso_code_ttl is 2 s here).
    let (_, loc, _) = authorize(&cp, &jar, &good_query("app1"));
    let c4 = param(&loc, "code").expect("code");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let (status, body) = exchange(&cp, "app1", &rs, &c4, VERIFIER);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Login policy with service = client id, tags = the client's tags.
    let (code, _) = cp.call(
        "POST",
        "/v1/iam/policy",
        Some(&admin),
        Some(json!({"priority": 10, "effect": "deny", "service_names": ["app1"], "required_tags": ["sso"], "actions": ["auth:login"]})),
    );
    assert_eq!(code, 201);
    let (code, loc, _) = authorize(&cp, &jar, &good_query("app1"));
    assert_eq!(code, 303);
    assert_eq!(
        param(&loc, "error").as_deref(),
        Some("access_denied"),
        "{loc}"
    );
    assert_eq!(param(&loc, "state").as_deref(), Some("st8"));
    let (code, loc, _) = authorize(&cp, &jar, &good_query("app2"));
    assert!(
        code == 303 && param(&loc, "code").is_some(),
        "app2 still allowed: {loc}"
    );

    // Everything above is in the audit log.
    super::assert_audited(
        &cp,
        &admin,
        "sso",
        &[
            "sso.clients.create ok",
            "sso.authorize ok",
            "sso.authorize denied",
            "sso.token ok",
            "sso.token bad_client",
            "sso.token bad_code",
        ],
    );

    // Update and delete; a deleted client's codes and tokens stop working.
    let (code, body) = cp.call(
        "PUT",
        "/v1/sso/clients/app2",
        Some(&admin),
        Some(json!({"redirect_uris": [REDIRECT], "enabled": false})),
    );
    assert_eq!(
        (code, body["enabled"].as_bool()),
        (200, Some(false)),
        "{body}"
    );
    let (code, _, _) = authorize(&cp, &jar, &good_query("app2"));
    assert_eq!(code, 400, "a disabled client is refused");
    let (code, _) = cp.call("DELETE", "/v1/sso/clients/app2", Some(&admin), None);
    assert_eq!(code, 204);
    let (code, _) = cp.call("GET", "/v1/sso/clients/app2", Some(&admin), None);
    assert_eq!(code, 404);
}
