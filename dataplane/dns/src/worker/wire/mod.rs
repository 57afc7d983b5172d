//! The wire-level answer path (NSD's approach): answers precompiled into the
//! zone snapshot when it is published, so a plain UDP query costs a bounded
//! header/question parse with no allocation, one hash lookup on the
//! lower-cased wire name, a copy of precompiled bytes and a few patched
//! header bits — no owned message model.
//!
//! Invariant: **the fast path answers byte-for-byte what
//! [`server::process`](super::server::process) answers (and counts the same
//! statistics), or declines** and the caller runs `process`. The
//! differential property test in `tests.rs` holds it to that.
//!
//! What it answers: opcode QUERY, one question of class IN, no records but
//! an optional OPT (version 0, no options but cookies), a name inside our
//! zones, and then
//! - an existing name: the precompiled answer for that (name, type) — a
//!   positive answer, a CNAME chain, a referral — built at publish time by
//!   the real `answer::lookup` + `message::respond`; absent types at a plain
//!   node are NODATA;
//! - a missing name that no wildcard covers and no delegation contains:
//!   NXDOMAIN.
//!
//! NODATA and NXDOMAIN are encoded per query from the zone's SOA pieces
//! with hickory-proto's own compression rule (first exact match of the
//! uncompressed suffix bytes, case-sensitive), so the client's 0x20 case in
//! the question changes them exactly as it changes `process`'s output.
//! Precompiled answers are copied as they are only when their bytes do not
//! depend on the question's case (checked at build time), otherwise only for
//! an all-lower-case question.
//!
//! Declined (left to `process`): TCP, anything malformed or unusual (header
//! counts, label types, trailing bytes, EDNS options other than cookies,
//! EDNS version > 0), NOTIFY and other opcodes, classes other than IN,
//! AXFR/IXFR/OPT/TSIG/SIG/ANY/DS questions, names outside our zones
//! (forwarding, REFUSED), wildcard synthesis, names below a delegation that
//! are not in the zone, and clients response rate limiting applies to
//! (`dns.rrl` on and the client not in `dns.rrl.exempt`).

mod build;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::message::MIN_UDP_PAYLOAD;
use crate::published::Published;
use crate::stats::{Global, global};
use crate::zone::Snapshot;

/// Longest question name (wire bytes, terminal zero included) we answer.
const MAX_QNAME: usize = 255;
/// Most labels in a question name we answer (keeps the compression table
/// far below hickory's 64-candidate cap, so the cap never changes a byte).
const MAX_LABELS: usize = 32;
/// hickory's cap on remembered compression targets.
const MAX_CANDIDATES: usize = 64;
/// Targets a negative answer keeps on the stack; one needing more (a
/// question or SOA names of many labels) is declined, not miscompressed.
const NEG_TARGETS: usize = 24;

/// Header bits (RFC 1035 §4.1.1).
const QR: u8 = 0x80;
const AA: u8 = 0x04;
const TC: u8 = 0x02;
const RD: u8 = 0x01;
const RA: u8 = 0x80;
const CD: u8 = 0x10;

/// Query types left to `process` (transfers, meta types, ANY, DS).
fn declined_qtype(t: u16) -> bool {
    matches!(t, 24 | 41 | 43 | 250 | 251 | 252 | 255)
}

/// A precompiled response minus its header and question.
#[derive(Debug)]
struct Template {
    /// The question type it answers; `None`: any type not listed before it
    /// (the question type occurs only in the question, which is patched).
    qtype: Option<u16>,
    /// Byte 2 of the header without RD (QR, AA).
    flags: u8,
    /// Byte 3 of the header without RA/CD (the rcode).
    rcode_bits: u8,
    /// The rcode counted in the statistics (`process` counts the lookup's).
    rcode: ResponseCode,
    /// Answer, authority and additional counts (without OPT).
    counts: [u16; 3],
    /// Bytes identical whatever the case of the question name.
    case_safe: bool,
    /// Where the records live in [`Table::arena`].
    start: u32,
    len: u32,
}

/// What an existing name answers beyond its templates.
const CUT: u8 = 1; // at or below a delegation: templates only (a referral)
const CNAME: u8 = 2; // a CNAME node: templates only (chains)
const WILD_CHILD: u8 = 4; // `*.<name>` exists: misses below it are synthesized
const UNCOMPILED: u8 = 8; // the apex of a zone over the size budget: decline below it

#[derive(Debug)]
struct Entry {
    zone: u32,
    flags: u8,
    first: u32,
    count: u16,
}

/// A zone's SOA as it goes into negative answers, in wire pieces.
#[derive(Debug)]
struct NegSoa {
    /// The apex, lower-case wire labels without the terminal zero.
    origin: Box<[u8]>,
    mname: Box<[u8]>,
    rname: Box<[u8]>,
    /// Type, class, negative TTL (owner and rdlength are written per query).
    fixed: [u8; 8],
    /// SERIAL..MINIMUM.
    tail: [u8; 20],
}

/// A multiply-rotate hash (the rustc/Fx scheme) over 8-byte words. Not
/// keyed: only our own zone names are inserted, so a query can at worst hit
/// the probe sequences those names made; SipHash was ~15 % of a fast answer.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0_u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0_u8; 8];
            if let Some(dst) = w.get_mut(..rest.len()) {
                dst.copy_from_slice(rest);
            }
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Names = HashMap<Box<[u8]>, Entry, BuildHasherDefault<NameHasher>>;

/// The precompiled answers of one snapshot.
#[derive(Debug, Default)]
pub(crate) struct Table {
    names: Names,
    zones: Vec<NegSoa>,
    templates: Vec<Template>,
    arena: Vec<u8>,
}

impl Table {
    /// Builds the table for `snap` (at publish time, on the admin side).
    pub(crate) fn build(snap: &Snapshot) -> Self {
        build::build(snap)
    }

    /// Heap bytes held (for the memory figures in docs/PERFORMANCE.md).
    pub(crate) fn heap_bytes(&self) -> usize {
        let keys: usize = self.names.keys().map(|k| k.len()).sum();
        let zones: usize = self
            .zones
            .iter()
            .map(|z| z.origin.len() + z.mname.len() + z.rname.len())
            .sum();
        keys + self.names.capacity() * (size_of::<(Box<[u8]>, Entry)>() + 1)
            + self.zones.capacity() * size_of::<NegSoa>()
            + zones
            + self.templates.capacity() * size_of::<Template>()
            + self.arena.capacity()
    }

    pub(crate) fn names(&self) -> usize {
        self.names.len()
    }
}

/// A question the fast path may answer, read from the request in place.
struct Question<'q> {
    id: [u8; 2],
    rd: bool,
    cd: bool,
    /// The name as sent (labels, terminal zero excluded).
    name: &'q [u8],
    /// The same, lower-cased.
    lower: [u8; MAX_QNAME],
    qtype: u16,
    /// Client EDNS: (payload, DO).
    edns: Option<(u16, bool)>,
}

impl Question<'_> {
    fn lower(&self) -> &[u8] {
        self.lower.get(..self.name.len()).unwrap_or_default()
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

/// Parses `bytes` if it is a query of the plain kind this path answers.
fn parse(bytes: &[u8]) -> Option<Question<'_>> {
    let hdr = bytes.get(..12)?;
    let (b2, b3) = (*hdr.get(2)?, *hdr.get(3)?);
    // QR clear, opcode QUERY.
    if b2 & 0xf8 != 0 {
        return None;
    }
    if be16(hdr, 4)? != 1 || be16(hdr, 6)? != 0 || be16(hdr, 8)? != 0 {
        return None;
    }
    let arcount = be16(hdr, 10)?;
    if arcount > 1 {
        return None;
    }
    let mut lower = [0_u8; MAX_QNAME];
    let mut at = 12;
    let mut labels = 0;
    loop {
        let len = usize::from(*bytes.get(at)?);
        if len == 0 {
            break;
        }
        if len > 63 || labels >= MAX_LABELS || at - 12 + len + 2 > MAX_QNAME {
            return None;
        }
        let src = bytes.get(at..at + 1 + len)?;
        let dst = lower.get_mut(at - 12..at - 12 + 1 + len)?;
        for (d, s) in dst.iter_mut().zip(src) {
            *d = s.to_ascii_lowercase();
        }
        at += 1 + len;
        labels += 1;
    }
    // Label lengths are below 64, never letters: lower-casing kept them.
    let name = bytes.get(12..at)?;
    let qtype = be16(bytes, at + 1)?;
    let qclass = be16(bytes, at + 3)?;
    if qclass != 1 || declined_qtype(qtype) {
        return None;
    }
    at += 5;
    let edns = if arcount == 1 {
        Some(parse_opt(bytes.get(at..)?)?)
    } else if at == bytes.len() {
        None
    } else {
        return None;
    };
    Some(Question {
        id: [*hdr.first()?, *hdr.get(1)?],
        rd: b2 & RD != 0,
        cd: b3 & CD != 0,
        name,
        lower,
        qtype,
        edns,
    })
}

/// An OPT record that is the whole rest of the message: version 0, no
/// extended rcode, options only cookies (ignored by `process` as well).
fn parse_opt(rr: &[u8]) -> Option<(u16, bool)> {
    if *rr.first()? != 0 || be16(rr, 1)? != 41 {
        return None;
    }
    let payload = be16(rr, 3)?;
    if *rr.get(5)? != 0 || *rr.get(6)? != 0 {
        return None;
    }
    let dnssec_ok = *rr.get(7)? & 0x80 != 0;
    let rdlen = usize::from(be16(rr, 9)?);
    let mut opts = rr.get(11..)?;
    if opts.len() != rdlen {
        return None;
    }
    while !opts.is_empty() {
        let (code, len) = (be16(opts, 0)?, usize::from(be16(opts, 2)?));
        if code != 10 || len == 0 {
            return None;
        }
        opts = opts.get(4 + len..)?;
    }
    Some((payload, dnssec_ok))
}

/// The result of one fast answer, for the caller's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answered {
    pub(crate) rcode: ResponseCode,
    pub(crate) truncated: bool,
}

/// Answers UDP query `bytes` from `peer` into `out` (cleared first) and
/// counts it like `process` does; `None`: declined, `out` is unspecified
/// and the caller runs `process`.
pub(crate) fn answer(
    p: &Published,
    worker: usize,
    snap: &Snapshot,
    bytes: &[u8],
    peer: IpAddr,
    out: &mut Vec<u8>,
) -> Option<Answered> {
    // RRL consumes a token per check: only exempt clients (no check in
    // `process` either; loopback by default) are answered here.
    if p.rrl.is_some() && !p.settings.rrl.is_exempt(peer) {
        return None;
    }
    let table = snap.wire.as_ref()?;
    let q = parse(bytes)?;
    let settings = &p.settings;
    let ours = settings.udp_payload;
    let recursion = !settings.upstreams.is_empty() && settings.recursion_allowed_for(peer);
    let limit = usize::from(match q.edns {
        None => MIN_UDP_PAYLOAD,
        Some((payload, _)) => payload.clamp(MIN_UDP_PAYLOAD, ours.max(MIN_UDP_PAYLOAD)),
    });
    let lower = q.lower();
    let mixed_case = lower != q.name;
    out.clear();
    let (flags, rcode) = match table.names.get(lower) {
        Some(e) if e.flags & UNCOMPILED != 0 => return None,
        Some(e) => {
            let first = usize::try_from(e.first).ok()?;
            let list = table.templates.get(first..first + usize::from(e.count))?;
            let t = list
                .iter()
                .find(|t| t.qtype == Some(q.qtype))
                .or_else(|| list.iter().find(|t| t.qtype.is_none()));
            match t {
                Some(t) => {
                    if mixed_case && !t.case_safe {
                        return None;
                    }
                    let body = table.arena.get(
                        usize::try_from(t.start).ok()?
                            ..usize::try_from(t.start).ok()? + usize::try_from(t.len).ok()?,
                    )?;
                    write_head(out, &q, t.flags, t.rcode_bits, t.counts, recursion);
                    out.extend_from_slice(body);
                    (t.flags, (t.rcode, t.rcode_bits))
                }
                None if e.flags & (CUT | CNAME) == 0 => {
                    let z = table.zones.get(usize::try_from(e.zone).ok()?)?;
                    negative(out, &q, z, 0, recursion)?;
                    (QR | AA, (ResponseCode::NoError, 0))
                }
                None => return None,
            }
        }
        None => {
            let e = closest_encloser(table, &q)?;
            if e.flags & (CUT | WILD_CHILD | UNCOMPILED) != 0 {
                return None;
            }
            let z = table.zones.get(usize::try_from(e.zone).ok()?)?;
            negative(out, &q, z, 3, recursion)?;
            (QR | AA, (ResponseCode::NXDomain, 3))
        }
    };
    let (rcode, rcode_bits) = rcode;
    if let Some((_, dnssec_ok)) = q.edns {
        push_opt(out, ours, dnssec_ok);
        bump_arcount(out);
    }
    let truncated = out.len() > limit;
    if truncated {
        out.clear();
        write_head(out, &q, flags | TC, rcode_bits, [0, 0, 0], recursion);
        if let Some((_, dnssec_ok)) = q.edns {
            push_opt(out, ours, dnssec_ok);
            bump_arcount(out);
        }
        p.stats.global.add(worker, global::TRUNCATED, 1);
    }
    p.stats
        .global
        .add(worker, Global::qtype(RecordType::from(q.qtype)), 1);
    super::server::count_rcode(p, worker, rcode);
    Some(Answered { rcode, truncated })
}

/// The first existing ancestor of a name that is not in the table.
fn closest_encloser<'t>(table: &'t Table, q: &Question<'_>) -> Option<&'t Entry> {
    let lower = q.lower();
    let mut at = 0;
    loop {
        let len = usize::from(*lower.get(at)?);
        at += 1 + len;
        let rest = lower.get(at..)?;
        if rest.is_empty() {
            return None;
        }
        if let Some(e) = table.names.get(rest) {
            return Some(e);
        }
    }
}

/// Header and question: the client's id, RD, CD and name bytes as sent.
fn write_head(
    out: &mut Vec<u8>,
    q: &Question<'_>,
    flags: u8,
    rcode_bits: u8,
    counts: [u16; 3],
    ra: bool,
) {
    out.extend_from_slice(&q.id);
    out.push(flags | if q.rd { RD } else { 0 });
    out.push(rcode_bits | if ra { RA } else { 0 } | if q.cd { CD } else { 0 });
    out.extend_from_slice(&[0, 1]);
    for c in counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
    out.extend_from_slice(q.name);
    out.push(0);
    out.extend_from_slice(&q.qtype.to_be_bytes());
    out.extend_from_slice(&[0, 1]);
}

/// Our OPT record, as `message::our_edns` makes it.
fn push_opt(out: &mut Vec<u8>, ours: u16, dnssec_ok: bool) {
    out.extend_from_slice(&[0, 0, 41]);
    out.extend_from_slice(&ours.max(MIN_UDP_PAYLOAD).to_be_bytes());
    out.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
}

fn bump_arcount(out: &mut [u8]) {
    if let Some(c) = out.get_mut(10..12) {
        let n = u16::from_be_bytes([
            c.first().copied().unwrap_or(0),
            c.get(1).copied().unwrap_or(0),
        ])
        .wrapping_add(1);
        c.copy_from_slice(&n.to_be_bytes());
    }
}

/// hickory-proto's name compression, replayed: remembered targets are the
/// uncompressed suffixes of names already written (case-sensitive bytes),
/// searched first-match, longest suffix first, at most [`MAX_CANDIDATES`].
struct Compressor<'a> {
    targets: [(usize, &'a [u8]); NEG_TARGETS],
    n: usize,
    /// More targets than [`NEG_TARGETS`] were needed: the bytes are not hickory's.
    overflow: bool,
}

impl<'a> Compressor<'a> {
    fn new() -> Self {
        Self {
            targets: [(0, &[]); NEG_TARGETS],
            n: 0,
            overflow: false,
        }
    }

    /// Remembers the suffixes of `name` written uncompressed at `start`.
    fn remember(&mut self, start: usize, name: &'a [u8]) {
        let mut off = 0;
        while let Some(&len) = name.get(off) {
            self.store(start + off, name.get(off..).unwrap_or_default());
            off += 1 + usize::from(len);
        }
    }

    fn store(&mut self, at: usize, suffix: &'a [u8]) {
        if self.n >= MAX_CANDIDATES {
            return;
        }
        match self.targets.get_mut(self.n) {
            Some(slot) => {
                *slot = (at, suffix);
                self.n += 1;
            }
            None => self.overflow = true,
        }
    }

    /// Writes `name` (labels without the terminal zero), compressed.
    fn write(&mut self, out: &mut Vec<u8>, name: &'a [u8]) {
        let base = out.len();
        let mut off = 0;
        while let Some(&len) = name.get(off) {
            let suffix = name.get(off..).unwrap_or_default();
            let found = self
                .targets
                .get(..self.n)
                .unwrap_or_default()
                .iter()
                .find(|(_, s)| *s == suffix);
            if let Some(&(loc, _)) = found {
                out.extend_from_slice(name.get(..off).unwrap_or_default());
                let ptr = 0xC000_u16 | u16::try_from(loc).unwrap_or(0);
                out.extend_from_slice(&ptr.to_be_bytes());
                return;
            }
            self.store(base + off, suffix);
            off += 1 + usize::from(len);
        }
        out.extend_from_slice(name);
        out.push(0);
    }
}

/// NODATA (`rcode` 0) or NXDOMAIN (3): the question and the zone's SOA with
/// the negative TTL in the authority section.
/// `None`: the compression table would outgrow the stack (declined).
fn negative(out: &mut Vec<u8>, q: &Question<'_>, z: &NegSoa, rcode: u8, ra: bool) -> Option<()> {
    write_head(out, q, QR | AA, rcode, [0, 1, 0], ra);
    let mut c = Compressor::new();
    c.remember(12, q.name);
    c.write(out, &z.origin);
    out.extend_from_slice(&z.fixed);
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    c.write(out, &z.mname);
    c.write(out, &z.rname);
    out.extend_from_slice(&z.tail);
    let rdlen = u16::try_from(out.len() - len_at - 2).unwrap_or(0);
    if let Some(slot) = out.get_mut(len_at..len_at + 2) {
        slot.copy_from_slice(&rdlen.to_be_bytes());
    }
    (!c.overflow).then_some(())
}
