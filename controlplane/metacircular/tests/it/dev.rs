//! `mcd dev`: start, serve, report, stop; restart on the same data dir.

use rustix::process::Signal;

use crate::support::{Dev, curl, mcctl, run};

/// `mcd dev` unseals Metacrypt in the background: polls its public status.
fn assert_crypt_unsealed(dev: &Dev) {
    let url = format!(
        "{}/sys/status",
        dev.endpoints["crypt"]["url"].as_str().expect("crypt url")
    );
    let ca = dev.ca();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (code, body) = curl(&["--cacert", &ca, &url]);
        if code == 200 && body.contains("\"state\":\"unsealed\"") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "metacrypt never unsealed: {code} {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `mcd dev` mounts a kv engine at `secret` (as `bao server -dev`): an
/// admin writes and reads a secret there.
fn assert_dev_secret_mount(dev: &Dev) {
    let rest = dev.endpoints["controlplane"]["rest"]
        .as_str()
        .expect("rest")
        .to_owned();
    let ca = dev.ca();
    let call = |method: &str, path: &str, token: Option<&str>, body: Option<serde_json::Value>| {
        crate::support::rest_call(&rest, &ca, method, path, token, body)
    };
    let (code, login) = call(
        "POST",
        "/v1/auth/login",
        None,
        Some(serde_json::json!({
            "username": dev.endpoints["bootstrap"]["username"],
            "password": dev.endpoints["bootstrap"]["password"],
        })),
    );
    assert_eq!(code, 200, "{login}");
    let token = login["token"].as_str().expect("token").to_owned();
    // The mount follows the background init: poll for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (code, body) = call("GET", "/v1/crypt/sys/mounts/secret", Some(&token), None);
        if code == 200 {
            assert_eq!(body["type"], "kv", "{body}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no secret mount: {code} {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (code, body) = call(
        "POST",
        "/v1/crypt/secret/data/dev/check",
        Some(&token),
        Some(serde_json::json!({"data": {"ok": true}})),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = call("GET", "/v1/crypt/secret/data/dev/check", Some(&token), None);
    assert_eq!(
        (code, &body["data"]["ok"]),
        (200, &serde_json::json!(true)),
        "{body}"
    );
}

#[test]
fn dev_serves_health_and_stops_cleanly_on_sigint_and_sigterm() {
    let cwd = tempfile::tempdir().expect("tempdir");
    // No --data-dir: the default ./.mc-dev, which mcctl also finds by default.
    let dev = Dev::start(cwd.path(), None);
    assert_eq!(dev.data_dir, cwd.path().join(".mc-dev"));
    let ca = dev.ca();
    // The fixed endpoint names other tools rely on.
    for pointer in [
        "/controlplane/rest",
        "/controlplane/grpc",
        "/controlplane/health",
        "/controlplane/admin_socket",
        "/proxy/listen",
        "/proxy/admin_socket",
        "/proxy/metrics",
        "/dns/listen",
        "/dns/admin_socket",
        "/iam/url",
        "/iam/ui",
        "/iam/oidc_discovery",
        "/crypt/url",
        "/bootstrap/username",
        "/bootstrap/password",
        "/ca_cert",
    ] {
        assert!(
            dev.endpoints
                .pointer(pointer)
                .and_then(|v| v.as_str())
                .is_some_and(|v| !v.is_empty()),
            "endpoints.json lacks {pointer}: {}",
            dev.endpoints
        );
    }
    assert_eq!(dev.endpoints["bootstrap"]["username"], "admin");
    // Metacrypt: initialised and unsealed from the dev passphrase (0600).
    let pass_file = dev.data_dir.join("metacrypt/dev-passphrase");
    let mode = std::fs::metadata(&pass_file)
        .expect("dev passphrase")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    assert_crypt_unsealed(&dev);
    assert_dev_secret_mount(&dev);
    let health = dev.endpoints["controlplane"]["health"]
        .as_str()
        .expect("health")
        .to_owned();
    let health = health.as_str();
    let (code, body) = curl(&["--cacert", &ca, health]);
    assert_eq!(code, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("health json");
    assert_eq!(json["status"], "ok");

    // HTTP/2 over TLS 1.3 with ALPN, verified against the dev CA.
    let (code, _) = curl(&["--cacert", &ca, "--http2", "--tlsv1.3", health]);
    assert_eq!(code, 200);
    // TLS 1.2 is refused.
    let (code, _) = curl(&["--cacert", &ca, "--tls-max", "1.2", health]);
    assert_eq!(code, 0, "TLS 1.2 must not be accepted");

    // Unknown paths get a JSON 404; metrics count requests.
    let rest = dev.endpoints["controlplane"]["rest"]
        .as_str()
        .expect("rest")
        .to_owned();
    let (code, body) = curl(&["--cacert", &ca, &format!("{rest}/no/such/thing")]);
    assert_eq!(code, 404);
    assert!(body.contains("\"error\""), "{body}");
    // `/metrics` on the public REST port needs an admin token (issue 12,
    // item 7i); anonymous on the control plane's metrics address.
    let (code, _) = curl(&["--cacert", &ca, &format!("{rest}/metrics")]);
    assert_eq!(code, 401);
    let cp_metrics = dev.endpoints["controlplane"]["metrics"]
        .as_str()
        .expect("controlplane metrics")
        .to_owned();
    assert!(cp_metrics.starts_with("http://127.0.0.1:"), "{cp_metrics}");
    let (code, metrics) = curl(&[&cp_metrics]);
    assert_eq!(code, 200);
    assert!(
        metrics
            .contains("mc_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("mc_build_info"), "{metrics}");

    let dp_health = dev.endpoints["dataplane"]["health"]
        .as_str()
        .expect("dp health")
        .to_owned();
    let (code, _) = curl(&[&dp_health]);
    assert_eq!(code, 200);

    // mcctl finds ./.mc-dev/endpoints.json with no flags.
    let out = run(&mcctl(), &["status"], cwd.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "mcctl status: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("controlplane") && text.contains("dataplane") && text.contains("ready"),
        "{text}"
    );

    let (status, took) = dev.stop(Signal::INT);
    eprintln!("mcd dev exited {status} {took:?} after SIGINT");
    assert!(status.success(), "SIGINT must exit 0, got {status}");

    // Re-running reuses the data dir (same node identity and ports); SIGTERM also exits 0.
    let dev2 = Dev::start(cwd.path(), None);
    assert_crypt_unsealed(&dev2);
    assert_eq!(dev2.endpoints["controlplane"]["rest"], rest.as_str());
    let out = run(&mcctl(), &["status", "--json"], cwd.path());
    assert!(out.status.success());
    let (status, took) = dev2.stop(Signal::TERM);
    eprintln!("mcd dev exited {status} {took:?} after SIGTERM");
    assert!(status.success(), "SIGTERM must exit 0, got {status}");

    // With the platform stopped, mcctl says so and fails.
    let out = run(&mcctl(), &["status"], cwd.path());
    assert!(!out.status.success());
}

#[test]
fn dev_node_identity_survives_restart_and_snapshot_restores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("state");
    let dev = Dev::start(dir.path(), Some(&data));
    let node_id = |cwd: &std::path::Path| {
        let out = run(
            &mcctl(),
            &[
                "--endpoints",
                data.join("endpoints.json").to_str().expect("utf8"),
                "status",
                "--json",
            ],
            cwd,
        );
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        rows[0]["details"]["node_id"]
            .as_str()
            .expect("node_id")
            .to_owned()
    };
    let first = node_id(dir.path());
    assert_eq!(first.len(), 32);

    // Online snapshot through the running control plane's admin socket.
    let cfg = data.join("controlplane.toml");
    let snaps = dir.path().join("snaps");
    let out = run(
        &crate::support::mcd(),
        &[
            "snapshot",
            "controlplane",
            "--config",
            cfg.to_str().expect("utf8"),
            "--dir",
            snaps.to_str().expect("utf8"),
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let snap_path = listing
        .split('\t')
        .nth(1)
        .expect("snapshot path")
        .to_owned();
    assert!(std::path::Path::new(&snap_path).is_file(), "{listing}");

    // Restore is refused while the process runs, and changes nothing.
    let restore_args = [
        "restore",
        "controlplane",
        "--config",
        cfg.to_str().expect("utf8"),
        "--store",
        "controlplane",
        "--from",
        &snap_path,
    ];
    let out = run(&crate::support::mcd(), &restore_args, dir.path());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("open in another process"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (status, _) = dev.stop(Signal::TERM);
    assert!(status.success());

    // Offline: replace the store with the snapshot; the node keeps its identity.
    let out = run(&crate::support::mcd(), &restore_args, dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dev = Dev::start(dir.path(), Some(&data));
    assert_eq!(node_id(dir.path()), first);
    let (status, _) = dev.stop(Signal::INT);
    assert!(status.success());
}

/// Issue 19 #7: an L7 route in dev with a certificate from `mcctl dev cert`.
/// `mcd dev`'s data plane trusts its own CA, so a leaf it signed is accepted
/// alone (it was refused with "intermediate probably missing"), curl and
/// `openssl s_client -verify_return_error` verify the chain against `ca.pem`,
/// a TLS backend with a dev certificate is verified against the dev CA,
/// and a data dir whose dataplane.toml predates `certificate_authorities`
/// gets the same trust.
#[test]
fn dev_cert_serves_an_l7_route_that_clients_verify() {
    use crate::support::run_mcctl;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("state");
    let dev = Dev::start(dir.path(), Some(&data));
    let endpoints = data.join("endpoints.json");
    let ca = dev.ca();
    let ok = |out: &std::process::Output| {
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("mkdir");
    let certs_s = certs.to_str().expect("utf8");

    // One command: key + chain on disk, stored in MC-Proxy as `app`.
    let issued = ok(&run_mcctl(
        &endpoints,
        &[
            "dev",
            "cert",
            "app.dev.test",
            "--out",
            certs_s,
            "--put",
            "app",
        ],
        "",
    ));
    assert!(issued.contains("stored in MC-Proxy as `app`"), "{issued}");
    let chain = certs.join("app.dev.test.pem");
    let key = certs.join("app.dev.test-key.pem");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).expect("key").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // 397 days by default: within browsers' 398-day cap on server certificates.
    let checkend = |days: u32| {
        std::process::Command::new("openssl")
            .args([
                "x509",
                "-noout",
                "-in",
                chain.to_str().expect("utf8"),
                "-checkend",
            ])
            .arg((days * 86_400).to_string())
            .output()
            .expect("openssl")
            .status
            .success()
    };
    assert!(checkend(396) && !checkend(398));

    let port = crate::support::http_backend("hello from the dev backend");
    ok(&run_mcctl(
        &endpoints,
        &[
            "proxy",
            "routes",
            "add",
            "app.dev.test",
            "--mode",
            "l7",
            "--cert",
            "app",
            "--backend",
            &format!("127.0.0.1:{port}"),
        ],
        "",
    ));
    let listen = dev.endpoints["proxy"]["listen"].as_str().expect("listen");
    let proxy_port = listen.rsplit(':').next().expect("port");
    let resolve = format!("app.dev.test:{proxy_port}:127.0.0.1");
    let url = format!("https://app.dev.test:{proxy_port}/");
    let (code, body) = curl(&["--cacert", &ca, "--resolve", &resolve, &url]);
    assert_eq!((code, body.as_str()), (200, "hello from the dev backend"));

    let s_client = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            listen,
            "-servername",
            "app.dev.test",
        ])
        .args([
            "-CAfile",
            &ca,
            "-verify_return_error",
            "-verify_hostname",
            "app.dev.test",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&s_client.stdout);
    assert!(
        s_client.status.success() && text.contains("Verify return code: 0 (ok)"),
        "{text}{}",
        String::from_utf8_lossy(&s_client.stderr)
    );

    // A TLS backend with a dev certificate (the control plane's REST port)
    // verifies against the same CAs: the dev CA.
    ok(&run_mcctl(
        &endpoints,
        &[
            "dev",
            "cert",
            "cp.dev.test",
            "--out",
            certs_s,
            "--put",
            "cp",
        ],
        "",
    ));
    let rest = dev.endpoints["controlplane"]["rest"]
        .as_str()
        .expect("rest");
    let rest = rest.strip_prefix("https://").expect("https");
    ok(&run_mcctl(
        &endpoints,
        &[
            "proxy",
            "routes",
            "add",
            "cp.dev.test",
            "--mode",
            "l7",
            "--cert",
            "cp",
            "--backend",
            rest,
            "--backend-protocol",
            "tls",
        ],
        "",
    ));
    let resolve = format!("cp.dev.test:{proxy_port}:127.0.0.1");
    let url = format!("https://cp.dev.test:{proxy_port}/healthz");
    let (code, body) = curl(&["--cacert", &ca, "--resolve", &resolve, &url]);
    assert_eq!(code, 200, "{body}");

    // The leaf alone (no CA in the chain) is accepted: the dev CA is an anchor.
    let pem = std::fs::read_to_string(&chain).expect("chain");
    let end = "-----END CERTIFICATE-----\n";
    let leaf_only = &pem[..pem.find(end).expect("pem") + end.len()];
    let leaf_file = certs.join("leaf.pem");
    std::fs::write(&leaf_file, leaf_only).expect("write");
    let put_leaf = |name: &str| {
        run_mcctl(
            &endpoints,
            &[
                "proxy",
                "certs",
                "put",
                name,
                "--chain",
                leaf_file.to_str().expect("utf8"),
                "--key",
                key.to_str().expect("utf8"),
            ],
            "",
        )
    };
    ok(&put_leaf("leaf"));

    // Files are not overwritten by accident; bad names change nothing.
    let again = run_mcctl(
        &endpoints,
        &["dev", "cert", "app.dev.test", "--out", certs_s],
        "",
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let bad = run_mcctl(
        &endpoints,
        &["dev", "cert", "bad name", "--out", certs_s],
        "",
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a DNS name"));

    // A dataplane.toml written before `certificate_authorities`: same trust.
    let (status, _) = dev.stop(Signal::TERM);
    assert!(status.success());
    let cfg = data.join("dataplane.toml");
    let text = std::fs::read_to_string(&cfg).expect("dataplane.toml");
    let old: String = text
        .lines()
        .filter(|l| !l.starts_with("certificate_authorities"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(old, text, "mcd dev writes certificate_authorities");
    std::fs::write(&cfg, old).expect("write");
    let dev = Dev::start(dir.path(), Some(&data));
    ok(&put_leaf("leaf-again"));
    let (status, _) = dev.stop(Signal::TERM);
    assert!(status.success());
}
