//! Entry points for the cargo-fuzz targets in `dataplane/dns/fuzz/` (and the
//! property tests that run the same checks in `cargo test`): any bytes in →
//! a valid DNS response or silence, never a panic; UPDATE plans that pass
//! apply to a copy of the zone and compile or are refused.

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use hickory_proto::op::Message;
use mc_kit::origin::Origin;

use crate::admin::config::DnsSection;
use crate::model::{self, RType, RecordSpec, SoaParams, ZoneName, ZoneSpec};
use crate::published::Published;
use crate::stats::Stats;
use crate::worker::message::Transport;
use crate::worker::server::{self, Action};
use crate::zone::{self, Snapshot};

/// A published state with one zone exercising every lookup path.
fn published() -> &'static Published {
    static P: OnceLock<Published> = OnceLock::new();
    P.get_or_init(|| published_with_hosts(0))
}

/// The fuzzing zone `f.test` plus `hosts` names `h<i>.f.test A 10.x.y.z`:
/// the state the microbenchmarks answer from (`mc-bench`'s `dns` bench).
pub fn published_with_hosts(hosts: usize) -> Published {
    {
        let name = ZoneName::parse("f.test").unwrap_or_else(|_| unreachable!());
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
        .unwrap_or_else(|_| unreachable!());
        let spec = ZoneSpec {
            name: name.clone(),
            soa,
            serial: 1,
            origin: Origin::AdminApi,
        };
        let lines = [
            ("@", RType::NS, "ns1"),
            ("ns1", RType::A, "192.0.2.1"),
            ("www", RType::A, "192.0.2.2"),
            ("www", RType::AAAA, "2001:db8::2"),
            ("alias", RType::CNAME, "www"),
            ("loop", RType::CNAME, "loop"),
            ("*.w", RType::TXT, "\"wild\""),
            ("sub", RType::NS, "ns.sub"),
            ("ns.sub", RType::A, "192.0.2.3"),
            ("@", RType::MX, "10 www"),
        ];
        let hosts: Vec<(String, String)> = (0..hosts)
            .map(|i| {
                (
                    format!("h{i}"),
                    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
                )
            })
            .collect();
        let records: Vec<(RecordSpec, hickory_proto::rr::RData)> = lines
            .iter()
            .map(|(n, t, v)| (*n, *t, *v))
            .chain(
                hosts
                    .iter()
                    .map(|(n, v)| (n.as_str(), RType::A, v.as_str())),
            )
            .filter_map(|(n, t, v)| {
                let r = RecordSpec::new(&name, n, t, 0, v, 60, Origin::AdminApi).ok()?;
                let d = model::parse_rdata(&name, t, &r.value).ok()?;
                Some((r, d))
            })
            .collect();
        let z = zone::compile(&spec, records.iter().map(|(r, d)| (r, d)))
            .unwrap_or_else(|_| unreachable!());
        if hosts.is_empty() {
            let _ = FUZZ_ZONE.set((
                spec.clone(),
                records
                    .iter()
                    .cloned()
                    .map(|(r, d)| (r.key(), (r, d)))
                    .collect(),
            ));
        }
        published_for(
            [(z.origin.clone(), Arc::new(z))].into_iter().collect(),
            false,
            DnsSection::default().udp_payload,
            false,
        )
    }
}

/// A published state for `zones` with default settings and one worker;
/// `upstreams`: one (never contacted) upstream, so loopback clients get RA
/// and names outside the zones are forwarded; `rrl`: the default response
/// rate limiting (loopback exempt), else none.
pub(crate) fn published_for(
    zones: std::collections::HashMap<hickory_proto::rr::Name, Arc<zone::Zone>>,
    upstreams: bool,
    udp_payload: u16,
    rrl: bool,
) -> Published {
    let mut section = DnsSection::default();
    if upstreams {
        section.upstreams = vec![std::net::SocketAddr::from(([127, 0, 0, 1], 9))];
    }
    section.udp_payload = udp_payload;
    let settings = section.settings().unwrap_or_else(|_| unreachable!());
    let (stop, _) = tokio::sync::watch::channel(false);
    Published {
        snapshot: ArcSwap::from_pointee(Snapshot::new(1, zones)),
        stop,
        stats: Stats::new(1, usize::from(upstreams)),
        settings: Arc::new(settings),
        workers: 1,
        flush_all: AtomicU64::new(0),
        flush_names: ArcSwap::from_pointee(Vec::new()),
        flush_seq: AtomicU64::new(0),
        rrl: rrl
            .then(|| {
                mc_firewall::RateLimiter::new(mc_firewall::RateLimiterConfig {
                    rate_per_sec: f64::from(section.rrl.responses_per_second),
                    burst: section.rrl.responses_per_second,
                    ..mc_firewall::RateLimiterConfig::default()
                })
                .ok()
            })
            .flatten(),
        tcp_active: AtomicUsize::new(0),
        listen: Vec::new(),
        updates: None,
        api_keys: ArcSwap::from_pointee(Vec::new()),
    }
}

/// The fuzzing zone's spec and records, as the admin side holds them.
static FUZZ_ZONE: OnceLock<(ZoneSpec, crate::update::apply::Records)> = OnceLock::new();

/// The TSIG key the UPDATE fuzz target signs with (it may change `f.test`).
fn update_key() -> &'static crate::tsig::TsigKey {
    static K: OnceLock<crate::tsig::TsigKey> = OnceLock::new();
    K.get_or_init(|| {
        let mut k = crate::tsig::TsigKey::new(
            "fuzz",
            crate::tsig::TsigAlgorithm::HmacSha256,
            "ZnV6ei11cGRhdGUta2V5LTMyLWJ5dGVzLWxvbmchISE=",
        )
        .unwrap_or_else(|_| unreachable!());
        k.update_zones = ZoneName::parse("f.test").into_iter().collect();
        k
    })
}

/// A key for transfers only (no `update_zones`).
fn transfer_key() -> crate::tsig::TsigKey {
    crate::tsig::TsigKey::new(
        "xfr-only",
        crate::tsig::TsigAlgorithm::HmacSha256,
        "ZnV6ei11cGRhdGUta2V5LTMyLWJ5dGVzLWxvbmchISE=",
    )
    .unwrap_or_else(|_| unreachable!())
}

/// `published()` with [`update_key`] and [`transfer_key`] configured.
fn update_published() -> &'static Published {
    static P: OnceLock<Published> = OnceLock::new();
    P.get_or_init(|| {
        let mut p = published_with_hosts(0);
        let mut settings = (*p.settings).clone();
        settings.tsig_keys = vec![update_key().clone(), transfer_key()];
        p.settings = Arc::new(settings);
        p
    })
}

/// Runs `data` as an UPDATE, as sent and (when it parses) re-signed with
/// the fuzzing key so mutations reach the sections; a plan that passes is
/// applied to a copy of the zone and compiled as the admin side would.
/// Panics only if a reply is not a valid DNS response.
pub fn update(data: &[u8]) {
    let p = update_published();
    let slip = Cell::new(0);
    let signed = Message::from_vec(data).ok().and_then(|mut m| {
        m.metadata.op_code = hickory_proto::op::OpCode::Update;
        m.metadata.message_type = hickory_proto::op::MessageType::Query;
        m.signature = None;
        crate::tsig::sign_request(update_key(), &mut m)
    });
    for bytes in std::iter::once(data).chain(signed.as_deref()) {
        match server::process(
            p,
            0,
            bytes,
            Transport::Tcp,
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
            &slip,
        ) {
            Action::Reply(b) => {
                let m = Message::from_vec(&b).unwrap_or_else(|e| panic!("invalid reply: {e}"));
                assert_eq!(
                    m.metadata.message_type,
                    hickory_proto::op::MessageType::Response
                );
            }
            Action::Update(_, auth) => {
                let Some((spec, records)) = FUZZ_ZONE.get() else {
                    return;
                };
                let soa = model::canonical(&zone::soa_record(spec).data);
                let mut copy = records.clone();
                if crate::update::apply::check(&copy, &soa, &auth.plan.prereqs).is_ok()
                    && crate::update::apply::changes(&mut copy, &auth.plan.changes).is_ok()
                {
                    let _ = zone::compile(spec, copy.values().map(|(r, d)| (r, d)));
                }
            }
            Action::Forward(..) | Action::Transfer(..) | Action::Drop => {}
        }
    }
}

/// Answers one UDP query from `p` the way a worker does (decode, lookup,
/// encode); `None` when the server would not reply.
pub fn reply(p: &Published, data: &[u8]) -> Option<Vec<u8>> {
    let slip = Cell::new(0);
    match server::process(
        p,
        0,
        data,
        Transport::Udp,
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
        &slip,
    ) {
        Action::Reply(b) => Some(b),
        Action::Forward(..) | Action::Transfer(..) | Action::Update(..) | Action::Drop => None,
    }
}

/// Answers one UDP query through the wire-level fast path only; `None`
/// when it declines (the worker would then run [`reply`]'s path).
pub fn fast_reply(p: &Published, data: &[u8]) -> Option<Vec<u8>> {
    let snap = p.snapshot.load();
    let mut out = Vec::with_capacity(512);
    crate::worker::wire::answer(
        p,
        0,
        &snap,
        data,
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
        &mut out,
    )
    .map(|_| out)
}

/// The precompiled answer table of `p`'s snapshot: (names, heap bytes).
pub fn wire_table_size(p: &Published) -> (usize, usize) {
    let snap = p.snapshot.load();
    snap.wire
        .as_ref()
        .map_or((0, 0), |t| (t.names(), t.heap_bytes()))
}

/// Builds `p`'s precompiled answer table again (what a publish adds to
/// compiling the zones) and returns its name count, for timing it.
pub fn rebuild_wire_table(p: &Published) -> usize {
    let snap = p.snapshot.load();
    crate::worker::wire::Table::build(&snap).names()
}

/// Runs one message through the server on UDP and TCP; panics only if a
/// reply is not a valid DNS response within the transport's size limit, or if
/// the wire-level fast path answers other bytes than `process`.
pub fn message(data: &[u8]) {
    let p = published();
    let slip = Cell::new(0);
    if let Some(fast) = fast_reply(p, data) {
        assert_eq!(Some(fast), reply(p, data), "fast path differs from process");
    }
    for (transport, limit) in [(Transport::Udp, 4096), (Transport::Tcp, 65_535)] {
        match server::process(
            p,
            0,
            data,
            transport,
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
            &slip,
        ) {
            Action::Reply(b) => {
                assert!(
                    b.len() <= limit,
                    "reply of {} bytes over {transport:?}",
                    b.len()
                );
                let m = Message::from_vec(&b).unwrap_or_else(|e| panic!("invalid reply: {e}"));
                assert_eq!(
                    m.metadata.message_type,
                    hickory_proto::op::MessageType::Response
                );
                if data.len() >= 2 {
                    assert_eq!(
                        m.metadata.id,
                        u16::from_be_bytes([data[0], data[1]]),
                        "ID echoed"
                    );
                }
            }
            Action::Forward(..) | Action::Transfer(..) | Action::Update(..) | Action::Drop => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// A valid query for a name in the zone, for mutation.
    fn seed() -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        for l in ["www", "f", "test"] {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        q
    }

    /// An UPDATE of `f.test`: a prerequisite and an add, unsigned (the
    /// target signs it).
    fn update_seed() -> Vec<u8> {
        use hickory_proto::op::{Message, MessageType, OpCode, Query};
        use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
        let mut m = Message::new(0x1234, MessageType::Query, OpCode::Update);
        let zone = Name::from_ascii("f.test.").unwrap();
        m.queries.push(Query::query(zone, RecordType::SOA));
        let mut pre = Record::update0(Name::from_ascii("www.f.test.").unwrap(), 0, RecordType::ANY);
        pre.dns_class = DNSClass::ANY;
        m.answers.push(pre);
        m.authorities.push(Record::from_rdata(
            Name::from_ascii("new.f.test.").unwrap(),
            60,
            RData::A("192.0.2.77".parse().unwrap()),
        ));
        m.to_vec().unwrap()
    }

    #[test]
    fn a_signed_update_reaches_the_plan() {
        let p = super::update_published();
        let mut m = hickory_proto::op::Message::from_vec(&update_seed()).unwrap();
        let bytes = crate::tsig::sign_request(super::update_key(), &mut m).unwrap();
        let slip = std::cell::Cell::new(0);
        let action = crate::worker::server::process(
            p,
            0,
            &bytes,
            crate::worker::message::Transport::Udp,
            std::net::IpAddr::from([127, 0, 0, 1]),
            &slip,
        );
        assert!(
            matches!(&action, crate::worker::server::Action::Update(_, a) if a.plan.changes.len() == 1 && a.plan.prereqs.len() == 1),
            "{action:?}"
        );
        // Tampered: NOTAUTH with an unsigned BADSIG TSIG.
        // A bit of the MAC (it ends 6 bytes before the message: id, error, other length).
        let mut bad = bytes.clone();
        let at = bad.len() - 10;
        bad[at] ^= 1;
        match crate::worker::server::process(
            p,
            0,
            &bad,
            crate::worker::message::Transport::Udp,
            std::net::IpAddr::from([127, 0, 0, 1]),
            &slip,
        ) {
            crate::worker::server::Action::Reply(b) => {
                let r = hickory_proto::op::Message::from_vec(&b).unwrap();
                assert_eq!(
                    r.metadata.response_code,
                    hickory_proto::op::ResponseCode::NotAuth
                );
                let sig = r.signature.expect("a TSIG");
                assert_eq!(
                    sig.data.error,
                    Some(hickory_proto::rr::rdata::tsig::TsigError::BadSig)
                );
                assert!(sig.data.mac.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    /// A request signed 20 minutes ago: NOTAUTH with a signed BADTIME TSIG
    /// carrying our time; a key not allowed for the zone: REFUSED, signed.
    #[test]
    fn stale_and_unpermitted_updates_get_signed_refusals() {
        use hickory_proto::op::{Message, ResponseCode};
        use hickory_proto::rr::rdata::tsig::TsigError;
        let p = super::update_published();
        let now = u64::try_from(mc_kit::clock::unix_now()).unwrap();
        let mut m = Message::from_vec(&update_seed()).unwrap();
        let (sig, _) = super::update_key()
            .signer
            .sign_message(&m, now - 1200)
            .unwrap();
        m.signature = Some(sig);
        let slip = std::cell::Cell::new(0);
        let peer = std::net::IpAddr::from([127, 0, 0, 1]);
        let t = crate::worker::message::Transport::Udp;
        let crate::worker::server::Action::Reply(b) =
            crate::worker::server::process(p, 0, &m.to_vec().unwrap(), t, peer, &slip)
        else {
            panic!("a reply")
        };
        let r = Message::from_vec(&b).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NotAuth);
        let tsig = r.signature.expect("a TSIG");
        assert_eq!(tsig.data.error, Some(TsigError::BadTime));
        assert!(!tsig.data.mac.is_empty(), "BADTIME is signed");
        assert_eq!(tsig.data.other.len(), 6, "our time in Other Data");
        // A valid key that may not change the zone: REFUSED, signed.
        let other = super::transfer_key();
        let mut m = Message::from_vec(&update_seed()).unwrap();
        let bytes = crate::tsig::sign_request(&other, &mut m).unwrap();
        let crate::worker::server::Action::Reply(b) =
            crate::worker::server::process(p, 0, &bytes, t, peer, &slip)
        else {
            panic!("a reply")
        };
        let r = Message::from_vec(&b).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        assert!(r.signature.is_some_and(|s| !s.data.mac.is_empty()));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes_give_a_valid_reply_or_silence(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            super::message(&data);
        }

        #[test]
        fn mutated_updates_give_a_valid_reply(flips in proptest::collection::vec((0usize..90, any::<u8>()), 0..6), cut in 0usize..120) {
            let mut u = update_seed();
            for (i, b) in flips {
                if let Some(x) = u.get_mut(i) {
                    *x = b;
                }
            }
            u.truncate(cut.max(12));
            super::update(&u);
        }

        #[test]
        fn mutated_queries_give_a_valid_reply_or_silence(flips in proptest::collection::vec((0usize..45, any::<u8>()), 0..6), cut in 0usize..50) {
            let mut q = seed();
            for (i, b) in flips {
                if let Some(x) = q.get_mut(i) {
                    *x = b;
                }
            }
            q.truncate(cut.max(12));
            super::message(&q);
        }
    }
}
