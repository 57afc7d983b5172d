use std::collections::BTreeSet;
use std::str::FromStr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use mc_kit::origin::Origin;
use proptest::prelude::*;

use super::apply::{self, Records};
use super::{Change, Prereq, plan};
use crate::model::{self, RType, RecordSpec, ZoneName};

fn zone() -> ZoneName {
    ZoneName::parse("u.test").unwrap()
}

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn records(list: &[(&str, RType, &str, Origin)]) -> Records {
    let z = zone();
    list.iter()
        .map(|(n, t, v, o)| {
            let spec = RecordSpec::new(&z, n, *t, 300, v, 300, *o).unwrap();
            let data = model::parse_rdata(&z, *t, &spec.value).unwrap();
            (spec.key(), (spec, data))
        })
        .collect()
}

fn base() -> Records {
    records(&[
        ("@", RType::NS, "ns1", Origin::ConfigFile),
        ("ns1", RType::A, "192.0.2.1", Origin::ConfigFile),
        ("www", RType::A, "192.0.2.2", Origin::AdminApi),
        ("www", RType::A, "192.0.2.3", Origin::AdminApi),
        ("alias", RType::CNAME, "www", Origin::AdminApi),
    ])
}

fn update(prereqs: Vec<Record>, updates: Vec<Record>) -> Message {
    let mut m = Message::new(7, MessageType::Query, OpCode::Update);
    let mut q = Query::query(name("u.test."), RecordType::SOA);
    q.set_query_class(DNSClass::IN);
    m.queries.push(q);
    m.answers = prereqs;
    m.authorities = updates;
    // Through the wire, as a worker sees it.
    Message::from_vec(&m.to_vec().unwrap()).unwrap()
}

fn rr(owner: &str, ttl: u32, class: DNSClass, data: RData) -> Record {
    let mut r = Record::from_rdata(name(owner), ttl, data);
    r.dns_class = class;
    r
}

fn empty(owner: &str, class: DNSClass, t: RecordType) -> Record {
    let mut r = Record::update0(name(owner), 0, t);
    r.dns_class = class;
    r
}

fn a(ip: &str) -> RData {
    RData::A(A::from_str(ip).unwrap())
}

fn run(records: &mut Records, msg: &Message) -> Result<(), ResponseCode> {
    let p = plan(&zone(), msg)?;
    apply::check(records, "soa", &p.prereqs)?;
    apply::changes(records, &p.changes)
}

fn values(records: &Records, owner: &str, t: RType) -> Vec<String> {
    records
        .values()
        .filter(|(r, _)| r.name == owner && r.rtype == t)
        .map(|(r, _)| r.value.clone())
        .collect()
}

#[test]
fn sections_become_a_plan() {
    let msg = update(
        vec![
            empty("www.u.test.", DNSClass::ANY, RecordType::ANY),
            empty("new.u.test.", DNSClass::NONE, RecordType::ANY),
            empty("www.u.test.", DNSClass::ANY, RecordType::A),
            empty("www.u.test.", DNSClass::NONE, RecordType::TXT),
            rr("www.u.test.", 0, DNSClass::IN, a("192.0.2.2")),
            rr("www.u.test.", 0, DNSClass::IN, a("192.0.2.3")),
        ],
        vec![
            rr(
                "_acme-challenge.u.test.",
                60,
                DNSClass::IN,
                RData::TXT(TXT::new(vec!["tok".into()])),
            ),
            empty("www.u.test.", DNSClass::ANY, RecordType::A),
            empty("old.u.test.", DNSClass::ANY, RecordType::ANY),
            rr("www.u.test.", 0, DNSClass::NONE, a("192.0.2.2")),
        ],
    );
    let p = plan(&zone(), &msg).unwrap();
    assert_eq!(
        p.prereqs,
        vec![
            Prereq::NameInUse("www".into()),
            Prereq::NameNotInUse("new".into()),
            Prereq::RRsetExists("www".into(), RecordType::A),
            Prereq::RRsetNotExists("www".into(), RecordType::TXT),
            Prereq::RRsetEquals(
                "www".into(),
                RecordType::A,
                BTreeSet::from(["192.0.2.2".to_owned(), "192.0.2.3".to_owned()])
            ),
        ]
    );
    assert!(
        matches!(&p.changes[0], Change::Add(s, _) if s.name == "_acme-challenge" && s.rtype == RType::TXT && s.ttl == 60 && s.value == "\"tok\"")
    );
    assert!(matches!(&p.changes[1], Change::DeleteRRset(o, RecordType::A) if o == "www"));
    assert!(matches!(&p.changes[2], Change::DeleteName(o) if o == "old"));
    assert!(
        matches!(&p.changes[3], Change::DeleteRR(o, RecordType::A, v) if o == "www" && v == "192.0.2.2")
    );
}

#[test]
fn malformed_sections_are_refused_with_the_rfcs_rcodes() {
    let outside = update(
        vec![],
        vec![rr("www.other.test.", 60, DNSClass::IN, a("192.0.2.9"))],
    );
    assert_eq!(plan(&zone(), &outside).err(), Some(ResponseCode::NotZone));
    let outside = update(
        vec![empty("other.test.", DNSClass::ANY, RecordType::ANY)],
        vec![],
    );
    assert_eq!(plan(&zone(), &outside).err(), Some(ResponseCode::NotZone));
    let ttl = update(
        vec![],
        vec![{
            let mut r = empty("www.u.test.", DNSClass::ANY, RecordType::A);
            r.ttl = 5;
            r
        }],
    );
    assert_eq!(plan(&zone(), &ttl).err(), Some(ResponseCode::FormErr));
    let prereq_ttl = update(
        vec![rr("www.u.test.", 5, DNSClass::IN, a("192.0.2.2"))],
        vec![],
    );
    assert_eq!(
        plan(&zone(), &prereq_ttl).err(),
        Some(ResponseCode::FormErr)
    );
    let meta = update(
        vec![],
        vec![empty("www.u.test.", DNSClass::ANY, RecordType::AXFR)],
    );
    assert_eq!(plan(&zone(), &meta).err(), Some(ResponseCode::FormErr));
    let chaos = update(
        vec![],
        vec![rr("www.u.test.", 60, DNSClass::CH, a("192.0.2.9"))],
    );
    assert_eq!(plan(&zone(), &chaos).err(), Some(ResponseCode::FormErr));
    // SOA belongs to the zone; HINFO is not served.
    let soa = update(
        vec![],
        vec![rr(
            "u.test.",
            60,
            DNSClass::IN,
            RData::SOA(hickory_proto::rr::rdata::SOA::new(
                name("ns1.u.test."),
                name("h.u.test."),
                1,
                1,
                1,
                1,
                1,
            )),
        )],
    );
    assert_eq!(plan(&zone(), &soa).err(), Some(ResponseCode::Refused));
    let hinfo = update(
        vec![],
        vec![rr(
            "www.u.test.",
            60,
            DNSClass::IN,
            RData::HINFO(hickory_proto::rr::rdata::HINFO::new("a".into(), "b".into())),
        )],
    );
    assert_eq!(plan(&zone(), &hinfo).err(), Some(ResponseCode::Refused));
    let many: Vec<Record> = (0..=super::MAX_RECORDS)
        .map(|i| rr(&format!("h{i}.u.test."), 60, DNSClass::IN, a("192.0.2.9")))
        .collect();
    assert_eq!(
        plan(&zone(), &update(vec![], many)).err(),
        Some(ResponseCode::Refused)
    );
}

#[test]
fn prerequisites_fail_with_their_rcodes_and_change_nothing() {
    let cases = [
        (
            empty("nope.u.test.", DNSClass::ANY, RecordType::ANY),
            ResponseCode::NXDomain,
        ),
        (
            empty("www.u.test.", DNSClass::NONE, RecordType::ANY),
            ResponseCode::YXDomain,
        ),
        (
            empty("www.u.test.", DNSClass::ANY, RecordType::TXT),
            ResponseCode::NXRRSet,
        ),
        (
            empty("www.u.test.", DNSClass::NONE, RecordType::A),
            ResponseCode::YXRRSet,
        ),
        (
            empty("u.test.", DNSClass::NONE, RecordType::SOA),
            ResponseCode::YXRRSet,
        ),
        (
            rr("www.u.test.", 0, DNSClass::IN, a("192.0.2.2")),
            ResponseCode::NXRRSet,
        ),
    ];
    for (pre, rcode) in cases {
        let mut r = base();
        let msg = update(
            vec![pre.clone()],
            vec![rr("x.u.test.", 60, DNSClass::IN, a("192.0.2.7"))],
        );
        assert_eq!(run(&mut r, &msg), Err(rcode), "{pre:?}");
    }
    // The ones that hold let the update through.
    let mut r = base();
    let msg = update(
        vec![
            empty("u.test.", DNSClass::ANY, RecordType::ANY),
            empty("u.test.", DNSClass::ANY, RecordType::SOA),
            empty("www.u.test.", DNSClass::ANY, RecordType::A),
            empty("nope.u.test.", DNSClass::NONE, RecordType::ANY),
            rr("www.u.test.", 0, DNSClass::IN, a("192.0.2.3")),
            rr("www.u.test.", 0, DNSClass::IN, a("192.0.2.2")),
        ],
        vec![rr("x.u.test.", 60, DNSClass::IN, a("192.0.2.7"))],
    );
    assert_eq!(run(&mut r, &msg), Ok(()));
    assert_eq!(values(&r, "x", RType::A), ["192.0.2.7"]);
}

#[test]
fn changes_follow_rfc_2136() {
    let mut r = base();
    // Add, then the same value again with a new TTL: one record, the new TTL.
    let msg = update(
        vec![],
        vec![
            rr(
                "t.u.test.",
                60,
                DNSClass::IN,
                RData::TXT(TXT::new(vec!["one".into()])),
            ),
            rr(
                "t.u.test.",
                120,
                DNSClass::IN,
                RData::TXT(TXT::new(vec!["one".into()])),
            ),
            rr(
                "t.u.test.",
                120,
                DNSClass::IN,
                RData::TXT(TXT::new(vec!["two".into()])),
            ),
        ],
    );
    assert_eq!(run(&mut r, &msg), Ok(()));
    assert_eq!(values(&r, "t", RType::TXT), ["\"one\"", "\"two\""]);
    assert!(
        r.values()
            .filter(|(s, _)| s.name == "t")
            .all(|(s, _)| s.ttl == 120)
    );
    // Delete one RR, then the RRset, then a whole name.
    let msg = update(
        vec![],
        vec![rr(
            "t.u.test.",
            0,
            DNSClass::NONE,
            RData::TXT(TXT::new(vec!["one".into()])),
        )],
    );
    assert_eq!(run(&mut r, &msg), Ok(()));
    assert_eq!(values(&r, "t", RType::TXT), ["\"two\""]);
    let msg = update(
        vec![],
        vec![empty("www.u.test.", DNSClass::ANY, RecordType::A)],
    );
    assert_eq!(run(&mut r, &msg), Ok(()));
    assert!(values(&r, "www", RType::A).is_empty());
    let msg = update(
        vec![],
        vec![empty("t.u.test.", DNSClass::ANY, RecordType::ANY)],
    );
    assert_eq!(run(&mut r, &msg), Ok(()));
    assert!(r.values().all(|(s, _)| s.name != "t"));
    // CNAME beside data is ignored, data beside a CNAME too; a CNAME replaces a CNAME.
    let msg = update(
        vec![],
        vec![
            rr(
                "ns1.u.test.",
                60,
                DNSClass::IN,
                RData::CNAME(CNAME(name("www.u.test."))),
            ),
            rr("alias.u.test.", 60, DNSClass::IN, a("192.0.2.8")),
            rr(
                "alias.u.test.",
                60,
                DNSClass::IN,
                RData::CNAME(CNAME(name("ns1.u.test."))),
            ),
        ],
    );
    assert_eq!(run(&mut r, &msg), Ok(()));
    assert!(values(&r, "ns1", RType::CNAME).is_empty());
    assert!(values(&r, "alias", RType::A).is_empty());
    assert_eq!(values(&r, "alias", RType::CNAME), ["ns1.u.test."]);
}

#[test]
fn the_apex_keeps_its_ns_and_config_records_stay() {
    let mut r = base();
    let msg = update(
        vec![],
        vec![
            empty("u.test.", DNSClass::ANY, RecordType::NS),
            empty("u.test.", DNSClass::ANY, RecordType::ANY),
            rr(
                "u.test.",
                0,
                DNSClass::NONE,
                RData::NS(hickory_proto::rr::rdata::NS(name("ns1.u.test."))),
            ),
        ],
    );
    assert_eq!(run(&mut r, &msg), Ok(()));
    assert_eq!(values(&r, "@", RType::NS), ["ns1.u.test."]);
    // ns1's A comes from the config file: deleting it refuses the whole update.
    let mut r = base();
    let msg = update(
        vec![],
        vec![
            rr("x.u.test.", 60, DNSClass::IN, a("192.0.2.7")),
            empty("ns1.u.test.", DNSClass::ANY, RecordType::A),
        ],
    );
    assert_eq!(run(&mut r, &msg), Err(ResponseCode::Refused));
}

#[test]
fn diff_lists_what_to_write() {
    let before = base();
    let mut after = base();
    let msg = update(
        vec![],
        vec![
            rr("x.u.test.", 60, DNSClass::IN, a("192.0.2.7")),
            rr("www.u.test.", 0, DNSClass::NONE, a("192.0.2.2")),
            rr("www.u.test.", 30, DNSClass::IN, a("192.0.2.3")),
        ],
    );
    run(&mut after, &msg).unwrap();
    let (removed, added) = apply::diff(&before, &after);
    assert_eq!(
        removed.iter().map(|r| r.value.as_str()).collect::<Vec<_>>(),
        ["192.0.2.2"]
    );
    let mut added: Vec<(String, u32)> = added.into_iter().map(|r| (r.value, r.ttl)).collect();
    added.sort();
    assert_eq!(
        added,
        [("192.0.2.3".to_owned(), 30), ("192.0.2.7".to_owned(), 60)]
    );
}

/// A random change at a few names and values.
fn arb_change() -> impl Strategy<Value = Record> {
    let owners = prop::sample::select(vec![
        "u.test.",
        "www.u.test.",
        "alias.u.test.",
        "ns1.u.test.",
        "n.u.test.",
    ]);
    let ips = prop::sample::select(vec!["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    (owners, ips, 0u8..7).prop_map(|(o, ip, k)| match k {
        0 => rr(o, 60, DNSClass::IN, a(ip)),
        1 => rr(
            o,
            60,
            DNSClass::IN,
            RData::CNAME(CNAME(name("www.u.test."))),
        ),
        2 => rr(
            o,
            60,
            DNSClass::IN,
            RData::NS(hickory_proto::rr::rdata::NS(name("ns2.u.test."))),
        ),
        3 => empty(o, DNSClass::ANY, RecordType::A),
        4 => empty(o, DNSClass::ANY, RecordType::ANY),
        5 => rr(o, 0, DNSClass::NONE, a(ip)),
        _ => empty(o, DNSClass::ANY, RecordType::NS),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Whatever the changes: the apex keeps an NS, config records stay, no
    /// name gets a CNAME beside other data, and the result's RRsets, sent
    /// back as value-dependent prerequisites, hold (wire values compare
    /// equal to stored ones).
    #[test]
    fn updates_keep_the_zone_rules(changes in proptest::collection::vec(arb_change(), 0..12)) {
        let mut r = base();
        let msg = update(vec![], changes);
        match run(&mut r, &msg) {
            Err(rcode) => prop_assert_eq!(rcode, ResponseCode::Refused),
            Ok(()) => {
                prop_assert!(!values(&r, "@", RType::NS).is_empty());
                for (k, (spec, _)) in base().iter().filter(|(_, (s, _))| s.origin == Origin::ConfigFile) {
                    prop_assert_eq!(r.get(k).map(|(s, _)| s), Some(spec));
                }
                for (spec, _) in r.values().filter(|(s, _)| s.rtype == RType::CNAME) {
                    prop_assert!(r.values().all(|(o, _)| o.name != spec.name || o.rtype == RType::CNAME));
                }
                let prereqs: Vec<Record> = r
                    .values()
                    .map(|(s, d)| rr(&model::owner_name(&zone(), &s.name).to_ascii(), 0, DNSClass::IN, d.clone()))
                    .collect();
                let mut again = r.clone();
                prop_assert_eq!(run(&mut again, &update(prereqs, vec![])), Ok(()));
            }
        }
    }
}
