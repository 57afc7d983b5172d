//! The fast path against the reference: for generated zones (delegations,
//! wildcards, CNAME chains within and across zones, a child zone, large
//! RRsets) and generated queries (random case, types present and absent,
//! names below wildcards and cuts, EDNS sizes, DO, cookies, RD/CD), every
//! answer the fast path gives is byte-for-byte `process`'s, with the same
//! counters. Coverage is asserted too, so a fast path that always declined
//! would fail.

use std::cell::Cell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use mc_kit::origin::Origin;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::model::{self, RType, RecordSpec, SoaParams, ZoneName, ZoneSpec};
use crate::published::Published;
use crate::stats::{Global, global};
use crate::worker::message::Transport;
use crate::worker::server::{self, Action};
use crate::zone::{self, Snapshot, Zone};

const ZONES: [&str; 3] = ["z.test", "c.z.test", "o.test"];
/// Owners a generated record may have (relative).
const OWNERS: [&str; 14] = [
    "@", "a", "b", "www", "x.a", "*.a", "*", "sub", "ns.sub", "m", "deep.x.b", "big", "c", "*.w",
];
/// Targets of name-valued rdata.
const TARGETS: [&str; 9] = [
    "a.z.test.",
    "www.z.test.",
    "b.z.test.",
    "q.a.z.test.",
    "h.c.z.test.",
    "c.z.test.",
    "www.o.test.",
    "ext.example.",
    "sub.z.test.",
];

fn spec(zone: &str, minimum: u32) -> ZoneSpec {
    let name = ZoneName::parse(zone).expect("zone");
    let soa = SoaParams {
        primary_ns: String::new(),
        admin_email: String::new(),
        refresh: 0,
        retry: 0,
        expire: 0,
        minimum,
        ttl: 0,
    }
    .normalize(&name)
    .expect("soa");
    ZoneSpec {
        name,
        soa,
        serial: 7,
        origin: Origin::AdminApi,
    }
}

fn value(rtype: RType, n: usize) -> String {
    let target = TARGETS[n % TARGETS.len()];
    match rtype {
        RType::A => format!("192.0.2.{}", n % 250),
        RType::AAAA => format!("2001:db8::{n:x}"),
        RType::TXT => format!("\"text number {n} padded to make a big rrset grow faster\""),
        RType::MX => format!("{} {target}", n % 50),
        RType::SRV => format!("0 {} 443 {target}", n % 9),
        RType::CAA => "0 issue \"ca.example\"".to_owned(),
        RType::CNAME | RType::NS | RType::PTR => target.to_owned(),
    }
}

type Gen = Vec<(usize, usize, RType, usize)>;

/// Compiles `zone` from generated records, keeping each only if the zone
/// still compiles with it (CNAME exclusivity, data below cuts, ...).
fn compile(zone: &str, minimum: u32, records: &Gen, zi: usize) -> Zone {
    let s = spec(zone, minimum);
    let mut kept: Vec<(RecordSpec, hickory_proto::rr::RData)> = Vec::new();
    let base = [
        ("@", RType::NS, "ns1".to_owned()),
        ("ns1", RType::A, "192.0.2.53".to_owned()),
    ];
    for (n, t, v) in base.iter().cloned().chain(
        records
            .iter()
            .filter(|r| r.0 == zi)
            .map(|&(_, o, t, n)| (OWNERS[o % OWNERS.len()], t, value(t, n))),
    ) {
        let Ok(r) = RecordSpec::new(&s.name, n, t, 0, &v, 60, Origin::AdminApi) else {
            continue;
        };
        let d = model::parse_rdata(&s.name, t, &r.value).expect("rdata");
        if kept.iter().any(|(k, _)| k.key() == r.key()) {
            continue;
        }
        kept.push((r, d));
        if zone::compile(&s, kept.iter().map(|(r, d)| (r, d))).is_err() {
            kept.pop();
        }
    }
    zone::compile(&s, kept.iter().map(|(r, d)| (r, d))).expect("compiles")
}

fn published(zones: &[Arc<Zone>], upstreams: bool, udp_payload: u16) -> Published {
    let map: HashMap<_, _> = zones
        .iter()
        .map(|z| (z.origin.clone(), z.clone()))
        .collect();
    crate::fuzzing::published_for(map, upstreams, udp_payload, false)
}

/// Names queried: existing ones, misses, below wildcards/cuts, outside.
const QNAMES: [&str; 24] = [
    "z.test",
    "a.z.test",
    "b.z.test",
    "www.z.test",
    "x.a.z.test",
    "q.a.z.test",
    "deep.q.a.z.test",
    "nope.z.test",
    "n.o.p.e.z.test",
    "sub.z.test",
    "ns.sub.z.test",
    "q.sub.z.test",
    "big.z.test",
    "m.z.test",
    "x.b.z.test",
    "deep.x.b.z.test",
    "c.z.test",
    "h.c.z.test",
    "www.o.test",
    "q.w.o.test",
    "o.test",
    "www.example.org",
    "test",
    "ns1.z.test",
];
const QTYPES: [u16; 16] = [
    1, 2, 5, 6, 12, 15, 16, 28, 33, 257, 43, 255, 99, 0xFF00, 0, 252,
];

#[derive(Debug, Clone)]
struct Q {
    name: usize,
    case: u64,
    qtype: usize,
    id: u16,
    rd: bool,
    cd: bool,
    /// 0: no EDNS; else (payload, DO, cookie).
    edns: Option<(u16, bool, bool)>,
    ra_peer: bool,
}

fn wire_query(q: &Q) -> Vec<u8> {
    let mut b = q.id.to_be_bytes().to_vec();
    b.push(if q.rd { 1 } else { 0 });
    b.push(if q.cd { 0x10 } else { 0 });
    b.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(q.edns.is_some())]);
    let name = QNAMES[q.name % QNAMES.len()];
    let mut i = 0;
    for label in name.split('.') {
        b.push(label.len() as u8);
        for c in label.bytes() {
            let upper = q.case >> (i % 64) & 1 == 1;
            b.push(if upper { c.to_ascii_uppercase() } else { c });
            i += 1;
        }
    }
    b.push(0);
    b.extend_from_slice(&QTYPES[q.qtype % QTYPES.len()].to_be_bytes());
    b.extend_from_slice(&[0, 1]);
    if let Some((payload, dnssec_ok, cookie)) = q.edns {
        b.extend_from_slice(&[0, 0, 41]);
        b.extend_from_slice(&payload.to_be_bytes());
        b.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
        if cookie {
            b.extend_from_slice(&[0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        } else {
            b.extend_from_slice(&[0, 0]);
        }
    }
    b
}

fn counters(p: &Published, qtype: u16) -> Vec<u64> {
    let mut v = vec![
        p.stats.global.sum(Global::qtype(RecordType::from(qtype))),
        p.stats.global.sum(global::TRUNCATED),
    ];
    for rc in [
        ResponseCode::NoError,
        ResponseCode::NXDomain,
        ResponseCode::ServFail,
    ] {
        v.push(p.stats.global.sum(Global::rcode(rc)));
    }
    v
}

#[derive(Default)]
struct Tally {
    answered: usize,
    mixed_case: usize,
    by_rcode: HashMap<u16, usize>,
    truncated: usize,
    template_mixed: usize,
}

/// Runs `q` through both paths (each on its own copy of the state); checks
/// bytes and counters whenever the fast path answers.
fn check(fast: &Published, slow: &Published, q: &Q, tally: &mut Tally) {
    let bytes = wire_query(q);
    let peer = if q.ra_peer {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9))
    };
    let qtype = QTYPES[q.qtype % QTYPES.len()];
    let before = counters(fast, qtype);
    let snap = fast.snapshot.load();
    let mut out = Vec::new();
    let got = super::answer(fast, 0, &snap, &bytes, peer, &mut out);
    let after = counters(fast, qtype);
    let slow_before = counters(slow, qtype);
    let reference = server::process(slow, 0, &bytes, Transport::Udp, peer, &Cell::new(0));
    let slow_after = counters(slow, qtype);
    let Some(a) = got else {
        assert_eq!(before, after, "a declined query counts nothing");
        return;
    };
    let Action::Reply(want) = reference else {
        panic!("fast path answered {q:?} but process did not reply");
    };
    assert_eq!(
        out,
        want,
        "{q:?} ({}): fast path bytes differ from process",
        QNAMES[q.name % QNAMES.len()]
    );
    let delta = |a: &[u64], b: &[u64]| a.iter().zip(b).map(|(x, y)| x - y).collect::<Vec<_>>();
    assert_eq!(
        delta(&after, &before),
        delta(&slow_after, &slow_before),
        "counters"
    );
    tally.answered += 1;
    let name = QNAMES[q.name % QNAMES.len()];
    let mixed = bytes
        .get(12..12 + name.len() + 1)
        .is_some_and(|n| n.iter().any(u8::is_ascii_uppercase));
    if mixed {
        tally.mixed_case += 1;
        if a.rcode == ResponseCode::NoError && out.get(7).is_some_and(|&c| c > 0) {
            tally.template_mixed += 1;
        }
    }
    *tally.by_rcode.entry(u16::from(a.rcode)).or_default() += 1;
    tally.truncated += usize::from(a.truncated);
}

fn query() -> impl Strategy<Value = Q> {
    (
        0..QNAMES.len(),
        prop_oneof![Just(0_u64), any::<u64>()],
        0..QTYPES.len(),
        any::<u16>(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just(None),
            (
                prop_oneof![Just(0_u16), Just(512), Just(1232), Just(4096), any::<u16>()],
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(Some)
        ],
        any::<bool>(),
    )
        .prop_map(|(name, case, qtype, id, rd, cd, edns, ra_peer)| Q {
            name,
            case,
            qtype,
            id,
            rd,
            cd,
            edns,
            ra_peer,
        })
}

fn record() -> impl Strategy<Value = (usize, usize, RType, usize)> {
    (
        0..ZONES.len(),
        0..OWNERS.len(),
        proptest::sample::select(RType::ALL.to_vec()),
        0..400_usize,
    )
}

#[test]
fn fast_path_answers_exactly_what_process_answers() {
    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    let tally = std::cell::RefCell::new(Tally::default());
    let strategy = (
        proptest::collection::vec(record(), 0..40),
        0..60_usize,
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(1232_u16), Just(512), Just(4096)],
        proptest::collection::vec(query(), 40),
    );
    runner
        .run(
            &strategy,
            |(records, big, child, upstreams, payload, queries)| {
                let mut records = records;
                // A large RRset for truncation.
                records.extend((0..big).map(|n| (0, 11, RType::TXT, n)));
                let zones: Vec<Arc<Zone>> = ZONES
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| child || *i != 1)
                    .map(|(i, z)| Arc::new(compile(z, 30 + i as u32, &records, i)))
                    .collect();
                let fast = published(&zones, upstreams, payload);
                let slow = published(&zones, upstreams, payload);
                let mut t = tally.borrow_mut();
                // The large RRset without EDNS and at 512: truncation in every case.
                let big = |edns| Q {
                    name: 12,
                    case: 0,
                    qtype: 6,
                    id: 7,
                    rd: true,
                    cd: false,
                    edns,
                    ra_peer: false,
                };
                for q in queries
                    .iter()
                    .chain(&[big(None), big(Some((512, true, false)))])
                {
                    check(&fast, &slow, q, &mut t);
                }
                Ok(())
            },
        )
        .expect("differential property");
    let t = tally.into_inner();
    // The fast path must actually answer, every kind it claims.
    assert!(t.answered > 1000, "answered only {}", t.answered);
    assert!(
        t.by_rcode.get(&0).copied().unwrap_or(0) > 300,
        "{:?}",
        t.by_rcode
    );
    assert!(
        t.by_rcode.get(&3).copied().unwrap_or(0) > 100,
        "{:?}",
        t.by_rcode
    );
    assert!(t.mixed_case > 100, "mixed case answered: {}", t.mixed_case);
    assert!(
        t.template_mixed > 10,
        "mixed-case positive: {}",
        t.template_mixed
    );
    assert!(t.truncated > 20, "truncated: {}", t.truncated);
}

/// Fixed cases on the fuzzing zone: the kinds the fast path answers and the
/// kinds it must leave to `process`.
#[test]
fn answers_the_plain_kinds_and_declines_the_rest() {
    let p = crate::fuzzing::published_with_hosts(100);
    let ask = |name: &str, qtype: u16, edns: bool| {
        let q = Q {
            name: 0,
            case: 0,
            qtype: 0,
            id: 0x4242,
            rd: true,
            cd: false,
            edns: edns.then_some((1232, false, false)),
            ra_peer: false,
        };
        let mut b = wire_query(&q);
        // Replace the question with `name`/`qtype`.
        let end = b.len() - if edns { 11 } else { 0 };
        let opt = b.split_off(end);
        b.truncate(12);
        for l in name.split('.') {
            b.push(l.len() as u8);
            b.extend_from_slice(l.as_bytes());
        }
        b.push(0);
        b.extend_from_slice(&qtype.to_be_bytes());
        b.extend_from_slice(&[0, 1]);
        b.extend_from_slice(&opt);
        let snap = p.snapshot.load();
        let mut out = Vec::new();
        let peer = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
        let fast = super::answer(&p, 0, &snap, &b, peer, &mut out).map(|a| a.rcode);
        if fast.is_some() {
            let Action::Reply(want) =
                server::process(&p, 0, &b, Transport::Udp, peer, &Cell::new(0))
            else {
                panic!("no reply")
            };
            assert_eq!(out, want, "{name}/{qtype}");
        }
        fast
    };
    let ok = Some(ResponseCode::NoError);
    assert_eq!(ask("h7.f.test", 1, true), ok, "A hit");
    assert_eq!(ask("H7.F.Test", 1, false), ok, "A hit, mixed case");
    assert_eq!(ask("h7.f.test", 28, true), ok, "NODATA");
    assert_eq!(ask("h7.F.TEST", 28, true), ok, "NODATA, mixed case");
    assert_eq!(ask("nope.f.test", 1, true), Some(ResponseCode::NXDomain));
    assert_eq!(ask("NoPe.f.TeSt", 16, false), Some(ResponseCode::NXDomain));
    assert_eq!(ask("alias.f.test", 1, true), ok, "CNAME chain");
    assert_eq!(ask("f.test", 15, true), ok, "MX with additional");
    assert_eq!(
        ask("ns.sub.f.test", 1, true),
        ok,
        "referral (existing glue name)"
    );
    assert_eq!(ask("x.w.f.test", 16, true), None, "wildcard synthesis");
    assert_eq!(
        ask("a.sub.f.test", 1, true),
        None,
        "below a cut, not in the zone"
    );
    assert_eq!(ask("www.example.org", 1, true), None, "not ours");
    assert_eq!(ask("f.test", 255, true), None, "ANY");
    assert_eq!(ask("sub.f.test", 43, true), None, "DS");
    assert_eq!(ask("f.test", 252, true), None, "AXFR");
}

#[test]
fn malformed_and_unusual_queries_are_declined() {
    let p = crate::fuzzing::published_with_hosts(10);
    let snap = p.snapshot.load();
    let peer = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
    let good: Vec<u8> = {
        let mut b = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(b"\x03www\x01f\x04test\x00\x00\x01\x00\x01");
        b
    };
    let mut out = Vec::new();
    assert!(super::answer(&p, 0, &snap, &good, peer, &mut out).is_some());
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("response bit", {
            let mut b = good.clone();
            b[2] |= 0x80;
            b
        }),
        ("NOTIFY opcode", {
            let mut b = good.clone();
            b[2] |= 4 << 3;
            b
        }),
        ("two questions", {
            let mut b = good.clone();
            b[5] = 2;
            b
        }),
        ("an answer record", {
            let mut b = good.clone();
            b[7] = 1;
            b
        }),
        ("trailing byte", {
            let mut b = good.clone();
            b.push(0);
            b
        }),
        ("truncated", good[..good.len() - 1].to_vec()),
        ("class CH", {
            let mut b = good.clone();
            let n = b.len();
            b[n - 1] = 3;
            b
        }),
        ("compression pointer", {
            let mut b = good[..12].to_vec();
            b.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
            b
        }),
        ("EDNS version 1", {
            let mut b = good.clone();
            b[11] = 1;
            b.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 1, 0, 0, 0, 0]);
            b
        }),
        ("EDNS client subnet", {
            let mut b = good.clone();
            b[11] = 1;
            b.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 8, 0, 8, 0, 4, 0, 1, 24, 0]);
            b
        }),
        ("TSIG-like extra record", {
            let mut b = good.clone();
            b[11] = 1;
            b.extend_from_slice(&[0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0]);
            b
        }),
    ];
    for (what, b) in variants {
        assert!(
            super::answer(&p, 0, &snap, &b, peer, &mut out).is_none(),
            "{what} must be left to process"
        );
    }
}

#[test]
fn a_zone_over_the_budget_is_left_to_process() {
    let p = crate::fuzzing::published_with_hosts(10);
    let snap = p.snapshot.load();
    let table = snap.wire.as_ref().expect("table");
    assert!(table.names() > 10);
    assert!(table.heap_bytes() > 0);
    // The budget check: an apex-only entry marked uncompiled declines.
    let mut small = super::Table::default();
    small.names.insert(
        super::build::wire_lower(&"f.test.".parse().expect("name")).into(),
        super::Entry {
            zone: u32::MAX,
            flags: super::UNCOMPILED,
            first: 0,
            count: 0,
        },
    );
    let snap2 = Snapshot {
        generation: 2,
        zones: snap.zones.clone(),
        min_labels: snap.min_labels,
        wire: Some(small),
    };
    let mut b = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(b"\x04nope\x01f\x04test\x00\x00\x01\x00\x01");
    let mut out = Vec::new();
    let peer = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
    assert!(super::answer(&p, 0, &snap, &b, peer, &mut out).is_some());
    assert!(super::answer(&p, 0, &snap2, &b, peer, &mut out).is_none());
}

#[test]
fn deep_negative_names_stay_exact_or_are_declined() {
    let p = crate::fuzzing::published_with_hosts(10);
    let snap = p.snapshot.load();
    let peer = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
    let ask = |labels: usize| {
        let mut b = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for i in 0..labels {
            b.push(2);
            b.extend_from_slice(if i % 2 == 0 { b"Xy" } else { b"zz" });
        }
        b.extend_from_slice(b"\x01f\x04test\x00\x00\x01\x00\x01");
        let mut out = Vec::new();
        let fast = super::answer(&p, 0, &snap, &b, peer, &mut out).map(|_| out);
        if let Some(fast) = &fast {
            let Action::Reply(want) =
                server::process(&p, 0, &b, Transport::Udp, peer, &Cell::new(0))
            else {
                panic!("no reply");
            };
            assert_eq!(fast, &want, "{labels} labels");
        }
        fast.is_some()
    };
    assert!(ask(1), "a short NXDOMAIN is answered");
    assert!(ask(15), "15 labels fit the stack table");
    assert!(!ask(28), "28 labels need more targets than kept: declined");
}

#[test]
fn with_rrl_on_only_exempt_clients_take_the_fast_path() {
    let p = crate::fuzzing::published_with_hosts(0);
    let zones = p.snapshot.load().zones.clone();
    let p = crate::fuzzing::published_for(zones, false, 1232, true);
    assert!(p.rrl.is_some(), "the default RRL is on");
    let snap = p.snapshot.load();
    let mut b = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(b"\x03www\x01f\x04test\x00\x00\x01\x00\x01");
    let mut out = Vec::new();
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    assert!(super::answer(&p, 0, &snap, &b, loopback, &mut out).is_some());
    let Action::Reply(want) = server::process(&p, 0, &b, Transport::Udp, loopback, &Cell::new(0))
    else {
        panic!("no reply");
    };
    assert_eq!(out, want);
    let outside = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
    assert!(
        super::answer(&p, 0, &snap, &b, outside, &mut out).is_none(),
        "a limited client is left to process (its RRL check)"
    );
}
