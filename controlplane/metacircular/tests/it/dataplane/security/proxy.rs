//! MC-Proxy L7 under attack: requests whose host is not the one the TLS
//! connection was admitted for (8), `Upgrade: h2c` smuggling (9), spoofed
//! forwarding headers (10), and a certificate upload whose chain ends in a
//! self-signed certificate nobody configured (11). The backend records
//! every request it sees, so "never forwarded" is asserted, not assumed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::dataplane::l7::{Pki, curl, l7_toml, route, tls_to};
use crate::peers::{Dataplane, free_port};

type BoxBody = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

/// A backend that records each request head it receives ("GET /path" then
/// `name: value` lines) and answers it with that text. Like a backend that
/// speaks h2c, it accepts any `Upgrade` with a 101 and then sends
/// `TUNNEL` on the raw connection.
struct Recorder {
    rt: tokio::runtime::Runtime,
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn record(
    seen: Arc<Mutex<Vec<String>>>,
    mut req: hyper::Request<Incoming>,
) -> Result<hyper::Response<BoxBody>, Infallible> {
    let mut head = format!("{} {}\n", req.method(), req.uri());
    for (k, v) in req.headers() {
        head.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    seen.lock().expect("lock").push(head.clone());
    if let Some(proto) = req.headers().get("upgrade").cloned() {
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            if let Ok(up) = upgrade.await {
                let mut io = TokioIo::new(up);
                let _ = io.write_all(b"TUNNEL").await;
                let _ = io.shutdown().await;
            }
        });
        let mut r = hyper::Response::new(Full::new(Bytes::new()).map_err(|n| match n {}).boxed());
        *r.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut().insert("upgrade", proto);
        r.headers_mut().insert(
            "connection",
            hyper::header::HeaderValue::from_static("upgrade"),
        );
        return Ok(r);
    }
    Ok(hyper::Response::new(
        Full::new(Bytes::from(head)).map_err(|n| match n {}).boxed(),
    ))
}

impl Recorder {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |r| record(s.clone(), r));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { rt, port, seen }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().expect("lock"))
    }
}

/// One raw HTTP/1.1 exchange over TLS to `proxy` with SNI `sni`; the
/// request should ask for `Connection: close`. Returns everything read.
fn raw(rec: &Recorder, proxy: SocketAddr, ca: &str, sni: &str, request: &str) -> String {
    rec.rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tls = tls_to(proxy, ca, sni, b"").await;
        tls.write_all(request.as_bytes()).await.expect("request");
        let mut out = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tls.read_to_end(&mut out),
        )
        .await;
        String::from_utf8_lossy(&out).into_owned()
    })
}

/// `www.w.test` and `adm.w.test` on one certificate (so a client may
/// coalesce them), both to the recorder; `adm` requires `x-admin: yes`.
fn setup(dir: &std::path::Path, io: &str) -> (Pki, Recorder, Dataplane, SocketAddr) {
    let pki = Pki::new(dir);
    let (chain, key, _) = pki.leaf("w", &["www.w.test", "adm.w.test"]);
    let rec = Recorder::start();
    let listen = free_port();
    let routes = [
        route("www.w.test", rec.port, "certificate = \"w\""),
        route("adm.w.test", rec.port, "certificate = \"w\""),
    ]
    .concat();
    let dp = Dataplane::start(
        dir,
        io,
        &l7_toml(&pki, listen, &[("w", &chain, &key)], &routes),
    );
    dp.ok(&[
        "proxy",
        "policies",
        "add",
        "adm.w.test",
        "--require-header",
        "x-admin=yes",
    ]);
    let proxy = dp.listen("public");
    (pki, rec, dp, proxy)
}

/// Item 8: SNI `www.w.test` with `Host: adm.w.test` (HTTP/1.1), with
/// `:authority: adm.w.test` (HTTP/2), and with an absolute-form target,
/// must not reach the backend (which would serve `adm` without `adm`'s
/// policy): 421, or 400 when the target and Host disagree. The matching
/// host still works, port in Host ignored; `adm`'s own policy still holds.
fn host_sni_mismatch_is_misdirected(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pki, rec, _dp, proxy) = setup(dir.path(), io);
    let ca = pki.ca();

    // HTTP/1.1: Host names the other route.
    let out = raw(
        &rec,
        proxy,
        &ca,
        "www.w.test",
        "GET /secret HTTP/1.1\r\nHost: adm.w.test\r\nConnection: close\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 421"), "{out}");
    // HTTP/2: curl turns the Host header into `:authority`.
    let (code, body) = curl(
        proxy,
        &ca,
        "www.w.test",
        "/secret",
        &["--http2", "-H", "Host: adm.w.test"],
    );
    assert_eq!(code, 421, "{body}");
    let (code, body) = curl(
        proxy,
        &ca,
        "www.w.test",
        "/secret",
        &["--http1.1", "-H", "Host: ADM.w.test:443"],
    );
    assert_eq!(code, 421, "{body}");
    // Absolute form naming the other route: 421; disagreeing with Host: 400.
    let out = raw(
        &rec,
        proxy,
        &ca,
        "www.w.test",
        "GET https://adm.w.test/secret HTTP/1.1\r\nHost: adm.w.test\r\nConnection: close\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 421"), "{out}");
    let out = raw(
        &rec,
        proxy,
        &ca,
        "www.w.test",
        "GET https://adm.w.test/secret HTTP/1.1\r\nHost: www.w.test\r\nConnection: close\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    // A host no route serves, on a connection admitted by SNI: 421.
    let out = raw(
        &rec,
        proxy,
        &ca,
        "www.w.test",
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 421"), "{out}");
    let seen = rec.take();
    assert!(
        seen.is_empty(),
        "the backend saw misdirected requests: {seen:?}"
    );

    // The matching host works (port ignored), over both versions.
    for client in ["--http2", "--http1.1"] {
        let (code, body) = curl(proxy, &ca, "www.w.test", "/ok", &[client]);
        assert_eq!(code, 200, "{client}: {body}");
        let (code, body) = curl(
            proxy,
            &ca,
            "www.w.test",
            "/ok",
            &[client, "-H", "Host: www.w.test:8443"],
        );
        assert_eq!(code, 200, "{client}: {body}");
    }
    // adm, asked for properly, still applies its policy.
    let (code, _) = curl(proxy, &ca, "adm.w.test", "/secret", &[]);
    assert_eq!(code, 403);
    let (code, body) = curl(proxy, &ca, "adm.w.test", "/secret", &["-H", "x-admin: yes"]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(rec.take().len(), 5);
}
both_drivers!(host_sni_mismatch_is_misdirected);

/// Item 9: `Upgrade: h2c` with `HTTP2-Settings` must not be forwarded (a
/// backend that speaks h2c would answer 101 and the proxy would splice a
/// tunnel past every policy): the backend sees a plain request and the
/// client a plain 200, no 101, no tunnel bytes.
fn h2c_upgrade_is_not_forwarded(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pki, rec, _dp, proxy) = setup(dir.path(), io);
    let ca = pki.ca();
    let out = raw(
        &rec,
        proxy,
        &ca,
        "www.w.test",
        "GET /h2c HTTP/1.1\r\nHost: www.w.test\r\nConnection: Upgrade, HTTP2-Settings, close\r\n\
         Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(!out.contains("TUNNEL"), "{out}");
    let seen = rec.take();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let head = seen.concat().to_ascii_lowercase();
    assert!(!head.contains("upgrade"), "Upgrade forwarded: {head}");
    assert!(
        !head.contains("http2-settings"),
        "HTTP2-Settings forwarded: {head}"
    );
    // The same with HTTP2-Settings not named in Connection.
    let out = raw(
        &rec,
        proxy,
        &ca,
        "www.w.test",
        "GET /h2c HTTP/1.1\r\nHost: www.w.test\r\nConnection: upgrade, close\r\n\
         Upgrade: H2C\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(!out.contains("TUNNEL"), "{out}");
    let head = rec.take().concat().to_ascii_lowercase();
    assert!(
        !head.contains("upgrade") && !head.contains("http2-settings"),
        "{head}"
    );
}
both_drivers!(h2c_upgrade_is_not_forwarded);

/// Item 10: a client's own `Forwarded`, `X-Forwarded-For`, `X-Real-IP`,
/// `X-Forwarded-Proto` and `X-Forwarded-Host` are dropped; the backend
/// sees only the proxy's values for 127.0.0.1. A Host ending in `\` (which
/// turned `host="…\"` into a quoted-pair an RFC 7239 parser reads past) is
/// refused before any backend sees it.
fn forwarding_headers_are_not_spoofable(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pki, rec, _dp, proxy) = setup(dir.path(), io);
    let ca = pki.ca();
    let spoof = [
        "-H",
        "Forwarded: for=6.6.6.6;proto=http",
        "-H",
        "X-Forwarded-For: 6.6.6.6",
        "-H",
        "X-Real-IP: 6.6.6.6",
        "-H",
        "X-Forwarded-Proto: http",
        "-H",
        "X-Forwarded-Host: evil.example",
    ];
    let port = proxy.port();
    for client in ["--http2", "--http1.1"] {
        let mut args = vec![client];
        args.extend(spoof);
        let (code, body) = curl(proxy, &ca, "www.w.test", "/fwd", &args);
        assert_eq!(code, 200, "{client}: {body}");
        assert!(
            !body.contains("6.6.6.6") && !body.contains("evil"),
            "{client}: {body}"
        );
        for line in [
            format!("forwarded: for=127.0.0.1;proto=https;host=\"www.w.test:{port}\"\n"),
            "x-forwarded-for: 127.0.0.1\n".to_owned(),
            "x-real-ip: 127.0.0.1\n".to_owned(),
            "x-forwarded-proto: https\n".to_owned(),
            format!("x-forwarded-host: www.w.test:{port}\n"),
        ] {
            assert!(body.contains(&line), "{client}: want {line:?} in {body}");
        }
    }
    // The review's exploit: a Host ending in `\` so that the proxy's
    // `host="www.w.test\"` swallows the next element, `for=6.6.6.6`.
    let out = raw(
        &rec,
        proxy,
        &ca,
        "www.w.test",
        "GET /fwd HTTP/1.1\r\nHost: www.w.test\\\r\nForwarded: for=6.6.6.6\r\n\
         X-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    let seen = rec.take();
    assert_eq!(seen.len(), 2, "only the two clean requests: {seen:?}");
}
both_drivers!(forwarding_headers_are_not_spoofable);

/// Item 10, the other side: behind a trusted proxy (PROXY protocol from
/// 127.0.0.0/8) the forwarding headers name the client that proxy vouched
/// for, and nothing the client wrote (well-formed or not) survives.
fn forwarding_headers_behind_a_trusted_proxy_are_the_proxys_own(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (chain, key, _) = pki.leaf("site", &["pp.w.test"]);
    let rec = Recorder::start();
    let listen = free_port();
    let toml = format!(
        "certificate_authorities = [\"{}\"]\n[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n\
         proxy_protocol = \"v1\"\ntrusted_proxies = [\"127.0.0.0/8\"]\n\
         [[proxy.certificates]]\nname = \"site\"\nchain_file = \"{chain}\"\nkey_file = \"{key}\"\n{}",
        pki.ca(),
        route("pp.w.test", rec.port, "certificate = \"site\"")
    );
    let dp = Dataplane::start(dir.path(), io, &toml);
    let proxy = dp.listen("public");
    let ca = pki.ca();
    let via_edge = |headers: &str| {
        rec.rt.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut tls = tls_to(
                proxy,
                &ca,
                "pp.w.test",
                b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n",
            )
            .await;
            let req = format!(
                "GET /fwd HTTP/1.1\r\nHost: pp.w.test\r\n{headers}Connection: close\r\n\r\n"
            );
            tls.write_all(req.as_bytes()).await.expect("request");
            let mut out = Vec::new();
            let _ = tls.read_to_end(&mut out).await;
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    // Behind an L4 proxy the HTTP headers are the client's own: well-formed
    // or not, they are replaced by what the proxy vouched for.
    for spoof in [
        "Forwarded: for=198.51.100.1;proto=https\r\nX-Forwarded-For: 198.51.100.1\r\nX-Real-IP: 198.51.100.1\r\n",
        "Forwarded: for=198.51.100.1;host=\"x\\\", for=6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\\\r\n",
    ] {
        let out = via_edge(spoof);
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(
            !out.contains("6.6.6.6") && !out.contains("198.51.100.1"),
            "{out}"
        );
        assert!(
            out.contains("forwarded: for=203.0.113.7;proto=https;host=\"pp.w.test\"\n"),
            "{out}"
        );
        assert!(out.contains("x-forwarded-for: 203.0.113.7\n"), "{out}");
        assert!(out.contains("x-real-ip: 203.0.113.7\n"), "{out}");
    }
}
both_drivers!(forwarding_headers_behind_a_trusted_proxy_are_the_proxys_own);

/// Item 11: a leaf whose chain ends in a self-signed root that is not in
/// `certificate_authorities` (anyone can make one) is refused at upload
/// with InvalidArgument, naming the reason; nothing is stored. A chain to
/// the configured CA is still accepted and served.
fn certificate_chain_must_lead_to_a_configured_ca(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let rec = Recorder::start();
    let listen = free_port();
    let dp = Dataplane::start(dir.path(), io, &l7_toml(&pki, listen, &[], ""));

    // The attacker's own root, shipped at the end of the chain.
    let ca_params = || {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "rogue root");
        p
    };
    let root_key = rcgen::KeyPair::generate().expect("key");
    let root = ca_params().self_signed(&root_key).expect("root");
    let issuer = rcgen::Issuer::new(ca_params(), root_key);
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["www.w.test".to_owned()])
        .expect("params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    let chain = dir.path().join("rogue.pem");
    let key = dir.path().join("rogue.key");
    std::fs::write(&chain, format!("{}{}", leaf.pem(), root.pem())).expect("chain");
    std::fs::write(&key, leaf_key.serialize_pem()).expect("key");
    let (chain, key) = (chain.display().to_string(), key.display().to_string());
    let out = dp.mcctl(&[
        "proxy", "certs", "put", "rogue", "--chain", &chain, "--key", &key,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a rogue root was accepted: {err}");
    assert!(
        err.contains("self-signed") && err.contains("certificate_authorities"),
        "{err}"
    );
    let out = dp.mcctl(&["proxy", "certs", "list", "--json"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");

    // The configured test CA's chain is accepted and serves.
    let (good_chain, good_key, _) = pki.leaf("good", &["www.w.test"]);
    dp.ok(&[
        "proxy",
        "certs",
        "put",
        "good",
        "--chain",
        &good_chain,
        "--key",
        &good_key,
    ]);
    dp.ok(&[
        "proxy",
        "routes",
        "add",
        "www.w.test",
        "--backend",
        &format!("127.0.0.1:{}", rec.port),
        "--mode",
        "l7",
        "--cert",
        "good",
    ]);
    let proxy = dp.listen("public");
    let (code, body) = curl(proxy, &pki.ca(), "www.w.test", "/ok", &[]);
    assert_eq!(code, 200, "{body}");
}
both_drivers!(certificate_chain_must_lead_to_a_configured_ca);
