//! Managed certificates end to end: `mcd controlplane` (MCIAS, Metacrypt
//! with a pki mount and a 30 s role) signs CSRs for `mcd dataplane`, which
//! makes the key and renews by itself. `openssl s_client
//! -verify_return_error` and curl verify the served chain against the
//! mount's public root; the serial changes at renewal while a loop of curls
//! sees no failure; with Metacrypt sealed a renewal fails, the old
//! certificate is still served, and `mcctl proxy certs list` and `/metrics`
//! show the failure (and `promtool check metrics` passes).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::backends::Backends;
use super::curl;
use crate::controlplane::iam::Controlplane;

const CONTROLPLANE: &str = "[metacrypt]\nargon2_memory_kib = 19456\nargon2_iterations = 2\n";
const HOST: &str = "app.managed.test";

pub(super) fn ok(cp: &Controlplane, token: &str, method: &str, path: &str, body: Value) -> Value {
    let (code, answer) = cp.call(method, path, Some(token), Some(body));
    assert!((200..300).contains(&code), "{path}: {code} {answer}");
    answer
}

/// The served leaf's serial for `host`, after `openssl s_client
/// -verify_return_error` verified the chain against `ca` (empty when the
/// handshake failed).
pub(super) fn served_serial_of(proxy: std::net::SocketAddr, ca: &str, host: &str) -> String {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &proxy.to_string(),
            "-servername",
            host,
        ])
        .args([
            "-CAfile",
            ca,
            "-verify_return_error",
            "-verify_hostname",
            host,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || !text.contains("Verify return code: 0 (ok)") {
        return String::new();
    }
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl x509");
    {
        use std::io::Write;
        let mut stdin = x509.stdin.take().expect("stdin");
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = x509.wait_with_output().expect("openssl x509");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn served_serial(proxy: std::net::SocketAddr, ca: &str) -> String {
    served_serial_of(proxy, ca, HOST)
}

/// Two loops of curl (HTTP/2) through `proxy` for `host` until stopped.
pub(super) struct Load {
    stop: Arc<AtomicBool>,
    good: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    pub(super) fn start(proxy: std::net::SocketAddr, ca: &str, host: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (good, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let threads = (0..2)
            .map(|_| {
                let (stop, good, failed, ca) =
                    (stop.clone(), good.clone(), failed.clone(), ca.to_owned());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let (code, _) = curl(proxy, &ca, host, "/", &["--http2"]);
                        let n = if code == 200 { &good } else { &failed };
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Self {
            stop,
            good,
            failed,
            threads,
        }
    }

    /// Stops the loops; (requests answered 200, requests failed).
    pub(super) fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("load thread");
        }
        (
            self.good.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

fn metric(dp: &crate::peers::Dataplane, name: &str) -> Option<f64> {
    let (_, text) = crate::support::curl(&[&dp.metrics]);
    let want = format!("{name}{{certificate=\"{HOST}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&want))
        .and_then(|v| v.trim().parse().ok())
}

/// An L7 route for `host` serving the certificate named `host` (on the listener `public`).
pub(super) fn route_to(dp: &crate::peers::Dataplane, host: &str, backend: u16) {
    let out = super::add_l7_with(dp, host, host, backend, &["--listener", "public"]);
    assert!(out.status.success(), "{out:?}");
}

/// `mcctl proxy certs managed add HOST --dns HOST --acme-directory
/// DIRECTORY` and `extra`.
pub(super) fn add_acme(
    dp: &crate::peers::Dataplane,
    host: &str,
    directory: &str,
    extra: &[&str],
) -> std::process::Output {
    let head = ["proxy", "certs", "managed", "add", host, "--dns", host];
    let args = [&head[..], &["--acme-directory", directory], extra].concat();
    dp.mcctl(&args)
}

/// The `certs list --json` entry named `name` (null when absent).
pub(super) fn entry_of(dp: &crate::peers::Dataplane, name: &str) -> Value {
    let list: Value = serde_json::from_str(&dp.ok(&["proxy", "certs", "list", "--json"]))
        .expect("certs list --json");
    list.as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .cloned()
        .unwrap_or(Value::Null)
}

fn managed_entry(dp: &crate::peers::Dataplane) -> Value {
    entry_of(dp, HOST)
}

/// Metacrypt with a pki mount, a root and a 30 s role; a system account
/// allowed only to sign with it. Returns the control plane, the admin
/// token, and the root's PEM path.
fn controlplane(d: &Path) -> (Controlplane, String, String) {
    pki_controlplane(d, "", "managed.test")
}

/// [`controlplane`] with `extra` config and a role for names under `domain`
/// (the MCP deploy test's).
pub(crate) fn pki_controlplane(
    d: &Path,
    extra: &str,
    domain: &str,
) -> (Controlplane, String, String) {
    let cp = Controlplane::start(d, &format!("{CONTROLPLANE}{extra}"));
    let admin = cp.token("admin", &cp.password);
    let pass = json!({"passphrase": "a managed certificates passphrase"});
    ok(&cp, &admin, "POST", "/v1/crypt/sys/init", pass);
    ok(
        &cp,
        &admin,
        "POST",
        "/v1/crypt/sys/mounts",
        json!({"name": "pki", "type": "pki"}),
    );
    let root = json!({"common_name": "Managed Test Root", "ttl": "8760h"});
    ok(&cp, &admin, "POST", "/v1/crypt/pki/root/generate", root);
    let role = json!({"allowed_domains": [domain], "allow_subdomains": true,
        "allow_bare_domains": false, "ttl": "30s", "max_ttl": "1h"});
    ok(&cp, &admin, "POST", "/v1/crypt/pki/roles/proxy", role);
    let (code, pem) =
        crate::support::curl(&["--cacert", &cp.ca, &format!("{}/v1/pki/pki/ca", cp.rest)]);
    assert_eq!(code, 200, "{pem}");
    let root_path = d.join("pki-root.pem");
    std::fs::write(&root_path, pem).expect("root");
    // The proxy's system account may sign with this role and nothing else.
    let account = ok(
        &cp,
        &admin,
        "POST",
        "/v1/iam/accounts",
        json!({"username": "mc-proxy", "type": "system"}),
    );
    let rule = json!({"effect": "allow", "accounts": ["mc-proxy"],
        "paths": ["pki/sign-csr/proxy"], "capabilities": ["update"]});
    ok(&cp, &admin, "POST", "/v1/crypt/sys/policy", rule);
    let token = ok(
        &cp,
        &admin,
        "POST",
        "/v1/iam/tokens",
        json!({"account_id": account["id"]}),
    );
    std::fs::write(
        d.join("proxy.token"),
        token["token"].as_str().expect("token"),
    )
    .expect("token");
    (cp, admin, root_path.display().to_string())
}

#[test]
fn managed_certificate_issued_renewed_under_load_and_kept_when_metacrypt_is_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cp_dir, dp_dir) = (dir.path().join("cp"), dir.path().join("dp"));
    std::fs::create_dir_all(&cp_dir).expect("dir");
    std::fs::create_dir_all(&dp_dir).expect("dir");
    let (cp, admin, root) = controlplane(&cp_dir);
    let backends = Backends::new();
    let plain = backends.http("plain");
    let listen = crate::peers::free_port();
    let toml = format!(
        "certificate_authorities = [\"{root}\"]\n\
         [proxy.metacrypt]\ngrpc = \"{grpc}\"\nca_cert = \"{ca}\"\ntoken_file = \"{token}\"\n\
         [[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n",
        grpc = cp.grpc,
        ca = cp.ca,
        token = cp_dir.join("proxy.token").display(),
    );
    let dp = crate::peers::Dataplane::start(&dp_dir, "auto", &toml);
    let proxy = dp.listen("public");

    // A bad spec is refused, naming the field, and stores nothing.
    let bad = dp.mcctl(&[
        "proxy", "certs", "managed", "add", "Bad Name", "--dns", HOST, "--mount", "pki", "--role",
        "proxy",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("name"),
        "{bad:?}"
    );
    assert_eq!(managed_entry(&dp), Value::Null, "nothing stored");

    // Issued at once: the route serves a chain openssl and curl verify
    // against the mount's root.
    let added = dp.ok(&[
        "proxy", "certs", "managed", "add", HOST, "--dns", HOST, "--mount", "pki", "--role",
        "proxy", "--json",
    ]);
    assert!(added.contains("metacrypt:pki/proxy"), "{added}");
    route_to(&dp, HOST, plain);
    let first = served_serial(proxy, &root);
    assert!(
        !first.is_empty(),
        "the served chain verifies against the pki root"
    );
    let (code, body) = curl(proxy, &root, HOST, "/", &["--http2"]);
    assert_eq!(code, 200, "{body}");
    let entry = managed_entry(&dp);
    assert_eq!(entry["managed"]["failures"], 0, "{entry}");
    assert!(
        entry["managed"]["next_renewal_unix"].as_i64() < entry["not_after_unix"].as_i64(),
        "{entry}"
    );
    // Uploads cannot replace it, nor removal take it away.
    let put = dp.mcctl(&["proxy", "certs", "remove", HOST]);
    assert!(
        !put.status.success() && String::from_utf8_lossy(&put.stderr).contains("managed"),
        "{put:?}"
    );

    // Renewed by itself (at two thirds of 60 s: the role's 30 s plus the
    // 30 s back-dating) under load, with no failed request.
    let load = Load::start(proxy, &root, HOST);
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut renewed = String::new();
    while Instant::now() < deadline {
        let s = served_serial(proxy, &root);
        if !s.is_empty() && s != first {
            renewed = s;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let (good, failed) = load.stop();
    assert!(
        !renewed.is_empty(),
        "renewed: the serial changed from {first}"
    );
    assert_eq!(failed, 0, "no request failed across the renewal");
    assert!(good > 0);

    // A long-lived certificate now (renewals after this test's end), then
    // Metacrypt sealed: the attempt fails, the certificate stays served.
    let role = json!({"allowed_domains": ["managed.test"], "allow_subdomains": true,
        "allow_bare_domains": false, "ttl": "1h", "max_ttl": "2h"});
    ok(&cp, &admin, "POST", "/v1/crypt/pki/roles/proxy", role);
    dp.ok(&["proxy", "certs", "managed", "renew", HOST]);
    let long = served_serial(proxy, &root);
    assert!(
        !long.is_empty() && long != renewed,
        "{long} after {renewed}"
    );
    ok(&cp, &admin, "POST", "/v1/crypt/sys/seal", json!({}));
    let failing = dp.mcctl(&["proxy", "certs", "managed", "renew", HOST]);
    assert!(
        !failing.status.success(),
        "a renewal against a sealed Metacrypt fails"
    );
    let entry = managed_entry(&dp);
    assert!(entry["managed"]["failures"].as_u64() >= Some(1), "{entry}");
    assert!(
        !entry["managed"]["last_error"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{entry}"
    );
    let table = dp.ok(&["proxy", "certs", "list"]);
    assert!(table.contains("FAILING"), "{table}");
    assert_eq!(
        served_serial(proxy, &root),
        long,
        "the old certificate is still served"
    );
    let (code, body) = curl(proxy, &root, HOST, "/", &["--http2"]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        metric(&dp, "mc_proxy_managed_certificate_failing"),
        Some(1.0)
    );
    assert!(metric(&dp, "mc_proxy_managed_certificate_renewal_failures_total") >= Some(1.0));
    let left = metric(&dp, "mc_proxy_managed_certificate_expiry_seconds").unwrap_or(0.0);
    assert!(left > 600.0, "seconds to expiry: {left}");
    // The families still pass promtool with managed certificates in them.
    let (_, text) = crate::support::curl(&[&dp.metrics]);
    let (clean, complaints) = crate::dataplane::ops::promtool(&text);
    assert!(clean, "{complaints}");
}
