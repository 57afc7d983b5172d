//! UPDATE (RFC 2136) on a worker: TSIG first (RFC 8945 §5.2), then the
//! zone, the key's permission and the sections ([`crate::update::plan`]);
//! what passes goes to the admin side over the bounded queue in
//! [`Published`], and the rcode it sends back is answered, signed.
//!
//! Invariant: every answer to a request whose MAC verified is signed with
//! that request's key and MAC; BADKEY and BADSIG answers carry an unsigned
//! TSIG; an unsigned request is refused without one.

use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::tsig::TsigError;

use super::message::{self, Request};
use crate::published::Published;
use crate::stats::global;
use crate::tsig::{self, TsigKey, TsigRefused};
use crate::update::{self, Job, Plan};

/// How long a worker waits for the admin side to apply a plan.
const WAIT: Duration = Duration::from_secs(10);

/// An UPDATE whose signature, zone and key passed: the plan to apply.
#[derive(Debug)]
pub(crate) struct Authorized {
    pub(crate) key: TsigKey,
    pub(crate) request_mac: Vec<u8>,
    pub(crate) plan: Plan,
}

fn response(req: &Request, rcode: ResponseCode, ours: u16) -> Message {
    message::response(req, rcode, message::Flags::default(), ours)
}

/// Checks `req` (raw bytes `raw`); `Err` is the encoded answer and its rcode.
pub(crate) fn authorize(
    p: &Published,
    req: &Request,
    raw: &[u8],
) -> Result<Authorized, (Vec<u8>, ResponseCode)> {
    let ours = p.settings.udp_payload;
    let api = p.api_keys.load();
    let keys = p.settings.tsig_keys.iter().chain(api.iter());
    let (key, mac, in_time) = match tsig::check(raw, &req.message, keys) {
        Ok(v) => v,
        Err(TsigRefused::Unsigned) => {
            let b = message::encode(response(req, ResponseCode::Refused, ours), req.id);
            return Err((b, ResponseCode::Refused));
        }
        Err(e) => {
            let error = match e {
                TsigRefused::BadSig => TsigError::BadSig,
                _ => TsigError::BadKey,
            };
            tracing::warn!(zone = %req.query.name(), error = %e, "dns: UPDATE refused (TSIG)");
            let mut msg = response(req, ResponseCode::NotAuth, ours);
            let b = tsig::unsigned_error(&req.message, &mut msg, error)
                .unwrap_or_else(|| message::encode(msg, req.id));
            return Err((b, ResponseCode::NotAuth));
        }
    };
    let signed = |rcode: ResponseCode, error: Option<TsigError>| {
        let mut msg = response(req, rcode, ours);
        let b = tsig::sign_response(key, &mac, &mut msg, error)
            .unwrap_or_else(|| message::encode(msg, req.id));
        Err((b, rcode))
    };
    if !in_time {
        tracing::warn!(key = %key.name_str, "dns: UPDATE refused (signature time outside the fudge)");
        return signed(ResponseCode::NotAuth, Some(TsigError::BadTime));
    }
    if req.query.query_type() != RecordType::SOA {
        return signed(ResponseCode::FormErr, None);
    }
    if !message::is_in_class(&req.query) {
        return signed(ResponseCode::Refused, None);
    }
    let snap = p.snapshot.load();
    let Some(zone) = snap
        .find_zone(req.query.name())
        .filter(|z| z.origin == *req.query.name())
    else {
        return signed(ResponseCode::NotAuth, None);
    };
    if !key.update_zones.contains(&zone.name) {
        tracing::warn!(key = %key.name_str, zone = %zone.name, "dns: UPDATE refused: the key may not change this zone");
        return signed(ResponseCode::Refused, None);
    }
    match update::plan(&zone.name, &req.message) {
        Ok(plan) => Ok(Authorized {
            key: key.clone(),
            request_mac: mac,
            plan,
        }),
        Err(rcode) => signed(rcode, None),
    }
}

/// Hands the plan to the admin side, waits for its rcode, counts it and
/// encodes the signed answer.
pub(crate) async fn apply(
    p: &Published,
    worker: usize,
    req: &Request,
    auth: Authorized,
) -> Vec<u8> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = Job {
        plan: auth.plan,
        reply: tx,
    };
    let rcode = match p.updates.as_ref().map(|q| q.try_send(job)) {
        Some(Ok(())) => match monoio::time::timeout(WAIT, rx).await {
            Ok(Ok(rcode)) => rcode,
            _ => ResponseCode::ServFail,
        },
        _ => ResponseCode::ServFail,
    };
    super::server::count_rcode(p, worker, rcode);
    let counter = if rcode == ResponseCode::NoError {
        global::UPDATES_APPLIED
    } else {
        global::UPDATES_REFUSED
    };
    p.stats.global.add(worker, counter, 1);
    let mut msg = response(req, rcode, p.settings.udp_payload);
    tsig::sign_response(&auth.key, &auth.request_mac, &mut msg, None)
        .unwrap_or_else(|| message::encode(msg, req.id))
}
