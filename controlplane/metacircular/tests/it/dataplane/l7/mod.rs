//! MC-Proxy L7 end to end: TLS terminated by `mcd dataplane`, real clients
//! (curl over HTTP/2 and HTTP/1.1, h2load, a tonic gRPC client, a WebSocket
//! client) and real backends (hyper HTTP/1.1 + h2c, hyper over TLS, a tonic
//! server), all on 127.0.0.1. Every scenario runs on io_uring and on epoll.
//!
//! Layout: `pki` (a test CA and leaves), `backends` (the hyper and tonic
//! backends), the client helpers below (shared with `security::proxy`),
//! and one module per concept: `http` (versions, backends, errors,
//! policies, WebSocket, PROXY protocol, failover), `grpc`, `operations`
//! (certificate rotation, limits, access log, persistence, drain), `paths`
//! (path-prefix rules), `limits` (request rate and in-flight caps), `mtls`
//! (client certificates), `balance` (policies, health checks, ejection),
//! `health` (ejection times, slow start, TLS and gRPC checks), `reload`
//! (the config file applied in place: SIGHUP, `mcctl proxy reload`).

use std::net::SocketAddr;
use std::sync::Arc;

mod backends;
mod balance;
mod grpc;
mod health;
mod http;
mod limits;
pub(crate) mod managed;
mod managed_acme;
mod managed_pebble;
mod mtls;
mod operations;
mod paths;
mod pki;
mod reload;
mod upgrade;

pub(crate) use pki::Pki;

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

/// A temporary directory, the test PKI and its `site` certificate for
/// `*.l7.test`: what a data plane with one L7 listener starts from.
pub(crate) struct Site {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) pki: Pki,
    chain: String,
    key: String,
}

impl Site {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::new(dir.path());
        let (chain, key, _) = pki.leaf("site", &["*.l7.test"]);
        Self {
            dir,
            pki,
            chain,
            key,
        }
    }

    /// Starts `mcd dataplane` with listener `public` and the file's `routes`;
    /// returns it and the listener's address.
    pub(crate) fn start(&self, io: &str, routes: &str) -> (crate::peers::Dataplane, SocketAddr) {
        let listen = crate::peers::free_port();
        let certs = [("site", self.chain.as_str(), self.key.as_str())];
        let dp = crate::peers::Dataplane::start(
            self.dir.path(),
            io,
            &l7_toml(&self.pki, listen, &certs, routes),
        );
        let proxy = dp.listen("public");
        (dp, proxy)
    }
}

/// `mcctl proxy routes add HOST --mode l7 --cert site --backend
/// 127.0.0.1:BACKEND` and `extra`.
pub(crate) fn add_l7(
    dp: &crate::peers::Dataplane,
    host: &str,
    backend: u16,
    extra: &[&str],
) -> std::process::Output {
    add_l7_with(dp, host, "site", backend, extra)
}

/// [`add_l7`] serving the certificate `cert`.
pub(crate) fn add_l7_with(
    dp: &crate::peers::Dataplane,
    host: &str,
    cert: &str,
    backend: u16,
    extra: &[&str],
) -> std::process::Output {
    let backend = format!("127.0.0.1:{backend}");
    let mut args = vec![
        "proxy",
        "routes",
        "add",
        host,
        "--mode",
        "l7",
        "--cert",
        cert,
        "--backend",
        &backend,
    ];
    args.extend_from_slice(extra);
    dp.mcctl(&args)
}

pub(crate) fn route(host: &str, backend: u16, l7: &str) -> String {
    format!(
        "[[proxy.routes]]\nhostname = \"{host}\"\nbackends = [\"127.0.0.1:{backend}\"]\nmode = \"l7\"\nl7 = {{ {l7} }}\n"
    )
}

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
