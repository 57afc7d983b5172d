//! Zone transfer out (RFC 5936 AXFR; IXFR answered with the full zone or,
//! when the secondary is current, the SOA alone per RFC 1995 §4), over TCP
//! only, to configured secondaries only, always TSIG-signed.
//!
//! Authorization: the peer's address must be a `[[dns.secondaries]]` entry
//! that serves the zone, and the request must carry a valid TSIG with that
//! entry's key. Unsigned → REFUSED; bad key, MAC or time → NOTAUTH.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use super::message::Request;
use crate::published::Published;
use crate::tsig::{self, StreamSigner, TsigKey};
use crate::zone::{Snapshot, Zone};

/// Records per message are added until this many bytes (uncompressed).
const CHUNK_BYTES: usize = 16 * 1024;

#[derive(Debug)]
pub(crate) struct Authorized {
    pub(crate) key: TsigKey,
    pub(crate) request_mac: Vec<u8>,
    pub(crate) zone: Arc<Zone>,
}

pub(crate) fn authorize(
    p: &Published,
    snap: &Snapshot,
    req: &Request,
    raw: &[u8],
    peer: IpAddr,
) -> Result<Authorized, ResponseCode> {
    let Some(zone) = snap.zones.get(req.query.name()) else {
        return Err(ResponseCode::NotAuth);
    };
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        v4 => v4,
    };
    let allowed: Vec<&TsigKey> = p
        .settings
        .secondaries
        .iter()
        .filter(|s| s.address.ip() == peer && s.serves(&zone.name))
        .map(|s| &s.key)
        .collect();
    if allowed.is_empty() {
        return Err(ResponseCode::Refused);
    }
    match tsig::verify_request(raw, &req.message, allowed) {
        Ok((key, mac)) => Ok(Authorized {
            key: key.clone(),
            request_mac: mac,
            zone: zone.clone(),
        }),
        Err(tsig::TsigRefused::Unsigned) => Err(ResponseCode::Refused),
        Err(e) => {
            tracing::warn!(%peer, zone = %zone.name, error = %e, "zone transfer refused");
            Err(ResponseCode::NotAuth)
        }
    }
}

/// The client's serial in an IXFR request (the SOA in its authority section).
fn ixfr_serial(req: &Request) -> Option<u32> {
    req.message.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// Every message of the transfer, encoded and signed, in order.
pub(crate) fn messages(req: &Request, auth: &Authorized) -> Vec<Vec<u8>> {
    let zone = &auth.zone;
    let records: Vec<Record> =
        if req.query.query_type() == RecordType::IXFR && ixfr_serial(req) == Some(zone.serial) {
            vec![zone.soa.clone()]
        } else {
            let mut all = zone.all_records();
            all.push(zone.soa.clone());
            all
        };
    let mut chunks: Vec<Vec<Record>> = vec![Vec::new()];
    let mut size = 0;
    for r in records {
        let len = r.to_bytes().map_or(CHUNK_BYTES, |b| b.len());
        if size + len > CHUNK_BYTES && chunks.last().is_some_and(|c| !c.is_empty()) {
            chunks.push(Vec::new());
            size = 0;
        }
        size += len;
        if let Some(c) = chunks.last_mut() {
            c.push(r);
        }
    }
    let mut signer = StreamSigner::new(&auth.key, auth.request_mac.clone());
    let mut out = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut msg = Message::new(req.id, MessageType::Response, OpCode::Query);
        msg.metadata.authoritative = true;
        if i == 0 {
            msg.queries.push(req.query.clone());
        }
        msg.answers = chunk;
        match signer.sign(&mut msg) {
            Some(b) => out.push(b),
            None => return out,
        }
    }
    out
}
