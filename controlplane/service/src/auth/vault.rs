//! The Vault dialect of the auth layer (Metacrypt's Vault facade): where
//! the token is read, how a refusal looks, and Vault's `LIST` verb.

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::bearer;

/// The token of a Vault-dialect request: `X-Vault-Token`, else the bearer token.
pub fn vault_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-vault-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .or_else(|| bearer(headers))
}

/// A refusal in Vault's shape: 401 and 403 are both 403 "permission denied".
pub(super) fn refusal(status: StatusCode, message: &str) -> Response {
    let (status, message) = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            (StatusCode::FORBIDDEN, "permission denied")
        }
        other => (other, message),
    };
    (
        status,
        axum::Json(serde_json::json!({ "errors": [message] })),
    )
        .into_response()
}

/// Vault's `LIST` verb (hvac sends it) as `GET …?list=true`, before routing:
/// the method map and the routers know only standard methods.
pub async fn vault_list_as_get(mut req: Request, next: Next) -> Response {
    if req.method().as_str() == "LIST" {
        *req.method_mut() = axum::http::Method::GET;
        let uri = req.uri();
        let pq = match uri.query() {
            Some(q) if !q.is_empty() => format!("{}?{q}&list=true", uri.path()),
            _ => format!("{}?list=true", uri.path()),
        };
        let mut parts = uri.clone().into_parts();
        if let Ok(pq) = pq.parse() {
            parts.path_and_query = Some(pq);
        }
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    next.run(req).await
}
