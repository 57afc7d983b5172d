//! Forwarding: names outside our zones go to the configured upstreams
//! through a per-worker cache.
//!
//! - Cache: bounded (`dns.cache_entries` per worker), keyed by (name, type),
//!   TTL-respecting (answers leave with their remaining TTL), negative
//!   answers cached for min(SOA TTL, SOA minimum) per RFC 2308; SERVFAIL and
//!   anything without a usable TTL are never cached. Per worker, so no lock.
//! - Upstreams: tried in rotation from a per-worker position, each with
//!   `dns.upstream_timeout`; a fresh UDP socket per attempt (a random source
//!   port from the kernel) and a random query ID; a response must match ID
//!   and question or it is ignored; TC → the same upstream over TCP. Every
//!   upstream failing → SERVFAIL.
//! - At most [`MAX_INFLIGHT`] forwarded queries per worker; more → SERVFAIL.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::io::{read_frame, write_frame};
use super::message::{self, Flags, Request};
use crate::published::Published;
use crate::stats::{global, upstream as ustat};

pub(crate) const MAX_INFLIGHT: usize = 1024;
/// Longest a positive answer is cached, whatever its TTL says.
pub(crate) const MAX_CACHE_TTL: u32 = 86_400;
const UPSTREAM_BUF: usize = 4096;

#[derive(Debug, Clone)]
struct Entry {
    rcode: ResponseCode,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
    stored: Instant,
    ttl: u32,
}

/// One worker's cache.
#[derive(Debug)]
pub(crate) struct Cache {
    map: HashMap<(Name, u16), Entry>,
    cap: usize,
    last_purge: Instant,
}

impl Cache {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            cap: cap.max(1),
            last_purge: Instant::now(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }

    pub(crate) fn remove_name(&mut self, name: &Name) {
        self.map.retain(|(n, _), _| n != name);
    }

    fn get(&mut self, key: &(Name, u16), now: Instant) -> Option<Entry> {
        let e = self.map.get(key)?;
        let age = now.saturating_duration_since(e.stored).as_secs();
        let age = u32::try_from(age).unwrap_or(u32::MAX);
        if age >= e.ttl {
            self.map.remove(key);
            return None;
        }
        let mut out = e.clone();
        for r in out
            .answers
            .iter_mut()
            .chain(out.authorities.iter_mut())
            .chain(out.additionals.iter_mut())
        {
            r.ttl = r.ttl.saturating_sub(age).min(e.ttl - age);
        }
        Some(out)
    }

    fn insert(&mut self, key: (Name, u16), entry: Entry, now: Instant) {
        if self.map.len() >= self.cap && !self.map.contains_key(&key) {
            if now.saturating_duration_since(self.last_purge) >= Duration::from_secs(1) {
                self.last_purge = now;
                self.map.retain(|_, e| {
                    now.saturating_duration_since(e.stored).as_secs() < u64::from(e.ttl)
                });
            }
            if self.map.len() >= self.cap
                && let Some(victim) = self.map.keys().next().cloned()
            {
                self.map.remove(&victim);
            }
        }
        self.map.insert(key, entry);
    }
}

/// How long an upstream answer may be cached, or `None`.
fn cache_ttl(msg: &Message) -> Option<u32> {
    let rcode = msg.metadata.response_code;
    if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
        return None;
    }
    let qtype = msg.queries.first().map(Query::query_type)?;
    let positive = rcode == ResponseCode::NoError
        && msg
            .answers
            .iter()
            .any(|r| r.record_type() == qtype || r.record_type() == RecordType::CNAME);
    let ttl = if positive {
        msg.answers.iter().map(|r| r.ttl).min()?.min(MAX_CACHE_TTL)
    } else {
        // RFC 2308 §5: min(SOA TTL, SOA MINIMUM); no SOA → not cached.
        msg.authorities.iter().find_map(|r| match &r.data {
            RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
            _ => None,
        })?
    };
    (ttl > 0).then_some(ttl)
}

#[derive(Debug)]
enum Failure {
    Timeout,
    Other,
}

/// One worker's forwarder.
#[derive(Debug)]
pub(crate) struct Forwarder {
    pub(crate) cache: RefCell<Cache>,
    next: Cell<usize>,
    inflight: Cell<usize>,
    seen_flush_all: Cell<u64>,
    seen_flush_seq: Cell<u64>,
}

struct InflightGuard<'a>(&'a Cell<usize>);

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

impl Forwarder {
    pub(crate) fn new(cap: usize, worker: usize) -> Self {
        Self {
            cache: RefCell::new(Cache::new(cap)),
            next: Cell::new(worker),
            inflight: Cell::new(0),
            seen_flush_all: Cell::new(0),
            seen_flush_seq: Cell::new(0),
        }
    }

    /// Applies FlushCache requests published since this worker last looked.
    fn apply_flushes(&self, p: &Published, worker: usize) {
        use std::sync::atomic::Ordering;
        let all = p.flush_all.load(Ordering::Relaxed);
        if all != self.seen_flush_all.get() {
            self.seen_flush_all.set(all);
            self.cache.borrow_mut().clear();
        }
        let seq = p.flush_seq.load(Ordering::Relaxed);
        if seq != self.seen_flush_seq.get() {
            let seen = self.seen_flush_seq.get();
            let mut cache = self.cache.borrow_mut();
            for (s, name) in p.flush_names.load().iter() {
                if *s > seen {
                    cache.remove_name(name);
                }
            }
            self.seen_flush_seq.set(seq);
        }
        p.stats.global.set(
            worker,
            global::CACHE_ENTRIES,
            self.cache.borrow().len() as u64,
        );
    }

    /// Answers `req` from the cache or the upstreams; never fails (SERVFAIL at worst).
    pub(crate) async fn resolve(
        &self,
        p: &Published,
        worker: usize,
        req: &Request,
        limit: usize,
    ) -> (Vec<u8>, ResponseCode) {
        let settings = &p.settings;
        let flags = Flags {
            authoritative: false,
            recursion_available: true,
        };
        self.apply_flushes(p, worker);
        let qtype = req.query.query_type();
        let key = (req.query.name().to_lowercase(), u16::from(qtype));
        let now = Instant::now();
        if let Some(hit) = self.cache.borrow_mut().get(&key, now) {
            p.stats.global.add(worker, global::CACHE_HITS, 1);
            return relay(
                req,
                hit.rcode,
                hit.answers,
                hit.authorities,
                hit.additionals,
                flags,
                limit,
                settings.udp_payload,
            );
        }
        p.stats.global.add(worker, global::CACHE_MISSES, 1);
        if self.inflight.get() >= MAX_INFLIGHT {
            p.stats.global.add(worker, global::FORWARD_OVERLOAD, 1);
            return (
                message::empty(req, ResponseCode::ServFail, flags, settings.udp_payload),
                ResponseCode::ServFail,
            );
        }
        self.inflight.set(self.inflight.get() + 1);
        let _guard = InflightGuard(&self.inflight);
        p.stats.global.add(worker, global::FORWARDED, 1);
        let n = settings.upstreams.len();
        let start = self.next.get();
        self.next.set(start.wrapping_add(1));
        for attempt in 0..n {
            let index = (start + attempt) % n;
            let Some(upstream) = settings.upstreams.get(index).copied() else {
                continue;
            };
            p.stats.upstreams.add(worker, index, ustat::QUERIES, 1);
            let began = Instant::now();
            match exchange(upstream, &req.query, settings.upstream_timeout).await {
                Ok(msg)
                    if matches!(
                        msg.metadata.response_code,
                        ResponseCode::NoError | ResponseCode::NXDomain
                    ) =>
                {
                    p.stats.upstream_latency.observe(worker, began.elapsed());
                    if let Some(ttl) = cache_ttl(&msg) {
                        let mut cache = self.cache.borrow_mut();
                        cache.insert(
                            key,
                            Entry {
                                rcode: msg.metadata.response_code,
                                answers: msg.answers.clone(),
                                authorities: msg.authorities.clone(),
                                additionals: msg.additionals.clone(),
                                stored: Instant::now(),
                                ttl,
                            },
                            Instant::now(),
                        );
                        p.stats
                            .global
                            .set(worker, global::CACHE_ENTRIES, cache.len() as u64);
                    }
                    let rcode = msg.metadata.response_code;
                    return relay(
                        req,
                        rcode,
                        msg.answers,
                        msg.authorities,
                        msg.additionals,
                        flags,
                        limit,
                        settings.udp_payload,
                    );
                }
                Ok(_) => p.stats.upstreams.add(worker, index, ustat::FAILURES, 1),
                Err(Failure::Timeout) => p.stats.upstreams.add(worker, index, ustat::TIMEOUTS, 1),
                Err(Failure::Other) => p.stats.upstreams.add(worker, index, ustat::FAILURES, 1),
            }
        }
        (
            message::empty(req, ResponseCode::ServFail, flags, settings.udp_payload),
            ResponseCode::ServFail,
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn relay(
    req: &Request,
    rcode: ResponseCode,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
    flags: Flags,
    limit: usize,
    our_payload: u16,
) -> (Vec<u8>, ResponseCode) {
    let additionals = additionals
        .into_iter()
        .filter(|r| {
            !matches!(
                r.record_type(),
                RecordType::OPT | RecordType::TSIG | RecordType::SIG
            )
        })
        .collect();
    let (bytes, _) = message::respond(
        req,
        rcode,
        flags,
        answers,
        authorities,
        additionals,
        limit,
        our_payload,
    );
    (bytes, rcode)
}

fn upstream_query(q: &Query) -> (u16, Vec<u8>) {
    let id: u16 = rand::random();
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.queries.push(q.clone());
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    msg.edns = Some(edns);
    (id, msg.to_vec().unwrap_or_default())
}

/// True when `msg` answers query `id` for `q`.
fn matches(msg: &Message, id: u16, q: &Query) -> bool {
    msg.metadata.id == id
        && msg.metadata.message_type == MessageType::Response
        && matches!(msg.queries.as_slice(),
            [only] if only.name() == q.name() && only.query_type() == q.query_type())
}

async fn exchange(upstream: SocketAddr, q: &Query, timeout: Duration) -> Result<Message, Failure> {
    let (id, bytes) = upstream_query(q);
    let deadline = Instant::now() + timeout;
    let local: SocketAddr = if upstream.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = monoio::net::udp::UdpSocket::bind(local).map_err(|_| Failure::Other)?;
    sock.connect(upstream).await.map_err(|_| Failure::Other)?;
    let (res, _) = sock.send(bytes.clone()).await;
    res.map_err(|_| Failure::Other)?;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Failure::Timeout);
        }
        let (res, buf) =
            match monoio::time::timeout(remaining, sock.recv(Vec::with_capacity(UPSTREAM_BUF)))
                .await
            {
                Ok(r) => r,
                Err(_) => return Err(Failure::Timeout),
            };
        // ECONNREFUSED (ICMP port unreachable) and friends: this upstream is down.
        let n = res.map_err(|_| Failure::Other)?;
        let Ok(msg) = Message::from_vec(buf.get(..n).unwrap_or_default()) else {
            continue;
        };
        if !matches(&msg, id, q) {
            continue;
        }
        if msg.metadata.truncation {
            let remaining = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(500));
            return exchange_tcp(upstream, &bytes, id, q, remaining).await;
        }
        return Ok(msg);
    }
}

async fn exchange_tcp(
    upstream: SocketAddr,
    bytes: &[u8],
    id: u16,
    q: &Query,
    timeout: Duration,
) -> Result<Message, Failure> {
    let work = async {
        let mut stream = monoio::net::TcpStream::connect_addr(upstream)
            .await
            .map_err(|_| Failure::Other)?;
        write_frame(&mut stream, bytes.to_vec())
            .await
            .map_err(|_| Failure::Other)?;
        let frame = read_frame(&mut stream).await.map_err(|_| Failure::Other)?;
        let frame = frame.ok_or(Failure::Other)?;
        let msg = Message::from_vec(&frame).map_err(|_| Failure::Other)?;
        if matches(&msg, id, q) {
            Ok(msg)
        } else {
            Err(Failure::Other)
        }
    };
    match monoio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(Failure::Timeout),
    }
}

#[cfg(test)]
mod tests;
