//! The probes against real servers on 127.0.0.1: a TCP listener, raw HTTP
//! answers, and tonic-health's own gRPC health service.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::probe::Probe;
use crate::model::CheckKind;

fn probe(kind: CheckKind) -> Probe {
    Probe {
        kind,
        timeout: Duration::from_secs(2),
        tls: None,
    }
}

/// Answers every connection with `head` (after reading the request).
async fn http_server(head: &'static str) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(head.as_bytes()).await;
        }
    });
    addr
}

#[tokio::test]
async fn tcp_and_http_probes() {
    let ok = http_server("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let bad = http_server("HTTP/1.1 503 Busy\r\ncontent-length: 0\r\n\r\n").await;
    probe(CheckKind::Tcp)
        .run(ok, "127.0.0.1")
        .await
        .expect("tcp");
    let http = probe(CheckKind::Http {
        path: "/healthz".into(),
        expect_status: 200,
    });
    http.run(ok, "127.0.0.1").await.expect("200");
    let e = http.run(bad, "127.0.0.1").await.expect_err("503");
    assert!(e.contains("503"), "{e}");
    // Nothing listens: refused.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr")
    };
    assert!(
        probe(CheckKind::Tcp)
            .run(closed, "127.0.0.1")
            .await
            .is_err()
    );
    // A silent server: the timeout bounds the probe.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let short = Probe {
        timeout: Duration::from_millis(200),
        ..http
    };
    let e = short
        .run(silent_addr, "127.0.0.1")
        .await
        .expect_err("silent");
    assert!(e.contains("no answer"), "{e}");
    drop(silent);
}

#[tokio::test]
async fn grpc_probe_follows_the_serving_status() {
    let (reporter, service) = tonic_health::server::health_reporter();
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l)),
    );
    reporter
        .set_service_status("app", tonic_health::ServingStatus::Serving)
        .await;
    let grpc = |service: &str| {
        probe(CheckKind::Grpc {
            service: service.to_owned(),
        })
    };
    grpc("app").run(addr, "127.0.0.1").await.expect("serving");
    reporter
        .set_service_status("app", tonic_health::ServingStatus::NotServing)
        .await;
    let e = grpc("app")
        .run(addr, "127.0.0.1")
        .await
        .expect_err("not serving");
    assert!(e.contains("status 2"), "{e}");
    let e = grpc("nope")
        .run(addr, "127.0.0.1")
        .await
        .expect_err("unknown");
    assert!(
        e.contains("NotFound") || e.contains("not found") || e.contains("Not"),
        "{e}"
    );
}

#[tokio::test]
async fn tls_probe_needs_a_completed_handshake() {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["backend.test".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("self-signed");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let a = acceptor.clone();
            tokio::spawn(async move {
                let _ = a.accept(s).await;
            });
        }
    });
    let roots = Arc::new(rustls::RootCertStore::empty());
    let tls = Probe {
        kind: CheckKind::Tls,
        timeout: Duration::from_secs(2),
        tls: crate::tls::backend_client_config(None, &roots, true).ok(),
    };
    tls.run(addr, "backend.test").await.expect("handshake");
    // A plain HTTP server is no TLS server.
    let plain = http_server("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
    let e = tls.run(plain, "127.0.0.1").await.expect_err("not TLS");
    assert!(e.contains("TLS"), "{e}");
}
