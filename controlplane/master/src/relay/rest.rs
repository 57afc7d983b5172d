//! The REST twins: `POST /v1/mcp/nodes/{node}/proxy/{Method}` and
//! `…/dns/{Method}` for every relayed method (one route, and one map key,
//! per method), the body the request message in protobuf's canonical JSON,
//! the answer the response message likewise; `GET /v1/mcp/audit` for the
//! trail. Same core call as the gRPC twin.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mc_kit::api::{ApiError, json_error};
use mc_proto::deploy::v1 as pb;
use mc_service::body::JsonBody;
use mc_service::caller::Caller;
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::{Code, Status};

use super::{Call, describe, relay};
use crate::Master;
use crate::dataplane::{methods, short};

/// `/v1/mcp/nodes/{node}/proxy/UpsertRoute` for `/mc.proxy.v1.ProxyAdmin/UpsertRoute`.
pub(crate) fn rest_path(method: &str) -> String {
    format!(
        "/v1/mcp/nodes/{{node}}/{}",
        short(method).replacen('.', "/", 1)
    )
}

pub(crate) const AUDIT_PATH: &str = "/v1/mcp/audit";

fn http_code(c: Code) -> u16 {
    match c {
        Code::InvalidArgument | Code::OutOfRange => 400,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => 409,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable | Code::DeadlineExceeded => 503,
        _ => 500,
    }
}

fn refused(s: &Status) -> Response {
    json_error(http_code(s.code()), &json!({"error": s.message()}))
}

pub(crate) fn router(m: Arc<Master>) -> Router {
    let mut r = Router::new().route(AUDIT_PATH, get(audit));
    for method in methods() {
        let path = method.clone();
        r = r.route(
            &rest_path(method),
            post(
                move |State(m): State<Arc<Master>>,
                      Path(node): Path<String>,
                      caller: Caller,
                      JsonBody(body): JsonBody<Value>| async move {
                    one(&m, &caller, &node, &path, &body).await
                },
            ),
        );
    }
    r.with_state(m)
}

async fn one(m: &Master, caller: &Caller, node: &str, method: &str, body: &Value) -> Response {
    let request = match describe::request_from_json(method, body) {
        Ok(b) => b,
        Err(s) => return refused(&s),
    };
    let call = Call {
        node,
        method,
        request,
    };
    match relay(m, caller, call).await {
        Ok(bytes) => match describe::response_to_json(method, &bytes) {
            Ok(v) => Json(v).into_response(),
            Err(s) => refused(&s),
        },
        Err(s) => refused(&s),
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    since: i64,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    node: String,
    #[serde(default)]
    limit: u32,
}

async fn audit(
    State(m): State<Arc<Master>>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let r = crate::audit::query(
        &m.store,
        &pb::QueryDataPlaneAuditRequest {
            since_unix: q.since,
            actor: q.actor,
            node: q.node,
            limit: q.limit,
        },
    )?;
    let events: Vec<Value> = r
        .events
        .into_iter()
        .map(|e| {
            json!({
                "seq": e.seq, "at_unix": e.at_unix, "actor": e.actor, "account": e.account,
                "node": e.node, "method": e.method, "target": e.target, "summary": e.summary,
                "source_ip": e.source_ip, "result": e.result, "detail": e.detail,
            })
        })
        .collect();
    Ok(Json(json!({ "events": events })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_paths_name_the_area_and_method() {
        assert_eq!(
            rest_path("/mc.proxy.v1.ProxyAdmin/UpsertRoute"),
            "/v1/mcp/nodes/{node}/proxy/UpsertRoute"
        );
        assert_eq!(
            rest_path("/mc.dns.v1.DnsAdmin/UpsertRecord"),
            "/v1/mcp/nodes/{node}/dns/UpsertRecord"
        );
    }
}
