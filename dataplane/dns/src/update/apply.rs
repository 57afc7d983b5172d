//! Checking a plan's prerequisites against a zone's records and applying
//! its changes (RFC 2136 §3.2.5, §3.4.2), on the caller's copy.
//!
//! The apex keeps its SOA (not a stored record here) and NS: "delete all"
//! and "delete RRset" skip them there and the last apex NS is never deleted
//! (§3.4.2.3-4). Records from the config file are never changed: a change
//! that would is refused as a whole.

use std::collections::{BTreeMap, BTreeSet};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use mc_kit::origin::Origin;

use super::{Change, Prereq};
use crate::model::{RType, RecordKey, RecordSpec};

/// A zone's records as the admin side holds them.
pub(crate) type Records = BTreeMap<RecordKey, (RecordSpec, RData)>;

/// The stored values of `owner`'s `t` RRset (SOA: `soa`, at the apex).
fn rrset(records: &Records, soa: &str, owner: &str, t: RecordType) -> BTreeSet<String> {
    if t == RecordType::SOA {
        return if owner == "@" {
            BTreeSet::from([soa.to_owned()])
        } else {
            BTreeSet::new()
        };
    }
    records
        .values()
        .filter(|(r, _)| r.name == owner && r.rtype.record_type() == t)
        .map(|(r, _)| r.value.clone())
        .collect()
}

fn in_use(records: &Records, owner: &str) -> bool {
    owner == "@" || records.values().any(|(r, _)| r.name == owner)
}

/// RFC 2136 §3.2.5: the first prerequisite that fails gives the rcode.
/// `soa` is the zone's current SOA value (canonical form).
pub(crate) fn check(records: &Records, soa: &str, prereqs: &[Prereq]) -> Result<(), ResponseCode> {
    for p in prereqs {
        let (holds, rcode) = match p {
            Prereq::NameInUse(o) => (in_use(records, o), ResponseCode::NXDomain),
            Prereq::NameNotInUse(o) => (!in_use(records, o), ResponseCode::YXDomain),
            Prereq::RRsetExists(o, t) => (
                !rrset(records, soa, o, *t).is_empty(),
                ResponseCode::NXRRSet,
            ),
            Prereq::RRsetNotExists(o, t) => {
                (rrset(records, soa, o, *t).is_empty(), ResponseCode::YXRRSet)
            }
            Prereq::RRsetEquals(o, t, values) => {
                (rrset(records, soa, o, *t) == *values, ResponseCode::NXRRSet)
            }
        };
        if !holds {
            return Err(rcode);
        }
    }
    Ok(())
}

/// Refuses removing a record the config file owns.
fn removable(r: &RecordSpec) -> Result<(), ResponseCode> {
    match r.origin {
        Origin::ConfigFile => Err(ResponseCode::Refused),
        Origin::AdminApi => Ok(()),
    }
}

/// Removes the records `pick` selects (all-or-nothing on config records).
fn remove(records: &mut Records, pick: impl Fn(&RecordSpec) -> bool) -> Result<(), ResponseCode> {
    let keys: Vec<RecordKey> = records
        .iter()
        .filter(|(_, (r, _))| pick(r))
        .map(|(k, _)| k.clone())
        .collect();
    for k in &keys {
        if let Some((r, _)) = records.get(k) {
            removable(r)?;
        }
    }
    for k in keys {
        records.remove(&k);
    }
    Ok(())
}

/// Applies `changes` in order to `records` (RFC 2136 §3.4.2).
pub(crate) fn changes(records: &mut Records, changes: &[Change]) -> Result<(), ResponseCode> {
    for c in changes {
        match c {
            Change::Add(spec, data) => add(records, spec, data)?,
            Change::DeleteRRset(o, t) => {
                if o == "@" && matches!(*t, RecordType::NS | RecordType::SOA) {
                    continue;
                }
                remove(records, |r| r.name == *o && r.rtype.record_type() == *t)?;
            }
            Change::DeleteName(o) => {
                remove(records, |r| {
                    r.name == *o && !(o == "@" && r.rtype == RType::NS)
                })?;
            }
            Change::DeleteRR(o, t, value) => {
                let apex_ns = o == "@" && *t == RecordType::NS;
                if apex_ns && rrset(records, "", "@", RecordType::NS).len() <= 1 {
                    continue;
                }
                remove(records, |r| {
                    r.name == *o && r.rtype.record_type() == *t && r.value == *value
                })?;
            }
        }
    }
    Ok(())
}

/// §3.4.2.2: a CNAME beside other data (or data beside a CNAME) is ignored;
/// a CNAME replaces the name's CNAME; an existing value takes the new TTL.
fn add(records: &mut Records, spec: &RecordSpec, data: &RData) -> Result<(), ResponseCode> {
    let at_name = || records.values().filter(|(r, _)| r.name == spec.name);
    let cname = spec.rtype == RType::CNAME;
    if cname && at_name().any(|(r, _)| r.rtype != RType::CNAME) {
        return Ok(());
    }
    if !cname && at_name().any(|(r, _)| r.rtype == RType::CNAME) {
        return Ok(());
    }
    if cname {
        remove(records, |r| r.name == spec.name && r.rtype == RType::CNAME)?;
    }
    if let Some((existing, _)) = records.get(&spec.key()) {
        if existing.ttl == spec.ttl {
            return Ok(());
        }
        removable(existing)?;
    }
    records.insert(spec.key(), (spec.clone(), data.clone()));
    Ok(())
}

/// What changed between `before` and `after`: (removed, added or changed).
pub(crate) fn diff(before: &Records, after: &Records) -> (Vec<RecordSpec>, Vec<RecordSpec>) {
    let removed = before
        .iter()
        .filter(|(k, _)| !after.contains_key(*k))
        .map(|(_, (r, _))| r.clone())
        .collect();
    let added = after
        .iter()
        .filter(|(k, (r, _))| before.get(*k).is_none_or(|(b, _)| b != r))
        .map(|(_, (r, _))| r.clone())
        .collect();
    (removed, added)
}
