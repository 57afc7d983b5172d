//! Memory per idle connection: opens `connections` TLS connections through
//! the server under test, holds them idle, and reports how much the server's
//! resident memory grew per connection.
//!
//! L4 (`idle-l4`): a full TLS 1.3 handshake with the backend through the
//! router, then nothing. HTTP/2 (`idle-h2`, TLS terminated by the router):
//! the handshake with ALPN h2, the client preface and an empty SETTINGS
//! frame, the server's SETTINGS acknowledged, then nothing. Connections are
//! opened one at a time (blocking sockets): what is measured is the memory
//! the server keeps for a connection at rest, not how fast it accepts them.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use crate::tally::{ErrorKind, Tally};

pub(crate) struct Plan {
    pub(crate) addr: SocketAddr,
    pub(crate) server_name: ServerName<'static>,
    /// With ALPN `h2` when `h2` is set.
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) h2: bool,
    pub(crate) connections: usize,
    pub(crate) timeout: Duration,
}

/// An open, idle connection: kept only so that it stays open.
pub(crate) struct Held {
    _tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
/// SETTINGS with the ACK flag.
const SETTINGS_ACK: [u8; 9] = [0, 0, 0, 4, 1, 0, 0, 0, 0];

/// Opens the connections one after the other; failures are counted in
/// `tally` (by kind) and the rest go on.
pub(crate) fn open_all(plan: &Plan, tally: &mut Tally) -> Vec<Held> {
    let mut held = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        let started = Instant::now();
        match open_one(plan, tally) {
            Ok(h) => {
                tally.record(started.elapsed());
                tally.requests += 1;
                held.push(h);
            }
            Err((kind, _)) => tally.error(kind),
        }
    }
    held
}

fn open_one(plan: &Plan, tally: &mut Tally) -> Result<Held, (ErrorKind, io::Error)> {
    let io_err = |e: io::Error| (ErrorKind::from_io(&e), e);
    let sock = TcpStream::connect_timeout(&plan.addr, plan.timeout)
        .map_err(|e| (ErrorKind::Connect, e))?;
    tally.connects += 1;
    sock.set_read_timeout(Some(plan.timeout)).map_err(io_err)?;
    sock.set_write_timeout(Some(plan.timeout)).map_err(io_err)?;
    let _ = sock.set_nodelay(true);
    let conn = rustls::ClientConnection::new(plan.tls.clone(), plan.server_name.clone())
        .map_err(|e| (ErrorKind::Tls, io::Error::other(e)))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| (tls_or_io(&e), e))?;
    }
    if tally.negotiated.is_none() {
        tally.negotiated = Some(crate::tls_http::describe(&tls.conn));
    }
    if plan.h2 {
        if tls.conn.alpn_protocol() != Some(b"h2") {
            return Err((
                ErrorKind::Protocol,
                io::Error::other("the server did not choose ALPN h2"),
            ));
        }
        tls.write_all(PREFACE).map_err(io_err)?;
        tls.write_all(&SETTINGS).map_err(io_err)?;
        tls.flush().map_err(io_err)?;
        wait_for_settings(&mut tls)?;
        tls.write_all(&SETTINGS_ACK).map_err(io_err)?;
        tls.flush().map_err(io_err)?;
    }
    Ok(Held { _tls: tls })
}

/// Reads frames until the server's own SETTINGS (not an ACK) has arrived.
fn wait_for_settings(
    tls: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
) -> Result<(), (ErrorKind, io::Error)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut at = 0;
        while let Some(head) = buf.get(at..at + 9) {
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let (kind, flags) = (head[3], head[4]);
            if kind == 4 && flags & 1 == 0 {
                return Ok(());
            }
            if kind == 7 {
                return Err((ErrorKind::Protocol, io::Error::other("GOAWAY")));
            }
            at += 9 + len;
        }
        let n = tls.read(&mut chunk).map_err(|e| (tls_or_io(&e), e))?;
        if n == 0 {
            return Err((ErrorKind::Eof, io::ErrorKind::UnexpectedEof.into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// rustls reports its failures as `InvalidData`.
fn tls_or_io(e: &io::Error) -> ErrorKind {
    if e.kind() == io::ErrorKind::InvalidData {
        ErrorKind::Tls
    } else {
        ErrorKind::from_io(e)
    }
}
