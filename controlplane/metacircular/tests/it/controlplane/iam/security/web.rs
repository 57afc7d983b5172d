//! The web-facing items of the adversarial review (issue 12): each test
//! performs the attack against a running `mcd controlplane` on 127.0.0.1
//! and asserts the refusal.

use std::process::Command;

use serde_json::{Value, json};

use super::super::passkey::Soft;
use super::super::{Controlplane, login_form_token, sso};

const LIMITS: &str = "requests_per_minute_per_ip = 10000\nfailures_per_minute_per_ip = 10000\n";

/// A raw curl exchange that does not follow redirects: (status, headers
/// lowercased as "name: value" lines, body).
fn raw(args: &[&str]) -> (u16, Vec<String>, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D", "-", "-o", "-"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .map_or((text.as_str(), ""), |(h, b)| (h, b));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .map(|l| match l.split_once(':') {
            Some((k, v)) => format!("{}: {}", k.to_ascii_lowercase(), v.trim()),
            None => l.to_owned(),
        })
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    headers.iter().find_map(|h| h.strip_prefix(prefix.as_str()))
}

/// Posts the UI login form with `fields`, as a browser would after
/// opening the login page (its cookie and token), plus `extra` curl args.
fn ui_login_with(
    cp: &Controlplane,
    fields: &[(&str, &str)],
    extra: &[&str],
) -> (u16, Vec<String>, String) {
    let jar = tempfile::NamedTempFile::new().expect("jar");
    let jar = jar.path().display().to_string();
    let token = login_form_token(cp, &jar);
    let mut args: Vec<String> = vec!["--cacert".into(), cp.ca.clone(), "-b".into(), jar];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push("--data-urlencode".into());
    args.push(format!("csrf={token}"));
    for (k, v) in fields {
        args.push("--data-urlencode".into());
        args.push(format!("{k}={v}"));
    }
    args.push(format!("{}/ui/login", cp.rest));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    raw(&refs)
}

fn ui_login(cp: &Controlplane, fields: &[(&str, &str)]) -> (u16, Vec<String>, String) {
    ui_login_with(cp, fields, &[])
}

/// Item 4: after a successful sign-in, `return_to` never leads off the
/// origin, whatever the browser would strip or fold (tab, newline,
/// backslash, their percent-encoded forms, `//`, absolute URLs), and a
/// refused value is a clean redirect to `/ui/`, never a 500.
#[test]
fn open_redirect_after_sign_in_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), LIMITS);
    for evil in [
        "/\t/evil.example",
        "/%09/evil.example",
        "/\n/evil.example",
        "/%0a/evil.example",
        "/\r\n/evil.example",
        "/\\evil.example",
        "/%5cevil.example",
        "/%5C%5Cevil.example",
        "/%2f%2fevil.example",
        "/%2F/evil.example",
        "//evil.example",
        "///evil.example",
        "/..//evil.example",
        "https://evil.example/",
        "https:evil.example",
        "evil.example",
    ] {
        let (code, headers, body) = ui_login(
            &cp,
            &[
                ("username", "admin"),
                ("password", &cp.password),
                ("return_to", evil),
            ],
        );
        assert_eq!(code, 303, "return_to={evil:?}: {body}");
        assert!(
            header(&headers, "set-cookie").is_some(),
            "return_to={evil:?}: signed in"
        );
        assert_eq!(
            header(&headers, "location"),
            Some("/ui/"),
            "return_to={evil:?}"
        );
    }
    // A local path is still followed.
    let (code, headers, _) = ui_login(
        &cp,
        &[
            ("username", "admin"),
            ("password", &cp.password),
            ("return_to", "/ui/admin/audit?x=1"),
        ],
    );
    assert_eq!(
        (code, header(&headers, "location")),
        (303, Some("/ui/admin/audit?x=1"))
    );
}

/// Item 7d: the login form refuses cross-site POSTs (`Origin`,
/// `Sec-Fetch-Site`) and POSTs without the sign-in token; the session
/// cookie is `__Host-` prefixed; the old cookie name still opens a session.
#[test]
fn ui_login_refuses_cross_site_posts_and_sets_a_host_cookie() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), LIMITS);
    let creds = [("username", "admin"), ("password", cp.password.as_str())];
    for attack in [
        vec!["-H", "origin: https://evil.example"],
        vec![
            "-H",
            "origin: https://evil.example",
            "-H",
            "sec-fetch-site: same-origin",
        ],
        vec!["-H", "origin: null"],
        vec!["-H", "origin: null", "-H", "sec-fetch-site: cross-site"],
        vec!["-H", "sec-fetch-site: cross-site"],
        vec!["-H", "sec-fetch-site: same-site"],
    ] {
        let (code, headers, body) = ui_login_with(&cp, &creds, &attack);
        assert_eq!(code, 403, "{attack:?}: {body}");
        assert!(
            !headers.iter().any(|h| h.contains("mc_session=")),
            "{attack:?}: no session"
        );
    }
    // Without the form's token (a forged form): refused, and nothing set.
    let (code, headers, _) = raw(&[
        "--cacert",
        &cp.ca,
        "--data-urlencode",
        "username=admin",
        "--data-urlencode",
        &format!("password={}", cp.password),
        &format!("{}/ui/login", cp.rest),
    ]);
    assert_eq!(code, 403);
    assert!(!headers.iter().any(|h| h.contains("mc_session=")));
    // The browser's own POST: same origin.
    let origin = format!("origin: {}", cp.rest);
    let (code, headers, body) = ui_login_with(
        &cp,
        &creds,
        &["-H", &origin, "-H", "sec-fetch-site: same-origin"],
    );
    assert_eq!(code, 303, "{body}");
    let cookie = headers
        .iter()
        .filter_map(|h| h.strip_prefix("set-cookie: "))
        .find(|c| c.contains("mc_session="))
        .expect("session cookie");
    assert!(cookie.starts_with("__Host-mc_session="), "{cookie}");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.to_ascii_lowercase().contains("domain"), "{cookie}");
    // Transition: a session in the old cookie still opens the UI.
    let token = cp.token("admin", &cp.password);
    let (code, _, _) = raw(&[
        "--cacert",
        &cp.ca,
        "-H",
        &format!("cookie: mc_session={token}"),
        &format!("{}/ui/", cp.rest),
    ]);
    assert_eq!(code, 200);
}

/// Item 7a: a locked account and an unknown one answer alike, and failing
/// on purpose from elsewhere does not lock the sole admin out of the
/// address it signs in from.
#[test]
fn lockout_hides_accounts_and_cannot_lock_the_sole_admin_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(
        dir.path(),
        &format!("lockout_after = 3\nlockout = \"1h\"\n{LIMITS}"),
    );
    // The admin signs in from 127.0.0.1, as usual.
    cp.token("admin", &cp.password);
    for _ in 0..6 {
        assert_eq!(
            cp.login_from("127.0.0.3", "admin", "guessing guessing").0,
            401
        );
    }
    let (c1, locked) = cp.login_from("127.0.0.3", "admin", &cp.password);
    let (c2, unknown) = cp.login_from("127.0.0.3", "no-such-user", &cp.password);
    assert_eq!((c1, &locked), (c2, &unknown), "locked and unknown alike");
    assert_eq!(c1, 401);
    // From where the admin signs in, the lock does not apply.
    let (code, body) = cp.login("admin", &cp.password, None);
    assert_eq!(code, 200, "the sole admin is not locked out: {body}");
}

fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::String(_) => json!("s"),
        Value::Number(_) => json!(0),
        other => other.clone(),
    }
}

/// Items 7b and 7c: `passkey/begin` answers the same shape for an account
/// with a passkey, one without, and none at all (a stable decoy id), and
/// removing one's own passkey needs the password.
#[test]
fn passkey_begin_does_not_reveal_accounts_and_removal_needs_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), LIMITS);
    let admin = cp.token("admin", &cp.password);
    let pw = "alice's long password";
    cp.create_user(&admin, "alice", pw);
    cp.create_user(&admin, "bob", "bob's long password");
    let alice = cp.token("alice", pw);
    let port = cp.rest.rsplit(':').next().expect("port");
    let mut soft = Soft::new(&format!("https://localhost:{port}"));
    let (code, begin) = cp.call(
        "POST",
        "/v1/iam/passkeys/register/begin",
        Some(&alice),
        Some(json!({"password": pw})),
    );
    assert_eq!(code, 200, "{begin}");
    let credential = soft.register(&begin["options"]);
    let (code, key) = cp.call(
        "POST",
        "/v1/iam/passkeys/register/finish",
        Some(&alice),
        Some(json!({"challenge_id": begin["challenge_id"], "credential": credential})),
    );
    assert_eq!(code, 201, "{key}");
    let begin = |user: &str| {
        let (code, b) = cp.call(
            "POST",
            "/v1/auth/passkey/begin",
            None,
            Some(json!({"username": user})),
        );
        assert_eq!(code, 200, "{user}: {b}");
        b
    };
    let real = begin("alice");
    let (nobody, nobody2, bob) = (begin("nobody"), begin("nobody"), begin("bob"));
    for decoy in [&nobody, &bob] {
        assert_eq!(shape(decoy), shape(&real), "{decoy} vs {real}");
    }
    let ids = |b: &Value| b["options"]["publicKey"]["allowCredentials"].clone();
    assert_eq!(ids(&nobody).as_array().map(Vec::len), Some(1), "{nobody}");
    assert_eq!(ids(&nobody), ids(&nobody2), "stable per username");
    assert_ne!(ids(&nobody), ids(&bob));
    // Removing alice's own passkey: the session alone is not enough.
    let id = key["id"].as_str().expect("id");
    let path = format!("/v1/iam/passkeys/{id}");
    for body in [None, Some(json!({"password": "not the password"}))] {
        let (code, b) = cp.call("DELETE", &path, Some(&alice), body);
        assert_eq!(code, 401, "{b}");
    }
    let (code, b) = cp.call("DELETE", &path, Some(&alice), Some(json!({"password": pw})));
    assert_eq!(code, 204, "{b}");
}

/// Item 7e: six concurrent redemptions of one reset token: one succeeds.
#[test]
fn reset_token_redeemed_concurrently_succeeds_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), LIMITS);
    let admin = cp.token("admin", &cp.password);
    cp.create_user(&admin, "hal", "hal's long password");
    let (code, reset) = cp.call(
        "POST",
        "/v1/iam/accounts/hal/reset-token",
        Some(&admin),
        Some(json!({})),
    );
    assert_eq!(code, 201, "{reset}");
    let token = reset["token"].as_str().expect("token").to_owned();
    let codes: Vec<u16> = std::thread::scope(|s| {
        let all: Vec<_> = (0..6)
            .map(|n| {
                let (cp, token) = (&cp, &token);
                s.spawn(move || {
                    cp.call(
                        "POST",
                        "/v1/auth/reset",
                        None,
                        Some(json!({"token": token, "new_password": format!("new password {n}!")})),
                    )
                    .0
                })
            })
            .collect();
        all.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert_eq!(codes.iter().filter(|c| **c == 204).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 204 || *c == 401), "{codes:?}");
}

/// Item 7f: an SSO client cannot take the API's audience, and SSO access
/// tokens do not work on the MCIAS API or for services (validate).
#[test]
fn sso_clients_cannot_mint_api_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), LIMITS);
    let admin = cp.token("admin", &cp.password);
    for reserved in ["metacircular", "mcias"] {
        let (code, body) = cp.call(
            "POST",
            "/v1/sso/clients",
            Some(&admin),
            Some(json!({"client_id": reserved, "redirect_uris": [sso::REDIRECT]})),
        );
        assert_eq!(code, 400, "{reserved}: {body}");
    }
    let secret = sso::create_client(
        &cp,
        &admin,
        json!({"client_id": "wiki", "redirect_uris": [sso::REDIRECT]}),
    );
    let jar = dir.path().join("jar").display().to_string();
    sso::browser_login(&cp, &jar, "admin", &cp.password);
    let (code, loc, body) = sso::authorize(&cp, &jar, &sso::good_query("wiki"));
    assert_eq!(code, 303, "{body}");
    let grant = sso::param(&loc, "code").expect("code");
    let (code, t) = sso::exchange(&cp, "wiki", &secret, &grant, sso::VERIFIER);
    assert_eq!(code, 200, "{t}");
    let access = t["access_token"].as_str().expect("access token");
    assert_eq!(cp.call("GET", "/v1/iam/whoami", Some(access), None).0, 401);
    let (_, v) = cp.call(
        "POST",
        "/v1/auth/validate",
        None,
        Some(json!({"token": access})),
    );
    assert_eq!(v["valid"], false, "{v}");
}

/// Item 7g: a role change ends the tokens issued before it (what
/// `validate` and the services' revocation check see).
#[test]
fn role_changes_invalidate_issued_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), LIMITS);
    let admin = cp.token("admin", &cp.password);
    cp.create_user(&admin, "ops", "ops's long password");
    let (_, a) = cp.call("GET", "/v1/iam/accounts/ops", Some(&admin), None);
    let roles = format!("/v1/iam/accounts/{}/roles", a["id"].as_str().expect("id"));
    let (code, _) = cp.call(
        "PUT",
        &roles,
        Some(&admin),
        Some(json!({"roles": ["admin"]})),
    );
    assert_eq!(code, 200);
    let ops = cp.token("ops", "ops's long password");
    assert_eq!(cp.call("GET", "/v1/iam/accounts", Some(&ops), None).0, 200);
    let (code, _) = cp.call(
        "PUT",
        &roles,
        Some(&admin),
        Some(json!({"roles": ["user"]})),
    );
    assert_eq!(code, 200);
    let (_, v) = cp.call(
        "POST",
        "/v1/auth/validate",
        None,
        Some(json!({"token": ops})),
    );
    assert_eq!(
        v["valid"], false,
        "the admin role lives on in the token: {v}"
    );
    assert_eq!(cp.call("GET", "/v1/iam/whoami", Some(&ops), None).0, 401);
}

/// Item 7l: token errors are fixed messages, not the JWT library's.
#[test]
fn token_errors_do_not_echo_library_internals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), LIMITS);
    let good = cp.token("admin", &cp.password);
    let parts: Vec<&str> = good.split('.').collect();
    for bad in [
        "a.b.c".to_owned(),
        "xyz".to_owned(),
        format!("{}.e30.{}", parts[0], parts[2]),
        format!("{}.{}.AAAA", parts[0], parts[1]),
    ] {
        let (code, body) = cp.call("GET", "/v1/iam/whoami", Some(&bad), None);
        assert_eq!(code, 401);
        assert_eq!(
            body["error"], "invalid token: malformed, or its signature or claims do not verify",
            "{bad}: {body}"
        );
    }
}

/// Item 7i: `/metrics` on the public REST port is not anonymous (an admin
/// token); the optional metrics address serves scrapers.
#[test]
fn metrics_on_the_public_port_need_an_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::peers::free_port();
    let cp = Controlplane::start_with(
        dir.path(),
        LIMITS,
        &format!("metrics = \"127.0.0.1:{port}\""),
        std::process::Stdio::inherit(),
    );
    let admin = cp.token("admin", &cp.password);
    cp.create_user(&admin, "uma", "uma's long password");
    let uma = cp.token("uma", "uma's long password");
    let url = format!("{}/metrics", cp.rest);
    let get = |token: Option<&str>| {
        let mut args = vec!["--cacert".to_owned(), cp.ca.clone(), url.clone()];
        if let Some(t) = token {
            args.extend(["-H".to_owned(), format!("authorization: Bearer {t}")]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::support::curl(&refs)
    };
    assert_eq!(get(None).0, 401, "anonymous");
    assert_eq!(get(Some(&uma)).0, 403, "not an admin");
    let (code, text) = get(Some(&admin));
    assert_eq!(code, 200);
    assert!(text.contains("mc_build_info"), "{text}");
    let (code, text) = crate::support::curl(&[&format!("http://127.0.0.1:{port}/metrics")]);
    assert_eq!(code, 200);
    assert!(text.contains("mc_http_requests_total"), "{text}");
}

/// Item 7k: the HTTPS REST surface sends HSTS on every answer.
#[test]
fn rest_answers_carry_hsts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), LIMITS);
    for path in ["/healthz", "/no/such/thing", "/ui/login", "/v1/iam/whoami"] {
        let (_, headers, _) = raw(&["--cacert", &cp.ca, &format!("{}{path}", cp.rest)]);
        assert_eq!(
            header(&headers, "strict-transport-security"),
            Some("max-age=63072000"),
            "{path}: {headers:?}"
        );
    }
}

/// Item 7j: unmapped methods, CORS preflights and HEAD are refused without
/// an ERROR (or WARN) line each: a client cannot flood the log.
#[test]
fn unmapped_methods_do_not_flood_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("stderr.log");
    let cp = Controlplane::start_with(
        dir.path(),
        LIMITS,
        "",
        std::fs::File::create(&log).expect("log").into(),
    );
    let whoami = format!("{}/v1/iam/whoami", cp.rest);
    let login = format!("{}/v1/auth/login", cp.rest);
    for _ in 0..30 {
        for args in [
            vec!["-I", whoami.as_str()],
            vec![
                "-X",
                "OPTIONS",
                "-H",
                "origin: https://evil.example",
                "-H",
                "access-control-request-method: POST",
                login.as_str(),
            ],
            vec!["-X", "FOO", whoami.as_str()],
            vec!["-X", "DELETE", whoami.as_str()],
        ] {
            let mut all = vec!["--cacert", cp.ca.as_str()];
            all.extend(args);
            let (code, _) = crate::support::curl(&all);
            assert!(
                (400..500).contains(&code),
                "{all:?}: {code} (still refused)"
            );
        }
    }
    drop(cp);
    let text = std::fs::read_to_string(&log).expect("log");
    let noisy: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .filter(|l| l.contains("method map"))
        .collect();
    assert!(
        noisy.is_empty(),
        "{} lines like {:?}",
        noisy.len(),
        noisy.first()
    );
}

/// Sends a login with a PROXY protocol header (`kind` v1 or v2) naming
/// `client`, from loopback address `from`, over TLS: the HTTP status, or
/// "refused" when the connection is not served.
fn login_via_proxy(cp: &Controlplane, from: &str, kind: &str, client: &str) -> String {
    const SCRIPT: &str = r#"
import socket, ssl, struct, sys
src, ca, port, kind, client = sys.argv[1:6]
s = socket.socket()
s.bind((src, 0))
s.connect(("127.0.0.1", int(port)))
if kind == "v1":
    fam, dst = ("TCP6", "::1") if ":" in client else ("TCP4", "127.0.0.1")
    s.sendall(f"PROXY {fam} {client} {dst} 40000 {port}\r\n".encode())
else:
    s.sendall(b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", 12)
              + socket.inet_aton(client) + socket.inet_aton("127.0.0.1")
              + struct.pack("!HH", 40000, int(port)))
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
try:
    t = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    body = b'{"username":"nobody","password":"not the password"}'
    t.sendall(b"POST /v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    data = b""
    while True:
        chunk = t.recv(4096)
        if not chunk:
            break
        data += chunk
    print(data.split(b" ")[1].decode())
except Exception as e:
    print("refused")
"#;
    let port = cp.rest.rsplit(':').next().expect("port");
    let out = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT, from, &cp.ca, port, kind, client])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Item 7h: behind MC-Proxy, MCIAS sees the client the trusted proxy names
/// in its PROXY protocol header; nobody else can name an address.
#[test]
fn the_real_client_behind_a_trusted_proxy_and_no_one_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start_with(
        dir.path(),
        LIMITS,
        "trusted_proxies = [\"127.0.0.2\"]",
        std::process::Stdio::inherit(),
    );
    let admin = cp.token("admin", &cp.password);
    assert_eq!(
        login_via_proxy(&cp, "127.0.0.2", "v1", "203.0.113.7"),
        "401"
    );
    assert_eq!(
        login_via_proxy(&cp, "127.0.0.2", "v2", "203.0.113.8"),
        "401"
    );
    // An untrusted peer's PROXY header is not read: the connection fails.
    assert_eq!(
        login_via_proxy(&cp, "127.0.0.1", "v1", "198.51.100.66"),
        "refused"
    );
    assert_eq!(
        login_via_proxy(&cp, "127.0.0.3", "v2", "198.51.100.67"),
        "refused"
    );
    let (_, audit) = cp.call(
        "GET",
        "/v1/iam/audit?limit=1000&action=auth.login",
        Some(&admin),
        None,
    );
    let sources: Vec<&str> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["source_ip"].as_str())
        .collect();
    for want in ["203.0.113.7", "203.0.113.8"] {
        assert!(sources.contains(&want), "{want}: {sources:?}");
    }
    assert!(
        !sources.iter().any(|s| s.starts_with("198.51.100.")),
        "{sources:?}"
    );
}

/// Item 6: per-address limits key IPv6 by prefix. Behind a trusted proxy
/// (so the test can name any source), failures from ever-new addresses of
/// one /64 share one limit, while another /64 is still answered.
#[test]
fn one_ipv6_prefix_is_one_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start_with(
        dir.path(),
        "requests_per_minute_per_ip = 10000\nfailures_per_minute_per_ip = 5\n",
        "trusted_proxies = [\"127.0.0.2\"]",
        std::process::Stdio::inherit(),
    );
    let statuses: Vec<String> = (1..=8)
        .map(|i| login_via_proxy(&cp, "127.0.0.2", "v1", &format!("2001:db8:1:1::{i:x}")))
        .collect();
    assert_eq!(&statuses[..5], ["401"; 5], "{statuses:?}");
    assert_eq!(&statuses[5..], ["429"; 3], "{statuses:?}");
    // A neighbour in another /64 is its own source.
    assert_eq!(
        login_via_proxy(&cp, "127.0.0.2", "v1", "2001:db8:1:2::1"),
        "401"
    );
}

/// The new `[server]` keys are validated: a bad one is named, exit 2.
#[test]
fn new_server_keys_are_validated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = mc_service::tls::DevCa::load_or_create(dir.path()).expect("ca");
    let tls = ca.issue(dir.path(), "cp", &["127.0.0.1"]).expect("cert");
    let d = dir.path().display();
    let config = |server: &str| {
        format!(
            "data_dir = \"{d}\"\n[server]\nrest = \"127.0.0.1:18443\"\ngrpc = \"127.0.0.1:19443\"\n\
             admin_socket = \"{d}/cp.sock\"\n{server}\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            tls.cert.display(),
            tls.key.display()
        )
    };
    let file = dir.path().join("controlplane.toml");
    let check = |text: String| {
        std::fs::write(&file, text).expect("write");
        Command::new(crate::support::mcd())
            .args(["controlplane", "--config"])
            .arg(&file)
            .arg("--check-config")
            .output()
            .expect("mcd")
    };
    for (server, key) in [
        (
            "trusted_proxies = [\"10.0.0.0/33\"]",
            "server.trusted_proxies",
        ),
        (
            "trusted_proxies = [\"proxy.example\"]",
            "server.trusted_proxies",
        ),
        ("metrics = \"127.0.0.1:18443\"", "server.metrics"),
        ("hsts_max_age = \"3000d\"", "server.hsts_max_age"),
    ] {
        let out = check(config(server));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{server}: {err}");
        assert!(err.contains(key), "{server}: {err}");
    }
    let good = "metrics = \"127.0.0.1:19100\"\nhsts_max_age = \"0s\"\ntrusted_proxies = [\"10.0.0.5\", \"fd00::/8\"]";
    let out = check(config(good));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Item 7g, as another service sees it: the remote verifier (JWKS plus the
/// revocation check) refuses a token whose roles changed since it was issued.
#[test]
fn the_remote_verifier_refuses_tokens_from_before_a_role_change() {
    use mc_service::auth::TokenVerifier;
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), LIMITS);
    let admin = cp.token("admin", &cp.password);
    cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(json!({"username": "svc-x", "type": "system"})),
    );
    let (_, st) = cp.call(
        "POST",
        "/v1/iam/tokens",
        Some(&admin),
        Some(json!({"account_id": "svc-x", "description": "verifier"})),
    );
    let service_token = st["token"].as_str().expect("token").to_owned();
    let pw = "ivy's long password";
    let (_, ivy) = cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(json!({"username": "ivy", "password": pw, "roles": ["admin"]})),
    );
    let ivy_id = ivy["id"].as_str().expect("id").to_owned();
    let token = cp.token("ivy", pw);
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
        let p = remote.verify(&token).await.expect("valid");
        assert_eq!(p.roles, ["admin"]);
        let (code, _) = cp.call(
            "PUT",
            &format!("/v1/iam/accounts/{ivy_id}/roles"),
            Some(&admin),
            Some(json!({"roles": ["user"]})),
        );
        assert_eq!(code, 200);
        let e = remote.verify(&token).await;
        assert!(e.is_err(), "the old admin role lives on: {e:?}");
        let fresh = cp.token("ivy", pw);
        assert_eq!(remote.verify(&fresh).await.expect("new").roles, ["user"]);
    });
}
