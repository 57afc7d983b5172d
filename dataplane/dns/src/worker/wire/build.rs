//! Building a snapshot's [`Table`]: every name a query can hit exactly gets
//! its answers rendered by the reference code (`answer::lookup` +
//! `message::respond`), so the templates are `process`'s bytes by
//! construction; only the header, the question and OPT are left to patch.
//!
//! Invariant: a name is in the table only under the zone `find_zone` picks
//! for it (a parent's data below a child zone's apex is left out), and every
//! zone's apex is in it, so the walk to a missing name's closest encloser
//! never leaves the zone `process` would answer from.

use std::collections::BTreeSet;
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::{CNAME, CUT, Entry, NegSoa, Table, Template, UNCOMPILED, WILD_CHILD};
use crate::worker::answer;
use crate::worker::message::{self, Flags, MAX_TCP_MESSAGE, Request};
use crate::zone::{Snapshot, Zone};

/// Names precompiled per snapshot; zones past the budget (in apex order)
/// are answered by `process` alone. It bounds publish time (~3 µs per
/// name) and memory (see docs/PERFORMANCE.md); a zone holds at most
/// `MAX_RECORDS_PER_ZONE` (100k) records, so two full-size zones fit.
pub(crate) const MAX_NAMES: usize = 250_000;

/// A private-use type (RFC 6895) no zone holds: renders "any other type".
const OTHER_TYPE: u16 = 0xFF00;

pub(super) fn build(snap: &Snapshot) -> Table {
    let mut t = Table::default();
    let mut apexes: Vec<&Arc<Zone>> = snap.zones.values().collect();
    apexes.sort_by(|a, b| a.origin.cmp(&b.origin));
    // Every type some node holds: a CNAME chain can end at any of them.
    let types: BTreeSet<u16> = apexes
        .iter()
        .flat_map(|z| z.nodes.values())
        .flat_map(|n| n.rrsets.iter().map(|s| u16::from(s.rtype)))
        .collect();
    let mut budget = MAX_NAMES;
    for zone in apexes {
        if zone.nodes.len() > budget {
            t.names.insert(
                wire_lower(&zone.origin).into(),
                Entry {
                    zone: u32::MAX,
                    flags: UNCOMPILED,
                    first: 0,
                    count: 0,
                },
            );
            continue;
        }
        budget -= zone.nodes.len();
        let Ok(zone_idx) = u32::try_from(t.zones.len()) else {
            continue;
        };
        t.zones.push(neg_soa(zone));
        for (name, node) in &zone.nodes {
            if !snap.find_zone(name).is_some_and(|z| Arc::ptr_eq(z, zone)) {
                continue;
            }
            let mut flags = 0;
            if zone.has_cuts && answer::find_cut(zone, name).is_some() {
                flags |= CUT;
            } else if node.get(RecordType::CNAME).is_some() {
                flags |= CNAME;
            }
            if zone.has_wildcards
                && name
                    .prepend_label("*")
                    .is_ok_and(|w| zone.nodes.contains_key(&w))
            {
                flags |= WILD_CHILD;
            }
            let lower = name.to_lowercase();
            let qlen = wire_lower(&lower).len() + 1;
            let first = t.templates.len();
            let qtypes: Vec<u16> = if flags & CUT != 0 {
                Vec::new()
            } else if flags & CNAME != 0 {
                types.iter().copied().collect()
            } else {
                node.rrsets.iter().map(|s| u16::from(s.rtype)).collect()
            };
            let mut rendered: Vec<Rendered> = qtypes
                .into_iter()
                .filter_map(|q| render_both(snap, &lower, q))
                .collect();
            if flags & (CUT | CNAME) != 0 {
                let Some(mut default) = render_both(snap, &lower, OTHER_TYPE) else {
                    continue;
                };
                // Types that answer like "any other type" need no template of their own.
                rendered.retain(|r| {
                    r.rcode != default.rcode || !same_but_qtype(&r.bytes, &default.bytes, qlen)
                });
                default.qtype = None;
                rendered.push(default);
            }
            for r in rendered {
                if let Some(tpl) = template(&mut t.arena, qlen, r) {
                    t.templates.push(tpl);
                }
            }
            let (Ok(first), Ok(count)) = (
                u32::try_from(first),
                u16::try_from(t.templates.len() - first),
            ) else {
                continue;
            };
            t.names.insert(
                wire_lower(name).into(),
                Entry {
                    zone: zone_idx,
                    flags,
                    first,
                    count,
                },
            );
        }
    }
    t.names.shrink_to_fit();
    t.templates.shrink_to_fit();
    t.arena.shrink_to_fit();
    t
}

/// Wire labels of `name`, lower-cased, without the terminal zero.
pub(super) fn wire_lower(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for label in name.iter() {
        out.push(u8::try_from(label.len()).unwrap_or(0));
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out
}

fn wire(name: &Name) -> Box<[u8]> {
    let mut out = Vec::with_capacity(name.len());
    for label in name.iter() {
        out.push(u8::try_from(label.len()).unwrap_or(0));
        out.extend_from_slice(label);
    }
    out.into()
}

fn neg_soa(zone: &Zone) -> NegSoa {
    let soa = zone.negative_soa();
    let mut fixed = Vec::with_capacity(8);
    fixed.extend_from_slice(&6_u16.to_be_bytes());
    fixed.extend_from_slice(&1_u16.to_be_bytes());
    fixed.extend_from_slice(&soa.ttl.to_be_bytes());
    let mut tail = Vec::with_capacity(20);
    let (mname, rname) = match &soa.data {
        RData::SOA(s) => {
            tail.extend_from_slice(&s.serial.to_be_bytes());
            // hickory writes these as i32: the same four bytes.
            tail.extend_from_slice(&s.refresh.to_be_bytes());
            tail.extend_from_slice(&s.retry.to_be_bytes());
            tail.extend_from_slice(&s.expire.to_be_bytes());
            tail.extend_from_slice(&s.minimum.to_be_bytes());
            (wire(&s.mname), wire(&s.rname))
        }
        _ => (Box::default(), Box::default()),
    };
    NegSoa {
        origin: wire(&soa.name),
        mname,
        rname,
        fixed: fixed.try_into().unwrap_or_default(),
        tail: tail.try_into().unwrap_or([0; 20]),
    }
}

/// The UDP response `process` gives to a plain query (id 0, RD/CD clear,
/// no EDNS) for `name`/`qtype`, with no size limit.
pub(super) fn render(
    snap: &Snapshot,
    name: &Name,
    qtype: u16,
) -> Option<(Vec<u8>, ResponseCode, bool)> {
    let qtype = RecordType::from(qtype);
    let ans = answer::lookup(snap, name, qtype, false)?;
    // Only owners equal to the question name (written as one pointer to it
    // whatever its case) and rdata without names: nothing else can be
    // compressed against the question, so its case cannot change a byte.
    let records = ans.answers.len() + ans.authorities.len() + ans.additionals.len();
    let case_free = records < 64
        && ans
            .answers
            .iter()
            .chain(&ans.authorities)
            .chain(&ans.additionals)
            .all(|r| {
                r.name == *name
                    && matches!(
                        r.data,
                        RData::A(_) | RData::AAAA(_) | RData::TXT(_) | RData::CAA(_)
                    )
            });
    let req = Request {
        id: 0,
        op_code: OpCode::Query,
        rd: false,
        cd: false,
        query: Query::query(name.clone(), qtype),
        edns: None,
        message: Message::new(0, MessageType::Query, OpCode::Query),
    };
    let flags = Flags {
        authoritative: ans.authoritative,
        recursion_available: false,
    };
    let (bytes, _) = message::respond(
        &req,
        ans.rcode,
        flags,
        ans.answers,
        ans.authorities,
        ans.additionals,
        MAX_TCP_MESSAGE,
        0,
    );
    // The rcode counted is the lookup's (SERVFAIL only replaces it on the wire).
    Some((bytes, ans.rcode, case_free))
}

/// The response for the lower-case name and whether an all-upper-case
/// question gives the same bytes outside the question name.
fn render_both(snap: &Snapshot, lower: &Name, qtype: u16) -> Option<Rendered> {
    let (a, rcode, case_free) = render(snap, lower, qtype)?;
    let case_safe = case_free || {
        // Otherwise: the same bytes for an all-upper-case question means no
        // name used a question suffix that holds letters, so no case can matter.
        let upper = Name::from_labels(lower.iter().map(<[u8]>::to_ascii_uppercase)).ok()?;
        let (b, _, _) = render(snap, &upper, qtype)?;
        let qlen = wire_lower(lower).len() + 1;
        a.len() == b.len() && a.get(..12) == b.get(..12) && a.get(12 + qlen..) == b.get(12 + qlen..)
    };
    Some(Rendered {
        qtype: Some(qtype),
        bytes: a,
        rcode,
        case_safe,
    })
}

struct Rendered {
    qtype: Option<u16>,
    bytes: Vec<u8>,
    rcode: ResponseCode,
    case_safe: bool,
}

/// Equal but for the question type (`qlen`: the question name's wire length).
fn same_but_qtype(a: &[u8], b: &[u8], qlen: usize) -> bool {
    let at = 12 + qlen;
    a.len() == b.len() && a.get(..at) == b.get(..at) && a.get(at + 2..) == b.get(at + 2..)
}

/// Cuts a rendered response into a template; the records go to `arena`.
fn template(arena: &mut Vec<u8>, qlen: usize, r: Rendered) -> Option<Template> {
    let msg = &r.bytes;
    let body = msg.get(12 + qlen + 4..)?;
    let count = |at: usize| Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]));
    let start = u32::try_from(arena.len()).ok()?;
    let len = u32::try_from(body.len()).ok()?;
    arena.extend_from_slice(body);
    Some(Template {
        qtype: r.qtype,
        flags: *msg.get(2)?,
        rcode_bits: *msg.get(3)?,
        rcode: r.rcode,
        counts: [count(6)?, count(8)?, count(10)?],
        case_safe: r.case_safe,
        start,
        len,
    })
}
