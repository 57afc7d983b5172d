//! mc-loadtest against a real TLS 1.3 HTTP/1.1 server (rustls, in this
//! process, on 127.0.0.1): every L4 scenario completes requests without
//! errors and reports what the brief asks; bad input is refused clearly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::Value;

const BIG: usize = 256 * 1024;

struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server: Arc<rustls::ServerConfig>,
}

fn pki(name: &str) -> Pki {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec![name.to_owned()])
        .expect("params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).expect("write CA");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .expect("server config");
    Pki {
        _dir: dir,
        ca,
        server: Arc::new(server),
    }
}

/// An HTTP/1.1 server over TLS: `/` answers "ok\n", `/big` 256 KiB; honours
/// `Connection: close`. One thread per connection; it lives as long as the test.
fn serve(config: Arc<rustls::ServerConfig>) -> SocketAddr {
    listen(move |stream| {
        let _ = handle(config.clone(), stream);
    })
}

/// A listener on 127.0.0.1 calling `handler` on a thread per connection.
fn listen(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let handler = handler.clone();
            std::thread::spawn(move || handler(stream));
        }
    });
    addr
}

fn handle(config: Arc<rustls::ServerConfig>, stream: TcpStream) -> std::io::Result<()> {
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let big = vec![b'x'; BIG];
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let n = tls.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        buf.drain(..end);
        let close = head.contains("connection: close");
        let body: &[u8] = if head.starts_with("get /big ") {
            &big
        } else {
            b"ok\n"
        };
        let conn_header = if close { "Connection: close\r\n" } else { "" };
        write!(
            tls,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{conn_header}\r\n",
            body.len()
        )?;
        tls.write_all(body)?;
        tls.flush()?;
        if close {
            tls.conn.send_close_notify();
            tls.flush()?;
            return Ok(());
        }
    }
}

fn loadtest(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mc-loadtest"))
        .args(args)
        .output()
        .expect("run mc-loadtest")
}

fn report(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "not one JSON line ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn run_scenario(scenario: &str, addr: SocketAddr, ca: &Path, extra: &[&str]) -> Value {
    run_tls_client(scenario, addr, ca, &["--duration", "1s"], extra)
}

/// Runs `command` against `addr` with SNI app.test, reporting on this
/// process (`--pid`); it must succeed.
fn run_tls_client(
    command: &str,
    addr: SocketAddr,
    ca: &Path,
    bounds: &[&str],
    extra: &[&str],
) -> Value {
    let target = addr.to_string();
    let pid = std::process::id().to_string();
    let mut args = vec![
        command,
        "--target",
        &target,
        "--sni",
        "app.test",
        "--ca",
        ca.to_str().expect("utf-8 path"),
        "--label",
        "test",
        "--pid",
        &pid,
    ];
    args.extend_from_slice(bounds);
    args.extend_from_slice(extra);
    let out = loadtest(&args);
    assert!(
        out.status.success(),
        "{command} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    report(&out)
}

fn check_common(r: &Value, scenario: &str) {
    assert_eq!(r["scenario"], scenario);
    assert_eq!(r["target"], "test");
    assert!(r["requests"].as_u64().unwrap_or(0) > 0, "{r}");
    assert_eq!(r["errors_total"], 0, "{r}");
    assert_eq!(
        r["tls"], "TLSv1_3 TLS13_AES_128_GCM_SHA256 X25519",
        "the suite and group every peer is measured with"
    );
    for p in ["p50", "p90", "p99", "p99.9"] {
        assert!(r["latency_us"][p].as_u64().unwrap_or(0) > 0, "{p}: {r}");
    }
    assert!(r["server_cpu_s"].as_f64().is_some(), "{r}");
    assert!(r["server_peak_rss_kib"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(r["server_cpu_us_per_req"].as_f64().is_some(), "{r}");
}

#[test]
fn keep_alive_scenarios_reuse_connections() {
    for scenario in ["l4-ka", "l7-h1"] {
        keep_alive_reuses_connections(scenario);
    }
}

fn keep_alive_reuses_connections(scenario: &str) {
    let pki = pki("app.test");
    let addr = serve(pki.server.clone());
    let r = run_scenario(scenario, addr, &pki.ca, &["--connections", "4"]);
    check_common(&r, scenario);
    assert_eq!(
        r["connects"], 4,
        "keep-alive opens each connection once: {r}"
    );
    assert!(r["requests"].as_u64().unwrap_or(0) > 4);
}

#[test]
fn conn_scenarios_open_a_connection_per_request() {
    for scenario in ["l4-conn", "l7-conn"] {
        opens_a_connection_per_request(scenario);
    }
}

fn opens_a_connection_per_request(scenario: &str) {
    let pki = pki("app.test");
    let addr = serve(pki.server.clone());
    let r = run_scenario(scenario, addr, &pki.ca, &["--connections", "2"]);
    check_common(&r, scenario);
    let requests = r["requests"].as_u64().unwrap_or(0);
    let connects = r["connects"].as_u64().unwrap_or(0);
    // Each slot may have one connection open when the run ends.
    assert!(
        connects >= requests && connects <= requests + 2,
        "{connects} connections for {requests} requests"
    );
}

#[test]
fn l4_bulk_reports_mib() {
    let pki = pki("app.test");
    let addr = serve(pki.server.clone());
    let r = run_scenario(
        "l4-bulk",
        addr,
        &pki.ca,
        &["--path", "/big", "--requests", "40"],
    );
    check_common(&r, "l4-bulk");
    assert_eq!(r["unit"], "MiB/s");
    assert_eq!(r["requests"], 40, "--requests bounds the run: {r}");
    assert!(r["mib_per_s"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(r["server_cpu_us_per_mib"].as_f64().is_some(), "{r}");
}

#[test]
fn a_wrong_ca_is_a_tls_error() {
    let pki_a = pki("app.test");
    let pki_b = pki("app.test");
    let addr = serve(pki_a.server.clone());
    let target = addr.to_string();
    let out = loadtest(&[
        "l4-ka",
        "--target",
        &target,
        "--sni",
        "app.test",
        "--ca",
        pki_b.ca.to_str().expect("path"),
        "--duration",
        "500ms",
    ]);
    assert_eq!(out.status.code(), Some(1), "no request completed");
    let r = report(&out);
    assert_eq!(r["requests"], 0);
    assert!(r["errors"]["tls"].as_u64().unwrap_or(0) > 0, "{r}");
}

#[test]
fn refuses_targets_off_this_machine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "").expect("write");
    for target in ["192.0.2.1:443", "10.0.0.1:443"] {
        let out = loadtest(&[
            "l4-conn",
            "--target",
            target,
            "--sni",
            "app.test",
            "--ca",
            ca.to_str().expect("path"),
        ]);
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty(), "no load, no report");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a loopback address"), "{err}");
    }
}

/// A DNS-over-TCP responder (RFC 7766 framing): answers every query with QR
/// set, NXDOMAIN for names starting with `nx` and NOERROR otherwise. The
/// queries of one read are answered in reverse order (the client must match
/// by id), and after `close_after` answers (if given) it closes the
/// connection. One thread per connection; it lives as long as the test.
fn serve_dns_tcp(close_after: Option<usize>) -> SocketAddr {
    listen(move |stream| {
        let _ = answer_dns_tcp(stream, close_after);
    })
}

fn answer_dns_tcp(mut stream: TcpStream, close_after: Option<usize>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut answered = 0;
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut msgs = Vec::new();
        let mut at = 0;
        while buf.len() >= at + 2 {
            let len = usize::from(u16::from_be_bytes([buf[at], buf[at + 1]]));
            if buf.len() < at + 2 + len {
                break;
            }
            let mut m = buf[at + 2..at + 2 + len].to_vec();
            m[2] |= 0x80;
            let nx = m.get(13..15) == Some(b"nx");
            m[3] = (m[3] & 0xf0) | if nx { 3 } else { 0 };
            msgs.push(m);
            at += 2 + len;
        }
        buf.drain(..at);
        let mut out = Vec::new();
        for m in msgs.iter().rev() {
            out.extend_from_slice(&u16::try_from(m.len()).expect("short").to_be_bytes());
            out.extend_from_slice(m);
            answered += 1;
            if close_after.is_some_and(|c| answered >= c) {
                stream.write_all(&out)?;
                return Ok(());
            }
        }
        stream.write_all(&out)?;
    }
}

fn dns_tcp(addr: SocketAddr, extra: &[&str]) -> (Output, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let queries = dir.path().join("queries.txt");
    std::fs::write(&queries, "a.example A\nnx.example AAAA\n").expect("write");
    let target = addr.to_string();
    let pid = std::process::id().to_string();
    let mut args = vec![
        "dns-tcp",
        "--target",
        &target,
        "--queries",
        queries.to_str().expect("utf-8 path"),
        "--label",
        "test",
        "--duration",
        "5s",
        "--pid",
        &pid,
    ];
    args.extend_from_slice(extra);
    let out = loadtest(&args);
    let r = report(&out);
    (out, r)
}

#[test]
fn dns_tcp_pipelines_over_long_connections() {
    let addr = serve_dns_tcp(None);
    let (out, r) = dns_tcp(
        addr,
        &[
            "--connections",
            "3",
            "--pipeline",
            "8",
            "--requests",
            "3000",
        ],
    );
    assert!(out.status.success(), "{r}");
    assert_eq!(r["scenario"], "dns-tcp");
    assert_eq!(r["errors_total"], 0, "{r}");
    let requests = r["requests"].as_u64().unwrap_or(0);
    assert!(requests >= 3000, "{r}");
    assert_eq!(r["connects"], 3, "long connections: {r}");
    assert_eq!(r["reconnects"], 0, "{r}");
    assert_eq!(r["pipeline"], 8);
    assert_eq!(r["in_flight"], 24);
    let noerror = r["rcodes"]["NOERROR"].as_u64().unwrap_or(0);
    let nxdomain = r["rcodes"]["NXDOMAIN"].as_u64().unwrap_or(0);
    assert_eq!(noerror + nxdomain, requests, "{r}");
    assert!(noerror > 0 && nxdomain > 0, "{r}");
    for p in ["p50", "p99", "max"] {
        assert!(r["latency_us"][p].as_u64().unwrap_or(0) > 0, "{p}: {r}");
    }
    assert!(r["server_cpu_us_per_req"].as_f64().is_some(), "{r}");
    assert!(r["server_peak_rss_kib"].as_u64().unwrap_or(0) > 0, "{r}");
}

#[test]
fn dns_tcp_reconnects_when_the_server_closes() {
    let addr = serve_dns_tcp(Some(50));
    let (out, r) = dns_tcp(
        addr,
        &["--connections", "2", "--pipeline", "4", "--requests", "500"],
    );
    assert!(out.status.success(), "{r}");
    let reconnects = r["reconnects"].as_u64().unwrap_or(0);
    assert!(reconnects >= 5, "500 answers, 50 per connection: {r}");
    assert_eq!(r["connects"].as_u64(), Some(reconnects + 2), "{r}");
    // Queries outstanding when the server closed are the only errors: `eof`,
    // or `reset` when the server closed with queries still unread.
    let total = r["errors_total"].as_u64().unwrap_or(0);
    let closed =
        r["errors"]["eof"].as_u64().unwrap_or(0) + r["errors"]["reset"].as_u64().unwrap_or(0);
    assert_eq!(closed, total, "{r}");
    assert!(total <= 4 * reconnects + 8, "{r}");
}

#[test]
fn dns_tcp_refuses_bad_input() {
    let addr = serve_dns_tcp(None);
    for (extra, msg) in [
        (&["--pipeline", "65"][..], "--pipeline must be 1 to 64"),
        (&["--pipeline", "0"][..], "--pipeline must be 1 to 64"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let queries = dir.path().join("q.txt");
        std::fs::write(&queries, "a.example A\n").expect("write");
        let target = addr.to_string();
        let mut args = vec![
            "dns-tcp",
            "--target",
            &target,
            "--queries",
            queries.to_str().expect("path"),
        ];
        args.extend_from_slice(extra);
        let out = loadtest(&args);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        assert!(out.stdout.is_empty(), "no load, no report");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{err}");
    }
    let out = loadtest(&[
        "dns-tcp",
        "--target",
        "127.0.0.1:53",
        "--queries",
        "/nonexistent",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading --queries"));
}

#[test]
fn dns_tcp_counts_refused_connections() {
    // A port nothing listens on (bound, then closed).
    let addr = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let queries = dir.path().join("q.txt");
    std::fs::write(&queries, "a.example A\n").expect("write");
    let target = addr.to_string();
    let out = loadtest(&[
        "dns-tcp",
        "--target",
        &target,
        "--queries",
        queries.to_str().expect("path"),
        "--duration",
        "300ms",
    ]);
    assert_eq!(out.status.code(), Some(1), "no request completed");
    let r = report(&out);
    assert_eq!(r["requests"], 0);
    assert!(r["errors"]["connect"].as_u64().unwrap_or(0) > 0, "{r}");
}

/// An HTTP/2 server just far enough for `idle --h2`: after the TLS handshake
/// (ALPN h2) it reads the client preface, sends its own SETTINGS, and then
/// reads until the client closes.
fn serve_h2_idle(pki: &Pki) -> SocketAddr {
    let mut config = (*pki.server).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let config = Arc::new(config);
    listen(move |stream| {
        let _ = hold_h2(config.clone(), stream);
    })
}

fn hold_h2(config: Arc<rustls::ServerConfig>, stream: TcpStream) -> std::io::Result<()> {
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut preface = [0u8; 24];
    tls.read_exact(&mut preface)?;
    assert_eq!(&preface, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    tls.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])?;
    tls.flush()?;
    let mut chunk = [0u8; 1024];
    while tls.read(&mut chunk)? > 0 {}
    Ok(())
}

fn idle(addr: SocketAddr, ca: &Path, extra: &[&str]) -> Value {
    let bounds = ["--connections", "20", "--hold", "200ms"];
    run_tls_client("idle", addr, ca, &bounds, extra)
}

#[test]
fn idle_holds_connections_and_reports_rss_per_connection() {
    let pki = pki("app.test");
    for (scenario, addr, extra) in [
        ("idle-l4", serve(pki.server.clone()), &[][..]),
        ("idle-h2", serve_h2_idle(&pki), &["--h2"][..]),
    ] {
        let r = idle(addr, &pki.ca, extra);
        assert_eq!(r["scenario"], scenario);
        assert_eq!(r["held"], 20, "{r}");
        assert_eq!(r["connects"], 20, "{r}");
        assert_eq!(r["errors_total"], 0, "{r}");
        assert_eq!(r["unit"], "KiB/conn");
        let before = r["rss_before_kib"].as_u64().unwrap_or(0);
        let after = r["rss_after_kib"].as_u64().unwrap_or(0);
        assert!(before > 0 && after > 0, "{r}");
        let per_conn = r["rss_kib_per_conn"].as_f64().expect("per connection");
        let expected = (after as f64 - before as f64) / 20.0;
        assert!((per_conn - expected).abs() < 0.01, "{r}");
        assert_eq!(r["throughput"], r["rss_kib_per_conn"]);
    }
}

#[test]
fn idle_h2_needs_alpn_h2() {
    // The HTTP/1.1 server offers no ALPN: every connection is a protocol error.
    let pki = pki("app.test");
    let addr = serve(pki.server.clone());
    let target = addr.to_string();
    let pid = std::process::id().to_string();
    let out = loadtest(&[
        "idle",
        "--target",
        &target,
        "--sni",
        "app.test",
        "--ca",
        pki.ca.to_str().expect("path"),
        "--connections",
        "3",
        "--hold",
        "100ms",
        "--h2",
        "--pid",
        &pid,
    ]);
    assert_eq!(out.status.code(), Some(1), "no connection held");
    let r = report(&out);
    assert_eq!(r["errors"]["protocol"], 3, "{r}");
}
