//! Connections to backends: opened on the worker that needs them, pooled per
//! worker (no sharing, no locks), reused across requests and clients.
//!
//! HTTP/1.1 connections return to the pool when their response body ends and
//! are only handed out again when hyper says they are ready; one HTTP/2
//! connection per backend carries every stream of the worker.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::task::Poll;
use std::time::{Duration, Instant};

use hyper::client::conn::{http1, http2};
use hyper_util::rt::TokioIo;
use monoio::io::IntoPollIo;
use monoio::net::TcpStream;

use super::body::Counted;
use super::io::LocalExec;
use crate::health::InFlight;
use crate::model::BackendProtocol;
use crate::snapshot::{BackendHealth, BackendTls, RouteEntry, Upstream, now_ms};
use crate::stats::route as rstat;

pub(super) type Request = http::Request<Counted>;
pub(super) type Response = http::Response<hyper::body::Incoming>;

/// Idle HTTP/1.1 connections kept per backend and worker.
const MAX_IDLE_PER_BACKEND: usize = 1024;
/// Pool keys kept before closed entries are swept.
const MAX_POOL_KEYS: usize = 4096;

/// Why a request got no response from a backend.
#[derive(Debug)]
pub(super) enum BackendError {
    /// Every backend is marked down: 503.
    NoHealthy,
    /// Connect refused or failed, or the backend broke the exchange: 502.
    Failed(String),
    /// Connect or response timeout: 504.
    Timeout(&'static str),
}

/// Identifies connections that may be shared: same address, protocol and TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct PoolKey {
    addr: SocketAddr,
    protocol: BackendProtocol,
    tls: u64,
}

pub(super) enum Sender {
    H1(http1::SendRequest<Counted>),
    H2(http2::SendRequest<Counted>),
    /// A fresh HTTP/1.1 connection for an `Upgrade` request: its socket
    /// comes back once the backend answered 101.
    Upgrade(http1::SendRequest<Counted>, UpgradeRx),
}

/// Either side of an upgraded connection, as a plain byte stream.
pub(super) trait TunnelIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> TunnelIo for T {}

/// The backend socket of an upgraded exchange, with bytes it sent early.
pub(super) type Upgraded = (Box<dyn TunnelIo>, bytes::Bytes);
pub(super) type UpgradeRx = tokio::sync::oneshot::Receiver<Upgraded>;

#[derive(Default)]
struct Entry {
    idle: Vec<http1::SendRequest<Counted>>,
    h2: Option<http2::SendRequest<Counted>>,
}

thread_local! {
    static POOL: RefCell<HashMap<PoolKey, Entry>> = RefCell::new(HashMap::new());
}

/// A pooled HTTP/1.1 connection goes back when its response is done.
pub(super) struct Lease {
    key: PoolKey,
    sender: http1::SendRequest<Counted>,
}

impl Lease {
    pub(super) fn give_back(self) {
        if self.sender.is_closed() {
            return;
        }
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            if p.len() >= MAX_POOL_KEYS && !p.contains_key(&self.key) {
                p.retain(|_, e| {
                    e.idle.retain(|s| !s.is_closed());
                    e.h2.as_ref().is_some_and(|s| !s.is_closed()) || !e.idle.is_empty()
                });
            }
            let entry = p.entry(self.key).or_default();
            if entry.idle.len() < MAX_IDLE_PER_BACKEND {
                entry.idle.push(self.sender);
            }
        });
    }
}

fn checkout(key: &PoolKey) -> Option<Sender> {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let entry = p.get_mut(key)?;
        if let Some(h2) = &entry.h2 {
            if !h2.is_closed() {
                return Some(Sender::H2(h2.clone()));
            }
            entry.h2 = None;
        }
        while let Some(mut s) = entry.idle.pop() {
            if s.is_closed() {
                continue;
            }
            // Ready now, or busy/broken: then it is dropped, never waited on.
            let ready = std::future::poll_fn(|cx| Poll::Ready(s.poll_ready(cx)));
            if let Poll::Ready(Poll::Ready(Ok(()))) = poll_now(ready) {
                return Some(Sender::H1(s));
            }
        }
        None
    })
}

/// Polls a future once with a no-op waker.
fn poll_now<F: std::future::Future>(f: F) -> Poll<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    f.as_mut().poll(&mut cx)
}

fn remember_h2(key: &PoolKey, s: &http2::SendRequest<Counted>) {
    POOL.with(|p| {
        p.borrow_mut().entry(key.clone()).or_default().h2 = Some(s.clone());
    });
}

/// The outcome of a request: the response and, for pooled HTTP/1.1, the
/// connection to give back when the body is done.
pub(super) struct Sent {
    pub response: Response,
    pub lease: Option<Lease>,
    /// Upgrade requests: the backend's socket once it switched protocols.
    pub upgraded: Option<UpgradeRx>,
    /// The request counted as the backend's until the response body ends.
    pub in_flight: Option<InFlight>,
}

/// Sends `req` from `client` to `upstream`'s backends (the route's own or
/// a path rule's) in the route's balancing order over healthy ones; a
/// backend that refuses is ejected and the next one tried (while the request
/// has not been written); one that breaks the exchange is ejected too.
pub(super) async fn send(
    route: &RouteEntry,
    upstream: &Upstream<'_>,
    (worker, client): (usize, IpAddr),
    mut req: Request,
    upgrade: bool,
    response_timeout: Duration,
) -> Result<Sent, BackendError> {
    let protocol = upstream.protocol;
    let mut last = BackendError::NoHealthy;
    let header = route
        .spec
        .balance
        .hash_header
        .as_deref()
        .and_then(|h| req.headers().get(h))
        .map(http::HeaderValue::as_bytes);
    let order = upstream.pool.order(upstream.pool.key_for(client, header));
    for backend in order.up() {
        for addr in &backend.addrs {
            let key = PoolKey {
                addr: *addr,
                protocol,
                tls: upstream.tls.map_or(0, |t| t.identity),
            };
            let pooled = if upgrade { None } else { checkout(&key) };
            let sender = match pooled {
                Some(s) => s,
                None => match open(route, worker, backend, &key, upstream.tls, upgrade).await {
                    Ok(s) => s,
                    Err(e) => {
                        last = e;
                        continue;
                    }
                },
            };
            if upgrade && matches!(sender, Sender::H2(_)) {
                return Err(BackendError::Failed(
                    "an HTTP/1.1 Upgrade (WebSocket) cannot go to an HTTP/2 backend".to_owned(),
                ));
            }
            shape_for(&sender, &mut req, upstream.tls.is_some());
            let in_flight = backend.in_flight();
            return match exchange(sender, key, req, response_timeout, upgrade).await {
                Ok(mut sent) => {
                    sent.in_flight = Some(in_flight);
                    Ok(sent)
                }
                Err(e @ BackendError::Failed(_)) => {
                    backend.mark_down(now_ms());
                    Err(e)
                }
                Err(e) => Err(e),
            };
        }
        route
            .runtime
            .counters
            .add(worker, rstat::CONNECT_FAILURES, 1);
        backend.mark_down(now_ms());
    }
    Err(last)
}

/// HTTP/2 wants an absolute URI; HTTP/1.1 an origin-form one with `Host`.
fn shape_for(sender: &Sender, req: &mut Request, tls: bool) {
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        });
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    match sender {
        Sender::H1(_) | Sender::Upgrade(..) => {
            *req.version_mut() = http::Version::HTTP_11;
            if let Ok(uri) = path.parse() {
                *req.uri_mut() = uri;
            }
            if !req.headers().contains_key(http::header::HOST)
                && let Some(a) = authority.and_then(|a| http::HeaderValue::from_str(&a).ok())
            {
                req.headers_mut().insert(http::header::HOST, a);
            }
        }
        Sender::H2(_) => {
            *req.version_mut() = http::Version::HTTP_2;
            let scheme = if tls { "https" } else { "http" };
            if let Some(a) = authority
                && let Ok(uri) = format!("{scheme}://{a}{path}").parse()
            {
                *req.uri_mut() = uri;
                req.headers_mut().remove(http::header::HOST);
            }
        }
    }
}

async fn exchange(
    sender: Sender,
    key: PoolKey,
    req: Request,
    timeout: Duration,
    upgrade: bool,
) -> Result<Sent, BackendError> {
    match sender {
        Sender::H1(mut s) => {
            let fut = s.send_request(req);
            let response = match monoio::time::timeout(timeout, fut).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Err(BackendError::Failed(e.to_string())),
                Err(_) => return Err(BackendError::Timeout("backend response")),
            };
            let lease = (!upgrade).then_some(Lease { key, sender: s });
            Ok(Sent {
                response,
                lease,
                upgraded: None,
                in_flight: None,
            })
        }
        Sender::Upgrade(mut s, rx) => {
            let fut = s.send_request(req);
            match monoio::time::timeout(timeout, fut).await {
                Ok(Ok(response)) => Ok(Sent {
                    response,
                    lease: None,
                    upgraded: Some(rx),
                    in_flight: None,
                }),
                Ok(Err(e)) => Err(BackendError::Failed(e.to_string())),
                Err(_) => Err(BackendError::Timeout("backend response")),
            }
        }
        Sender::H2(mut s) => {
            let fut = s.send_request(req);
            match monoio::time::timeout(timeout, fut).await {
                Ok(Ok(response)) => Ok(Sent {
                    response,
                    lease: None,
                    upgraded: None,
                    in_flight: None,
                }),
                Ok(Err(e)) => Err(BackendError::Failed(e.to_string())),
                Err(_) => Err(BackendError::Timeout("backend response")),
            }
        }
    }
}

async fn open(
    route: &RouteEntry,
    worker: usize,
    backend: &BackendHealth,
    key: &PoolKey,
    tls: Option<&BackendTls>,
    upgrade: bool,
) -> Result<Sender, BackendError> {
    let started = Instant::now();
    let tcp = match monoio::time::timeout(route.connect_timeout, TcpStream::connect_addr(key.addr))
        .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(backend = %key.addr, error = %e, "backend connect failed");
            return Err(BackendError::Failed(format!("connect {}: {e}", key.addr)));
        }
        Err(_) => return Err(BackendError::Timeout("backend connect")),
    };
    route
        .runtime
        .connect_latency
        .observe(worker, started.elapsed());
    backend.mark_up();
    let _ = tcp.set_nodelay(true);
    let io = tcp
        .into_poll_io()
        .map_err(|e| BackendError::Failed(format!("poll io: {e}")))?;
    let failed =
        |e: hyper::Error| BackendError::Failed(format!("handshake with {}: {e}", key.addr));
    match (key.protocol, tls) {
        (BackendProtocol::H2c, _) => h2(TokioIo::new(io), key).await.map_err(failed),
        (BackendProtocol::Tls, Some(t)) => {
            let name = match &t.server_name {
                Some(n) => n.clone(),
                None => rustls_pki_types::ServerName::try_from(backend.backend.host.clone())
                    .map_err(|_| {
                        BackendError::Failed("backend host is not a valid TLS name".into())
                    })?,
            };
            let connector = tokio_rustls::TlsConnector::from(t.config.clone());
            let stream =
                match monoio::time::timeout(route.connect_timeout, connector.connect(name, io))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        return Err(BackendError::Failed(format!(
                            "TLS with backend {}: {e}",
                            key.addr
                        )));
                    }
                    Err(_) => return Err(BackendError::Timeout("backend TLS handshake")),
                };
            let alpn_h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            if alpn_h2 && !upgrade {
                h2(TokioIo::new(stream), key).await.map_err(failed)
            } else if upgrade {
                h1_upgrade(TokioIo::new(stream)).await.map_err(failed)
            } else {
                h1(TokioIo::new(stream)).await.map_err(failed)
            }
        }
        _ if upgrade => h1_upgrade(TokioIo::new(io)).await.map_err(failed),
        _ => h1(TokioIo::new(io)).await.map_err(failed),
    }
}

/// An unpooled HTTP/1.1 connection whose socket is handed back after a 101.
async fn h1_upgrade<T>(io: TokioIo<T>) -> Result<Sender, hyper::Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .max_buf_size(256 * 1024)
        .handshake::<_, Counted>(io)
        .await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    monoio::spawn(async move {
        match conn.without_shutdown().await {
            Ok(parts) => {
                let io: Box<dyn TunnelIo> = Box::new(parts.io.into_inner());
                let _ = tx.send((io, parts.read_buf));
            }
            Err(e) => tracing::debug!(error = %e, "backend upgrade connection ended"),
        }
    });
    Ok(Sender::Upgrade(sender, rx))
}

async fn h1<T>(io: T) -> Result<Sender, hyper::Error>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .max_buf_size(256 * 1024)
        .handshake::<_, Counted>(io)
        .await?;
    monoio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "backend HTTP/1.1 connection ended");
        }
    });
    Ok(Sender::H1(sender))
}

async fn h2<T>(io: T, key: &PoolKey) -> Result<Sender, hyper::Error>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let (sender, conn) = http2::Builder::new(LocalExec)
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(4 << 20)
        .max_header_list_size(64 * 1024)
        .handshake::<_, Counted>(io)
        .await?;
    monoio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "backend HTTP/2 connection ended");
        }
    });
    remember_h2(key, &sender);
    Ok(Sender::H2(sender))
}
