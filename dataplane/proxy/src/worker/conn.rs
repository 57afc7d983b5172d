//! One client connection, from accept to close. This is the hot path.
//!
//! ```text
//! accept ─▶ firewall(peer)¹ ─▶ PROXY header² ─▶ firewall(client)² ─▶ ClientHello ─▶ route
//!        ─▶ connect backend (round robin, skip down) ─▶ PROXY header out³ ─▶ replay ─▶ relay
//! ¹ unless the peer is a trusted proxy   ² only from trusted proxies   ³ per route
//! ```
//!
//! Every refusal is a TCP RST (SO_LINGER 0): no TLS alert, no bytes. Nothing
//! here takes a lock; the snapshot is loaded once and kept to the end.

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mc_wire::client_hello::{self, Parse as HelloParse};
use mc_wire::proxy_protocol::{self, Accept, Command, Parse as ProxyParse};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};
use monoio::net::TcpStream;

use crate::health::InFlight;
use crate::model::{ListenerKind, ProxyProtocolIn, ProxyProtocolOut, RouteMode};
use crate::published::Published;
use crate::snapshot::{ListenerEntry, RouteEntry, Snapshot, now_ms};

use crate::stats::{Global, Route, RouteCounters, global, listener as lstat, route as rstat};

/// The relay's buffer per direction: large enough for a full TLS record.
const RELAY_BUF: usize = 32 * 1024;
/// Largest PROXY v2 header accepted (the protocol allows 64 KiB of TLVs; we don't).
const MAX_PROXY_HEADER: usize = 4096;

/// Why the preamble (PROXY header + ClientHello) was refused.
enum Refused {
    /// Counted under this global counter.
    Count(Global),
    /// The peer went away or the read failed: nothing to count.
    Gone,
}

struct Preamble {
    client: SocketAddr,
    /// The destination the PROXY header carried, if any.
    destination: Option<SocketAddr>,
    /// Everything read after the PROXY header: the ClientHello and anything after it.
    bytes: Vec<u8>,
    sni: Option<String>,
}

/// Closes `stream` with a TCP RST.
pub(crate) fn reset(stream: TcpStream) {
    let _ = mc_rt::socket::set_reset_on_close(&stream);
    drop(stream);
}

/// Reads more bytes onto the end of `buf`; `Ok(0)` is EOF.
pub(super) async fn read_more(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    limit: usize,
) -> (std::io::Result<usize>, Vec<u8>) {
    let want = limit.saturating_sub(buf.len()).clamp(1, 4096);
    buf.reserve(want);
    let len = buf.len();
    let (res, slice) = stream.read(buf.slice_mut(len..len + want)).await;
    (res, slice.into_inner())
}

fn accept_for(p: ProxyProtocolIn) -> Option<Accept> {
    match p {
        ProxyProtocolIn::Off => None,
        ProxyProtocolIn::V1 => Some(Accept::V1),
        ProxyProtocolIn::V2 => Some(Accept::V2),
        ProxyProtocolIn::Any => Some(Accept::Any),
    }
}

/// True when `buf` starts like a PROXY header (v1 text or v2 signature).
fn looks_like_proxy_header(buf: &[u8]) -> bool {
    const V1: &[u8] = b"PROXY ";
    const V2: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
    let n = buf.len().min(6);
    matches!((buf.get(..n), V1.get(..n), V2.get(..n)), (Some(b), Some(a), Some(c)) if b == a || b == c)
        && !buf.is_empty()
}

async fn read_preamble(
    stream: &mut TcpStream,
    peer: SocketAddr,
    expect_proxy: Option<Accept>,
    reject_proxy: bool,
    max_hello: usize,
) -> Result<Preamble, Refused> {
    let mut buf = Vec::with_capacity(2048);
    let mut client = peer;
    let mut destination = None;
    if let Some(accept) = expect_proxy {
        loop {
            match proxy_protocol::parse(&buf, accept) {
                Ok(ProxyParse::Complete { header, consumed }) => {
                    if header.command == Command::Proxy
                        && let Some(src) = header.source
                    {
                        client = src;
                        destination = header.destination;
                    }
                    buf.drain(..consumed.min(buf.len()));
                    break;
                }
                Ok(ProxyParse::Incomplete) if buf.len() < MAX_PROXY_HEADER => {}
                Ok(ProxyParse::Incomplete) | Err(_) => {
                    return Err(Refused::Count(global::PROXY_HEADER_FAILURES));
                }
            }
            let (res, b) = read_more(stream, buf, MAX_PROXY_HEADER).await;
            buf = b;
            match res {
                Ok(0) | Err(_) => return Err(Refused::Gone),
                Ok(_) => {}
            }
        }
    }
    loop {
        if reject_proxy && looks_like_proxy_header(&buf) && buf.len() >= 6 {
            return Err(Refused::Count(global::BLOCK_UNTRUSTED_PROXY));
        }
        match client_hello::parse(&buf, max_hello) {
            Ok(HelloParse::Complete(hello)) => {
                return Ok(Preamble {
                    client,
                    destination,
                    sni: hello.server_name,
                    bytes: buf,
                });
            }
            Ok(HelloParse::Incomplete) => {}
            Err(_) => {
                if reject_proxy && looks_like_proxy_header(&buf) {
                    return Err(Refused::Count(global::BLOCK_UNTRUSTED_PROXY));
                }
                return Err(Refused::Count(global::CLIENT_HELLO_FAILURES));
            }
        }
        let (res, b) = read_more(stream, buf, max_hello).await;
        buf = b;
        match res {
            Ok(0) | Err(_) => return Err(Refused::Gone),
            Ok(_) => {}
        }
    }
}

/// Decrements a gauge when dropped.
struct Active<'a> {
    counters: &'a RouteCounters,
    worker: usize,
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.counters.sub(self.worker, rstat::ACTIVE, 1);
    }
}

/// Handles one accepted connection on `listener_name`.
pub(crate) async fn handle(
    client: TcpStream,
    peer: SocketAddr,
    listener_name: Rc<str>,
    worker: usize,
    published: Arc<Published>,
) {
    let snapshot = published.snapshot.load_full();
    let Some(listener) = snapshot.listeners.get(&*listener_name).cloned() else {
        reset(client);
        return;
    };
    let lc = &listener.counters;
    lc.add(worker, lstat::CONNECTIONS, 1);
    lc.add(worker, lstat::ACTIVE, 1);
    serve(client, peer, &listener, &snapshot, worker, &published).await;
    lc.sub(worker, lstat::ACTIVE, 1);
}

async fn serve(
    mut client: TcpStream,
    peer: SocketAddr,
    listener: &Arc<ListenerEntry>,
    snapshot: &Snapshot,
    worker: usize,
    published: &Arc<Published>,
) {
    let firewall = &snapshot.firewall;
    let spec = &listener.spec;
    let globals = &published.globals;
    let peer_ip = peer.ip();
    let trusted = spec.proxy_protocol != ProxyProtocolIn::Off
        && spec.trusted_proxies.iter().any(|n| n.contains(&peer_ip));

    // A direct client is checked before any byte is read.
    let mut guard = None;
    if !trusted {
        match firewall.admit(peer_ip, Instant::now()) {
            Ok(g) => guard = Some(g),
            Err(blocked) => {
                globals.add(worker, blocked.0, 1);
                reset(client);
                return;
            }
        }
    }

    if spec.kind == ListenerKind::Http {
        // Validation keeps PROXY headers off http listeners: the peer is the client.
        super::plain::serve(client, peer, listener, snapshot, worker, &published.http01).await;
        drop(guard);
        return;
    }

    let expect = if trusted {
        accept_for(spec.proxy_protocol)
    } else {
        None
    };
    let reject_proxy = !trusted && spec.proxy_protocol != ProxyProtocolIn::Off;
    let preamble = match monoio::time::timeout(
        spec.client_hello_timeout,
        read_preamble(
            &mut client,
            peer,
            expect,
            reject_proxy,
            published.max_client_hello,
        ),
    )
    .await
    {
        Ok(Ok(p)) => p,
        Ok(Err(Refused::Count(i))) => {
            globals.add(worker, i, 1);
            reset(client);
            return;
        }
        Ok(Err(Refused::Gone)) => return,
        Err(_) => {
            globals.add(worker, global::CLIENT_HELLO_FAILURES, 1);
            reset(client);
            return;
        }
    };

    // The address a trusted proxy vouched for is checked like a direct peer.
    if trusted && preamble.client != peer {
        match firewall.admit(preamble.client.ip(), Instant::now()) {
            Ok(g) => guard = Some(g),
            Err(blocked) => {
                globals.add(worker, blocked.0, 1);
                reset(client);
                return;
            }
        }
    }

    let by_sni = preamble.sni.is_some();
    let route = match preamble.sni.as_deref() {
        Some(name) => listener.routes.lookup(name),
        None => listener.default_route.as_ref(),
    };
    let Some(route) = route.cloned() else {
        listener.counters.add(worker, lstat::UNROUTED, 1);
        tracing::debug!(client = %preamble.client, sni = ?preamble.sni, "no route; reset");
        reset(client);
        return;
    };
    let counters = &route.runtime.counters;
    counters.add(worker, rstat::CONNECTIONS, 1);
    counters.add(worker, rstat::ACTIVE, 1);
    let _active = Active { counters, worker };
    if route.spec.mode == RouteMode::L7 {
        super::l7::serve(
            client,
            preamble.bytes,
            super::l7::Admitted {
                listener: listener.clone(),
                route: route.clone(),
                by_sni,
                client: preamble.client,
            },
            spec.client_hello_timeout,
            worker,
            published.clone(),
        )
        .await;
        drop(guard);
        return;
    }

    let Some((mut backend, _in_flight)) = connect(&route, worker, preamble.client.ip()).await
    else {
        reset(client);
        return;
    };
    let mut head = Vec::new();
    let destination = preamble.destination.or_else(|| client.local_addr().ok());
    if let Some(dst) = destination {
        match route.spec.send_proxy_protocol {
            ProxyProtocolOut::Off => {}
            ProxyProtocolOut::V1 => proxy_protocol::encode_v1(preamble.client, dst, &mut head),
            ProxyProtocolOut::V2 => proxy_protocol::encode_v2(preamble.client, dst, &mut head),
        }
    }
    head.extend_from_slice(&preamble.bytes);
    counters.add(worker, rstat::BYTES_UP, preamble.bytes.len() as u64);
    let (res, _) = backend.write_all(head).await;
    if res.is_err() {
        reset(client);
        return;
    }
    relay(client, backend, &route, worker).await;
    drop(guard);
}

/// Connects to the first backend that answers, trying them in the route's
/// balancing order and ejecting the ones that fail for a while; the guard
/// counts the connection as the backend's until it drops.
pub(super) async fn connect(
    route: &RouteEntry,
    worker: usize,
    client: IpAddr,
) -> Option<(TcpStream, InFlight)> {
    let counters = &route.runtime.counters;
    let pool = &route.runtime.pool;
    let order = route.candidates(pool.key_for(client, None));
    for backend in order.all() {
        for addr in &backend.addrs {
            let started = Instant::now();
            match monoio::time::timeout(route.connect_timeout, TcpStream::connect_addr(*addr)).await
            {
                Ok(Ok(stream)) => {
                    route
                        .runtime
                        .connect_latency
                        .observe(worker, started.elapsed());
                    let _ = stream.set_nodelay(true);
                    backend.mark_up();
                    return Some((stream, backend.in_flight()));
                }
                Ok(Err(e)) => {
                    tracing::debug!(backend = %addr, error = %e, "backend connect failed")
                }
                Err(_) => tracing::debug!(backend = %addr, "backend connect timed out"),
            }
        }
        counters.add(worker, rstat::CONNECT_FAILURES, 1);
        backend.mark_down(now_ms());
    }
    tracing::warn!(route = %route.spec.hostname, "no backend reachable");
    None
}

/// Copies one direction until EOF, then half-closes the other side.
async fn pipe<R: AsyncReadRent, W: AsyncWriteRent>(
    mut from: R,
    mut to: W,
    counters: &RouteCounters,
    index: Route,
    worker: usize,
    activity: &Cell<Instant>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(RELAY_BUF);
    loop {
        let (res, b) = from.read(buf).await;
        buf = b;
        let n = res?;
        if n == 0 {
            // Half-close: the other side sees EOF but may keep sending.
            let _ = to.shutdown().await;
            return Ok(());
        }
        activity.set(Instant::now());
        counters.add(worker, index, n as u64);
        let (res, b) = to.write_all(buf).await;
        buf = b;
        res?;
        buf.clear();
    }
}

pub(super) async fn relay(
    client: TcpStream,
    backend: TcpStream,
    route: &RouteEntry,
    worker: usize,
) {
    let counters = &route.runtime.counters;
    let activity = Cell::new(Instant::now());
    let (cr, cw) = client.into_split();
    let (br, bw) = backend.into_split();
    let up = pipe(cr, bw, counters, rstat::BYTES_UP, worker, &activity);
    let down = pipe(br, cw, counters, rstat::BYTES_DOWN, worker, &activity);
    let idle = route.idle_timeout;
    let watchdog = async {
        loop {
            let since = activity.get().elapsed();
            if since >= idle {
                return;
            }
            monoio::time::sleep((idle - since).max(Duration::from_millis(10))).await;
        }
    };
    monoio::select! {
        r = async { monoio::try_join!(up, down) } => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "relay ended with an error");
            }
        }
        () = watchdog => tracing::debug!(route = %route.spec.hostname, "idle timeout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_header_prefixes() {
        assert!(looks_like_proxy_header(b"PROXY TCP4"));
        assert!(looks_like_proxy_header(b"PRO"));
        assert!(looks_like_proxy_header(b"\r\n\r\n\0\r\nQUIT\n\x21"));
        assert!(!looks_like_proxy_header(b"\x16\x03\x01"));
        assert!(!looks_like_proxy_header(b""));
    }
}
