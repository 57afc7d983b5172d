//! MC-Proxy L7 end to end: TLS terminated by `mcd dataplane`, real clients
//! (curl over HTTP/2 and HTTP/1.1, h2load, a tonic gRPC client, a WebSocket
//! client) and real backends (hyper HTTP/1.1 + h2c, hyper over TLS, a tonic
//! server), all on 127.0.0.1. Every scenario runs on io_uring and on epoll.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mc_proto::testing::v1 as echo;

use crate::peers::{Dataplane, free_port};

// ------------------------------------------------------------------ PKI

type Issuer = rcgen::Issuer<'static, rcgen::KeyPair>;

fn ca_params(cn: &str) -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p
}

/// A test CA, an intermediate below it, and leaf certificates on disk.
pub(crate) struct Pki {
    dir: PathBuf,
    ca_path: PathBuf,
    intermediate_pem: String,
    intermediate: Issuer,
}

impl Pki {
    pub(crate) fn new(dir: &Path) -> Self {
        let key = rcgen::KeyPair::generate().expect("key");
        let root = ca_params("l7 test root").self_signed(&key).expect("root");
        let root_issuer = rcgen::Issuer::new(ca_params("l7 test root"), key);
        let ikey = rcgen::KeyPair::generate().expect("key");
        let inter = ca_params("l7 test intermediate")
            .signed_by(&ikey, &root_issuer)
            .expect("intermediate");
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, root.pem()).expect("ca.pem");
        Self {
            dir: dir.to_owned(),
            ca_path,
            intermediate_pem: inter.pem(),
            intermediate: rcgen::Issuer::new(ca_params("l7 test intermediate"), ikey),
        }
    }

    /// Writes `<stem>.pem` (leaf + intermediate) and `<stem>.key`; returns
    /// (chain path, key path, leaf-only path).
    pub(crate) fn leaf(&self, stem: &str, names: &[&str]) -> (String, String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(
            names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
        )
        .expect("params");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, format!("{stem} leaf"));
        let cert = p.signed_by(&key, &self.intermediate).expect("leaf");
        let chain = self.dir.join(format!("{stem}.pem"));
        let only = self.dir.join(format!("{stem}-leaf-only.pem"));
        let keyf = self.dir.join(format!("{stem}.key"));
        std::fs::write(&chain, format!("{}{}", cert.pem(), self.intermediate_pem)).expect("pem");
        std::fs::write(&only, cert.pem()).expect("pem");
        std::fs::write(&keyf, key.serialize_pem()).expect("key");
        let s = |p: PathBuf| p.display().to_string();
        (s(chain), s(keyf), s(only))
    }

    pub(crate) fn ca(&self) -> String {
        self.ca_path.display().to_string()
    }
}

// ------------------------------------------------------------- backends

/// Test backends on a tokio runtime of their own.
struct Backends {
    rt: tokio::runtime::Runtime,
}

type BoxBody = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

fn text(s: String) -> hyper::Response<BoxBody> {
    hyper::Response::new(Full::new(Bytes::from(s)).map_err(|n| match n {}).boxed())
}

/// `/headers` echoes the request head, `/slow` answers after 3 s, `/upload`
/// counts the body, `/ws` is a WebSocket echo; anything else names the backend.
async fn backend_service(
    name: &'static str,
    mut req: hyper::Request<Incoming>,
) -> Result<hyper::Response<BoxBody>, Infallible> {
    match req.uri().path() {
        "/headers" => {
            let mut out = format!("backend={name}\nversion={:?}\n", req.version());
            for (k, v) in req.headers() {
                out.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
            }
            Ok(text(out))
        }
        "/slow" => {
            let ms = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(3000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(text("slow".into()))
        }
        "/upload" => {
            let mut n = 0u64;
            let mut body = req.into_body();
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => n += f.data_ref().map_or(0, |d| d.len() as u64),
                    Err(_) => break,
                }
            }
            Ok(text(format!("received {n}")))
        }
        "/ws" => {
            let key = req
                .headers()
                .get("sec-websocket-key")
                .map(|k| tokio_tungstenite::tungstenite::handshake::derive_accept_key(k.as_bytes()))
                .unwrap_or_default();
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(upgraded) = upgrade.await else {
                    return;
                };
                let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    tokio_tungstenite::tungstenite::protocol::Role::Server,
                    None,
                )
                .await;
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() || msg.is_binary() {
                        if ws.send(msg).await.is_err() {
                            break;
                        }
                    } else if msg.is_close() {
                        break;
                    }
                }
            });
            let mut r = text(String::new());
            *r.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
            let h = r.headers_mut();
            h.insert("upgrade", "websocket".parse().expect("hv"));
            h.insert("connection", "Upgrade".parse().expect("hv"));
            h.insert("sec-websocket-accept", key.parse().expect("hv"));
            Ok(r)
        }
        path => Ok(text(format!("backend {name} {path}\n"))),
    }
}

impl Backends {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        Self { rt }
    }

    /// HTTP/1.1 and h2c (prior knowledge) on one port.
    fn http(&self, name: &'static str) -> u16 {
        self.serve(name, None).0
    }

    /// [`Self::http`], and a handle whose `abort()` closes the listener and
    /// every open connection (the backend is gone, pooled connections too).
    fn http_stoppable(&self, name: &'static str) -> (u16, tokio::task::AbortHandle) {
        self.serve(name, None)
    }

    /// HTTPS (ALPN h2 and http/1.1) with `chain`/`key`.
    fn https(&self, name: &'static str, chain: &str, key: &str) -> u16 {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(chain)
            .expect("chain")
            .collect::<Result<Vec<_>, _>>()
            .expect("certs");
        let key = rustls_pki_types::PrivateKeyDer::from_pem_file(key).expect("key");
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        self.serve(name, Some(Arc::new(config))).0
    }

    fn serve(
        &self,
        name: &'static str,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> (u16, tokio::task::AbortHandle) {
        let listener = self
            .rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = self.rt.spawn(async move {
            // Connections live in the accept task's set: aborting it ends them all.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                while connections.try_join_next().is_some() {}
                let tls = tls.clone();
                connections.spawn(async move {
                    let svc = hyper::service::service_fn(move |r| backend_service(name, r));
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = match tls {
                        Some(cfg) => {
                            let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(stream).await
                            else {
                                return;
                            };
                            builder
                                .serve_connection_with_upgrades(TokioIo::new(s), svc)
                                .await
                        }
                        None => {
                            builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                                .await
                        }
                    };
                });
            }
        });
        (port, task.abort_handle())
    }

    /// The tonic echo service over h2c.
    fn grpc(&self) -> u16 {
        let listener = self
            .rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        self.rt.spawn(
            tonic::transport::Server::builder()
                .add_service(
                    echo::echo_server::EchoServer::new(EchoImpl)
                        .max_decoding_message_size(16 << 20)
                        .max_encoding_message_size(16 << 20),
                )
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        port
    }
}

struct EchoImpl;

type EchoStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<echo::EchoMessage, tonic::Status>> + Send>>;

fn fail(m: &echo::EchoMessage) -> Result<(), tonic::Status> {
    if m.fail_with_code != 0 {
        return Err(tonic::Status::new(
            tonic::Code::from(m.fail_with_code),
            m.text.clone(),
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl echo::echo_server::Echo for EchoImpl {
    async fn unary(
        &self,
        r: tonic::Request<echo::EchoMessage>,
    ) -> Result<tonic::Response<echo::EchoMessage>, tonic::Status> {
        let m = r.into_inner();
        fail(&m)?;
        Ok(tonic::Response::new(m))
    }

    type ServerStreamStream = EchoStream;

    async fn server_stream(
        &self,
        r: tonic::Request<echo::EchoMessage>,
    ) -> Result<tonic::Response<EchoStream>, tonic::Status> {
        let m = r.into_inner();
        fail(&m)?;
        let items = (0..m.count).map(move |i| {
            Ok(echo::EchoMessage {
                text: format!("{} {i}", m.text),
                ..Default::default()
            })
        });
        Ok(tonic::Response::new(Box::pin(tokio_stream::iter(items))))
    }

    async fn client_stream(
        &self,
        r: tonic::Request<tonic::Streaming<echo::EchoMessage>>,
    ) -> Result<tonic::Response<echo::EchoMessage>, tonic::Status> {
        let mut s = r.into_inner();
        let mut texts = Vec::new();
        let mut size = 0u32;
        while let Some(m) = s.next().await {
            let m = m?;
            size += u32::try_from(m.payload.len()).unwrap_or(u32::MAX);
            texts.push(m.text);
        }
        Ok(tonic::Response::new(echo::EchoMessage {
            text: texts.join(","),
            count: size,
            ..Default::default()
        }))
    }

    type BidiStream = EchoStream;

    async fn bidi(
        &self,
        r: tonic::Request<tonic::Streaming<echo::EchoMessage>>,
    ) -> Result<tonic::Response<EchoStream>, tonic::Status> {
        let s = r.into_inner();
        let out = s.map(|m| {
            m.map(|m| echo::EchoMessage {
                text: format!("echo {}", m.text),
                ..m
            })
        });
        Ok(tonic::Response::new(Box::pin(out)))
    }
}

// --------------------------------------------------------------- clients

/// curl through the proxy for `name`; returns (status, body).
pub(crate) fn curl(
    proxy: SocketAddr,
    ca: &str,
    name: &str,
    path: &str,
    extra: &[&str],
) -> (u16, String) {
    let port = proxy.port();
    let mut args = vec![
        "--cacert".to_owned(),
        ca.to_owned(),
        "--resolve".to_owned(),
        format!("{name}:{port}:127.0.0.1"),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push(format!("https://{name}:{port}{path}"));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    crate::support::curl(&refs)
}

pub(crate) fn l7_toml(
    pki: &Pki,
    listen: u16,
    certs: &[(&str, &str, &str)],
    routes: &str,
) -> String {
    let mut t = format!(
        "certificate_authorities = [\"{}\"]\n[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n",
        pki.ca()
    );
    for (name, chain, key) in certs {
        t.push_str(&format!(
            "[[proxy.certificates]]\nname = \"{name}\"\nchain_file = \"{chain}\"\nkey_file = \"{key}\"\n"
        ));
    }
    t.push_str(routes);
    t
}

pub(crate) fn route(host: &str, backend: u16, l7: &str) -> String {
    format!(
        "[[proxy.routes]]\nhostname = \"{host}\"\nbackends = [\"127.0.0.1:{backend}\"]\nmode = \"l7\"\nl7 = {{ {l7} }}\n"
    )
}

// ----------------------------------------------------------------- tests

fn http_versions_backends_errors_and_policies(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (chain, key, _) = pki.leaf("site", &["*.l7.test"]);
    let (bchain, bkey, _) = pki.leaf("backend", &["backend.test"]);
    let backends = Backends::new();
    let plain = backends.http("plain");
    let tls_backend = backends.https("tls", &bchain, &bkey);
    let closed = free_port();
    let listen = free_port();
    let routes = [
        route("h1.l7.test", plain, "certificate = \"site\", backend_protocol = \"http1\""),
        route("h2c.l7.test", plain, "certificate = \"site\", backend_protocol = \"h2c\""),
        route(
            "tls.l7.test",
            tls_backend,
            "certificate = \"site\", backend_protocol = \"tls\", backend_server_name = \"backend.test\"",
        ),
        route("down.l7.test", closed, "certificate = \"site\""),
        // Backend certificates are verified: the name 127.0.0.1 is not in it…
        route(
            "unverified.l7.test",
            tls_backend,
            "certificate = \"site\", backend_protocol = \"tls\"",
        ),
        // …unless verification is turned off, explicitly.
        route(
            "insecure.l7.test",
            tls_backend,
            "certificate = \"site\", backend_protocol = \"tls\", backend_tls_insecure_skip_verify = true",
        ),
        route(
            "slow.l7.test",
            plain,
            "certificate = \"site\", backend_response_timeout = \"500ms\"",
        ),
        // L4 on the same listener: the backend's own certificate reaches the client.
        format!("[[proxy.routes]]\nhostname = \"backend.test\"\nbackends = [\"127.0.0.1:{tls_backend}\"]\n"),
    ]
    .concat();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &l7_toml(&pki, listen, &[("site", &chain, &key)], &routes),
    );
    let proxy = dp.listen("public");
    let ca = pki.ca();

    for (host, backend_version) in [
        ("h1.l7.test", "HTTP/1.1"),
        ("h2c.l7.test", "HTTP/2.0"),
        ("tls.l7.test", "HTTP/2.0"),
    ] {
        for client in ["--http2", "--http1.1"] {
            let (code, body) = curl(
                proxy,
                &ca,
                host,
                "/headers",
                &[
                    client,
                    "-H",
                    "X-Forwarded-For: 198.51.100.9",
                    "-A",
                    "curl-test",
                ],
            );
            assert_eq!(code, 200, "{host} {client}: {body}");
            assert!(
                body.contains(&format!("version={backend_version}")),
                "{host} {client}: {body}"
            );
            // A direct client's X-Forwarded-For is not believed (security suite, item 10).
            assert!(
                body.contains("x-forwarded-for: 127.0.0.1\n") && !body.contains("198.51.100.9"),
                "XFF set by the proxy: {body}"
            );
            assert!(body.contains("x-real-ip: 127.0.0.1"), "{body}");
            assert!(body.contains("x-forwarded-proto: https"), "{body}");
            assert!(
                body.contains(&format!(
                    "forwarded: for=127.0.0.1;proto=https;host=\"{host}:{}\"",
                    proxy.port()
                )),
                "{body}"
            );
            let host_line = if backend_version == "HTTP/1.1" {
                format!("host: {host}:{}", proxy.port())
            } else {
                String::new()
            };
            assert!(body.contains(&host_line), "host preserved: {body}");
        }
    }
    // Hop-by-hop headers (and those `Connection` names) stop at the proxy.
    let (code, body) = curl(
        proxy,
        &ca,
        "h1.l7.test",
        "/headers",
        &[
            "--http1.1",
            "-H",
            "Connection: keep-alive, X-Hop",
            "-H",
            "X-Hop: 1",
            "-H",
            "Keep-Alive: timeout=5",
        ],
    );
    assert_eq!(code, 200);
    assert!(
        !body.contains("x-hop") && !body.contains("keep-alive"),
        "{body}"
    );

    // The L4 route on the same listener: curl verifies the backend's own certificate.
    let (code, body) = curl(proxy, &ca, "backend.test", "/x", &[]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("backend tls /x"), "{body}");

    let (code, body) = curl(proxy, &ca, "unverified.l7.test", "/", &[]);
    assert_eq!(
        code, 502,
        "a backend failing verification is not used: {body}"
    );
    let (code, body) = curl(proxy, &ca, "insecure.l7.test", "/", &[]);
    assert_eq!(code, 200, "{body}");

    // Errors: refused → 502, then marked down → 503; slow → 504.
    let (code, body) = curl(proxy, &ca, "down.l7.test", "/", &[]);
    assert_eq!(code, 502, "{body}");
    let (code, body) = curl(proxy, &ca, "down.l7.test", "/", &[]);
    assert_eq!(code, 503, "{body}");
    let (code, body) = curl(proxy, &ca, "slow.l7.test", "/slow", &[]);
    assert_eq!(code, 504, "{body}");

    // Policies through mcctl: first match wins, a match is 403.
    dp.ok(&[
        "proxy",
        "policies",
        "add",
        "h1.l7.test",
        "--block-user-agent",
        "BadBot",
    ]);
    dp.ok(&[
        "proxy",
        "policies",
        "add",
        "h1.l7.test",
        "--require-header",
        "x-team=blue",
    ]);
    let (code, _) = curl(
        proxy,
        &ca,
        "h1.l7.test",
        "/",
        &["-A", "Mozilla badbot/2", "-H", "x-team: blue"],
    );
    assert_eq!(code, 403);
    let (code, _) = curl(proxy, &ca, "h1.l7.test", "/", &["-H", "x-team: red"]);
    assert_eq!(code, 403);
    let (code, body) = curl(proxy, &ca, "h1.l7.test", "/", &["-H", "x-team: blue"]);
    assert_eq!(code, 200, "{body}");
    let bad = dp.mcctl(&[
        "proxy",
        "policies",
        "add",
        "backend.test",
        "--block-user-agent",
        "x",
    ]);
    assert!(!bad.status.success(), "policies need an L7 route");
    let listing = dp.ok(&["proxy", "policies", "list", "--json"]);
    let policies: serde_json::Value = serde_json::from_str(&listing).expect("json");
    let id = policies[0]["id"].as_str().expect("id").to_owned();
    dp.ok(&["proxy", "policies", "remove", &id]);
    let (code, _) = curl(
        proxy,
        &ca,
        "h1.l7.test",
        "/",
        &["-A", "badbot", "-H", "x-team: blue"],
    );
    assert_eq!(code, 200, "removed policy no longer applies");

    // h2load: many concurrent streams, no errors.
    let out = Command::new("h2load")
        .args(["-n", "2000", "-c", "4", "-m", "16"])
        .arg(format!("--connect-to=127.0.0.1:{}", proxy.port()))
        .arg(format!("https://h2c.l7.test:{}/", proxy.port()))
        .output()
        .expect("h2load (scripts/test installs nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("2000 succeeded, 0 failed, 0 errored"),
        "h2load: {text}"
    );

    let status = dp.status();
    let routes = status["listeners"][0]["routes"].as_array().expect("routes");
    let stats = |h: &str| {
        routes
            .iter()
            .find(|r| r["hostname"] == h)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(stats("down.l7.test")["responses"]["502"], 1, "{status}");
    assert_eq!(stats("down.l7.test")["responses"]["503"], 1, "{status}");
    assert_eq!(stats("slow.l7.test")["responses"]["504"], 1, "{status}");
    assert!(
        stats("h1.l7.test")["policy_blocks"].as_u64() >= Some(2),
        "{status}"
    );
    assert!(
        stats("h2c.l7.test")["responses"]["2xx"].as_u64() >= Some(2002),
        "{status}"
    );
    let (code, metrics) = crate::support::curl(&[&dp.metrics]);
    assert_eq!(code, 200);
    assert!(
        metrics.contains(
            "proxy_http_responses_total{listener=\"public\",route=\"down.l7.test\",code=\"502\"} 1"
        ),
        "{metrics}"
    );
}
both_drivers!(http_versions_backends_errors_and_policies);

fn grpc_calls_of_every_kind(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (chain, key, _) = pki.leaf("grpc", &["grpc.test"]);
    let backends = Backends::new();
    let grpc = backends.grpc();
    let listen = free_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &l7_toml(
            &pki,
            listen,
            &[("grpc", &chain, &key)],
            &route(
                "grpc.test",
                grpc,
                "certificate = \"grpc\", backend_protocol = \"h2c\"",
            ),
        ),
    );
    let proxy = dp.listen("public");
    let ca = std::fs::read_to_string(pki.ca()).expect("ca");
    backends.rt.block_on(async {
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca))
            .domain_name("grpc.test");
        // The request's `:authority` names the route the SNI chose (else 421).
        let channel = tonic::transport::Endpoint::from_shared(format!("https://{proxy}"))
            .expect("endpoint")
            .origin(
                format!("https://grpc.test:{}", proxy.port())
                    .parse()
                    .expect("origin"),
            )
            .tls_config(tls)
            .expect("tls")
            .connect()
            .await
            .expect("connect through the proxy");
        let mut c = echo::echo_client::EchoClient::new(channel)
            .max_decoding_message_size(16 << 20)
            .max_encoding_message_size(16 << 20);
        let msg = |t: &str| echo::EchoMessage {
            text: t.to_owned(),
            ..Default::default()
        };

        // Unary, and a large message each way.
        let r = c.unary(msg("hello")).await.expect("unary").into_inner();
        assert_eq!(r.text, "hello");
        let big = echo::EchoMessage {
            payload: vec![7u8; 4 << 20],
            ..msg("big")
        };
        let r = c.unary(big).await.expect("4 MiB unary").into_inner();
        assert_eq!(r.payload.len(), 4 << 20);

        // Status and message carried in trailers.
        let e = c
            .unary(echo::EchoMessage {
                fail_with_code: tonic::Code::NotFound as i32,
                ..msg("no such thing")
            })
            .await
            .expect_err("error status");
        assert_eq!(e.code(), tonic::Code::NotFound);
        assert_eq!(e.message(), "no such thing");

        // Server streaming.
        let mut s = c
            .server_stream(echo::EchoMessage {
                count: 500,
                ..msg("item")
            })
            .await
            .expect("server stream")
            .into_inner();
        let mut n = 0;
        while let Some(m) = s.message().await.expect("stream item") {
            assert_eq!(m.text, format!("item {n}"));
            n += 1;
        }
        assert_eq!(n, 500);

        // Client streaming.
        let items = (0..50).map(move |i| echo::EchoMessage {
            payload: vec![1u8; 1000],
            ..msg(&i.to_string())
        });
        let r = c
            .client_stream(tokio_stream::iter(items))
            .await
            .expect("client stream")
            .into_inner();
        assert_eq!(r.count, 50_000);
        assert!(r.text.starts_with("0,1,2") && r.text.ends_with("49"));

        // Bidirectional, with the sender waiting for each answer.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut answers = c
            .bidi(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("bidi")
            .into_inner();
        for i in 0..20 {
            tx.send(msg(&format!("m{i}"))).await.expect("send");
            let a = answers.message().await.expect("answer").expect("some");
            assert_eq!(a.text, format!("echo m{i}"));
        }
        drop(tx);
        assert!(answers.message().await.expect("end").is_none());
    });
    let status = dp.status();
    let r = &status["listeners"][0]["routes"][0];
    assert!(r["responses"]["2xx"].as_u64() >= Some(6), "{status}");
}
both_drivers!(grpc_calls_of_every_kind);

fn websocket_echo_over_http1_upgrade(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (chain, key, _) = pki.leaf("ws", &["ws.test"]);
    let backends = Backends::new();
    let plain = backends.http("ws");
    let listen = free_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &l7_toml(
            &pki,
            listen,
            &[("ws", &chain, &key)],
            &route("ws.test", plain, "certificate = \"ws\""),
        ),
    );
    let proxy = dp.listen("public");
    let ca = pki.ca();
    backends.rt.block_on(async {
        use tokio_tungstenite::tungstenite::Message;
        let tls = tls_to(proxy, &ca, "ws.test", b"").await;
        let (mut ws, resp) = tokio_tungstenite::client_async("wss://ws.test/ws", tls)
            .await
            .expect("websocket handshake through the proxy");
        assert_eq!(resp.status(), 101);
        for i in 0..10 {
            let m = format!("hello {i}");
            ws.send(Message::text(m.clone())).await.expect("send");
            let back = ws.next().await.expect("frame").expect("ok");
            assert_eq!(back.into_text().expect("text").as_str(), m);
        }
        let blob = vec![42u8; 200_000];
        ws.send(Message::binary(blob.clone())).await.expect("send");
        let back = ws.next().await.expect("frame").expect("ok");
        assert_eq!(back.into_data().as_ref(), blob.as_slice());
    });
}
both_drivers!(websocket_echo_over_http1_upgrade);

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

/// Opens a TLS connection to `proxy` for `name` (ALPN http/1.1) from tokio,
/// sending `prefix` (e.g. a PROXY header) on the TCP connection first.
pub(crate) async fn tls_to(
    proxy: SocketAddr,
    ca: &str,
    name: &str,
    prefix: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls_pki_types::pem::PemObject;
    use tokio::io::AsyncWriteExt;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(c.expect("cert")).expect("root");
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut tcp = tokio::net::TcpStream::connect(proxy).await.expect("tcp");
    tcp.write_all(prefix).await.expect("prefix");
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(
            rustls_pki_types::ServerName::try_from(name.to_owned()).expect("name"),
            tcp,
        )
        .await
        .expect("tls")
}

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

fn proxy_protocol_address_reaches_the_backend_headers(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (chain, key, _) = pki.leaf("site", &["pp.test"]);
    let backends = Backends::new();
    let plain = backends.http("plain");
    let listen = free_port();
    let toml = format!(
        "certificate_authorities = [\"{}\"]\n[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n\
         proxy_protocol = \"v1\"\ntrusted_proxies = [\"127.0.0.0/8\"]\n\
         [[proxy.certificates]]\nname = \"site\"\nchain_file = \"{chain}\"\nkey_file = \"{key}\"\n{}",
        pki.ca(),
        route("pp.test", plain, "certificate = \"site\"")
    );
    let dp = Dataplane::start(dir.path(), io, &toml);
    let proxy = dp.listen("public");
    let ca = pki.ca();
    let body = backends.rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // An edge proxy in front vouches for the client 203.0.113.7.
        let mut tls = tls_to(
            proxy,
            &ca,
            "pp.test",
            b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n",
        )
        .await;
        tls.write_all(b"GET /headers HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n")
            .await
            .expect("request");
        let mut out = Vec::new();
        let end = tls.read_to_end(&mut out).await;
        assert!(end.is_ok(), "the proxy ends TLS with close_notify: {end:?}");
        String::from_utf8_lossy(&out).into_owned()
    });
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("x-forwarded-for: 203.0.113.7"), "{body}");
    assert!(body.contains("x-real-ip: 203.0.113.7"), "{body}");
    assert!(
        body.contains("forwarded: for=203.0.113.7;proto=https"),
        "{body}"
    );
}
both_drivers!(proxy_protocol_address_reaches_the_backend_headers);

/// Two backends behind one L7 route: requests are spread over both; when
/// one goes away (listener and pooled connections), every request is
/// still answered, by the other; a route whose first backend was never up
/// answers from the second.
fn two_backend_failover(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (chain, key, _) = pki.leaf("site", &["*.l7.test"]);
    let backends = Backends::new();
    let (a, stop_a) = backends.http_stoppable("a");
    let b = backends.http("b");
    let never = free_port();
    let listen = free_port();
    let both = |host: &str, first: u16, second: u16| {
        format!(
            "[[proxy.routes]]\nhostname = \"{host}\"\nbackends = [\"127.0.0.1:{first}\", \"127.0.0.1:{second}\"]\nmode = \"l7\"\nl7 = {{ certificate = \"site\" }}\n"
        )
    };
    let routes = [both("pair.l7.test", a, b), both("late.l7.test", never, b)].concat();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &l7_toml(&pki, listen, &[("site", &chain, &key)], &routes),
    );
    let proxy = dp.listen("public");
    let ca = pki.ca();
    let answers = |host: &str, n: usize| {
        (0..n)
            .map(|_| {
                let (code, body) = curl(proxy, &ca, host, "/", &[]);
                assert_eq!(code, 200, "{host}: {body}");
                body
            })
            .collect::<Vec<_>>()
    };
    let seen = answers("pair.l7.test", 8);
    assert!(
        seen.iter().any(|b| b.starts_with("backend a "))
            && seen.iter().any(|b| b.starts_with("backend b ")),
        "round robin reaches both backends: {seen:?}"
    );
    stop_a.abort();
    let seen = answers("pair.l7.test", 8);
    assert!(seen.iter().all(|b| b.starts_with("backend b ")), "{seen:?}");
    let seen = answers("late.l7.test", 4);
    assert!(seen.iter().all(|b| b.starts_with("backend b ")), "{seen:?}");
}
both_drivers!(two_backend_failover);
