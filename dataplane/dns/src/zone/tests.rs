//! Unit tests for zone compilation rules.

use super::*;
use crate::model::{self, RType, RecordSpec, SoaParams, ZoneName, ZoneSpec};
use mc_kit::origin::Origin;

fn spec() -> ZoneSpec {
    let name = ZoneName::parse("z.test").expect("zone");
    let soa = SoaParams {
        primary_ns: String::new(),
        admin_email: String::new(),
        refresh: 0,
        retry: 0,
        expire: 0,
        minimum: 0,
        ttl: 0,
    }
    .normalize(&name)
    .expect("soa");
    ZoneSpec {
        name,
        soa,
        serial: 1,
        origin: Origin::AdminApi,
    }
}

fn build(records: &[(&str, RType, &str)]) -> Result<Zone, mc_kit::api::Invalid> {
    let s = spec();
    let parsed: Vec<(RecordSpec, hickory_proto::rr::RData)> = records
        .iter()
        .map(|(n, t, v)| {
            let r = RecordSpec::new(&s.name, n, *t, 0, v, 60, Origin::AdminApi).expect("record");
            let d = model::parse_rdata(&s.name, *t, &r.value).expect("rdata");
            (r, d)
        })
        .collect();
    compile(&s, parsed.iter().map(|(r, d)| (r, d)))
}

#[test]
fn apex_needs_ns() {
    assert!(build(&[("www", RType::A, "192.0.2.1")]).is_err());
    let z = build(&[("@", RType::NS, "ns1"), ("a.b.c", RType::A, "192.0.2.1")]).expect("zone");
    // Empty non-terminals exist.
    for n in ["b.c.z.test.", "c.z.test."] {
        let name = hickory_proto::rr::Name::from_ascii(n).expect("name");
        assert!(
            z.nodes.get(&name).is_some_and(|n| n.rrsets.is_empty()),
            "{n}"
        );
    }
}

#[test]
fn cname_exclusivity() {
    assert!(
        build(&[
            ("@", RType::NS, "ns1"),
            ("x", RType::CNAME, "y"),
            ("x", RType::A, "192.0.2.1")
        ])
        .is_err()
    );
    assert!(
        build(&[
            ("@", RType::NS, "ns1"),
            ("x", RType::CNAME, "y"),
            ("x", RType::CNAME, "w")
        ])
        .is_err()
    );
    assert!(build(&[("@", RType::NS, "ns1"), ("@", RType::CNAME, "y")]).is_err());
}

#[test]
fn delegations_hold_only_glue() {
    let ok = build(&[
        ("@", RType::NS, "ns1"),
        ("sub", RType::NS, "ns.sub"),
        ("ns.sub", RType::A, "192.0.2.1"),
    ])
    .expect("ok");
    assert!(ok.has_cuts);
    assert!(
        build(&[
            ("@", RType::NS, "ns1"),
            ("sub", RType::NS, "ns.sub"),
            ("x.sub", RType::TXT, "\"no\"")
        ])
        .is_err()
    );
    assert!(build(&[("@", RType::NS, "ns1"), ("*.w", RType::NS, "ns1")]).is_err());
}

#[test]
fn rrset_ttls_are_unified_to_the_minimum() {
    let s = spec();
    let a = RecordSpec::new(
        &s.name,
        "www",
        RType::A,
        100,
        "192.0.2.1",
        60,
        Origin::AdminApi,
    )
    .expect("a");
    let b = RecordSpec::new(
        &s.name,
        "www",
        RType::A,
        50,
        "192.0.2.2",
        60,
        Origin::AdminApi,
    )
    .expect("b");
    let ns = RecordSpec::new(&s.name, "@", RType::NS, 0, "ns1", 60, Origin::AdminApi).expect("ns");
    let all: Vec<_> = [a, b, ns]
        .into_iter()
        .map(|r| {
            let d = model::parse_rdata(&s.name, r.rtype, &r.value).expect("rdata");
            (r, d)
        })
        .collect();
    let z = compile(&s, all.iter().map(|(r, d)| (r, d))).expect("zone");
    let www = hickory_proto::rr::Name::from_ascii("www.z.test.").expect("name");
    let set = z
        .nodes
        .get(&www)
        .and_then(|n| n.get(hickory_proto::rr::RecordType::A))
        .expect("set");
    assert!(set.records.iter().all(|r| r.ttl == 50));
}

#[test]
fn snapshot_finds_the_most_specific_zone() {
    let z = Arc::new(build(&[("@", RType::NS, "ns1")]).expect("zone"));
    let snap = Snapshot::new(1, [(z.origin.clone(), z)].into_iter().collect());
    let q = |s: &str| {
        snap.find_zone(&hickory_proto::rr::Name::from_ascii(s).expect("name"))
            .is_some()
    };
    assert!(q("A.B.Z.TEST."));
    assert!(q("z.test."));
    assert!(!q("test."));
    assert!(!q("other.test."));
}
