//! Compiled zones: the immutable data workers answer from.
//!
//! `compile` turns a zone's stored spec and records into a [`Zone`]: one
//! node per owner name (plus empty non-terminals), RRsets ready to copy into
//! a response, delegation points marked. It is also where whole-zone rules
//! are enforced (CNAME exclusivity, apex NS, what may live at or below a
//! delegation), so a change that breaks them is refused before it is stored.

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use mc_kit::api::Invalid;

use crate::model::{MAX_RECORDS_PER_ZONE, RecordSpec, ZoneName, ZoneSpec};

/// All records of one (owner, type), ready to copy into a response.
#[derive(Debug, Clone)]
pub(crate) struct RRset {
    pub(crate) rtype: RecordType,
    pub(crate) records: Vec<Record>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Node {
    /// Sorted by type code; empty for an empty non-terminal.
    pub(crate) rrsets: Vec<RRset>,
    /// A delegation point (NS below the apex).
    pub(crate) cut: bool,
}

impl Node {
    pub(crate) fn get(&self, t: RecordType) -> Option<&RRset> {
        self.rrsets.iter().find(|r| r.rtype == t)
    }
}

#[derive(Debug)]
pub(crate) struct Zone {
    pub(crate) name: ZoneName,
    /// The apex, lower case, absolute.
    pub(crate) origin: Name,
    pub(crate) serial: u32,
    pub(crate) soa: Record,
    /// min(SOA TTL, SOA minimum): the TTL of the SOA in negative answers.
    pub(crate) negative_ttl: u32,
    pub(crate) nodes: HashMap<Name, Node>,
    pub(crate) has_cuts: bool,
    pub(crate) has_wildcards: bool,
}

impl Zone {
    /// The SOA record as it goes into the authority section of a negative answer.
    pub(crate) fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        soa.ttl = self.negative_ttl;
        soa
    }

    /// Every record in AXFR order (SOA first; the caller adds the final SOA).
    pub(crate) fn all_records(&self) -> Vec<Record> {
        let mut out = vec![self.soa.clone()];
        let mut names: Vec<&Name> = self.nodes.keys().collect();
        names.sort();
        for name in names {
            if let Some(node) = self.nodes.get(name) {
                for set in &node.rrsets {
                    if set.rtype != RecordType::SOA {
                        out.extend(set.records.iter().cloned());
                    }
                }
            }
        }
        out
    }
}

/// The SOA record of `spec` at its current serial.
pub(crate) fn soa_record(spec: &ZoneSpec) -> Record {
    let soa = SOA::new(
        spec.soa.mname(),
        spec.soa.rname(),
        spec.serial,
        i32::try_from(spec.soa.refresh).unwrap_or(i32::MAX),
        i32::try_from(spec.soa.retry).unwrap_or(i32::MAX),
        i32::try_from(spec.soa.expire).unwrap_or(i32::MAX),
        spec.soa.minimum,
    );
    Record::from_rdata(spec.name.name(), spec.soa.ttl, RData::SOA(soa))
}

/// Builds the compiled zone, or says which rule a record breaks.
pub(crate) fn compile<'a>(
    spec: &ZoneSpec,
    records: impl IntoIterator<Item = (&'a RecordSpec, &'a RData)>,
) -> Result<Zone, Invalid> {
    let origin = spec.name.name();
    let soa = soa_record(spec);
    let mut nodes: HashMap<Name, Node> = HashMap::new();
    let mut count = 0_usize;
    let mut has_wildcards = false;
    for (r, data) in records {
        count += 1;
        if count > MAX_RECORDS_PER_ZONE {
            return Err(Invalid::new(
                "records",
                format!("a zone holds at most {MAX_RECORDS_PER_ZONE} records"),
            ));
        }
        let owner = crate::model::owner_name(&spec.name, &r.name);
        has_wildcards |= owner.is_wildcard();
        let node = nodes.entry(owner.clone()).or_default();
        let rtype = r.rtype.record_type();
        let record = Record::from_rdata(owner, r.ttl, data.clone());
        match node.rrsets.iter_mut().find(|s| s.rtype == rtype) {
            Some(set) => set.records.push(record),
            None => node.rrsets.push(RRset {
                rtype,
                records: vec![record],
            }),
        }
    }
    // The apex: SOA plus its NS.
    let apex = nodes.entry(origin.clone()).or_default();
    apex.rrsets.push(RRset {
        rtype: RecordType::SOA,
        records: vec![soa.clone()],
    });
    if apex.get(RecordType::NS).is_none() {
        return Err(Invalid::new(
            "records",
            format!(
                "zone `{}` needs at least one NS record at the apex (@)",
                spec.name
            ),
        ));
    }
    if apex.get(RecordType::CNAME).is_some() {
        return Err(Invalid::new(
            "records",
            "a CNAME cannot live at the zone apex (it holds SOA and NS)",
        ));
    }
    // Per-node rules; RRset TTLs unified to the smallest (RFC 2181 §5.2).
    let mut cuts = Vec::new();
    for (name, node) in &mut nodes {
        node.rrsets.sort_by_key(|s| u16::from(s.rtype));
        for set in &mut node.rrsets {
            let ttl = set.records.iter().map(|r| r.ttl).min().unwrap_or(0);
            for r in &mut set.records {
                r.ttl = ttl;
            }
        }
        if let Some(cname) = node.get(RecordType::CNAME) {
            if cname.records.len() > 1 {
                return Err(Invalid::new(
                    "records",
                    format!("`{name}` has more than one CNAME"),
                ));
            }
            if node.rrsets.len() > 1 {
                return Err(Invalid::new(
                    "records",
                    format!(
                        "`{name}` has a CNAME and other records; a CNAME must be the only record at its name"
                    ),
                ));
            }
        }
        if *name != origin && node.get(RecordType::NS).is_some() {
            if name.is_wildcard() {
                return Err(Invalid::new(
                    "records",
                    format!("`{name}`: NS records cannot be wildcards"),
                ));
            }
            node.cut = true;
            cuts.push(name.clone());
        }
    }
    // Data at or below a delegation: only glue addresses.
    for (name, node) in &nodes {
        let below_cut = cuts.iter().any(|c| c.zone_of(name));
        if !below_cut {
            continue;
        }
        let at_cut = cuts.iter().any(|c| c == name);
        for set in &node.rrsets {
            let ok = matches!(set.rtype, RecordType::A | RecordType::AAAA)
                || (at_cut && set.rtype == RecordType::NS);
            if !ok {
                return Err(Invalid::new(
                    "records",
                    format!(
                        "`{name}` is at or below a delegation; only NS (at the cut) and A/AAAA glue may live there, not {}",
                        set.rtype
                    ),
                ));
            }
        }
    }
    // Empty non-terminals: every ancestor between an owner and the apex exists.
    let owners: Vec<Name> = nodes.keys().cloned().collect();
    let apex_labels = origin.num_labels();
    for owner in owners {
        let mut n = owner.base_name();
        while n.num_labels() > apex_labels {
            nodes.entry(n.clone()).or_default();
            n = n.base_name();
        }
    }
    Ok(Zone {
        name: spec.name.clone(),
        origin,
        serial: spec.serial,
        soa,
        negative_ttl: spec.soa.negative_ttl(),
        has_cuts: !cuts.is_empty(),
        has_wildcards,
        nodes,
    })
}

/// Every zone workers answer for, keyed by apex.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) generation: u64,
    pub(crate) zones: HashMap<Name, Arc<Zone>>,
    /// Fewest labels of any apex: no zone can contain a shorter name.
    pub(crate) min_labels: u8,
    /// Precompiled wire answers (the UDP fast path); `None` only in a
    /// snapshot not built by [`Snapshot::new`].
    pub(crate) wire: Option<crate::worker::wire::Table>,
}

impl Snapshot {
    pub(crate) fn new(generation: u64, zones: HashMap<Name, Arc<Zone>>) -> Self {
        let min_labels = zones.keys().map(Name::num_labels).min().unwrap_or(u8::MAX);
        let mut snap = Self {
            generation,
            zones,
            min_labels,
            wire: None,
        };
        snap.wire = Some(crate::worker::wire::Table::build(&snap));
        snap
    }

    /// The most specific zone that contains `qname`.
    pub(crate) fn find_zone(&self, qname: &Name) -> Option<&Arc<Zone>> {
        if self.zones.is_empty() {
            return None;
        }
        let labels = qname.num_labels();
        let mut n = labels;
        while n >= self.min_labels && n > 0 {
            let candidate = if n == labels {
                qname.clone()
            } else {
                qname.trim_to(usize::from(n))
            };
            if let Some(z) = self.zones.get(&candidate) {
                return Some(z);
            }
            n -= 1;
        }
        None
    }
}

#[cfg(test)]
mod tests;
