//! Serving REST (axum) and gRPC (tonic, mounted as an axum router) over TCP
//! with TLS, or over a Unix socket, with limits and a draining shutdown.
//!
//! One accept loop serves every surface: HTTP/1.1 and HTTP/2 are chosen per
//! connection (ALPN over TLS, the h2 preface in clear text), so gRPC and REST
//! can share a listener or use their own. On shutdown the loop stops
//! accepting, open connections are told to finish (GOAWAY / `Connection:
//! close`) and are given `drain` to do so before they are cut.

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
    /// A Unix socket; access is controlled by its 0600 mode.
    Unix(UnixListener, PathBuf),
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

    pub fn local_addr(&self) -> String {
        match self {
            Self::Tcp(l) => l
                .local_addr()
                .map_or_else(|e| e.to_string(), |a| a.to_string()),
            Self::Unix(_, p) => p.display().to_string(),
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

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

    loop {
        let accepted: std::io::Result<(Box<dyn Io>, Option<SocketAddr>)> = tokio::select! {
            () = shutdown.wait() => break,
            r = async {
                match &listener {
                    Listener::Tcp(l) => l.accept().await.map(|(s, a)| {
                        let _ = s.set_nodelay(true);
                        (Box::new(s) as Box<dyn Io>, Some(a))
                    }),
                    Listener::Unix(l, _) => l.accept().await.map(|(s, _)| (Box::new(s) as Box<dyn Io>, None)),
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
        tokio::spawn(async move {
            let _permit = permit;
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
