//! Unit tests for the forwarding cache.

use std::net::Ipv4Addr;

use hickory_proto::rr::rdata::SOA;

use super::*;

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

fn entry(ttl: u32, stored: Instant) -> Entry {
    Entry {
        rcode: ResponseCode::NoError,
        answers: vec![Record::from_rdata(
            name("a.example."),
            ttl,
            RData::A(Ipv4Addr::new(192, 0, 2, 1).into()),
        )],
        authorities: vec![],
        additionals: vec![],
        stored,
        ttl,
    }
}

#[test]
fn entries_expire_and_count_down() {
    let mut c = Cache::new(10);
    let t0 = Instant::now();
    c.insert((name("a.example."), 1), entry(10, t0), t0);
    let hit = c
        .get(&(name("A.EXAMPLE."), 1), t0 + Duration::from_secs(4))
        .expect("hit, case-insensitive");
    assert_eq!(hit.answers[0].ttl, 6);
    assert!(
        c.get(&(name("a.example."), 1), t0 + Duration::from_secs(10))
            .is_none()
    );
    assert_eq!(c.len(), 0, "expired entries are removed");
}

#[test]
fn the_cache_is_bounded() {
    let mut c = Cache::new(16);
    let t0 = Instant::now();
    for i in 0..100 {
        c.insert((name(&format!("n{i}.example.")), 1), entry(60, t0), t0);
    }
    assert_eq!(c.len(), 16);
}

#[test]
fn negative_ttl_comes_from_the_soa() {
    let mut m = Message::new(1, MessageType::Response, OpCode::Query);
    m.queries
        .push(Query::query(name("x.example."), RecordType::A));
    m.metadata.response_code = ResponseCode::NXDomain;
    let soa = SOA::new(name("ns.example."), name("h.example."), 1, 1, 1, 1, 30);
    m.authorities
        .push(Record::from_rdata(name("example."), 300, RData::SOA(soa)));
    assert_eq!(cache_ttl(&m), Some(30));
    m.authorities.clear();
    assert_eq!(cache_ttl(&m), None, "no SOA, not cached");
    m.metadata.response_code = ResponseCode::ServFail;
    assert_eq!(cache_ttl(&m), None, "SERVFAIL is never cached");
}
