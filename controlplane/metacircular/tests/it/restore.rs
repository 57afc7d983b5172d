//! The restore drill: a dev node with an account (password, TOTP and a
//! passkey), an L7 certificate, routes and a zone is snapshotted online
//! (both processes), every store is restored into an empty data dir whose
//! configs use other ports, and the restored node logs the same people in,
//! serves the same certificate and answers the same names.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::{Value, json};

use crate::controlplane::iam::passkey::Soft;
use crate::controlplane::iam::{jwt_kid, oathtool};
use crate::peers::free_port;
use crate::support::{Dev, curl, mcctl, mcd, rest_call, run};

/// A one-answer HTTP/1.1 backend for the L7 route; returns its port.
fn http_backend(body: &'static str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&conn);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut conn = &conn;
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

/// A node's view for the drill: its endpoints and how to reach its APIs.
struct Node<'a> {
    dev: &'a Dev,
    cwd: &'a Path,
}

impl Node<'_> {
    fn rest(&self) -> String {
        self.dev.endpoints["controlplane"]["rest"]
            .as_str()
            .expect("rest")
            .to_owned()
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        rest_call(&self.rest(), &self.dev.ca(), method, path, token, body)
    }

    fn token(&self, user: &str, password: &str) -> String {
        let (code, body) = self.call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"username": user, "password": password})),
        );
        assert_eq!(code, 200, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// `https://localhost:<REST port>`: the WebAuthn origin MCIAS expects.
    fn origin(&self) -> String {
        let port = self.rest().rsplit(':').next().expect("port").to_owned();
        format!("https://localhost:{port}")
    }

    fn mcctl(&self, args: &[&str]) -> String {
        let endpoints = self.dev.data_dir.join("endpoints.json");
        let mut all = vec!["--endpoints", endpoints.to_str().expect("utf8")];
        all.extend_from_slice(args);
        let out = run(&mcctl(), &all, self.cwd);
        assert!(
            out.status.success(),
            "mcctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn proxy_port(&self) -> String {
        let listen = self.dev.endpoints["proxy"]["listen"]
            .as_str()
            .expect("proxy listen");
        listen.rsplit(':').next().expect("port").to_owned()
    }

    /// GET `https://app.test/` through the proxy, trusting only the CA `ca`.
    fn through_proxy(&self, ca: &str) -> (u16, String) {
        let port = self.proxy_port();
        curl(&[
            "--cacert",
            ca,
            "--resolve",
            &format!("app.test:{port}:127.0.0.1"),
            &format!("https://app.test:{port}/"),
        ])
    }

    fn dig(&self, name: &str) -> String {
        let listen = self.dev.endpoints["dns"]["listen"].as_str().expect("dns");
        let (host, port) = listen.rsplit_once(':').expect("host:port");
        let out = Command::new("dig")
            .args([
                &format!("@{host}"),
                "-p",
                port,
                name,
                "A",
                "+short",
                "+tries=1",
                "+time=5",
            ])
            .output()
            .expect("dig (scripts/test installs bind9-dnsutils)");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// `mcd snapshot <component>` into `dir`; `(store, snapshot path)` per store,
/// and the key files listed.
fn snapshot(
    cwd: &Path,
    component: &str,
    config: &Path,
    dir: &Path,
) -> (Vec<(String, String)>, Vec<String>) {
    let out = run(
        &mcd(),
        &[
            "snapshot",
            component,
            "--config",
            config.to_str().expect("utf8"),
            "--dir",
            dir.to_str().expect("utf8"),
        ],
        cwd,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (mut stores, mut keys) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        match cols[..] {
            [store, path, "key file"] => keys.push(format!("{store}:{path}")),
            [store, path, ..] if path.ends_with(".redb") => {
                stores.push((store.to_owned(), path.to_owned()));
            }
            _ => {}
        }
    }
    (stores, keys)
}

/// The old node's config for the new data dir: paths moved, every
/// `127.0.0.1:<port>` replaced by a free port.
fn moved_config(text: &str, from: &Path, to: &Path) -> String {
    let text = text.replace(from.to_str().expect("utf8"), to.to_str().expect("utf8"));
    let mut ports = BTreeMap::new();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("127.0.0.1:") {
        let (head, tail) = rest.split_at(at + "127.0.0.1:".len());
        out.push_str(head);
        let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            let new = *ports.entry(digits.clone()).or_insert_with(|| {
                loop {
                    // DNS serves TCP and UDP on one port.
                    let p = free_port();
                    if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
                        break p;
                    }
                }
            });
            out.push_str(&new.to_string());
        }
        rest = &tail[digits.len()..];
    }
    out.push_str(rest);
    out
}

fn restore(cwd: &Path, component: &str, config: &Path, store: &str, from: &str) -> String {
    let out = run(
        &mcd(),
        &[
            "restore",
            component,
            "--config",
            config.to_str().expect("utf8"),
            "--store",
            store,
            "--from",
            from,
        ],
        cwd,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_node_restored_from_its_snapshots_logs_in_serves_and_answers_as_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path();
    let old_dir = cwd.join("old");
    // The L7 certificate chains to a test CA the proxy is told to trust
    // (the generated dev config is the operator's to edit).
    let pki = cwd.join("pki");
    std::fs::create_dir(&pki).expect("mkdir");
    let pki = crate::dataplane::l7::Pki::new(&pki);
    let (chain, chain_key, _) = pki.leaf("app", &["app.test"]);
    let ca = pki.ca();
    let (status, _) = Dev::start(cwd, Some(&old_dir)).stop(Signal::TERM);
    assert!(status.success());
    let dp_config = old_dir.join("dataplane.toml");
    let text = std::fs::read_to_string(&dp_config).expect("dataplane.toml");
    // `mcd dev` writes its own list (its dev CA, the system bundle): add ours to it.
    let text = text.replacen(
        "certificate_authorities = [",
        &format!("certificate_authorities = [\"{ca}\", "),
        1,
    );
    assert!(
        text.contains(&ca),
        "dataplane.toml has no certificate_authorities list"
    );
    std::fs::write(&dp_config, text).expect("dataplane.toml");
    let dev = Dev::start(cwd, Some(&old_dir));
    let old = Node { dev: &dev, cwd };
    let admin_password = dev.endpoints["bootstrap"]["password"]
        .as_str()
        .expect("bootstrap password")
        .to_owned();

    // An account with a password, TOTP and a passkey.
    let admin = old.token("admin", &admin_password);
    let pw = "erin's long password";
    let (code, body) = old.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(json!({"username": "erin", "password": pw, "roles": ["user"]})),
    );
    assert_eq!(code, 201, "{body}");
    let erin = old.token("erin", pw);
    let (code, e) = old.call(
        "POST",
        "/v1/iam/totp/enroll",
        Some(&erin),
        Some(json!({"password": pw})),
    );
    assert_eq!(code, 200, "{e}");
    let secret = e["secret"].as_str().expect("secret").to_owned();
    let confirm = json!({"code": oathtool(&secret, 0)});
    assert_eq!(
        old.call("POST", "/v1/iam/totp/confirm", Some(&erin), Some(confirm))
            .0,
        204
    );
    let mut key = Soft::new(&old.origin());
    let (code, begin) = old.call(
        "POST",
        "/v1/iam/passkeys/register/begin",
        Some(&erin),
        Some(json!({"password": pw})),
    );
    assert_eq!(code, 200, "{begin}");
    let credential = key.register(&begin["options"]);
    let finish = json!({"challenge_id": begin["challenge_id"], "credential": credential, "name": "drill key"});
    let (code, body) = old.call(
        "POST",
        "/v1/iam/passkeys/register/finish",
        Some(&erin),
        Some(finish),
    );
    assert_eq!(code, 201, "{body}");

    // An L7 certificate and route, an L4 route, a zone.
    let backend = http_backend("served by the drill backend");
    let echo = crate::peers::echo_backend();
    old.mcctl(&[
        "proxy", "certs", "put", "app", "--chain", &chain, "--key", &chain_key,
    ]);
    old.mcctl(&[
        "proxy",
        "routes",
        "add",
        "app.test",
        "--backend",
        &format!("127.0.0.1:{backend}"),
        "--mode",
        "l7",
        "--cert",
        "app",
    ]);
    old.mcctl(&[
        "proxy",
        "routes",
        "add",
        "raw.test",
        "--backend",
        &format!("127.0.0.1:{echo}"),
    ]);
    old.mcctl(&[
        "dns",
        "zones",
        "create",
        "drill.test",
        "--ns",
        "ns1.drill.test",
    ]);
    old.mcctl(&[
        "dns",
        "records",
        "add",
        "drill.test",
        "www",
        "A",
        "192.0.2.77",
    ]);
    assert_eq!(
        old.through_proxy(&ca),
        (200, "served by the drill backend".to_owned())
    );
    assert_eq!(old.dig("www.drill.test"), "192.0.2.77");
    let routes_before = old.mcctl(&["proxy", "routes", "list"]);

    // `mcd dev` initialises Metacrypt in the background: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while old.call("GET", "/v1/crypt/sys/status", None, None).1["state"] != "unsealed" {
        assert!(
            std::time::Instant::now() < deadline,
            "metacrypt never unsealed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Online snapshots of both processes: stores and their key files.
    let snaps = cwd.join("snaps");
    let cp_config = old_dir.join("controlplane.toml");
    let (cp_stores, cp_keys) = snapshot(cwd, "controlplane", &cp_config, &snaps);
    let (dp_stores, dp_keys) = snapshot(cwd, "dataplane", &dp_config, &snaps);
    assert!(
        cp_keys
            .iter()
            .any(|k| k.starts_with("mcias:") && k.ends_with(".master.key")),
        "{cp_keys:?}"
    );
    assert!(
        dp_keys
            .iter()
            .any(|k| k.starts_with("mc-proxy:") && k.ends_with(".cert-seal.key")),
        "{dp_keys:?}"
    );
    let old_rest = old.rest();
    let (status, _) = dev.stop(Signal::TERM);
    assert!(status.success());

    // An empty data dir, the same configs on other ports; every store restored.
    let new_dir = cwd.join("new");
    std::fs::create_dir(&new_dir).expect("mkdir");
    for file in ["controlplane.toml", "dataplane.toml"] {
        let text = std::fs::read_to_string(old_dir.join(file)).expect("config");
        std::fs::write(new_dir.join(file), moved_config(&text, &old_dir, &new_dir)).expect("write");
    }
    // The configs name TLS files (in production they live outside the data
    // dir, under the operator's care): they come along with the configs.
    std::fs::create_dir(new_dir.join("tls")).expect("mkdir");
    for entry in std::fs::read_dir(old_dir.join("tls")).expect("tls dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), new_dir.join("tls").join(entry.file_name())).expect("copy");
    }
    for file in ["ca.pem", "ca-key.pem"] {
        std::fs::copy(old_dir.join(file), new_dir.join(file)).expect("copy the dev CA");
    }
    let new_cp = new_dir.join("controlplane.toml");
    let new_dp = new_dir.join("dataplane.toml");
    let mut restored = Vec::new();
    for (store, path) in &cp_stores {
        restored.push(restore(cwd, "controlplane", &new_cp, store, path));
    }
    for (store, path) in &dp_stores {
        restored.push(restore(cwd, "dataplane", &new_dp, store, path));
    }
    let restored = restored.concat();
    assert!(restored.contains("master.key from"), "{restored}");
    assert!(restored.contains("cert-seal.key from"), "{restored}");
    assert!(new_dir.join("mcias/master.key").is_file());

    let dev = Dev::start(cwd, Some(&new_dir));
    let new = Node { dev: &dev, cwd };
    assert_ne!(
        new.rest(),
        old_rest,
        "the restored node runs on other ports"
    );

    // The same people log in: the admin by password, erin with her TOTP
    // code, then with her passkey.
    let admin = new.token("admin", &admin_password);
    let (code, body) = new.call("GET", "/v1/iam/accounts", Some(&admin), None);
    assert_eq!(code, 200, "{body}");
    assert!(body.to_string().contains("erin"), "{body}");
    // Metacrypt's store came back sealed (a snapshot holds no unseal
    // material) and opens with the original node's passphrase.
    let (code, body) = new.call("GET", "/v1/crypt/sys/status", None, None);
    assert_eq!(
        (code, body["state"].as_str()),
        (200, Some("sealed")),
        "{body}"
    );
    let pass =
        std::fs::read_to_string(old_dir.join("metacrypt/dev-passphrase")).expect("dev passphrase");
    let (code, body) = new.call(
        "POST",
        "/v1/crypt/sys/unseal",
        Some(&admin),
        Some(serde_json::json!({"passphrase": pass.trim()})),
    );
    assert_eq!(
        (code, body["state"].as_str()),
        (200, Some("unsealed")),
        "{body}"
    );
    let (code, body) = new.call(
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({"username": "erin", "password": pw, "totp_code": oathtool(&secret, 30)})),
    );
    assert_eq!(code, 200, "TOTP login after restore: {body}");
    key.at(&new.origin());
    let (code, begin) = new.call(
        "POST",
        "/v1/auth/passkey/begin",
        None,
        Some(json!({"username": "erin", "service_name": "drill"})),
    );
    assert_eq!(code, 200, "{begin}");
    let assertion = key.assert(&begin["options"]);
    let (code, body) = new.call(
        "POST",
        "/v1/auth/passkey/finish",
        None,
        Some(json!({"challenge_id": begin["challenge_id"], "credential": assertion})),
    );
    assert_eq!(code, 200, "passkey login after restore: {body}");
    // Tokens name their issuer (the REST URL, now another port), so old
    // ones are refused here; what must survive is the signing key itself.
    let token = body["token"].as_str().expect("token");
    assert_eq!(jwt_kid(token), jwt_kid(&erin), "the signing key came back");
    let (code, body) = new.call("GET", "/v1/iam/passkeys", Some(token), None);
    assert_eq!(code, 200, "{body}");
    assert!(body.to_string().contains("drill key"), "{body}");

    // The same certificate, routes and names.
    assert_eq!(
        new.through_proxy(&ca),
        (200, "served by the drill backend".to_owned())
    );
    assert_eq!(new.mcctl(&["proxy", "routes", "list"]), routes_before);
    assert_eq!(new.dig("www.drill.test"), "192.0.2.77");
    let (status, _) = dev.stop(Signal::TERM);
    assert!(status.success());
}

/// A child that fails at start-up makes `mcd dev` exit non-zero with its
/// error instead of waiting for it forever.
#[test]
fn dev_exits_non_zero_when_the_control_plane_cannot_open_its_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("state");
    let dev = Dev::start(dir.path(), Some(&data));
    let (status, _) = dev.stop(Signal::TERM);
    assert!(status.success());
    // Another master key: the signing keys in the store no longer open.
    let key: PathBuf = data.join("mcias/master.key");
    std::fs::write(&key, [7_u8; 32]).expect("replace the key");
    let mut child = Command::new(mcd())
        .args(["dev", "--data-dir"])
        .arg(&data)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mcd dev");
    // A hang guard, not a timing assertion: before the fix it never exited.
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mcd dev hung after its control plane failed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(!status.success());
    assert!(stderr.contains("master key"), "{stderr}");
    assert!(
        stderr.contains("mcd controlplane exited during start-up"),
        "{stderr}"
    );
}
