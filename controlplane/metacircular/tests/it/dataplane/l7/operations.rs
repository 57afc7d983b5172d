//! L7 operations: certificate rotation under load; limits, version
//! policies, the access log, persistence across restarts and the drain on
//! SIGTERM.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::backends::Backends;
use super::{Pki, curl, l7_toml, tls_to};
use crate::peers::{Dataplane, free_port};

fn certificate_rotation_under_load(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (old_chain, old_key, _) = pki.leaf("old", &["rot.test"]);
    let (new_chain, new_key, new_leaf_only) = pki.leaf("new", &["rot.test"]);
    let backends = Backends::new();
    let plain = backends.http("rot");
    let listen = free_port();
    let dp = Dataplane::start(dir.path(), io, &l7_toml(&pki, listen, &[], ""));
    // Upload checks: a leaf without its intermediate, a key of another certificate.
    let out = dp.mcctl(&[
        "proxy",
        "certs",
        "put",
        "rot",
        "--chain",
        &new_leaf_only,
        "--key",
        &new_key,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("intermediate"),
        "{err}"
    );
    let out = dp.mcctl(&[
        "proxy", "certs", "put", "rot", "--chain", &new_chain, "--key", &old_key,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("does not match"),
        "{err}"
    );
    let out = dp.mcctl(&["proxy", "certs", "list", "--json"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "[]",
        "refused uploads store nothing"
    );

    dp.ok(&[
        "proxy", "certs", "put", "rot", "--chain", &old_chain, "--key", &old_key,
    ]);
    dp.ok(&[
        "proxy",
        "routes",
        "add",
        "rot.test",
        "--backend",
        &format!("127.0.0.1:{plain}"),
        "--mode",
        "l7",
        "--cert",
        "rot",
    ]);
    let proxy = dp.listen("public");
    let ca = pki.ca();
    let subject = || {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &proxy.to_string(),
                "-servername",
                "rot.test",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(subject().contains("old leaf"));

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..3)
        .map(|_| {
            let (stop, ok, failed, ca) = (stop.clone(), ok.clone(), failed.clone(), ca.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (code, _) = curl(proxy, &ca, "rot.test", "/", &["--http2"]);
                    if code == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    while ok.load(Ordering::Relaxed) < 10 {
        std::thread::sleep(Duration::from_millis(20));
    }
    dp.ok(&[
        "proxy", "certs", "put", "rot", "--chain", &new_chain, "--key", &new_key,
    ]);
    let before = ok.load(Ordering::Relaxed);
    while ok.load(Ordering::Relaxed) < before + 10 {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().expect("load thread");
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request failed during the rotation"
    );
    assert!(
        subject().contains("new leaf"),
        "new handshakes get the new certificate"
    );
    let out = dp.mcctl(&["proxy", "certs", "remove", "rot"]);
    assert!(!out.status.success(), "a certificate in use is not removed");
}
both_drivers!(certificate_rotation_under_load);

fn limits_versions_access_log_persistence_and_drain(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (chain, key, _) = pki.leaf("site", &["*.l7.test"]);
    let backends = Backends::new();
    let plain = backends.http("plain");
    let (listen, legacy) = (free_port(), free_port());
    let mut toml = l7_toml(&pki, listen, &[], "");
    toml.push_str(&format!(
        "[[proxy.listeners]]\nname = \"legacy\"\naddress = \"127.0.0.1:{legacy}\"\nmin_tls = \"1.2\"\n"
    ));
    let mut dp = Dataplane::start_logged(dir.path(), io, &toml);
    let ca = pki.ca();
    // Bad input changes nothing and says why.
    let out = dp.mcctl(&[
        "proxy",
        "routes",
        "add",
        "a.l7.test",
        "--listener",
        "public",
        "--backend",
        &format!("127.0.0.1:{plain}"),
        "--mode",
        "l7",
        "--cert",
        "missing",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no certificate `missing`"),
        "{err}"
    );
    dp.ok(&[
        "proxy", "certs", "put", "site", "--chain", &chain, "--key", &key,
    ]);
    for listener in ["public", "legacy"] {
        dp.ok(&[
            "proxy",
            "routes",
            "add",
            "a.l7.test",
            "--listener",
            listener,
            "--backend",
            &format!("127.0.0.1:{plain}"),
            "--mode",
            "l7",
            "--cert",
            "site",
            "--header-timeout",
            "1s",
            "--access-log",
        ]);
    }
    let out = dp.mcctl(&[
        "proxy",
        "policies",
        "add",
        "a.l7.test",
        "--listener",
        "public",
        "--require-header",
        "bad header",
    ]);
    assert!(!out.status.success(), "a malformed header name is refused");
    dp.ok(&[
        "proxy",
        "policies",
        "add",
        "a.l7.test",
        "--listener",
        "public",
        "--block-user-agent",
        "evil",
    ]);
    let proxy = dp.listen("public");
    let old = dp.listen("legacy");

    // TLS 1.2 only where the listener allows it.
    let (code, _) = curl(proxy, &ca, "a.l7.test", "/", &["--tls-max", "1.2"]);
    assert_eq!(code, 0, "TLS 1.2 refused by default");
    let (code, body) = curl(old, &ca, "a.l7.test", "/", &["--tls-max", "1.2"]);
    assert_eq!(code, 200, "min_tls = 1.2 allows it: {body}");

    // Session resumption with tickets: the second handshake resumes.
    let sess = dir.path().join("session.pem");
    let s_client = |extra: &[&str]| {
        let mut out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &proxy.to_string(),
                "-servername",
                "a.l7.test",
            ])
            .args(["-CAfile", &ca])
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl");
        // TLS 1.3 tickets follow the handshake: give s_client a moment to
        // read them before its stdin ends the session.
        std::thread::sleep(Duration::from_millis(500));
        drop(out.stdin.take());
        let out = out.wait_with_output().expect("openssl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // (A loaded machine may end s_client before the ticket is read: a few tries.)
    let mut second = String::new();
    for _ in 0..3 {
        let first = s_client(&["-sess_out", &sess.display().to_string()]);
        assert!(first.contains("New, TLSv1.3"), "{first}");
        second = s_client(&["-sess_in", &sess.display().to_string()]);
        if second.contains("Reused, TLSv1.3") {
            break;
        }
    }
    assert!(
        second.contains("Reused, TLSv1.3"),
        "ticket resumption: {second}"
    );

    // Header limits: an oversized header block is refused, not buffered.
    let big = format!("X-Big: {}", "a".repeat(100 * 1024));
    let (code, _) = curl(proxy, &ca, "a.l7.test", "/", &["--http1.1", "-H", &big]);
    assert_eq!(code, 431);

    // A client that never finishes its request headers is closed after
    // request_header_timeout (1 s here; the 20 s bound is only a hang guard).
    backends.rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tls_to(proxy, &ca, "a.l7.test", b"").await;
        s.write_all(b"GET / HTTP/1.1\r\nHost: a.l7.test\r\nX-Slow: ")
            .await
            .expect("write");
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .expect("the proxy closed the slow connection");
        assert!(
            matches!(n, Ok(0) | Err(_)),
            "closed without a response: {n:?}"
        );
    });

    // One access-log line per request.
    let (code, _) = curl(proxy, &ca, "a.l7.test", "/logged-path", &[]);
    assert_eq!(code, 200);
    let log_path = dir.path().join("dataplane.log");
    let mut log = String::new();
    for _ in 0..100 {
        log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("/logged-path") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        log.lines()
            .any(|l| l.contains("/logged-path") && l.contains("status=200")),
        "{log}"
    );

    // Certificates (sealed) and policies survive a restart.
    dp.restart();
    let proxy = dp.listen("public");
    let (code, _) = curl(proxy, &ca, "a.l7.test", "/", &["-A", "evil/1"]);
    assert_eq!(code, 403, "policy kept");
    let (code, body) = curl(proxy, &ca, "a.l7.test", "/", &[]);
    assert_eq!(code, 200, "certificate kept: {body}");
    let sealed = std::fs::read(dir.path().join("mc-proxy/mc-proxy.redb")).expect("redb");
    let key_pem = std::fs::read_to_string(&key).expect("key");
    let key_body = key_pem.lines().nth(1).expect("key line");
    assert!(
        !sealed
            .windows(key_body.len())
            .any(|w| w == key_body.as_bytes()),
        "the private key is not stored in clear"
    );

    // SIGTERM: the request in flight completes, then the process exits.
    let inflight = {
        let ca = ca.clone();
        std::thread::spawn(move || curl(proxy, &ca, "a.l7.test", "/slow?ms=1200", &[]))
    };
    std::thread::sleep(Duration::from_millis(300));
    let pid = rustix::process::Pid::from_raw(dp.child_id().expect("pid") as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("signal");
    let (code, body) = inflight.join().expect("thread");
    assert_eq!(
        code, 200,
        "in-flight request finished during the drain: {body}"
    );
    assert!(dp.wait_exit().success());
}
both_drivers!(limits_versions_access_log_persistence_and_drain);
