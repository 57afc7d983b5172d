//! L7 routes: TLS terminated here, HTTP/2 and HTTP/1.1 reverse proxy.
//!
//! ```text
//! conn (SNI read, route is L7) ─▶ rustls handshake (the read bytes replayed first)
//!   ─▶ ALPN h2 ─▶ hyper HTTP/2 server ┐
//!   ─▶ else     ─▶ hyper HTTP/1.1     ┴▶ forward::handle per request
//!        ─▶ policies ─▶ headers ─▶ backend (pooled h1 / h2c / TLS) ─▶ streamed response
//! ```
//!
//! hyper, h2 and tokio-rustls run on monoio's poll-IO bridge; their tasks
//! are spawned on the worker itself ([`io::LocalExec`]), so a connection and
//! its backend connections stay on one core. hyper's own timers need `Send`
//! sleeps that monoio does not have, so timeouts are enforced here: a
//! watchdog per connection closes it when no request arrives in time.

mod backend;
mod body;
mod forward;
mod headers;
mod io;

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use monoio::io::IntoPollIo;
use monoio::net::TcpStream;

use crate::published::Published;
use crate::snapshot::{ListenerEntry, RouteEntry};
use crate::stats::route as rstat;

pub(crate) use io::LocalExec;

/// Largest request head (request line + headers) and header count accepted.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
pub(crate) const MAX_HEADERS: usize = 128;
/// How long a draining connection may take to finish its requests.
const DRAIN_GRACE: Duration = Duration::from_secs(30);

/// Lingering close (as nginx's `lingering_close`): before closing, read and
/// discard what the client is still sending, for at most this long in all,
/// [`LINGER_QUIET`] without a byte, or [`LINGER_BYTES`].
const LINGER: Duration = Duration::from_secs(2);
const LINGER_QUIET: Duration = Duration::from_millis(200);
const LINGER_BYTES: usize = 1 << 20;

/// How a connection was admitted to an L7 route.
pub(crate) struct Admitted {
    /// The listener's table of the same snapshot as `route`: a request's
    /// host must look up to `route` in it.
    pub listener: Arc<ListenerEntry>,
    pub route: Arc<RouteEntry>,
    /// The route was chosen by the ClientHello's SNI (not the listener's default).
    pub by_sni: bool,
    /// The client: the peer, or the address a trusted proxy vouched for.
    pub client: SocketAddr,
}

/// One client connection's shared state (single-threaded).
pub(crate) struct ConnCtx {
    pub route: Arc<RouteEntry>,
    pub listener: Arc<ListenerEntry>,
    pub by_sni: bool,
    pub client: SocketAddr,
    pub worker: usize,
    pub h2: bool,
    /// Requests whose response body has not ended yet.
    in_flight: Cell<u32>,
    requests: Cell<u64>,
    /// When the connection last became idle (no request in flight).
    idle_since: Cell<Instant>,
    activity: Rc<Cell<Instant>>,
    /// `X-Real-IP` and the `X-Forwarded-For` element, made once per connection.
    client_ip: http::HeaderValue,
    /// `for=…;proto=https`, the start of this hop's `Forwarded` element.
    forwarded_for: String,
    /// The last `Forwarded` value built, by host: most connections ask for one host.
    forwarded_cache: std::cell::RefCell<Option<(String, http::HeaderValue)>>,
    /// Set by the handler when a backend switched protocols (HTTP/1.1 only).
    upgraded: std::cell::RefCell<Option<backend::UpgradeRx>>,
    /// `X-Forwarded-Client-Cert` for the client certificate verified in the
    /// handshake, if any.
    client_cert: Option<http::HeaderValue>,
}

impl ConnCtx {
    fn begin(&self) {
        self.in_flight.set(self.in_flight.get() + 1);
        self.requests.set(self.requests.get() + 1);
    }

    fn end(&self) {
        let n = self.in_flight.get().saturating_sub(1);
        self.in_flight.set(n);
        if n == 0 {
            self.idle_since.set(Instant::now());
        }
    }

    /// The moment the connection is to be closed if nothing changes.
    fn deadline(&self, header_timeout: Duration, idle_timeout: Duration) -> Instant {
        if self.in_flight.get() > 0 {
            return self.activity.get() + idle_timeout;
        }
        // Before the first request: the header timeout; between keep-alive
        // requests: the route's idle timeout.
        let limit = if self.requests.get() == 0 {
            header_timeout
        } else {
            idle_timeout
        };
        self.idle_since.get() + limit
    }
}

/// Terminates TLS on `client` (whose first bytes, `prefix`, were already
/// read) and serves HTTP until the connection ends.
pub(crate) async fn serve(
    client: TcpStream,
    prefix: Vec<u8>,
    admitted: Admitted,
    handshake_timeout: Duration,
    worker: usize,
    published: Arc<Published>,
) {
    let Admitted {
        listener,
        route,
        by_sni,
        client: client_addr,
    } = admitted;
    let Some(l7) = route.l7.as_ref() else {
        crate::worker::conn::reset(client);
        return;
    };
    let Some(spec) = route.spec.l7.as_ref() else {
        crate::worker::conn::reset(client);
        return;
    };
    let counters = &route.runtime.counters;
    let poll_io = match client.into_poll_io() {
        Ok(io) => io,
        Err(e) => {
            tracing::debug!(error = %e, "cannot switch the connection to poll IO");
            return;
        }
    };
    let activity = Rc::new(Cell::new(Instant::now()));
    let stream = io::Prefixed::new(prefix, poll_io, activity.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(l7.server.clone());
    let tls = match monoio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            counters.add(worker, rstat::TLS_HANDSHAKE_FAILURES, 1);
            tracing::debug!(client = %client_addr, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            counters.add(worker, rstat::TLS_HANDSHAKE_FAILURES, 1);
            return;
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    // Verified by rustls against the route's client CA (when it has one).
    let client_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(crate::client_cert::identity);
    let header_timeout = spec.request_header_timeout;
    let idle_timeout = route.idle_timeout;
    let max_streams = spec.max_concurrent_streams;
    let ctx = Rc::new(ConnCtx {
        route: route.clone(),
        listener,
        by_sni,
        client: client_addr,
        worker,
        h2,
        in_flight: Cell::new(0),
        requests: Cell::new(0),
        idle_since: Cell::new(Instant::now()),
        activity,
        upgraded: std::cell::RefCell::new(None),
        client_ip: http::HeaderValue::try_from(client_addr.ip().to_string())
            .unwrap_or_else(|_| http::HeaderValue::from_static("unknown")),
        forwarded_for: match client_addr {
            SocketAddr::V4(a) => format!("for={};proto=https", a.ip()),
            SocketAddr::V6(a) => format!("for=\"[{}]\";proto=https", a.ip()),
        },
        forwarded_cache: std::cell::RefCell::new(None),
        client_cert,
    });
    let svc_ctx = ctx.clone();
    let service =
        hyper::service::service_fn(move |req| Box::pin(forward::handle(req, svc_ctx.clone())));
    let io = TokioIo::new(tls);
    if h2 {
        let mut b = hyper::server::conn::http2::Builder::new(LocalExec);
        b.max_concurrent_streams(max_streams)
            .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX))
            .max_pending_accept_reset_streams(Some(64))
            .max_local_error_reset_streams(Some(256))
            .max_send_buf_size(256 * 1024)
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(4 << 20);
        let mut conn = H2(b.serve_connection(io, service));
        drive(&mut conn, &ctx, &published, header_timeout, idle_timeout).await;
    } else {
        let mut b = hyper::server::conn::http1::Builder::new();
        b.max_buf_size(MAX_HEADER_BYTES.max(8192))
            .max_headers(MAX_HEADERS)
            .keep_alive(true);
        let mut conn = H1(b.serve_connection(io, service));
        drive(&mut conn, &ctx, &published, header_timeout, idle_timeout).await;
        // A 101 from the backend: hyper handed the connection back (it only
        // upgrades `Send` sockets itself); splice the two sockets.
        let upgraded = ctx.upgraded.borrow_mut().take();
        let parts = conn.0.into_parts();
        match upgraded {
            Some(backend) => {
                let client: Box<dyn backend::TunnelIo> = Box::new(parts.io.into_inner());
                forward::tunnel(client, parts.read_buf, backend, ctx.clone()).await;
            }
            None => {
                // hyper left the socket to us (no shutdown without an
                // upgrade): end TLS properly, with close_notify.
                use tokio::io::AsyncWriteExt;
                let mut tls = parts.io.into_inner();
                let _ = monoio::time::timeout(Duration::from_secs(1), tls.shutdown()).await;
                linger(tls.get_mut().0).await;
            }
        }
    }
}

/// Closing a socket with unread bytes makes the kernel send a RST, which
/// can destroy a response the client has not read yet (a 431 for a request
/// whose headers are still arriving): drain what the client still sends,
/// bounded in time and bytes, before the socket closes.
async fn linger<S: tokio::io::AsyncRead + Unpin>(socket: &mut S) {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut buf = [0_u8; 16 * 1024];
    let mut drained = 0_usize;
    while drained < LINGER_BYTES && started.elapsed() < LINGER {
        match monoio::time::timeout(LINGER_QUIET, socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
}

/// A hyper server connection, either version.
trait Served {
    fn poll_serve(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), hyper::Error>>;
    /// Finish the requests in flight, then close.
    fn graceful(&mut self);
}

struct H1<C>(C);
struct H2<C>(C);

impl<I, S> Served for H1<hyper::server::conn::http1::Connection<I, S>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = forward::ProxyBody> + Unpin,
    S::Future: Unpin,
{
    fn poll_serve(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), hyper::Error>> {
        self.0.poll_without_shutdown(cx)
    }

    fn graceful(&mut self) {
        std::pin::Pin::new(&mut self.0).graceful_shutdown();
    }
}

impl<I, S> Served for H2<hyper::server::conn::http2::Connection<I, S, LocalExec>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = forward::ProxyBody>,
    S::Future: 'static,
{
    fn poll_serve(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), hyper::Error>> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }

    fn graceful(&mut self) {
        std::pin::Pin::new(&mut self.0).graceful_shutdown();
    }
}

/// Runs a hyper connection with our timeouts and the process's drain.
async fn drive<C: Served>(
    conn: &mut C,
    ctx: &ConnCtx,
    published: &Published,
    header_timeout: Duration,
    idle_timeout: Duration,
) {
    let mut changes = published.changes.subscribe();
    let mut drain_deadline: Option<Instant> = None;
    loop {
        let draining = published.draining.load(Ordering::Relaxed);
        // A connection drains after its first request: one accepted just
        // before the listeners stopped (an upgrade's last accepts) still gets
        // its answer; hyper would close it unanswered otherwise.
        if drain_deadline.is_none() && draining && ctx.requests.get() > 0 {
            conn.graceful();
            drain_deadline = Some(Instant::now() + DRAIN_GRACE);
        }
        let mut deadline =
            drain_deadline.unwrap_or_else(|| ctx.deadline(header_timeout, idle_timeout));
        if draining && drain_deadline.is_none() {
            // Look again soon for that first request.
            deadline = deadline.min(Instant::now() + Duration::from_millis(50));
        }
        let deadline = deadline.max(Instant::now() + Duration::from_millis(5));
        monoio::select! {
            r = std::future::poll_fn(|cx| conn.poll_serve(cx)) => {
                if let Err(e) = r {
                    tracing::debug!(client = %ctx.client, error = %e, "client connection ended with an error");
                }
                return;
            }
            () = monoio::time::sleep_until(deadline.into()) => {
                let now = Instant::now();
                if drain_deadline.is_some_and(|d| now >= d) {
                    return;
                }
                if drain_deadline.is_none() && now >= ctx.deadline(header_timeout, idle_timeout) {
                    tracing::debug!(client = %ctx.client, "closing an idle or slow connection");
                    return;
                }
            }
            _ = changes.changed() => {}
        }
    }
}
