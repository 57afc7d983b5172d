//! What to do with one received message: the per-query decision shared by
//! the UDP and TCP paths (and by the fuzz target).
//!
//! Order: parse (silence / FORMERR / NOTIMP / BADVERS) → UPDATE (TSIG,
//! zone, key; `update`) → class IN only →
//! zone transfer (TCP + TSIG + a configured secondary) → authoritative
//! lookup → forwarding (RD set, client inside `recursion_allowed`,
//! upstreams configured) → REFUSED. RRL applies to authoritative UDP answers.

use std::net::IpAddr;

use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::RecordType;

use super::answer;
use super::message::{self, Flags, Parsed, Request, Transport};
use crate::published::Published;
use crate::stats::{Global, global};

/// The outcome of [`process`].
#[derive(Debug)]
pub(crate) enum Action {
    Reply(Vec<u8>),
    /// Needs the forwarder (async); the reply limit travels along.
    Forward(Box<Request>, usize),
    /// An authorized AXFR/IXFR on TCP.
    Transfer(Box<Request>, Box<super::xfr::Authorized>),
    /// A signed, permitted UPDATE for the admin side to apply.
    Update(Box<Request>, Box<super::update::Authorized>),
    Drop,
}

/// Counts one response's rcode.
pub(crate) fn count_rcode(p: &Published, worker: usize, rcode: ResponseCode) {
    p.stats.global.add(worker, Global::rcode(rcode), 1);
}

/// Decides what to send for `bytes` received from `peer` on `transport`.
/// `slip` is this worker's RRL slip counter.
pub(crate) fn process(
    p: &Published,
    worker: usize,
    bytes: &[u8],
    transport: Transport,
    peer: IpAddr,
    slip: &std::cell::Cell<u32>,
) -> Action {
    let settings = &p.settings;
    let ours = settings.udp_payload;
    let req = match message::parse(bytes, ours) {
        Parsed::Drop => {
            p.stats.global.add(worker, global::MALFORMED, 1);
            return Action::Drop;
        }
        Parsed::Reply(b, rcode) => {
            if rcode == ResponseCode::FormErr {
                p.stats.global.add(worker, global::MALFORMED, 1);
            }
            count_rcode(p, worker, rcode);
            return Action::Reply(b);
        }
        Parsed::Request(r) => r,
    };
    let qtype = req.query.query_type();
    p.stats.global.add(worker, Global::qtype(qtype), 1);
    let recursion = !settings.upstreams.is_empty() && settings.recursion_allowed_for(peer);
    let flags = Flags {
        authoritative: false,
        recursion_available: recursion,
    };
    let reply = |rcode: ResponseCode| {
        count_rcode(p, worker, rcode);
        Action::Reply(message::empty(&req, rcode, flags, ours))
    };
    if req.op_code == OpCode::Notify {
        // We are the primary: nobody should NOTIFY us.
        return reply(ResponseCode::NotImp);
    }
    if req.op_code == OpCode::Update {
        return match super::update::authorize(p, &req, bytes) {
            Ok(auth) => Action::Update(req, Box::new(auth)),
            Err((b, rcode)) => {
                count_rcode(p, worker, rcode);
                p.stats.global.add(worker, global::UPDATES_REFUSED, 1);
                Action::Reply(b)
            }
        };
    }
    if !message::is_in_class(&req.query) {
        return reply(ResponseCode::Refused);
    }
    let snap = p.snapshot.load();
    match qtype {
        RecordType::AXFR | RecordType::IXFR => {
            if transport == Transport::Udp {
                // RFC 1995 §2: a UDP IXFR that does not fit gets the SOA alone (go TCP).
                let zone = snap
                    .find_zone(req.query.name())
                    .filter(|z| z.origin == *req.query.name());
                return match (qtype, zone) {
                    (RecordType::IXFR, Some(z)) => {
                        let (b, _) = message::respond(
                            &req,
                            ResponseCode::NoError,
                            Flags {
                                authoritative: true,
                                ..flags
                            },
                            vec![z.soa.clone()],
                            Vec::new(),
                            Vec::new(),
                            message::limit(&req, transport, ours),
                            ours,
                        );
                        count_rcode(p, worker, ResponseCode::NoError);
                        Action::Reply(b)
                    }
                    _ => reply(ResponseCode::FormErr),
                };
            }
            return match super::xfr::authorize(p, &snap, &req, bytes, peer) {
                Ok(auth) => Action::Transfer(req, Box::new(auth)),
                Err(rcode) => reply(rcode),
            };
        }
        RecordType::OPT | RecordType::TSIG | RecordType::SIG => {
            return reply(ResponseCode::FormErr);
        }
        _ => {}
    }
    let limit = message::limit(&req, transport, ours);
    let Some(ans) = answer::lookup(&snap, req.query.name(), qtype, transport == Transport::Tcp)
    else {
        if recursion && req.rd {
            return Action::Forward(req, limit);
        }
        return reply(ResponseCode::Refused);
    };
    drop(snap);
    if transport == Transport::Udp
        && let Some(rrl) = &p.rrl
        && !settings.rrl.is_exempt(peer)
        && !rrl.check(rrl_key(peer, &settings.rrl), std::time::Instant::now())
    {
        let rate = settings.rrl.slip;
        let n = slip.get().wrapping_add(1);
        slip.set(n);
        if rate > 0 && n.is_multiple_of(rate) {
            p.stats.global.add(worker, global::RRL_SLIPPED, 1);
            return Action::Reply(message::slip(&req, ours));
        }
        p.stats.global.add(worker, global::RRL_DROPPED, 1);
        return Action::Drop;
    }
    let flags = Flags {
        authoritative: ans.authoritative,
        recursion_available: recursion,
    };
    let (b, truncated) = message::respond(
        &req,
        ans.rcode,
        flags,
        ans.answers,
        ans.authorities,
        ans.additionals,
        limit,
        ours,
    );
    if truncated {
        p.stats.global.add(worker, global::TRUNCATED, 1);
    }
    count_rcode(p, worker, ans.rcode);
    Action::Reply(b)
}

/// The client prefix RRL counts under (the limiter itself groups IPv6 by /64).
fn rrl_key(ip: IpAddr, cfg: &crate::published::RrlConfig) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX
                .checked_shl(32 - u32::from(cfg.ipv4_prefix))
                .unwrap_or(0);
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => rrl_key(IpAddr::V4(v4), cfg),
            None => {
                let bits = u128::from(v6);
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(cfg.ipv6_prefix))
                    .unwrap_or(0);
                IpAddr::V6((bits & mask).into())
            }
        },
    }
}
