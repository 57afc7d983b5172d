//! NOTIFY (RFC 1996) to secondaries after a zone changes, from the admin
//! side (tokio): one TSIG-signed NOTIFY per secondary serving the zone, sent
//! over UDP from a fresh socket, retried up to [`TRIES`] times until the
//! secondary answers.

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Record, RecordType};

use super::config::{DnsSettings, Secondary};
use crate::model::ZoneName;

pub(crate) const TRIES: usize = 5;
pub(crate) const TIMEOUT: Duration = Duration::from_secs(2);

/// Notifies every secondary of `zone` (now at `soa`), in the background.
pub(crate) fn zone_changed(settings: &Arc<DnsSettings>, zone: &ZoneName, soa: Record) {
    for s in settings.secondaries.iter().filter(|s| s.serves(zone)) {
        let s = s.clone();
        let zone = zone.clone();
        let soa = soa.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { send(&s, &zone, soa).await });
        }
    }
}

async fn send(s: &Secondary, zone: &ZoneName, soa: Record) {
    for attempt in 1..=TRIES {
        match once(s, zone, soa.clone()).await {
            Ok(()) => {
                tracing::info!(secondary = %s.address, %zone, "dns: NOTIFY acknowledged");
                return;
            }
            Err(e) => {
                tracing::debug!(secondary = %s.address, %zone, attempt, error = %e, "dns: NOTIFY not acknowledged")
            }
        }
    }
    tracing::warn!(secondary = %s.address, %zone, "dns: NOTIFY never acknowledged; the secondary will catch up at its SOA refresh");
}

async fn once(s: &Secondary, zone: &ZoneName, soa: Record) -> Result<(), String> {
    let id: u16 = rand::random();
    let mut msg = Message::new(id, MessageType::Query, OpCode::Notify);
    msg.metadata.authoritative = true;
    let mut q = Query::query(zone.name(), RecordType::SOA);
    q.set_query_class(DNSClass::IN);
    msg.queries.push(q);
    msg.answers.push(soa);
    let bytes = crate::tsig::sign_request(&s.key, &mut msg).ok_or("cannot sign NOTIFY")?;
    let local = if s.address.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| e.to_string())?;
    sock.connect(s.address).await.map_err(|e| e.to_string())?;
    sock.send(&bytes).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0_u8; 4096];
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .map_err(|_| "timeout".to_owned())?
            .map_err(|e| e.to_string())?;
        let Ok(reply) = Message::from_vec(buf.get(..n).unwrap_or_default()) else {
            continue;
        };
        if reply.metadata.id == id && reply.metadata.message_type == MessageType::Response {
            return match reply.metadata.response_code {
                hickory_proto::op::ResponseCode::NoError => Ok(()),
                rcode => Err(format!("answered {rcode}")),
            };
        }
    }
}
