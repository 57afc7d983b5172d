//! One active check of one backend address: TCP connect, TLS handshake,
//! HTTP GET, or gRPC health. Runs on the admin runtime, never on a worker.
//!
//! Invariant: every probe is bounded by the check's timeout as a whole
//! (connect, handshake and answer together), and reads at most a response
//! head (HTTP) or one small message (gRPC).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::model::CheckKind;

/// What a probe needs besides the address.
pub(super) struct Probe {
    pub(super) kind: CheckKind,
    pub(super) timeout: Duration,
    /// TLS checks: the client configuration (no verification).
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
}

impl Probe {
    /// Whether `addr` (the backend `host`) passes; the reason when not.
    pub(super) async fn run(&self, addr: SocketAddr, host: &str) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, self.once(addr, host)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }

    async fn once(&self, addr: SocketAddr, host: &str) -> Result<(), String> {
        if let CheckKind::Grpc { service } = &self.kind {
            return grpc(addr, service, self.timeout).await;
        }
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        match &self.kind {
            CheckKind::Tcp | CheckKind::Grpc { .. } => Ok(()),
            CheckKind::Tls => {
                let config = self.tls.clone().ok_or("no TLS configuration")?;
                let name = rustls_pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|_| format!("`{host}` is not a TLS server name"))?;
                tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map(drop)
                    .map_err(|e| format!("TLS handshake: {e}"))
            }
            CheckKind::Http {
                path,
                expect_status,
            } => http_get(tcp, host, path, *expect_status).await,
        }
    }
}

async fn http_get(tcp: TcpStream, host: &str, path: &str, expect: u16) -> Result<(), String> {
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    // The connection task ends with the probe (the timeout drops it).
    let driver = tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, host)
        .header(http::header::USER_AGENT, "mc-proxy-health-check")
        .header(http::header::CONNECTION, "close")
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| format!("HTTP request: {e}"))?;
    let res = send.send_request(req).await;
    driver.abort();
    let status = res.map_err(|e| format!("HTTP: {e}"))?.status().as_u16();
    if status == expect {
        Ok(())
    } else {
        Err(format!("HTTP status {status}, expected {expect}"))
    }
}

/// `grpc.health.v1.HealthCheckRequest` (tonic-health stays out of the
/// engine: check-arch; the two messages are all a client needs).
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`; status 1 is SERVING.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

const SERVING: i32 = 1;

async fn grpc(addr: SocketAddr, service: &str, timeout: Duration) -> Result<(), String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("gRPC endpoint: {e}"))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|e| format!("gRPC connect: {e}"))?;
    let mut client = tonic::client::Grpc::new(channel);
    client
        .ready()
        .await
        .map_err(|e| format!("gRPC connect: {e}"))?;
    let answer = client
        .unary(
            tonic::Request::new(HealthCheckRequest {
                service: service.to_owned(),
            }),
            http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check"),
            tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default(),
        )
        .await
        .map_err(|s| format!("gRPC health: {} {}", s.code(), s.message()))?
        .into_inner();
    if answer.status == SERVING {
        Ok(())
    } else {
        Err(format!("gRPC health status {}", answer.status))
    }
}
