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
