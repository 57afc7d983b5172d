//! DNS over UDP: closed-loop queries from a list, one event loop per thread.
//!
//! Each thread has one connected UDP socket and keeps `in_flight` queries
//! outstanding: every answer (or timeout) sends the next query of the list,
//! round robin. Answers are matched by message id; RCODEs are counted. The
//! queries are plain (RD=0, no EDNS), as an authoritative server sees them.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use crate::tally::{ErrorKind, Tally};

/// One thread's share of the run.
pub(crate) struct Plan {
    pub(crate) addr: SocketAddr,
    /// Encoded queries with message id 0.
    pub(crate) queries: Arc<Vec<Vec<u8>>>,
    /// Where in the list this thread starts.
    pub(crate) first_query: usize,
    pub(crate) in_flight: usize,
    pub(crate) deadline: Instant,
    pub(crate) max_requests: Option<u64>,
    pub(crate) timeout: Duration,
}

/// Parses `NAME TYPE` lines into encoded queries.
pub(crate) fn parse_query_list(text: &str) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(name), ty, None) = (parts.next(), parts.next(), parts.next()) else {
            bail!("line {}: expected `NAME TYPE`", n + 1);
        };
        let qtype = qtype(ty.unwrap_or("A")).ok_or_else(|| {
            anyhow::anyhow!("line {}: unknown type `{}`", n + 1, ty.unwrap_or(""))
        })?;
        match encode_query(name, qtype) {
            Some(q) => out.push(q),
            None => bail!("line {}: `{name}` is not a valid DNS name", n + 1),
        }
    }
    if out.is_empty() {
        bail!("no queries in the list");
    }
    Ok(out)
}

fn qtype(s: &str) -> Option<u16> {
    Some(match s.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        "ANY" => 255,
        other => return other.parse().ok(),
    })
}

/// A query for `name`/`qtype`, class IN, id 0, no flags.
fn encode_query(name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut q = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    let name = name.trim_end_matches('.');
    let mut wire_len = 1;
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 || !label.is_ascii() {
                return None;
            }
            wire_len += label.len() + 1;
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
    }
    if wire_len > 255 {
        return None;
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    Some(q)
}

pub(crate) fn rcode_name(code: usize) -> &'static str {
    const NAMES: [&str; 16] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE", "RCODE11", "RCODE12", "RCODE13", "RCODE14", "RCODE15",
    ];
    NAMES.get(code).copied().unwrap_or("RCODE?")
}

/// Outstanding queries of one socket (a UDP socket or a TCP connection):
/// their message ids and send times. Shared by dns-udp and dns-tcp.
///
/// The table has a power-of-two number of slots; a query with id `i` sits in
/// slot `i & mask`, so ids are unique among outstanding queries and an answer
/// is matched with one lookup. UDP uses all 65,536 ids (one slot each); a TCP
/// connection, with at most 64 outstanding, a table of 64.
pub(crate) struct Pending {
    slots: Vec<Option<(u16, Instant)>>,
    mask: usize,
    next_id: u16,
    /// Message ids in the order sent, for timeouts (answered ones are skipped).
    order: VecDeque<(u16, Instant)>,
    pub(crate) in_flight: usize,
}

impl Pending {
    /// A table for at most `max_in_flight` outstanding queries (at most 65,536).
    pub(crate) fn new(max_in_flight: usize, first_id: u16) -> Self {
        let size = max_in_flight.clamp(1, 1 << 16).next_power_of_two();
        Self {
            slots: vec![None; size],
            mask: size - 1,
            next_id: first_id,
            order: VecDeque::with_capacity(max_in_flight.min(1 << 16) * 2),
            in_flight: 0,
        }
    }

    /// A free message id (the caller keeps `in_flight` below the table size).
    pub(crate) fn free_id(&mut self) -> u16 {
        while self.slots[usize::from(self.next_id) & self.mask].is_some() {
            self.next_id = self.next_id.wrapping_add(1);
        }
        self.next_id
    }

    /// Records that the query with `id` (from [`Pending::free_id`]) went out.
    pub(crate) fn sent(&mut self, id: u16, now: Instant) {
        self.next_id = id.wrapping_add(1);
        self.slots[usize::from(id) & self.mask] = Some((id, now));
        self.order.push_back((id, now));
        self.in_flight += 1;
    }

    /// Copies query `q` into `buf` with message id `id`.
    pub(crate) fn stamp(buf: &mut Vec<u8>, q: &[u8], id: u16) {
        let start = buf.len();
        buf.extend_from_slice(q);
        buf[start..start + 2].copy_from_slice(&id.to_be_bytes());
    }

    /// Matches an answer to its query: latency, size and RCODE into `tally`;
    /// an answer for no outstanding query (late, or never asked) is a
    /// protocol error.
    pub(crate) fn answer(&mut self, msg: &[u8], tally: &mut Tally) {
        let (Some(id), Some(flags)) = (msg.get(..2), msg.get(2..4)) else {
            tally.error(ErrorKind::Protocol);
            return;
        };
        let id = u16::from_be_bytes([id[0], id[1]]);
        let slot = usize::from(id) & self.mask;
        let Some((sent_id, sent)) = self.slots[slot] else {
            tally.error(ErrorKind::Protocol);
            return;
        };
        if sent_id != id || flags[0] & 0x80 == 0 {
            tally.error(ErrorKind::Protocol);
            return;
        }
        self.slots[slot] = None;
        self.in_flight -= 1;
        tally.record(sent.elapsed());
        tally.requests += 1;
        tally.body_bytes += msg.len() as u64;
        tally.rcodes[usize::from(flags[1] & 0x0f)] += 1;
    }

    /// Counts queries sent more than `timeout` ago as timeouts and forgets them.
    pub(crate) fn expire(&mut self, now: Instant, timeout: Duration, tally: &mut Tally) {
        while let Some(&(id, sent)) = self.order.front() {
            let slot = usize::from(id) & self.mask;
            if self.slots[slot] != Some((id, sent)) {
                self.order.pop_front();
                continue;
            }
            if now.duration_since(sent) < timeout {
                break;
            }
            self.order.pop_front();
            self.slots[slot] = None;
            self.in_flight -= 1;
            tally.error(ErrorKind::Timeout);
        }
    }

    /// Forgets every outstanding query (the connection carrying them closed),
    /// counting each as `kind`.
    pub(crate) fn abandon(&mut self, kind: ErrorKind, tally: &mut Tally) {
        for _ in 0..self.in_flight {
            tally.error(kind);
        }
        self.slots.iter_mut().for_each(|s| *s = None);
        self.order.clear();
        self.in_flight = 0;
    }
}

struct Sender {
    next_query: usize,
    pending: Pending,
    buf: Vec<u8>,
}

impl Sender {
    /// Sends one query; `false` when the socket cannot take it now.
    fn send(&mut self, plan: &Plan, sock: &UdpSocket, tally: &mut Tally) -> bool {
        let id = self.pending.free_id();
        let q = &plan.queries[self.next_query % plan.queries.len()];
        self.buf.clear();
        Pending::stamp(&mut self.buf, q, id);
        let now = Instant::now();
        match sock.send(&self.buf) {
            Ok(_) => {
                self.next_query = self.next_query.wrapping_add(1);
                self.pending.sent(id, now);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => {
                tally.error(ErrorKind::from_io(&e));
                false
            }
        }
    }
}

/// Waits for events, at most 20 ms and not past `deadline`; `Ok(false)` when
/// interrupted by a signal (nothing to handle).
pub(crate) fn poll_once(
    poll: &mut Poll,
    events: &mut Events,
    deadline: Instant,
    now: Instant,
) -> io::Result<bool> {
    let wait = deadline
        .saturating_duration_since(now)
        .min(Duration::from_millis(20));
    match poll.poll(events, Some(wait)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) fn run(plan: &Plan) -> io::Result<Tally> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(64);
    let mut tally = Tally::new();
    let bind: SocketAddr = if plan.addr.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    }
    .parse()
    .map_err(|_| io::Error::other("bind address"))?;
    let mut sock = UdpSocket::bind(bind)?;
    sock.connect(plan.addr)?;
    poll.registry()
        .register(&mut sock, Token(0), Interest::READABLE | Interest::WRITABLE)?;
    let mut s = Sender {
        next_query: plan.first_query,
        pending: Pending::new(1 << 16, 0),
        buf: Vec::with_capacity(512),
    };
    let mut answer = vec![0u8; 65_536];
    let mut next_scan = Instant::now();
    let mut errors_in_a_row = 0u32;
    loop {
        let now = Instant::now();
        if now >= plan.deadline || plan.max_requests.is_some_and(|m| tally.requests >= m) {
            break;
        }
        while s.pending.in_flight < plan.in_flight {
            if !s.send(plan, &sock, &mut tally) {
                break;
            }
        }
        if !poll_once(&mut poll, &mut events, plan.deadline, now)? {
            continue;
        }
        while plan.max_requests.is_none_or(|m| tally.requests < m) {
            match sock.recv(&mut answer) {
                Ok(n) => {
                    errors_in_a_row = 0;
                    s.pending.answer(&answer[..n], &mut tally);
                    if s.pending.in_flight < plan.in_flight {
                        s.send(plan, &sock, &mut tally);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // ECONNREFUSED: nothing listens (an ICMP port unreachable).
                    tally.error(ErrorKind::from_io(&e));
                    errors_in_a_row += 1;
                    if errors_in_a_row > 100 {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    break;
                }
            }
        }
        let now = Instant::now();
        if now >= next_scan {
            next_scan = now + Duration::from_millis(50);
            s.pending.expire(now, plan.timeout, &mut tally);
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_query() {
        let q = encode_query("www.example.com.", 1).expect("valid");
        assert_eq!(&q[..12], &[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&q[12..], b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        assert_eq!(encode_query(".", 2).expect("root").len(), 12 + 5);
        assert!(encode_query("a..b", 1).is_none());
        assert!(encode_query(&"a".repeat(64), 1).is_none());
    }

    #[test]
    fn parses_a_list() {
        let qs =
            parse_query_list("# zone\nwww.example.com A\nexample.com soa\nx.example.com 99\n\n")
                .expect("valid");
        assert_eq!(qs.len(), 3);
        assert!(parse_query_list("a.example.com BOGUS").is_err());
        assert!(parse_query_list("a b c").is_err());
        assert!(parse_query_list("# nothing").is_err());
    }

    #[test]
    fn answers_against_a_local_udp_server() {
        // A tiny responder: echo the query with QR set and NXDOMAIN.
        let server = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = server.local_addr().expect("addr");
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = server.recv_from(&mut buf) {
                buf[2] |= 0x80;
                buf[3] = (buf[3] & 0xf0) | 3;
                let _ = server.send_to(&buf[..n], from);
            }
        });
        let plan = Plan {
            addr,
            queries: Arc::new(parse_query_list("a.example A\nb.example AAAA").expect("list")),
            first_query: 0,
            in_flight: 4,
            deadline: Instant::now() + Duration::from_secs(5),
            max_requests: Some(200),
            timeout: Duration::from_secs(2),
        };
        let t = run(&plan).expect("run");
        assert!(t.requests >= 200);
        assert_eq!(t.total_errors(), 0);
        assert_eq!(t.rcodes[3], t.requests);
    }
}
