//! RFC 2136 dynamic UPDATE, the part both halves share: reading an UPDATE
//! message's prerequisite and update sections into a [`Plan`] (here, run by a
//! worker, pure and fuzzed) and applying a plan to a copy of a zone's records
//! ([`apply`], run by the admin side under its mutex).
//!
//! Invariants: a plan only holds names inside its zone, record types and
//! values MCNS can store, and at most [`MAX_RECORDS`] entries; applying it
//! is all-or-nothing (an error leaves the records as they were, because the
//! caller applies it to a copy).

use std::collections::{BTreeMap, BTreeSet};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use mc_kit::origin::Origin;

use crate::model::{self, RType, RecordSpec, ZoneName};

pub(crate) mod apply;

/// Records in the prerequisite and update sections together, at most.
pub(crate) const MAX_RECORDS: usize = 1_000;

/// One prerequisite (RFC 2136 §2.4); owners are relative (`@` = apex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Prereq {
    /// §2.4.4, fails with NXDOMAIN.
    NameInUse(String),
    /// §2.4.5, fails with YXDOMAIN.
    NameNotInUse(String),
    /// §2.4.1, fails with NXRRSET.
    RRsetExists(String, RecordType),
    /// §2.4.3, fails with YXRRSET.
    RRsetNotExists(String, RecordType),
    /// §2.4.2: the RRset holds exactly these canonical values; fails with NXRRSET.
    RRsetEquals(String, RecordType, BTreeSet<String>),
}

/// One change of the update section (RFC 2136 §2.5), in message order.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// §2.5.1 (validated; origin `api`).
    Add(RecordSpec, RData),
    /// §2.5.2.
    DeleteRRset(String, RecordType),
    /// §2.5.3.
    DeleteName(String),
    /// §2.5.4: one value (canonical) of one RRset.
    DeleteRR(String, RecordType, String),
}

/// A checked UPDATE for one zone.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) zone: ZoneName,
    pub(crate) prereqs: Vec<Prereq>,
    pub(crate) changes: Vec<Change>,
}

/// A plan on its way from a worker to the admin side, which answers with
/// the rcode.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) plan: Plan,
    pub(crate) reply: tokio::sync::oneshot::Sender<ResponseCode>,
}

/// Plans waiting for the admin side, at most (then SERVFAIL).
pub(crate) const QUEUE: usize = 64;

/// Types that name queries, not data (RFC 2136 §3.4.1.3: FORMERR in an update).
fn is_meta(t: RecordType) -> bool {
    matches!(
        t,
        RecordType::ANY
            | RecordType::AXFR
            | RecordType::IXFR
            | RecordType::OPT
            | RecordType::TSIG
            | RecordType::SIG
            | RecordType::NULL
    ) || (128..=255).contains(&u16::from(t))
}

/// `name` relative to `zone` as stored (`@` for the apex), or NOTZONE.
fn relative(zone: &ZoneName, name: &Name) -> Result<String, ResponseCode> {
    let apex = zone.name();
    if !apex.zone_of(name) {
        return Err(ResponseCode::NotZone);
    }
    let text = name.to_lowercase().to_ascii();
    let text = text.trim_end_matches('.');
    if text == zone.as_str() {
        return Ok("@".to_owned());
    }
    text.strip_suffix(zone.as_str())
        .and_then(|s| s.strip_suffix('.'))
        .map(str::to_owned)
        .ok_or(ResponseCode::NotZone)
}

/// The canonical form of a value as the zone stores it (types MCNS does not
/// store have none: no zone value can equal them).
pub(crate) fn canonical(t: RecordType, data: &RData) -> Option<String> {
    if t == RecordType::SOA {
        return Some(model::canonical(data));
    }
    RType::ALL
        .into_iter()
        .any(|r| r.record_type() == t)
        .then(|| model::canonical(data))
}

/// Reads the prerequisite (answer) and update (authority) sections of an
/// UPDATE for `zone` (RFC 2136 §3.2.1, §3.4.1); the error is the rcode.
pub(crate) fn plan(zone: &ZoneName, msg: &Message) -> Result<Plan, ResponseCode> {
    if msg.answers.len() + msg.authorities.len() > MAX_RECORDS {
        return Err(ResponseCode::Refused);
    }
    let mut prereqs = Vec::new();
    let mut equal: BTreeMap<(String, RecordType), BTreeSet<String>> = BTreeMap::new();
    for r in &msg.answers {
        if r.ttl != 0 {
            return Err(ResponseCode::FormErr);
        }
        let owner = relative(zone, &r.name)?;
        let t = r.record_type();
        let empty = matches!(r.data, RData::Update0(_));
        match r.dns_class {
            DNSClass::ANY | DNSClass::NONE if !empty => return Err(ResponseCode::FormErr),
            DNSClass::ANY if t == RecordType::ANY => prereqs.push(Prereq::NameInUse(owner)),
            DNSClass::ANY => prereqs.push(Prereq::RRsetExists(owner, t)),
            DNSClass::NONE if t == RecordType::ANY => prereqs.push(Prereq::NameNotInUse(owner)),
            DNSClass::NONE => prereqs.push(Prereq::RRsetNotExists(owner, t)),
            DNSClass::IN if !empty && !is_meta(t) => {
                // A value no zone can hold still makes the RRset differ.
                let value = canonical(t, &r.data).unwrap_or_else(|| format!("\0{t}"));
                equal.entry((owner, t)).or_default().insert(value);
            }
            _ => return Err(ResponseCode::FormErr),
        }
    }
    prereqs.extend(
        equal
            .into_iter()
            .map(|((owner, t), values)| Prereq::RRsetEquals(owner, t, values)),
    );
    let mut changes = Vec::new();
    for r in &msg.authorities {
        changes.push(change(zone, r)?);
    }
    Ok(Plan {
        zone: zone.clone(),
        prereqs,
        changes,
    })
}

/// One update-section record (RFC 2136 §3.4.1.3).
fn change(zone: &ZoneName, r: &Record) -> Result<Change, ResponseCode> {
    let owner = relative(zone, &r.name)?;
    let t = r.record_type();
    let empty = matches!(r.data, RData::Update0(_));
    match r.dns_class {
        DNSClass::IN => {
            if is_meta(t) || empty {
                return Err(ResponseCode::FormErr);
            }
            // SOA belongs to the zone (its serial is ours); other types are not served.
            let rtype = RType::ALL
                .into_iter()
                .find(|x| x.record_type() == t)
                .ok_or(ResponseCode::Refused)?;
            let value = model::canonical(&r.data);
            let spec = RecordSpec::new(
                zone,
                &owner,
                rtype,
                r.ttl.max(1),
                &value,
                0,
                Origin::AdminApi,
            )
            .map_err(|_| ResponseCode::Refused)?;
            let data =
                model::parse_rdata(zone, rtype, &spec.value).map_err(|_| ResponseCode::Refused)?;
            Ok(Change::Add(spec, data))
        }
        DNSClass::ANY => {
            if r.ttl != 0 || !empty {
                return Err(ResponseCode::FormErr);
            }
            if t == RecordType::ANY {
                return Ok(Change::DeleteName(owner));
            }
            if is_meta(t) {
                return Err(ResponseCode::FormErr);
            }
            Ok(Change::DeleteRRset(owner, t))
        }
        DNSClass::NONE => {
            if r.ttl != 0 || is_meta(t) || empty {
                return Err(ResponseCode::FormErr);
            }
            let value = canonical(t, &r.data).unwrap_or_else(|| format!("\0{t}"));
            Ok(Change::DeleteRR(owner, t, value))
        }
        _ => Err(ResponseCode::FormErr),
    }
}

#[cfg(test)]
mod tests;
