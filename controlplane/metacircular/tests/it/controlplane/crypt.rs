//! Metacrypt's barrier end to end: `mcd controlplane` with curl (REST and
//! gRPC over HTTP/2) and `mcctl crypt`, on 127.0.0.1: init, restart sealed,
//! wrong passphrase refused then rate-limited, unseal, seal, Shamir 3 of 5,
//! admin-only methods, and the store in `mcd snapshot controlplane`.

use std::path::Path;
use std::process::Output;

use mc_service::auth::Requirement;
use serde_json::{Value, json};

use super::iam::Controlplane;

/// Cheap Argon2id (the OWASP floor) and back-off after two failures that
/// lasts far longer than the test (no timing assertion depends on it).
pub(super) const CONFIG: &str = "requests_per_minute_per_ip = 1000\nfailures_per_minute_per_ip = 1000\n\
    [metacrypt]\nargon2_memory_kib = 19456\nargon2_iterations = 2\n\
    unseal_backoff_after = 2\nunseal_backoff = \"10m\"\n";

pub(super) const PASSPHRASE: &str = "a metacrypt test passphrase";

pub(super) fn start(dir: &Path) -> Controlplane {
    Controlplane::start(dir, CONFIG)
}

pub(super) fn endpoints(dir: &Path, cp: &Controlplane) -> std::path::PathBuf {
    let path = dir.join("endpoints.json");
    std::fs::write(
        &path,
        json!({"controlplane": {"grpc": cp.grpc, "rest": cp.rest}, "ca_cert": cp.ca}).to_string(),
    )
    .expect("endpoints");
    path
}

/// `mcctl --endpoints FILE args…` with `stdin` piped.
pub(super) fn mcctl(endpoints: &Path, args: &[&str], stdin: &str) -> Output {
    crate::support::run_mcctl(endpoints, args, stdin)
}

pub(super) fn mcctl_json(endpoints: &Path, args: &[&str], stdin: &str) -> Value {
    let out = mcctl(endpoints, args, stdin);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
}

/// `mcctl login` as the bootstrap admin.
pub(super) fn mcctl_login(endpoints: &Path, cp: &Controlplane) {
    mcctl_json(
        endpoints,
        &["login", "--username", "admin", "--json"],
        &format!("{}\n", cp.password),
    );
}

/// `mcctl crypt init --shares N --threshold T`, with [`PASSPHRASE`] as a
/// slot too or `--no-passphrase`: the answer and its shares.
pub(super) fn mcctl_init_shamir(
    endpoints: &Path,
    shares: u8,
    threshold: u8,
    passphrase: bool,
) -> (Value, Vec<String>) {
    let (n, t) = (shares.to_string(), threshold.to_string());
    let mut args = vec!["crypt", "init", "--shares", &n, "--threshold", &t, "--json"];
    let stdin = if passphrase {
        format!("{PASSPHRASE}\n")
    } else {
        args.push("--no-passphrase");
        String::new()
    };
    let init = mcctl_json(endpoints, &args, &stdin);
    let got = shares_in(&init);
    assert_eq!(got.len(), usize::from(shares), "{init}");
    (init, got)
}

/// The Shamir shares in an answer (`init`, `reshare`).
pub(super) fn shares_in(answer: &Value) -> Vec<String> {
    answer["shares"]
        .as_array()
        .expect("shares")
        .iter()
        .map(|s| s.as_str().expect("share").to_owned())
        .collect()
}

/// `sys/init` with [`PASSPHRASE`] (the barrier is then unsealed).
pub(super) fn init(cp: &Controlplane, admin: &str) {
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/sys/init",
        Some(admin),
        Some(json!({"passphrase": PASSPHRASE})),
    );
    assert_eq!(code, 200, "{body}");
}

/// `sys/mounts` create (`{name, type[, config]}`); the answer.
pub(super) fn mount(cp: &Controlplane, admin: &str, body: Value) -> Value {
    let (code, answer) = cp.call("POST", "/v1/crypt/sys/mounts", Some(admin), Some(body));
    assert_eq!(code, 200, "{answer}");
    answer
}

pub(super) fn state(cp: &Controlplane) -> String {
    let (code, body) = cp.call("GET", "/v1/crypt/sys/status", None, None);
    assert_eq!(code, 200, "{body}");
    body["state"].as_str().expect("state").to_owned()
}

pub(super) fn unseal(cp: &Controlplane, admin: &str, body: Value) -> (u16, Value) {
    cp.call("POST", "/v1/crypt/sys/unseal", Some(admin), Some(body))
}

/// A map route with example values for its parameters.
pub(super) fn example_path(route: &str) -> String {
    route
        .replace("{mount}", "secret")
        .replace("{*path}", "app/db")
        .replace("{id}", "r-admin")
        // The Vault facade's parameters.
        .replace("{name}", "k1")
        .replace("{action}", "rotate")
        .replace("{kind}", "plaintext")
        .replace("{version}", "1")
        .replace("{hash}", "sha2-256")
        .replace("{algo}", "sha2-256")
}

/// Vault's refusal body (the facade answers in Vault's shape).
pub(super) fn vault_errors(message: &str) -> Value {
    json!({ "errors": [message] })
}

/// A well-formed body for a map route that takes one.
pub(super) fn example_body(route: &str) -> Value {
    if route.contains("/delete/") || route.contains("/undelete/") || route.contains("/destroy/") {
        json!({"versions": [1]})
    } else if route.contains("/data/") {
        json!({"data": {"a": 1}})
    } else {
        json!({})
    }
}

#[test]
fn crypt_barrier_init_restart_sealed_rate_limited_unseal_seal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = start(dir.path());
    let admin = cp.token("admin", &cp.password);
    cp.create_user(&admin, "carol", "carol's long password");
    let user = cp.token("carol", "carol's long password");

    // Status is public; the rest is admin-only, on both surfaces.
    assert_eq!(state(&cp), "uninitialized");
    let mut checked = 0;
    let engine = mc_metacrypt::methods::ENGINE;
    let map = mc_metacrypt::methods::map();
    for (key, req) in map.entries() {
        if map.is_vault(key) {
            // The Vault facade: Vault's refusals; nothing opens before init.
            let (method, path) = key.split_once(' ').expect("REST key");
            let path = example_path(path);
            let body = (method != "GET").then(|| json!({}));
            let (anon, anon_body) = cp.call(method, &path, None, body.clone());
            let (as_user, user_body) = cp.call(method, &path, Some(&user), body);
            if req == Requirement::Public {
                assert!(!matches!(anon, 401 | 403), "{key} is public: {anon}");
            } else {
                assert_eq!(
                    (anon, anon_body),
                    (403, vault_errors("permission denied")),
                    "{key} anonymous"
                );
                if req == Requirement::Admin {
                    assert_eq!(as_user, 403, "{key} as a user: {user_body}");
                } else {
                    // Engine routes and token lookup: as far as the barrier.
                    assert_eq!(
                        (as_user, user_body),
                        (503, vault_errors("Vault is sealed")),
                        "{key} as a user"
                    );
                }
            }
            checked += 1;
            continue;
        }
        if key.starts_with('/') {
            let anon = cp.grpc_status(key, None);
            if req == Requirement::Public {
                assert!(anon.starts_with("0|"), "{key} is public: {anon}");
            } else if req == engine {
                // Engine RPCs: any token gets as far as the barrier.
                assert!(anon.starts_with("16|"), "{key} anonymous: {anon}");
                let with_user = cp.grpc_status(key, Some(&user));
                assert_eq!(with_user, "14|sealed", "{key} as a user");
            } else {
                assert!(anon.starts_with("16|"), "{key} anonymous: {anon}");
                assert_eq!(req, Requirement::Admin, "{key}");
                let with_user = cp.grpc_status(key, Some(&user));
                assert!(with_user.starts_with("7|"), "{key} as a user: {with_user}");
            }
        } else {
            let (method, path) = key.split_once(' ').expect("REST key");
            let path = example_path(path);
            let body = (method != "GET").then(|| json!({}));
            let (anon, _) = cp.call(method, &path, None, body.clone());
            if req == Requirement::Public && path.starts_with("/v1/pki/") && path.contains("/ocsp")
            {
                // OCSP answers in its own status (crypt_ocsp.rs), always HTTP 200.
                assert_eq!(anon, 200, "{key} is public");
            } else if req == Requirement::Public
                && (path.starts_with("/v1/pki/") || path.starts_with("/v1/ssh/"))
            {
                // Public pki and ssh data (crypt_pki.rs, crypt_ssh.rs): no such
                // mount here, nothing to serve.
                assert_eq!(anon, 404, "{key} is public");
            } else if req == Requirement::Public && path.starts_with("/v1/acme/") {
                // ACME's state lives behind the barrier (crypt_acme.rs serves it
                // unsealed): 503 before init and while sealed, but for new-nonce,
                // which holds no secret (RFC 8555 §7.2: 200 on HEAD, 204 on GET).
                let want = match (method, path.ends_with("/new-nonce")) {
                    ("HEAD", true) => 200,
                    (_, true) => 204,
                    _ => 503,
                };
                assert_eq!(anon, want, "{key} while sealed");
            } else if req == Requirement::Public
                && path.starts_with("/ui/crypt/")
                && !path.starts_with("/ui/crypt/assets/")
            {
                // The web UI's own session guard (crypt_ui.rs sweeps it): to sign-in, or refused.
                assert!(matches!(anon, 303 | 403), "{key} without a session: {anon}");
            } else if req == Requirement::Public {
                assert_eq!(anon, 200, "{key} is public");
            } else if req == engine {
                assert_eq!(anon, 401, "{key} anonymous");
                let (code, body) = cp.call(method, &path, Some(&user), body);
                assert_eq!((code, body), (503, json!({"error": "sealed"})), "{key}");
            } else {
                assert_eq!(anon, 401, "{key} anonymous");
                let (code, body) = cp.call(method, &path, Some(&user), body);
                assert_eq!(code, 403, "{key} as a user: {body}");
            }
        }
        checked += 1;
    }
    assert!(checked >= 10, "{checked} entries");
    assert_eq!(state(&cp), "uninitialized", "nothing changed");

    // Bad input names the field and changes nothing.
    let init = |body: Value| cp.call("POST", "/v1/crypt/sys/init", Some(&admin), Some(body));
    let (code, body) = init(json!({"passphrase": "too short"}));
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("passphrase: at least 12 characters"))
    );
    let (code, body) = init(json!({"shares": 3}));
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("threshold")),
        "{body}"
    );
    let (code, body) = init(json!({"passphrase": PASSPHRASE, "colour": "blue"}));
    assert_eq!(code, 400, "{body}");
    assert_eq!(state(&cp), "uninitialized");

    let (code, body) = init(json!({"passphrase": PASSPHRASE}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"]["state"], "unsealed", "{body}");
    assert_eq!(body["shares"], json!([]));
    let (code, _) = init(json!({"passphrase": PASSPHRASE}));
    assert_eq!(code, 409, "init twice");

    // A restart is sealed.
    drop(cp);
    let cp = start(dir.path());
    let admin = cp.token("admin", &cp.password);
    assert_eq!(state(&cp), "sealed");
    // Sealed: the engines' hook answers 503 {"error":"sealed"} (no engine
    // route exists yet: a sealed MEK rotation takes the same path).
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/sys/barrier/rotate-mek",
        Some(&admin),
        None,
    );
    assert_eq!((code, body), (503, json!({"error": "sealed"})));
    let rotate = cp.grpc_status("/mc.crypt.v1.Barrier/RotateMek", Some(&admin));
    assert!(
        rotate.starts_with("14|sealed"),
        "gRPC Unavailable: {rotate}"
    );

    // Wrong passphrase: refused, then rate-limited (even the right one).
    for _ in 0..2 {
        let (code, body) = unseal(&cp, &admin, json!({"passphrase": "not the passphrase"}));
        assert_eq!(code, 403, "{body}");
    }
    let (code, body) = unseal(&cp, &admin, json!({"passphrase": PASSPHRASE}));
    assert_eq!(code, 429, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("retry")),
        "{body}"
    );
    let (code, body) = unseal(&cp, &admin, json!({"passphrase": PASSPHRASE, "share": "x"}));
    assert_eq!(code, 400, "exactly one of: {body}");
    assert_eq!(state(&cp), "sealed");

    // The back-off lives in memory: after a restart the right passphrase
    // unseals (through mcctl, read from stdin), and seal seals again.
    drop(cp);
    let cp = start(dir.path());
    let eps = endpoints(dir.path(), &cp);
    mcctl_json(
        &eps,
        &["login", "--username", "admin", "--json"],
        &format!("{}\n", cp.password),
    );
    let s = mcctl_json(&eps, &["crypt", "status", "--json"], "");
    assert_eq!(s["state"], "sealed", "{s}");
    assert_eq!(s["slots"], json!(["passphrase"]), "{s}");
    let s = mcctl_json(
        &eps,
        &["crypt", "unseal", "--json"],
        &format!("{PASSPHRASE}\n"),
    );
    assert_eq!(s["state"], "unsealed", "{s}");
    let r = mcctl_json(&eps, &["crypt", "rotate-mek", "--json"], "");
    assert_eq!(r["mek_version"], 2, "{r}");
    let s = mcctl_json(&eps, &["crypt", "seal", "--json"], "");
    assert_eq!(s["state"], "sealed", "{s}");
    assert_eq!(state(&cp), "sealed");
    // After the MEK rotation the passphrase still opens everything.
    let s = mcctl_json(
        &eps,
        &["crypt", "unseal", "--json"],
        &format!("{PASSPHRASE}\n"),
    );
    assert_eq!(s["state"], "unsealed", "{s}");

    // `mcd snapshot controlplane` carries metacrypt.redb (and no unseal material).
    let snaps = dir.path().join("snaps");
    let out = crate::support::run(
        &crate::support::mcd(),
        &[
            "snapshot",
            "controlplane",
            "--config",
            dir.path().join("controlplane.toml").to_str().expect("utf8"),
            "--dir",
            snaps.to_str().expect("utf8"),
        ],
        dir.path(),
    );
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{listing}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(listing.contains("metacrypt"), "{listing}");
}

#[test]
fn crypt_shamir_three_of_five_with_mcctl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = start(dir.path());
    let eps = endpoints(dir.path(), &cp);
    mcctl_login(&eps, &cp);
    let (init, shares) = mcctl_init_shamir(&eps, 5, 3, false);
    assert_eq!(init["status"]["state"], "unsealed", "{init}");

    drop(cp);
    let cp = start(dir.path());
    let eps = endpoints(dir.path(), &cp);
    let admin = cp.token("admin", &cp.password);
    assert_eq!(state(&cp), "sealed");
    // A mistyped share is refused by name before it counts.
    let mut typo = shares[0].clone();
    typo.pop();
    typo.push(if shares[0].ends_with('A') { 'B' } else { 'A' });
    let (code, body) = unseal(&cp, &admin, json!({"share": typo}));
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("share")),
        "{body}"
    );
    // Two shares are not enough.
    for (i, share) in [&shares[3], &shares[1]].into_iter().enumerate() {
        let (code, body) = unseal(&cp, &admin, json!({"share": share}));
        assert_eq!(code, 200, "{body}");
        assert_eq!(
            (body["state"].as_str(), body["progress"].as_u64()),
            (Some("sealed"), Some(i as u64 + 1))
        );
    }
    assert_eq!(state(&cp), "sealed");
    // The third, through mcctl (read without echo; here piped).
    mcctl_json(
        &eps,
        &["login", "--username", "admin", "--json"],
        &format!("{}\n", cp.password),
    );
    let s = mcctl_json(
        &eps,
        &["crypt", "unseal", "--share", "--json"],
        &format!("{}\n", shares[4]),
    );
    assert_eq!(s["state"], "unsealed", "{s}");
    let s = mcctl_json(&eps, &["crypt", "status", "--json"], "");
    assert_eq!(
        (
            s["state"].as_str(),
            s["threshold"].as_u64(),
            s["shares"].as_u64()
        ),
        (Some("unsealed"), Some(3), Some(5)),
        "{s}"
    );
}
