//! The control plane as the front door to every node's data plane: the
//! master serves `mc.proxy.v1.ProxyAdmin` and `mc.dns.v1.DnsAdmin` on its
//! TLS gRPC listener (the node named by the `mc-node` header; `grpc`) and
//! their REST twins (`POST /v1/mcp/nodes/{node}/proxy|dns/{Method}`,
//! `rest`), behind MCIAS and the one method map, and carries each call to
//! the node's agent (`RelayDataPlane`, the master's `mcp-master` token),
//! which passes it to its local data-plane admin socket.
//!
//! One generic path for every method: the request travels encoded as it
//! came ([`mc_proto::raw::RawCodec`]); it is decoded here only to describe
//! it (`describe`) and to check the record API's name rule (`scope`).
//! Every change (anything but `Get*`/`List*`) is in the audit trail
//! (`crate::audit`) before it is sent, with its outcome after.

pub(crate) mod describe;
pub(crate) mod fuzzing;
pub(crate) mod grpc;
pub(crate) mod rest;
pub(crate) mod scope;

use mc_proto::deploy::v1 as pb;
use mc_service::caller::Caller;
use tonic::{Code, Status};

use crate::Master;
use crate::audit::{self, AuditRow};
use crate::dataplane::{MAX_MESSAGE, read_only, relayable, short};
use crate::registry::{self, now_ms};
use crate::{agents, store};

/// One relayed call: `method` (`/pkg.Service/Method`) to `node`.
pub(crate) struct Call<'a> {
    pub(crate) node: &'a str,
    pub(crate) method: &'a str,
    pub(crate) request: Vec<u8>,
}

/// Runs `call` for `caller`: the name rule, the audit row, the node's
/// agent. Returns the encoded response.
pub(crate) async fn relay(m: &Master, caller: &Caller, call: Call<'_>) -> Result<Vec<u8>, Status> {
    if !relayable(call.method) {
        return Err(Status::unimplemented(format!(
            "{} is not a data-plane admin method",
            call.method
        )));
    }
    let who = caller
        .principal
        .as_ref()
        .ok_or_else(|| Status::unauthenticated("missing bearer token"))?;
    let msg = describe::request(call.method, &call.request)?;
    let change = !read_only(call.method);
    let row = AuditRow {
        seq: 0,
        at: now_ms() / 1000,
        actor: who.account_id.clone(),
        account: who.username.clone(),
        node: call.node.to_owned(),
        method: short(call.method),
        target: describe::target(&msg),
        summary: describe::summary(&msg),
        source_ip: caller.ip(),
        result: "sent".to_owned(),
        detail: String::new(),
    };
    if let Err(why) = scope::check(call.method, who, &msg) {
        if change {
            let denied = AuditRow {
                result: "denied".to_owned(),
                detail: why.clone(),
                ..row
            };
            audit::append(&m.store, denied).map_err(|e| Status::internal(e.to_string()))?;
        }
        return Err(Status::permission_denied(why));
    }
    if call.node.is_empty() {
        return Err(Status::invalid_argument(
            "node: required (the mc-node header; mcctl --node NAME)",
        ));
    }
    if !change {
        return send(m, &call).await;
    }
    audited(m, row, &call).await
}

/// Sends `call`, a change, with its audit row `row` written before and
/// finished after.
async fn audited(m: &Master, row: AuditRow, call: &Call<'_>) -> Result<Vec<u8>, Status> {
    let (actor, ip) = (row.account.clone(), row.source_ip.clone());
    let seq = audit::append(&m.store, row)
        .map_err(|e| Status::unavailable(format!("the audit trail cannot be written: {e}")))?;
    let out = send(m, call).await;
    let (result, detail) = match &out {
        Ok(_) => ("ok".to_owned(), String::new()),
        Err(s) => (code_name(s.code()), s.message().to_owned()),
    };
    if let Err(e) = audit::finish(&m.store, seq, &result, &detail) {
        tracing::error!(seq, error = %e, "cannot record the outcome of a data-plane change");
    }
    tracing::info!(
        actor = %actor, ip = %ip, node = call.node,
        method = call.method, result, "data-plane change"
    );
    out
}

/// A call the master makes itself for an operation of `caller` (the
/// deploy's certificate and DNS steps): typed in and out, a change audited
/// like a relayed one with the operation named in the summary (`deploy
/// docs: …`). No name rule here: the operation checks its own.
pub(crate) async fn own<Req: prost::Message, Resp: prost::Message + Default>(
    m: &Master,
    caller: &Caller,
    node: &str,
    method: &str,
    why: &str,
    request: &Req,
) -> Result<Resp, Status> {
    let call = Call {
        node,
        method,
        request: request.encode_to_vec(),
    };
    let out = if read_only(method) {
        send(m, &call).await?
    } else {
        let msg = describe::request(method, &call.request)?;
        let (actor, account) = caller.principal.as_ref().map_or_else(
            || ("mcp".to_owned(), "mcp".to_owned()),
            |p| (p.account_id.clone(), p.username.clone()),
        );
        let row = AuditRow {
            seq: 0,
            at: now_ms() / 1000,
            actor,
            account,
            node: node.to_owned(),
            method: short(method),
            target: describe::target(&msg),
            summary: format!("{why}: {}", describe::summary(&msg)),
            source_ip: caller.ip(),
            result: "sent".to_owned(),
            detail: String::new(),
        };
        audited(m, row, &call).await?
    };
    Resp::decode(out.as_slice())
        .map_err(|e| Status::internal(format!("node {node}: undecodable answer to {method}: {e}")))
}

/// `invalid_argument` for `Code::InvalidArgument`.
fn code_name(c: Code) -> String {
    let d = format!("{c:?}");
    let mut out = String::new();
    for (i, ch) in d.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

/// The call to `node`'s agent: the node must be registered and healthy.
async fn send(m: &Master, call: &Call<'_>) -> Result<Vec<u8>, Status> {
    let row = store::node(&m.store, call.node)
        .map_err(|e| Status::internal(e.to_string()))?
        .ok_or_else(|| Status::not_found(format!("unknown node {}", call.node)))?;
    if registry::health(m, &row, now_ms()) != pb::NodeHealth::Healthy {
        return Err(Status::unavailable(registry::why_not(m, &row, now_ms())));
    }
    let agent = agents::connect(m, &row).map_err(Status::from)?;
    let mut client = agent
        .client
        .clone()
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let req = agent.req(pb::RelayDataPlaneRequest {
        method: call.method.to_owned(),
        request: call.request.clone(),
    });
    match client.relay_data_plane(req).await {
        Ok(r) => Ok(r.into_inner().response),
        Err(s) => Err(from_node(call.node, &s)),
    }
}

/// The node's answer as the operator should read it: the data plane's
/// code kept, the node named; the agent refusing the master's token is the
/// platform's misconfiguration, not the operator's refusal.
fn from_node(node: &str, s: &Status) -> Status {
    let msg = format!("node {node}: {}", s.message());
    match s.code() {
        Code::Unauthenticated | Code::PermissionDenied => Status::failed_precondition(format!(
            "node {node}: the agent refused the master's token: {}",
            s.message()
        )),
        Code::Unknown | Code::Cancelled | Code::DeadlineExceeded => Status::unavailable(msg),
        code => Status::new(code, msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_named_in_snake_case_and_the_node_is_named() {
        assert_eq!(code_name(Code::InvalidArgument), "invalid_argument");
        assert_eq!(code_name(Code::Unavailable), "unavailable");
        let s = from_node("b", &Status::not_found("no route a.test"));
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(s.message(), "node b: no route a.test");
        let s = from_node("b", &Status::permission_denied("x"));
        assert_eq!(s.code(), Code::FailedPrecondition);
    }
}
