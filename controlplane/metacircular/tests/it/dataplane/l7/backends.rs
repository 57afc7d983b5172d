//! The L7 scenarios' backends on a tokio runtime of their own, all on
//! 127.0.0.1: hyper HTTP/1.1 + h2c, hyper over TLS, a WebSocket echo and
//! the tonic echo service.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mc_proto::testing::v1 as echo;

/// Test backends on a tokio runtime of their own.
pub(super) struct Backends {
    pub(super) rt: tokio::runtime::Runtime,
}

type BoxBody = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

fn text(s: String) -> hyper::Response<BoxBody> {
    hyper::Response::new(Full::new(Bytes::from(s)).map_err(|n| match n {}).boxed())
}

/// `/headers` echoes the request head, `/slow` answers after 3 s, `/upload`
/// counts the body, `/ws` is a WebSocket echo; anything else names the
/// backend and the request target it got (path and query).
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
        _ => {
            let target = req.uri().path_and_query().map_or("?", |p| p.as_str());
            Ok(text(format!("backend {name} {target}\n")))
        }
    }
}

impl Backends {
    pub(super) fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        Self { rt }
    }

    /// HTTP/1.1 and h2c (prior knowledge) on one port.
    pub(super) fn http(&self, name: &'static str) -> u16 {
        self.serve(name, None).0
    }

    /// [`Self::http`], and a handle whose `abort()` closes the listener and
    /// every open connection (the backend is gone, pooled connections too).
    pub(super) fn http_stoppable(&self, name: &'static str) -> (u16, tokio::task::AbortHandle) {
        self.serve(name, None)
    }

    /// [`Self::http_stoppable`] on a given port (so it can come back on it),
    /// answering every request after `delay`.
    pub(super) fn http_at(
        &self,
        name: &'static str,
        port: u16,
        delay: Duration,
    ) -> tokio::task::AbortHandle {
        let listener = self
            .rt
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
            .expect("bind");
        self.accept_loop(name, listener, None, delay).1
    }

    /// HTTPS (ALPN h2 and http/1.1) with `chain`/`key`.
    pub(super) fn https(&self, name: &'static str, chain: &str, key: &str) -> u16 {
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
        self.accept_loop(name, listener, tls, Duration::ZERO)
    }

    fn accept_loop(
        &self,
        name: &'static str,
        listener: tokio::net::TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        delay: Duration,
    ) -> (u16, tokio::task::AbortHandle) {
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
                    let svc = hyper::service::service_fn(move |r| async move {
                        tokio::time::sleep(delay).await;
                        backend_service(name, r).await
                    });
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
    pub(super) fn grpc(&self) -> u16 {
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
