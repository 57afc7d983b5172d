//! DNS over TCP (RFC 7766): long-lived connections, each with up to
//! `pipeline` queries outstanding, one event loop per thread.
//!
//! Every message is preceded by its 2-byte length. Each connection sends the
//! next query of the list (round robin) whenever it has fewer than `pipeline`
//! outstanding: `pipeline = 1` is a closed loop of one query at a time.
//! Answers are matched by message id (they may come back in any order), with
//! the same bookkeeping and answer checks as dns-udp ([`crate::dns::Pending`]).
//! When the server closes a connection, its outstanding queries count as
//! `eof` errors (`reset` when the close found queries unread) and the
//! connection is opened again (counted as a reconnect).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::dns::Pending;
use crate::tally::{ErrorKind, Tally};

/// At most this many queries outstanding per connection.
pub(crate) const MAX_PIPELINE: usize = 64;

/// One thread's share of the run.
pub(crate) struct Plan {
    pub(crate) addr: SocketAddr,
    /// Encoded queries with message id 0 (no length prefix).
    pub(crate) queries: Arc<Vec<Vec<u8>>>,
    /// Where in the list this thread starts.
    pub(crate) first_query: usize,
    pub(crate) connections: usize,
    /// Queries outstanding per connection, 1 to [`MAX_PIPELINE`].
    pub(crate) pipeline: usize,
    pub(crate) deadline: Instant,
    pub(crate) max_requests: Option<u64>,
    pub(crate) timeout: Duration,
}

struct Conn {
    stream: Option<TcpStream>,
    pending: Pending,
    next_query: usize,
    /// Length-prefixed queries not yet written, from `written` on.
    out: Vec<u8>,
    written: usize,
    /// Bytes read and not yet parsed into answers.
    input: Vec<u8>,
    /// After a failed connect: when to try again.
    retry_at: Option<Instant>,
    opened_before: bool,
}

impl Conn {
    /// Queues queries until `pipeline` are outstanding.
    fn fill(&mut self, plan: &Plan) {
        let now = Instant::now();
        while self.pending.in_flight < plan.pipeline {
            let q = &plan.queries[self.next_query % plan.queries.len()];
            self.next_query = self.next_query.wrapping_add(1);
            let id = self.pending.free_id();
            // Queries are at most 12 + 255 + 4 bytes: the length fits.
            self.out
                .extend_from_slice(&u16::try_from(q.len()).unwrap_or(0).to_be_bytes());
            Pending::stamp(&mut self.out, q, id);
            self.pending.sent(id, now);
        }
    }

    /// Writes what it can; `Err` when the connection is broken.
    fn flush(&mut self) -> io::Result<()> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        while self.written < self.out.len() {
            match stream.write(&self.out[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if not_yet(&e)? => break,
                Err(_) => {}
            }
        }
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
        Ok(())
    }

    /// Reads and matches answers; `Ok(false)` when the server closed.
    fn read(&mut self, chunk: &mut [u8], tally: &mut Tally) -> io::Result<bool> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(true);
        };
        loop {
            match stream.read(chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if not_yet(&e)? => break,
                Err(_) => {}
            }
        }
        let mut at = 0;
        while let Some(len) = self.input.get(at..at + 2) {
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            let Some(msg) = self.input.get(at + 2..at + 2 + len) else {
                break;
            };
            self.pending.answer(msg, tally);
            at += 2 + len;
        }
        self.input.drain(..at);
        Ok(true)
    }
}

/// For a failed read or write: `Ok(true)` when the socket is not ready (try
/// again on the next event), `Ok(false)` when interrupted (try again now), and
/// the error itself when the connection is broken.
fn not_yet(e: &io::Error) -> io::Result<bool> {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected => Ok(true),
        io::ErrorKind::Interrupted => Ok(false),
        kind => Err(io::Error::new(kind, e.to_string())),
    }
}

fn open(conn: &mut Conn, token: Token, plan: &Plan, poll: &Poll, tally: &mut Tally) {
    conn.retry_at = None;
    match TcpStream::connect(plan.addr) {
        Ok(mut stream) => {
            if let Err(e) = poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                tally.error(ErrorKind::from_io(&e));
                conn.retry_at = Some(Instant::now() + Duration::from_millis(10));
                return;
            }
            let _ = stream.set_nodelay(true);
            tally.connects += 1;
            if conn.opened_before {
                tally.reconnects += 1;
            }
            conn.opened_before = true;
            conn.stream = Some(stream);
        }
        Err(e) => {
            tally.error(ErrorKind::from_io(&e));
            conn.retry_at = Some(Instant::now() + Duration::from_millis(10));
        }
    }
}

/// Drops the connection: its outstanding queries count as `kind`; the next
/// attempt comes after a short pause (right away when the server closed it).
fn close(conn: &mut Conn, kind: ErrorKind, poll: &Poll, tally: &mut Tally, pause: Duration) {
    if let Some(mut stream) = conn.stream.take() {
        let _ = poll.registry().deregister(&mut stream);
    }
    conn.pending.abandon(kind, tally);
    conn.out.clear();
    conn.written = 0;
    conn.input.clear();
    conn.retry_at = Some(Instant::now() + pause);
}

/// A read or write failed. The queries outstanding on the connection are
/// lost, each counted by the error's kind (one error if none was
/// outstanding). A reset (the server closed with queries unread) reconnects
/// at once; other failures (a refused connect) after a pause.
fn broken(conn: &mut Conn, e: &io::Error, poll: &Poll, tally: &mut Tally) {
    let kind = ErrorKind::from_io(e);
    if conn.pending.in_flight == 0 {
        tally.error(kind);
    }
    let pause = if kind == ErrorKind::Reset {
        Duration::ZERO
    } else {
        Duration::from_millis(10)
    };
    close(conn, kind, poll, tally, pause);
}

pub(crate) fn run(plan: &Plan) -> io::Result<Tally> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(256);
    let mut tally = Tally::new();
    let pipeline = plan.pipeline.clamp(1, MAX_PIPELINE);
    let mut conns: Vec<Conn> = (0..plan.connections)
        .map(|i| Conn {
            stream: None,
            pending: Pending::new(pipeline, (i as u16).wrapping_mul(4099)),
            next_query: plan.first_query + i * 101,
            out: Vec::with_capacity(pipeline * 64),
            written: 0,
            input: Vec::with_capacity(4096),
            retry_at: None,
            opened_before: false,
        })
        .collect();
    for (i, c) in conns.iter_mut().enumerate() {
        open(c, Token(i), plan, &poll, &mut tally);
        c.fill(plan);
    }
    let mut chunk = vec![0u8; 65_536];
    let mut next_scan = Instant::now();
    let done = |t: &Tally| plan.max_requests.is_some_and(|m| t.requests >= m);
    loop {
        let now = Instant::now();
        if now >= plan.deadline || done(&tally) {
            break;
        }
        if !crate::dns::poll_once(&mut poll, &mut events, plan.deadline, now)? {
            continue;
        }
        for ev in &events {
            let Some(c) = conns.get_mut(ev.token().0) else {
                continue;
            };
            if c.stream.is_none() {
                continue;
            }
            let result = match c.read(&mut chunk, &mut tally) {
                Ok(true) => {
                    if !done(&tally) {
                        c.fill(plan);
                    }
                    c.flush().map(|()| true)
                }
                other => other,
            };
            match result {
                Ok(true) => {}
                // The server closed: open it again at once.
                Ok(false) => close(c, ErrorKind::Eof, &poll, &mut tally, Duration::ZERO),
                Err(e) => broken(c, &e, &poll, &mut tally),
            }
        }
        let now = Instant::now();
        for (i, c) in conns.iter_mut().enumerate() {
            if c.stream.is_none() && c.retry_at.is_some_and(|t| now >= t) {
                open(c, Token(i), plan, &poll, &mut tally);
                c.fill(plan);
            }
        }
        if now >= next_scan {
            next_scan = now + Duration::from_millis(50);
            for c in &mut conns {
                c.pending.expire(now, plan.timeout, &mut tally);
                if c.stream.is_some() && !done(&tally) {
                    c.fill(plan);
                    if let Err(e) = c.flush() {
                        broken(c, &e, &poll, &mut tally);
                    }
                }
            }
        }
    }
    Ok(tally)
}
