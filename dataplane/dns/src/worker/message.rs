//! Request parsing and response encoding around `hickory-proto`.
//!
//! Total on any input: fewer than 12 bytes or a message with QR set →
//! silence; a header we can read but a body we cannot → FORMERR echoing the
//! id; an EDNS version above 0 → BADVERS. Responses never exceed the
//! transport's limit: over UDP the client's EDNS size clamped to
//! `[512, our udp_payload]` (512 without EDNS), over TCP 65535; an answer
//! that does not fit is sent empty with TC set.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Record};

/// Largest DNS message over TCP (the 16-bit length prefix).
pub(crate) const MAX_TCP_MESSAGE: usize = 65_535;
/// Classic UDP limit without EDNS.
pub(crate) const MIN_UDP_PAYLOAD: u16 = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientEdns {
    pub(crate) payload: u16,
    pub(crate) dnssec_ok: bool,
}

/// A query we are willing to look at.
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) id: u16,
    pub(crate) op_code: OpCode,
    pub(crate) rd: bool,
    pub(crate) cd: bool,
    pub(crate) query: Query,
    pub(crate) edns: Option<ClientEdns>,
    /// The whole parsed message (TSIG and the IXFR authority SOA live here).
    pub(crate) message: Message,
}

/// What to do with a datagram or TCP message before any lookup.
#[derive(Debug)]
pub enum Parsed {
    Request(Box<Request>),
    /// An immediate error response (FORMERR, NOTIMP, BADVERS), and its rcode.
    Reply(Vec<u8>, ResponseCode),
    /// Not worth an answer (too short, or itself a response).
    Drop,
}

/// A bare header-only response with `rcode`, built from the raw request
/// header (`parse` only calls it with at least 12 bytes).
fn header_only(bytes: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let [id_hi, id_lo, flags] = bytes.first_chunk::<3>().copied().unwrap_or_default();
    vec![
        id_hi,
        id_lo,
        // QR=1, opcode copied, RD copied.
        0x80 | (flags & 0x78) | (flags & 0x01),
        u8::try_from(u16::from(rcode) & 0x0f).unwrap_or(1),
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ]
}

pub fn parse(bytes: &[u8], our_payload: u16) -> Parsed {
    if bytes.len() < 12 || bytes.get(2).is_some_and(|flags| flags & 0x80 != 0) {
        return Parsed::Drop;
    }
    let message = match Message::from_vec(bytes) {
        Ok(m) => m,
        Err(_) => {
            return Parsed::Reply(
                header_only(bytes, ResponseCode::FormErr),
                ResponseCode::FormErr,
            );
        }
    };
    let edns = message.edns.as_ref().map(|e| ClientEdns {
        payload: e.max_payload(),
        dnssec_ok: e.flags().dnssec_ok,
    });
    if !matches!(
        message.metadata.op_code,
        OpCode::Query | OpCode::Notify | OpCode::Update
    ) {
        return Parsed::Reply(
            error_reply(&message, edns, ResponseCode::NotImp, our_payload),
            ResponseCode::NotImp,
        );
    }
    let query = match message.queries.as_slice() {
        [only] => only.clone(),
        _ => {
            return Parsed::Reply(
                error_reply(&message, edns, ResponseCode::FormErr, our_payload),
                ResponseCode::FormErr,
            );
        }
    };
    if message.edns.as_ref().is_some_and(|e| e.version() > 0) {
        return Parsed::Reply(
            error_reply(&message, edns, ResponseCode::BADVERS, our_payload),
            ResponseCode::BADVERS,
        );
    }
    Parsed::Request(Box::new(Request {
        id: message.metadata.id,
        op_code: message.metadata.op_code,
        rd: message.metadata.recursion_desired,
        cd: message.metadata.checking_disabled,
        query,
        edns,
        message,
    }))
}

fn our_edns(client: Option<ClientEdns>, our_payload: u16) -> Option<Edns> {
    client.map(|c| {
        let mut e = Edns::new();
        e.set_max_payload(our_payload.max(MIN_UDP_PAYLOAD));
        e.set_version(0);
        e.set_dnssec_ok(c.dnssec_ok);
        e
    })
}

/// An error response that echoes the question (when there is one) and OPT.
fn error_reply(
    req: &Message,
    edns: Option<ClientEdns>,
    rcode: ResponseCode,
    our_payload: u16,
) -> Vec<u8> {
    let mut msg = Message::response(req.metadata.id, req.metadata.op_code);
    msg.metadata.recursion_desired = req.metadata.recursion_desired;
    msg.metadata.response_code = rcode;
    if req.queries.len() == 1 {
        msg.queries = req.queries.clone();
    }
    // BADVERS needs OPT to carry its high bits; answer with version 0.
    msg.edns = our_edns(edns, our_payload).or_else(|| {
        (u16::from(rcode) > 15).then(|| {
            let mut e = Edns::new();
            e.set_max_payload(our_payload);
            e
        })
    });
    msg.to_vec()
        .unwrap_or_else(|_| fallback_header(req.metadata.id, rcode))
}

fn fallback_header(id: u16, rcode: ResponseCode) -> Vec<u8> {
    let [a, b] = id.to_be_bytes();
    vec![
        a,
        b,
        0x80,
        u8::try_from(u16::from(rcode) & 0x0f).unwrap_or(2),
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ]
}

/// The largest response this request may get on `transport`.
pub(crate) fn limit(req: &Request, transport: Transport, our_payload: u16) -> usize {
    match transport {
        Transport::Tcp => MAX_TCP_MESSAGE,
        Transport::Udp => usize::from(match req.edns {
            None => MIN_UDP_PAYLOAD,
            Some(e) => e
                .payload
                .clamp(MIN_UDP_PAYLOAD, our_payload.max(MIN_UDP_PAYLOAD)),
        }),
    }
}

/// Response header flags beyond the rcode.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Flags {
    pub(crate) authoritative: bool,
    pub(crate) recursion_available: bool,
}

/// Encodes a response to `req`; returns the bytes and whether it had to be truncated.
#[allow(clippy::too_many_arguments)]
pub(crate) fn respond(
    req: &Request,
    rcode: ResponseCode,
    flags: Flags,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
    limit: usize,
    our_payload: u16,
) -> (Vec<u8>, bool) {
    let mut msg = response(req, rcode, flags, our_payload);
    msg.answers = answers;
    msg.authorities = authorities;
    msg.additionals = additionals;
    match msg.to_vec() {
        Ok(bytes) if bytes.len() <= limit => (bytes, false),
        Ok(_) => (truncated(msg), true),
        Err(_) => {
            // Unencodable data (cannot happen with validated zones): SERVFAIL.
            msg.answers.clear();
            msg.authorities.clear();
            msg.additionals.clear();
            msg.metadata.response_code = ResponseCode::ServFail;
            (
                msg.to_vec()
                    .unwrap_or_else(|_| fallback_header(req.id, ResponseCode::ServFail)),
                false,
            )
        }
    }
}

/// A response to `req` without records: header, question (zone) and OPT.
pub(crate) fn response(
    req: &Request,
    rcode: ResponseCode,
    flags: Flags,
    our_payload: u16,
) -> Message {
    let mut msg = Message::new(req.id, MessageType::Response, req.op_code);
    msg.metadata.recursion_desired = req.rd;
    msg.metadata.checking_disabled = req.cd;
    msg.metadata.authoritative = flags.authoritative;
    msg.metadata.recursion_available = flags.recursion_available;
    msg.metadata.response_code = rcode;
    msg.queries.push(req.query.clone());
    msg.edns = our_edns(req.edns, our_payload);
    msg
}

/// `msg` encoded (a bare header with its rcode if it cannot be).
pub(crate) fn encode(msg: Message, id: u16) -> Vec<u8> {
    msg.to_vec()
        .unwrap_or_else(|_| fallback_header(id, msg.metadata.response_code))
}

/// The same response with every record removed and TC set.
fn truncated(mut msg: Message) -> Vec<u8> {
    msg.answers.clear();
    msg.authorities.clear();
    msg.additionals.clear();
    msg.metadata.truncation = true;
    msg.to_vec()
        .unwrap_or_else(|_| fallback_header(msg.metadata.id, msg.metadata.response_code))
}

/// A response with no records: REFUSED, SERVFAIL, NOTAUTH, …
pub(crate) fn empty(req: &Request, rcode: ResponseCode, flags: Flags, our_payload: u16) -> Vec<u8> {
    respond(
        req,
        rcode,
        flags,
        Vec::new(),
        Vec::new(),
        Vec::new(),
        MAX_TCP_MESSAGE,
        our_payload,
    )
    .0
}

/// RRL "slip": an empty truncated answer, telling a real client to retry over TCP.
pub(crate) fn slip(req: &Request, our_payload: u16) -> Vec<u8> {
    let mut msg = Message::new(req.id, MessageType::Response, req.op_code);
    msg.metadata.recursion_desired = req.rd;
    msg.queries.push(req.query.clone());
    msg.edns = our_edns(req.edns, our_payload);
    truncated(msg)
}

/// True for the class we serve.
pub(crate) fn is_in_class(q: &Query) -> bool {
    q.query_class() == DNSClass::IN
}

#[cfg(test)]
mod tests;
