//! Authoritative lookup (RFC 1034 §4.3.2 with RFC 2308, 4592, 6604, 8482).
//!
//! Given a snapshot and a question, finds the zone, then walks: delegation
//! → referral (no AA, NS in authority, glue in additional); exact node →
//! the RRset, or a CNAME to follow (inside our zones, at most
//! [`MAX_CHAIN`] links), or NODATA; no node → the wildcard at the closest
//! encloser, or NXDOMAIN. Negative answers carry the zone's SOA with the
//! negative TTL. Records owned by the query name take the query's case.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::zone::{Node, Snapshot, Zone};

/// CNAME links followed inside our zones before giving up.
pub(crate) const MAX_CHAIN: usize = 8;

#[derive(Debug, Default)]
pub(crate) struct Answer {
    pub(crate) rcode: ResponseCode,
    pub(crate) authoritative: bool,
    pub(crate) answers: Vec<Record>,
    pub(crate) authorities: Vec<Record>,
    pub(crate) additionals: Vec<Record>,
    /// A referral (for statistics and RRL classification).
    pub(crate) referral: bool,
}

/// `None`: no zone of ours contains the name.
pub(crate) fn lookup(
    snap: &Snapshot,
    qname: &Name,
    qtype: RecordType,
    tcp: bool,
) -> Option<Answer> {
    let mut zone = snap.find_zone(qname)?;
    let mut ans = Answer {
        rcode: ResponseCode::NoError,
        authoritative: true,
        ..Answer::default()
    };
    let mut name = qname.clone();
    let mut visited: Vec<Name> = Vec::new();
    loop {
        if zone.has_cuts
            && let Some(cut) = find_cut(zone, &name)
        {
            if cut == name && qtype == RecordType::DS {
                // The parent side of a cut holds no DS here: NODATA.
                ans.authorities.push(zone.negative_soa());
                return Some(ans);
            }
            if ans.answers.is_empty() {
                ans.authoritative = false;
            }
            ans.referral = true;
            if let Some(ns) = zone.nodes.get(&cut).and_then(|n| n.get(RecordType::NS)) {
                ans.authorities.extend(ns.records.iter().cloned());
                for r in &ns.records {
                    if let RData::NS(target) = &r.data {
                        glue(zone, &target.0, &mut ans.additionals);
                    }
                }
            }
            return Some(ans);
        }
        let node: &Node = match zone.nodes.get(&name) {
            Some(n) => n,
            None => match wildcard(zone, &name) {
                Some(n) => n,
                None => {
                    ans.rcode = ResponseCode::NXDomain;
                    ans.authorities.push(zone.negative_soa());
                    return Some(ans);
                }
            },
        };
        if qtype == RecordType::ANY {
            // RFC 8482: over UDP one RRset is enough; TCP gets them all.
            match (node.rrsets.first(), tcp) {
                (None, _) => ans.authorities.push(zone.negative_soa()),
                (Some(first), false) => push(&mut ans.answers, &first.records, &name),
                (Some(_), true) => {
                    for set in &node.rrsets {
                        push(&mut ans.answers, &set.records, &name);
                    }
                }
            }
            return Some(ans);
        }
        if let Some(set) = node.get(qtype) {
            push(&mut ans.answers, &set.records, &name);
            additional(snap, &set.records, &mut ans.additionals);
            return Some(ans);
        }
        if let Some(cname) = node.get(RecordType::CNAME) {
            push(&mut ans.answers, &cname.records, &name);
            let Some(RData::CNAME(target)) = cname.records.first().map(|r| &r.data) else {
                return Some(ans);
            };
            let target = target.0.clone();
            visited.push(name);
            if visited.len() >= MAX_CHAIN || visited.contains(&target) {
                return Some(ans);
            }
            match snap.find_zone(&target) {
                Some(z) => {
                    zone = z;
                    name = target;
                    continue;
                }
                // Outside our zones: the client's resolver follows it.
                None => return Some(ans),
            }
        }
        // NODATA (also for empty non-terminals).
        ans.authorities.push(zone.negative_soa());
        return Some(ans);
    }
}

/// Copies `records` into `out` with `owner` as their name (the query's case
/// for the query name, the synthesized name for wildcards).
fn push(out: &mut Vec<Record>, records: &[Record], owner: &Name) {
    for r in records {
        let mut r = r.clone();
        r.name = owner.clone();
        out.push(r);
    }
}

/// The topmost delegation point between the apex (exclusive) and `name` (inclusive).
pub(crate) fn find_cut(zone: &Zone, name: &Name) -> Option<Name> {
    let apex = zone.origin.num_labels();
    let labels = name.num_labels();
    let mut n = apex + 1;
    while n <= labels {
        let candidate = if n == labels {
            name.clone()
        } else {
            name.trim_to(usize::from(n))
        };
        if zone.nodes.get(&candidate).is_some_and(|node| node.cut) {
            return Some(candidate);
        }
        n += 1;
    }
    None
}

/// The wildcard node that synthesizes `name` (RFC 4592 §3.3.1): `*.` + the closest encloser.
fn wildcard<'z>(zone: &'z Zone, name: &Name) -> Option<&'z Node> {
    if !zone.has_wildcards {
        return None;
    }
    let mut encloser = name.base_name();
    while encloser.num_labels() >= zone.origin.num_labels() {
        if zone.nodes.contains_key(&encloser) {
            let star = encloser.prepend_label("*").ok()?;
            return zone.nodes.get(&star);
        }
        if encloser.num_labels() == 0 {
            break;
        }
        encloser = encloser.base_name();
    }
    None
}

/// In-zone A/AAAA for NS targets of a referral (glue).
fn glue(zone: &Zone, target: &Name, out: &mut Vec<Record>) {
    if !zone.origin.zone_of(target) {
        return;
    }
    if let Some(node) = zone.nodes.get(target) {
        for t in [RecordType::A, RecordType::AAAA] {
            if let Some(set) = node.get(t) {
                out.extend(set.records.iter().cloned());
            }
        }
    }
}

/// Additional-section processing for MX, SRV and NS answers: addresses of
/// targets we are authoritative for.
fn additional(snap: &Snapshot, records: &[Record], out: &mut Vec<Record>) {
    for r in records {
        let target = match &r.data {
            RData::MX(mx) => &mx.exchange,
            RData::SRV(srv) => &srv.target,
            RData::NS(ns) => &ns.0,
            _ => continue,
        };
        if target.is_root() || out.iter().any(|o| o.name == *target) {
            continue;
        }
        let Some(zone) = snap.find_zone(target) else {
            continue;
        };
        if zone.has_cuts && find_cut(zone, target).is_some() {
            continue;
        }
        if let Some(node) = zone.nodes.get(target) {
            for t in [RecordType::A, RecordType::AAAA] {
                if let Some(set) = node.get(t) {
                    out.extend(set.records.iter().cloned());
                }
            }
        }
    }
}
