//! Serving REST (axum) and gRPC (tonic, mounted as an axum router) over TCP
//! with TLS, or over a Unix socket, with limits and a draining shutdown.
//!
//! One accept loop serves every surface: HTTP/1.1 and HTTP/2 are chosen per
//! connection (ALPN over TLS, the h2 preface in clear text), so gRPC and REST
//! can share a listener or use their own. On shutdown the loop stops
//! accepting, open connections are told to finish (GOAWAY / `Connection:
//! close`) and are given `drain` to do so before they are cut.
//!
//! A TCP surface may sit behind proxies ([`Listener::behind`]): a
//! connection from a configured proxy address must start with a PROXY
//! protocol header (v1 or v2, parsed by mc-wire), whose source becomes the
//! connection's peer address (`ConnectInfo`: what audit logs and rate
//! limits see). Nobody else can name an address: from any other peer the
//! bytes are TLS (or HTTP) as they are.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use mc_kit::shutdown::Shutdown;

/// Limits a peer cannot exceed on one server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub tls_handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub max_concurrent_streams: u32,
    pub max_header_list_size: u32,
    /// How long open connections may take to finish once shutdown begins.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_concurrent_streams: 256,
            max_header_list_size: 64 * 1024,
            drain: Duration::from_secs(10),
        }
    }
}

/// Where a server listens.
pub enum Listener {
    Tcp(TcpListener),
    /// TCP where connections from these proxies carry a PROXY protocol header.
    TcpBehind(TcpListener, Arc<TrustedProxies>),
    /// A Unix socket; access is controlled by its 0600 mode.
    Unix(UnixListener, PathBuf),
}

/// The proxies whose PROXY protocol headers are believed: addresses or
/// CIDR prefixes (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(std::net::IpAddr, u8)>);

impl TrustedProxies {
    /// At most this many entries.
    pub const MAX: usize = 64;

    /// Parses `items` (`ADDR` or `ADDR/LEN`); the error names the bad one.
    pub fn parse(items: &[String]) -> Result<Self, String> {
        if items.len() > Self::MAX {
            return Err(format!("at most {} entries", Self::MAX));
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let (addr, len) = match item.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (item.as_str(), None),
            };
            let ip: std::net::IpAddr = addr
                .trim()
                .parse()
                .map_err(|_| format!("`{item}` is not an address or ADDR/LEN"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                None => max,
                Some(l) => l
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| format!("`{item}`: prefix length 0 to {max}"))?,
            };
            out.push((ip, len));
        }
        Ok(Self(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the proxies (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|(net, len)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
                u32::from(*n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
                u128::from(*n) & mask == u128::from(a) & mask
            }
            _ => false,
        })
    }
}

/// Reads the PROXY protocol header at the start of `s`, exactly (peeking,
/// so nothing after it is consumed): the client it names, or `None` for a
/// LOCAL header (the proxy's own connection).
async fn proxy_header(s: &mut tokio::net::TcpStream) -> std::io::Result<Option<SocketAddr>> {
    use mc_wire::proxy_protocol::{self, Accept, Command, MAX_V2_LEN, Parse};
    use tokio::io::AsyncReadExt;
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let mut buf = vec![0_u8; MAX_V2_LEN];
    let mut seen = 0;
    loop {
        let n = s.peek(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        match proxy_protocol::parse(&buf[..n], Accept::Any) {
            Ok(Parse::Complete { header, consumed }) => {
                let mut head = vec![0_u8; consumed];
                s.read_exact(&mut head).await?;
                return Ok(match header.command {
                    Command::Proxy => header.source,
                    Command::Local => None,
                });
            }
            Ok(Parse::Incomplete) if n < buf.len() => {
                // Peek returns at once while bytes wait: pause for more.
                if n == seen {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                seen = n;
            }
            Ok(Parse::Incomplete) => return Err(bad("PROXY header too long".to_owned())),
            Err(e) => return Err(bad(e.to_string())),
        }
    }
}

/// A surface that could not bind, named as the operator configured it.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {what} {addr}: {source}")]
pub struct ListenError {
    pub what: &'static str,
    pub addr: String,
    #[source]
    pub source: std::io::Error,
}

impl Listener {
    /// Binds the TCP surface `what` (named in the error) on `addr`.
    pub async fn tcp(what: &'static str, addr: SocketAddr) -> Result<Self, ListenError> {
        match TcpListener::bind(addr).await {
            Ok(l) => Ok(Self::Tcp(l)),
            Err(source) => Err(ListenError {
                what,
                addr: addr.to_string(),
                source,
            }),
        }
    }

    /// Binds the Unix socket surface `what` (named in the error) at `path`,
    /// readable and writable by the owner only. A stale socket file from a
    /// killed process is replaced; a live one is refused.
    pub fn unix(what: &'static str, path: &Path) -> Result<Self, ListenError> {
        Self::bind_unix(path).map_err(|source| ListenError {
            what,
            addr: path.display().to_string(),
            source,
        })
    }

    fn bind_unix(path: &Path) -> std::io::Result<Self> {
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running process", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Bind under a restrictive umask-equivalent: chmod right after bind,
        // before anything can connect (the parent dir is private too).
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(Self::Unix(listener, path.to_owned()))
    }

    /// This TCP surface behind `proxies` (nothing changes when there are none).
    #[must_use]
    pub fn behind(self, proxies: TrustedProxies) -> Self {
        match self {
            Self::Tcp(l) if !proxies.is_empty() => Self::TcpBehind(l, Arc::new(proxies)),
            other => other,
        }
    }

    pub fn local_addr(&self) -> String {
        match self {
            Self::Tcp(l) | Self::TcpBehind(l, _) => l
                .local_addr()
                .map_or_else(|e| e.to_string(), |a| a.to_string()),
            Self::Unix(_, p) => p.display().to_string(),
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// An accepted connection: TCP (which may start with a PROXY header) or other.
enum Conn {
    Tcp(tokio::net::TcpStream),
    Other(Box<dyn Io>),
}

/// Serves `router` on `listener` until `shutdown` fires, then drains.
pub async fn serve(
    name: &'static str,
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    limits: Limits,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_list_size as usize + 16 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_list_size)
        .max_pending_accept_reset_streams(Some(64))
        .max_local_error_reset_streams(Some(256));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let local = listener.local_addr();
    tracing::info!(server = name, listen = %local, tls = acceptor.is_some(), "serving");

    let trusted = match &listener {
        Listener::TcpBehind(_, t) => Some(t.clone()),
        _ => None,
    };
    loop {
        let accepted: std::io::Result<(Conn, Option<SocketAddr>)> = tokio::select! {
            () = shutdown.wait() => break,
            r = async {
                match &listener {
                    Listener::Tcp(l) | Listener::TcpBehind(l, _) => l.accept().await.map(|(s, a)| {
                        let _ = s.set_nodelay(true);
                        (Conn::Tcp(s), Some(a))
                    }),
                    Listener::Unix(l, _) => l.accept().await.map(|(s, _)| (Conn::Other(Box::new(s)), None)),
                }
            } => r,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(server = name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(server = name, peer = ?peer, "connection limit reached; closing");
            continue;
        };
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        let router = router.clone();
        let trusted = trusted.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut peer = peer;
            let stream: Box<dyn Io> = match stream {
                Conn::Tcp(mut s) => {
                    if let (Some(t), Some(p)) = (&trusted, peer)
                        && t.contains(p.ip())
                    {
                        match tokio::time::timeout(
                            limits.tls_handshake_timeout,
                            proxy_header(&mut s),
                        )
                        .await
                        {
                            Ok(Ok(client)) => peer = client.or(peer),
                            Ok(Err(e)) => {
                                tracing::debug!(peer = ?peer, error = %e, "no PROXY header from a trusted proxy");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(peer = ?peer, "PROXY header timed out");
                                return;
                            }
                        }
                    }
                    Box::new(s)
                }
                Conn::Other(s) => s,
            };
            let io: Box<dyn Io> = match acceptor {
                Some(acceptor) => {
                    match tokio::time::timeout(
                        limits.tls_handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(tls)) => Box::new(tls),
                        Ok(Err(e)) => {
                            tracing::debug!(peer = ?peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(peer = ?peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
                None => stream,
            };
            let peer = peer.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            let service = TowerToHyperService::new(router.map_request(
                move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req
                },
            ));
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(peer = %peer, error = %e, "connection ended with error");
            }
        });
    }

    drop(listener);
    tracing::info!(server = name, "stopped accepting; draining");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!(server = name, "drained"),
        () = tokio::time::sleep(limits.drain) => {
            tracing::warn!(server = name, drain = ?limits.drain, "drain deadline passed; closing remaining connections");
        }
    }
    Ok(())
}

/// The JSON error body every REST surface returns: `{"error": "..."}`.
pub fn error_response(
    status: axum::http::StatusCode,
    message: impl Into<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        status,
        axum::Json(serde_json::json!({ "error": message.into() })),
    )
        .into_response()
}

/// One listener of a process and what it serves.
pub struct Surface {
    pub name: &'static str,
    pub listener: Listener,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub router: Router,
}

/// A surface's server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[error("{name} server failed: {message}")]
pub struct ServeError {
    pub name: &'static str,
    pub message: String,
}

/// Serves every surface, reports ready, and on shutdown reports draining,
/// waits for every surface to drain, and returns.
pub async fn run_surfaces(
    surfaces: Vec<Surface>,
    limits: Limits,
    health: &crate::health::Health,
    shutdown: Shutdown,
) -> Result<(), ServeError> {
    let tasks: Vec<_> = surfaces
        .into_iter()
        .map(|s| {
            let task = tokio::spawn(serve(
                s.name,
                s.listener,
                s.tls,
                s.router,
                limits,
                shutdown.clone(),
            ));
            (s.name, task)
        })
        .collect();
    health.set_ready().await;
    let mut wait = shutdown;
    wait.wait().await;
    health.set_draining().await;
    for (name, task) in tasks {
        let message = match task.await {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        return Err(ServeError { name, message });
    }
    Ok(())
}

/// What every process serves on its HTTP surface: `/healthz`, `/metrics`,
/// `/v1/version`, the `services` routes, a JSON 404 for anything else, and
/// request metrics on all of it.
pub fn ops_router(
    component: &'static str,
    health: crate::health::Health,
    metrics: crate::metrics::Metrics,
    services: Router,
) -> Router {
    ops_router_with(component, health, metrics, services, true)
}

/// [`ops_router`], with `/metrics` only when `anonymous_metrics`: a public
/// surface leaves it to `services` (behind their auth layer) or to a
/// separate metrics address.
pub fn ops_router_with(
    component: &'static str,
    health: crate::health::Health,
    metrics: crate::metrics::Metrics,
    services: Router,
    anonymous_metrics: bool,
) -> Router {
    use axum::routing::get;
    let mut router = Router::new().route(
        "/healthz",
        get(crate::health::Health::handler).with_state(health),
    );
    if anonymous_metrics {
        router = router.route(
            "/metrics",
            get(crate::metrics::Metrics::handler).with_state(metrics.clone()),
        );
    }
    router
        .route(
            "/v1/version",
            get(move || async move {
                axum::Json(serde_json::json!({
                    "component": component,
                    "version": mc_kit::version::VERSION,
                }))
            }),
        )
        .merge(services)
        .fallback(|| async {
            error_response(axum::http::StatusCode::NOT_FOUND, "no such endpoint")
        })
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::Metrics::track,
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_match_addresses_and_prefixes() {
        let t = TrustedProxies::parse(&[
            "10.0.0.0/8".to_owned(),
            "192.0.2.7".to_owned(),
            "fd00::/8".to_owned(),
        ])
        .expect("parse");
        for yes in ["10.1.2.3", "192.0.2.7", "fd12::1", "::ffff:10.9.9.9"] {
            assert!(t.contains(yes.parse().expect("ip")), "{yes}");
        }
        for no in ["11.0.0.1", "192.0.2.8", "fe80::1", "127.0.0.1"] {
            assert!(!t.contains(no.parse().expect("ip")), "{no}");
        }
        for bad in ["nope", "10.0.0.0/33", "::/129", "1.2.3.4/x"] {
            assert!(TrustedProxies::parse(&[bad.to_owned()]).is_err(), "{bad}");
        }
        assert!(TrustedProxies::parse(&[]).expect("empty").is_empty());
    }

    /// A surface that cannot bind says which surface and where, so the
    /// operator knows which config key to change.
    #[tokio::test]
    async fn a_surface_that_cannot_bind_is_named() {
        let first = Listener::tcp("rest", ([127, 0, 0, 1], 0).into())
            .await
            .expect("bind a free port");
        let Listener::Tcp(l) = &first else {
            panic!("a TCP surface")
        };
        let taken = l.local_addr().expect("local addr");
        let err = Listener::tcp("grpc", taken)
            .await
            .err()
            .expect("port taken");
        assert_eq!((err.what, err.addr.clone()), ("grpc", taken.to_string()));
        assert!(
            err.to_string()
                .starts_with(&format!("cannot listen on grpc {taken}: "))
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run").join("admin.sock");
        let live = Listener::unix("admin socket", &path).expect("bind the socket");
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let err = Listener::unix("admin socket", &path)
            .err()
            .expect("socket in use");
        assert_eq!(err.what, "admin socket");
        assert!(
            err.to_string().contains("in use by a running process"),
            "{err}"
        );
        drop(live);
        // The socket file a dead process left behind is replaced.
        Listener::unix("admin socket", &path).expect("a stale socket is replaced");
    }
}
