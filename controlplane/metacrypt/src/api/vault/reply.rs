//! Vault's answer shapes: the response envelope, `{"errors": […]}` with
//! Vault's status codes, and the bodies of `sys/health`, `sys/seal-status`,
//! `sys/mounts` and `auth/token/lookup-self`.
//!
//! Invariant: an internal fault's detail is logged, never sent; the sealed
//! answer names nothing.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mc_service::auth::Principal;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::decode::HealthCodes;
use crate::core::{Answer, Mount, Status};
use crate::error::CryptError;

/// What a facade call answers.
pub(crate) enum Reply {
    /// 200 with the envelope around `data`.
    Data(Value),
    /// This status with the envelope around `data` (a batch with failed
    /// items, a deleted kv version).
    DataWith(u16, Value),
    /// 204, no body.
    Empty,
    /// This status and body as they are (health, seal-status: no envelope).
    Raw(u16, Value),
    /// 200 with this content type and body (PEM or DER: the pki reads).
    Body(&'static str, Vec<u8>),
    /// This status with the envelope, no data and these warnings (pki tidy).
    Warned(u16, Vec<String>),
}

fn code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A random UUID (v4) for `request_id`.
fn request_id() -> String {
    let mut b = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        return String::new();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Vault's response envelope around `data`.
pub(crate) fn envelope(data: Value) -> Value {
    json!({
        "request_id": request_id(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
    })
}

impl Reply {
    pub(crate) fn into_response(self) -> Response {
        match self {
            Self::Data(d) => (StatusCode::OK, axum::Json(envelope(d))).into_response(),
            Self::DataWith(s, d) => (code(s), axum::Json(envelope(d))).into_response(),
            Self::Empty => StatusCode::NO_CONTENT.into_response(),
            Self::Raw(s, body) => (code(s), axum::Json(body)).into_response(),
            Self::Body(kind, body) => {
                (StatusCode::OK, [(header::CONTENT_TYPE, kind)], body).into_response()
            }
            Self::Warned(s, warnings) => {
                let mut e = envelope(Value::Null);
                e["warnings"] = json!(warnings);
                (code(s), axum::Json(e)).into_response()
            }
        }
    }
}

fn errors(status: StatusCode, messages: &[&str]) -> Response {
    (status, axum::Json(json!({ "errors": messages }))).into_response()
}

/// The one sealed answer.
pub(crate) fn sealed() -> Response {
    errors(StatusCode::SERVICE_UNAVAILABLE, &["Vault is sealed"])
}

/// A core error in Vault's shape and status.
pub(crate) fn error(e: &CryptError) -> Response {
    match e {
        CryptError::Invalid(i) => errors(StatusCode::BAD_REQUEST, &[&i.to_string()]),
        CryptError::Unauthenticated(_)
        | CryptError::Challenge { .. }
        | CryptError::Forbidden(_) => errors(StatusCode::FORBIDDEN, &["permission denied"]),
        CryptError::NotFound(_) => errors(StatusCode::NOT_FOUND, &[]),
        // CAS and state conflicts: Vault answers 400.
        CryptError::AlreadyExists(m) | CryptError::FailedPrecondition(m) => {
            errors(StatusCode::BAD_REQUEST, &[m])
        }
        CryptError::RateLimited(m) => errors(StatusCode::TOO_MANY_REQUESTS, &[m]),
        CryptError::Unavailable(m) if m == "sealed" => sealed(),
        CryptError::Unavailable(m) => errors(StatusCode::SERVICE_UNAVAILABLE, &[m]),
        // Internal, and any kind added later: the detail is logged only.
        other => {
            tracing::error!(error = %other, "metacrypt vault facade: internal error");
            errors(StatusCode::INTERNAL_SERVER_ERROR, &["internal error"])
        }
    }
}

fn value<T: Serialize>(v: &T) -> Result<Value, CryptError> {
    serde_json::to_value(v).map_err(|e| CryptError::internal(e.to_string()))
}

/// A transit answer: one item, or a batch with Vault's status.
pub(crate) fn answer<T: Serialize>(a: Answer<T>) -> Result<Reply, CryptError> {
    Ok(match a {
        Answer::One(v) => Reply::Data(value(&v)?),
        Answer::Batch { results, status } => match status {
            200 => Reply::Data(value(&results)?),
            s => Reply::DataWith(s, value(&results)?),
        },
    })
}

/// Kv times as Vault writes them: RFC 3339, and "" for none (0).
pub(crate) fn kv_times(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                match (k.as_str(), x.as_i64()) {
                    ("created_time" | "deletion_time" | "updated_time", Some(0)) => {
                        *x = Value::String(String::new());
                    }
                    ("created_time" | "deletion_time" | "updated_time", Some(t)) => {
                        *x = Value::String(mc_kit::clock::rfc3339(t));
                    }
                    _ => kv_times(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(kv_times),
        _ => {}
    }
}

/// `sys/health`: Vault's body and the status the query chose.
pub(crate) fn health(s: &Status, codes: HealthCodes) -> Reply {
    let status = match (s.initialized, s.sealed) {
        (false, _) => codes.uninit,
        (true, true) => codes.sealed,
        (true, false) => codes.active,
    };
    let now = mc_kit::clock::unix_now();
    Reply::Raw(
        status,
        json!({
            "initialized": s.initialized,
            "sealed": s.sealed,
            "standby": false,
            "performance_standby": false,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": now,
            "version": mc_kit::version::VERSION,
            "cluster_name": "metacrypt",
            "cluster_id": "",
        }),
    )
}

/// `sys/seal-status`: a passphrase slot reports t = n = 1.
pub(crate) fn seal_status(s: &Status) -> Value {
    let (t, n) = match s.threshold {
        0 => (1, 1),
        t => (t, s.shares),
    };
    json!({
        "type": "shamir",
        "initialized": s.initialized,
        "sealed": s.sealed,
        "t": t,
        "n": n,
        "progress": s.progress,
        "nonce": "",
        "version": mc_kit::version::VERSION,
        "build_date": "",
        "migration": false,
        "recovery_seal": false,
        "storage_type": "redb",
    })
}

/// `sys/mounts`: `{"<name>/": {type, description, options}}`.
pub(crate) fn mounts(list: &[Mount]) -> Value {
    let mut out = Map::new();
    for m in list {
        let options = match m.kind.as_str() {
            "kv" => json!({"version": "2"}),
            _ => Value::Null,
        };
        out.insert(
            format!("{}/", m.name),
            json!({
                "type": m.kind,
                "description": m.description,
                "options": options,
                "local": false,
                "seal_wrap": false,
                "config": {"default_lease_ttl": 0, "max_lease_ttl": 0},
            }),
        );
    }
    Value::Object(out)
}

/// `auth/token/lookup-self`: the MCIAS principal in Vault's token shape
/// (the token itself is not echoed).
pub(crate) fn lookup_self(p: &Principal) -> Value {
    let now = mc_kit::clock::unix_now();
    let ttl = (p.expires_at - now).max(0);
    json!({
        "id": "",
        "accessor": p.jti,
        "display_name": p.username,
        "entity_id": p.account_id,
        "meta": {"account_type": p.account_type, "tags": p.tags.join(",")},
        "policies": p.roles,
        "expire_time": p.expires_at,
        "ttl": ttl,
        "type": "service",
        "path": "auth/mcias/login",
        "renewable": false,
        "orphan": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_v4_uuids_and_errors_have_vaults_shape() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, request_id());
        let r = error(&CryptError::NotFound("no key named k".into()));
        assert_eq!(r.status(), 404);
        let r = error(&CryptError::Forbidden("policy".into()));
        assert_eq!(r.status(), 403);
        let r = error(&CryptError::FailedPrecondition("cas".into()));
        assert_eq!(r.status(), 400);
        let r = error(&crate::error::sealed());
        assert_eq!(r.status(), 503);
    }
}
