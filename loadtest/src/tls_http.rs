//! HTTP/1.1 over TLS through an SNI router: one worker thread's event loop.
//!
//! Each thread owns its connections, a `mio::Poll`, a scratch buffer and a
//! [`Tally`]; nothing is shared between threads while the run lasts. Every
//! connection slot is a closed loop: it sends the next request as soon as
//! the previous response is complete (keep-alive, bulk), or opens a new
//! connection as soon as the previous one closed (`l4-conn`).
//!
//! TLS is rustls used sans-I/O (`read_tls`/`process_new_packets`/`reader`)
//! over non-blocking sockets, with session resumption off so that every
//! connection is a full TLS 1.3 handshake.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use crate::http::{HttpError, Progress, ResponseReader};
use crate::tally::{ErrorKind, Tally};

/// What each connection slot does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A new connection (full handshake) per request, `Connection: close`.
    ConnPerRequest,
    /// Requests back to back on long-lived connections.
    KeepAlive,
}

/// One thread's share of the run.
pub(crate) struct Plan {
    pub(crate) mode: Mode,
    pub(crate) addr: SocketAddr,
    pub(crate) server_name: ServerName<'static>,
    pub(crate) tls: Arc<ClientConfig>,
    pub(crate) request: Arc<[u8]>,
    pub(crate) connections: usize,
    pub(crate) deadline: Instant,
    /// Stop after this many completed requests (this thread's share).
    pub(crate) max_requests: Option<u64>,
    pub(crate) timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// TCP connect or TLS handshake in progress.
    Handshake,
    /// Request sent, response not complete.
    Response,
    /// `Connection: close` response complete; waiting for the server's close.
    Closing,
}

struct Conn {
    sock: TcpStream,
    tls: ClientConnection,
    connected: bool,
    phase: Phase,
    reader: ResponseReader,
    /// When the current request started (the connect, for `ConnPerRequest`).
    started: Instant,
}

/// What driving a connection came to.
enum Step {
    /// Waiting for the socket.
    Pending,
    /// The connection is finished without error: open the next one.
    Finished,
    /// The run is over for this connection (deadline or quota).
    Stop,
    Failed(ErrorKind),
}

pub(crate) fn run(plan: &Plan) -> io::Result<Tally> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut tally = Tally::new();
    let mut scratch = vec![0u8; 64 * 1024];
    let mut slots: Vec<Option<Conn>> = (0..plan.connections).map(|_| None).collect();
    // Slots to (re)open, and when: failures back off so a dead target is not a busy loop.
    let mut reopen: Vec<(Instant, usize)> =
        (0..plan.connections).map(|i| (Instant::now(), i)).collect();
    let mut next_timeout_scan = Instant::now();
    let quota_reached = |t: &Tally| plan.max_requests.is_some_and(|m| t.requests >= m);

    loop {
        let now = Instant::now();
        if now >= plan.deadline || quota_reached(&tally) {
            break;
        }
        if !reopen.is_empty() {
            let mut i = 0;
            while i < reopen.len() {
                let (at, slot) = reopen[i];
                if at > now {
                    i += 1;
                    continue;
                }
                reopen.swap_remove(i);
                match open(plan, &poll, slot, &mut tally) {
                    Ok(conn) => slots[slot] = Some(conn),
                    Err(kind) => {
                        tally.error(kind);
                        reopen.push((now + Duration::from_millis(10), slot));
                    }
                }
            }
        }
        let wait = plan
            .deadline
            .saturating_duration_since(now)
            .min(Duration::from_millis(if reopen.is_empty() {
                50
            } else {
                5
            }));
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for ev in events.iter() {
            let slot = ev.token().0;
            let Some(conn) = slots.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            match drive(plan, conn, &mut scratch, &mut tally) {
                Step::Pending => {}
                Step::Finished => {
                    slots[slot] = None;
                    reopen.push((Instant::now(), slot));
                }
                Step::Stop => slots[slot] = None,
                Step::Failed(kind) => {
                    tally.error(kind);
                    slots[slot] = None;
                    reopen.push((Instant::now() + Duration::from_millis(1), slot));
                }
            }
        }
        let now = Instant::now();
        if now >= next_timeout_scan {
            next_timeout_scan = now + Duration::from_millis(100);
            for (i, s) in slots.iter_mut().enumerate() {
                if s.as_ref()
                    .is_some_and(|c| now.duration_since(c.started) > plan.timeout)
                {
                    *s = None;
                    tally.error(ErrorKind::Timeout);
                    reopen.push((now, i));
                }
            }
        }
    }
    Ok(tally)
}

fn open(plan: &Plan, poll: &Poll, slot: usize, tally: &mut Tally) -> Result<Conn, ErrorKind> {
    let started = Instant::now();
    let mut sock = TcpStream::connect(plan.addr).map_err(|e| ErrorKind::from_io(&e))?;
    // Requests are single writes; never wait for Nagle.
    let _ = sock.set_nodelay(true);
    poll.registry()
        .register(
            &mut sock,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(|_| ErrorKind::Io)?;
    let tls = ClientConnection::new(plan.tls.clone(), plan.server_name.clone())
        .map_err(|_| ErrorKind::Tls)?;
    tally.connects += 1;
    Ok(Conn {
        sock,
        tls,
        connected: false,
        phase: Phase::Handshake,
        reader: ResponseReader::new(),
        started,
    })
}

fn drive(plan: &Plan, c: &mut Conn, scratch: &mut [u8], tally: &mut Tally) -> Step {
    if !c.connected {
        match c.sock.take_error() {
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => return Step::Failed(ErrorKind::Connect),
        }
        match c.sock.peer_addr() {
            Ok(_) => c.connected = true,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Step::Pending,
            Err(_) => return Step::Failed(ErrorKind::Connect),
        }
    }
    loop {
        while c.tls.wants_write() {
            match c.tls.write_tls(&mut c.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Step::Failed(ErrorKind::from_io(&e)),
            }
        }
        let mut progressed = false;
        let mut eof = false;
        match c.tls.read_tls(&mut c.sock) {
            Ok(0) => eof = true,
            Ok(_) => progressed = true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Step::Failed(ErrorKind::from_io(&e)),
        }
        if progressed && let Err(_) = c.tls.process_new_packets() {
            // Flush the alert rustls queued; the connection is dead either way.
            let _ = c.tls.write_tls(&mut c.sock);
            return Step::Failed(ErrorKind::Tls);
        }
        if c.phase == Phase::Handshake && !c.tls.is_handshaking() {
            if tally.negotiated.is_none() {
                tally.negotiated = Some(describe(&c.tls));
            }
            if let Err(e) = c.tls.writer().write_all(&plan.request) {
                return Step::Failed(ErrorKind::from_io(&e));
            }
            c.phase = Phase::Response;
            // Loop round to flush the request.
            continue;
        }
        // Drain the plaintext rustls holds.
        let mut closed = eof;
        loop {
            match c.tls.reader().read(scratch) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => match on_bytes(plan, c, &scratch[..n], tally) {
                    Step::Pending => {}
                    other => return other,
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    closed = true;
                    break;
                }
                Err(e) => return Step::Failed(ErrorKind::from_io(&e)),
            }
        }
        if closed {
            return on_close(c, tally);
        }
        if !progressed && !c.tls.wants_write() {
            return Step::Pending;
        }
    }
}

/// Plaintext arrived.
fn on_bytes(plan: &Plan, c: &mut Conn, data: &[u8], tally: &mut Tally) -> Step {
    if c.phase != Phase::Response {
        return Step::Failed(ErrorKind::Protocol);
    }
    match c.reader.feed(data) {
        Ok(Progress::More) => Step::Pending,
        Ok(Progress::Done) => complete(plan, c, tally),
        Err(HttpError::Malformed | HttpError::Status(_) | HttpError::Chunked) => {
            Step::Failed(ErrorKind::Protocol)
        }
        Err(HttpError::Trailing) => Step::Failed(ErrorKind::Protocol),
    }
}

/// A whole response arrived.
fn complete(plan: &Plan, c: &mut Conn, tally: &mut Tally) -> Step {
    if plan.max_requests.is_some_and(|m| tally.requests >= m) {
        // Another connection reached the quota first: `--requests` is exact.
        return Step::Stop;
    }
    let now = Instant::now();
    tally.record(now.duration_since(c.started));
    tally.requests += 1;
    tally.body_bytes += c.reader.body_len();
    let over = now >= plan.deadline || plan.max_requests.is_some_and(|m| tally.requests >= m);
    if plan.mode == Mode::ConnPerRequest || c.reader.closes() {
        // Read on until the server closes: closing first with its
        // close_notify unread would reset the connection.
        c.phase = Phase::Closing;
        return if over { Step::Stop } else { Step::Pending };
    }
    if over {
        return Step::Stop;
    }
    c.reader.reset();
    c.started = now;
    if let Err(e) = c.tls.writer().write_all(&plan.request) {
        return Step::Failed(ErrorKind::from_io(&e));
    }
    Step::Pending
}

/// The server closed (close_notify or TCP EOF).
fn on_close(c: &mut Conn, tally: &mut Tally) -> Step {
    match c.phase {
        Phase::Closing => Step::Finished,
        Phase::Response if c.reader.until_close() => {
            c.reader.on_eof();
            let now = Instant::now();
            tally.record(now.duration_since(c.started));
            tally.requests += 1;
            tally.body_bytes += c.reader.body_len();
            Step::Finished
        }
        Phase::Handshake => Step::Failed(ErrorKind::Tls),
        Phase::Response => Step::Failed(ErrorKind::Eof),
    }
}

pub(crate) fn describe(tls: &ClientConnection) -> String {
    let version = tls
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    let suite = tls
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    let group = tls
        .negotiated_key_exchange_group()
        .map(|g| format!("{:?}", g.name()))
        .unwrap_or_default();
    format!("{version} {suite} {group}")
}
