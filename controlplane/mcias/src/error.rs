//! MCIAS errors: one kind per client-visible outcome. The wire mapping is
//! the kit's ([`mc_kit::api::ApiError`]: one HTTP status + `{"error": …}`
//! body, one gRPC code), so MCIAS answers exactly like every other service;
//! MCIAS adds only its two login challenges, carried as
//! [`ApiError::Challenge`] with the fields a client sends next.

use axum::http::StatusCode;
use mc_kit::api::{ApiError, Invalid};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    /// Bad input: names the field (the kit's one validation error).
    /// 400 / INVALID_ARGUMENT.
    #[error("{0}")]
    Invalid(#[from] Invalid),
    /// Bad credentials (never says which part). 401 / UNAUTHENTICATED.
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated but not allowed (policy, role, locked). 403 / PERMISSION_DENIED.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// Already exists. 409 / ALREADY_EXISTS.
    #[error("{0}")]
    Conflict(String),
    /// Password right, second factor missing: 401 with a single-use nonce
    /// that stands in for the password in the second step (gRPC: a
    /// `TotpChallenge` reply).
    #[error("totp_required: send totp_code with this totp_nonce")]
    TotpRequired { nonce: String, expires_at: i64 },
    /// Password right, but the account has passkeys (and no TOTP): the
    /// password alone is not enough; log in with a passkey. 401.
    #[error("passkey_required: this account logs in with its passkey (/v1/auth/passkey/begin)")]
    PasskeyRequired,
    /// Too many attempts. 429 / RESOURCE_EXHAUSTED.
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    Internal(String),
}

impl IamError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(Invalid::new(field, message))
    }
    /// Logs `e`; the client sees only "internal error".
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::Internal("internal error".to_owned())
    }
    /// The HTTP status this error answers with (for the UI's pages).
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(ApiError::from(self.clone()).http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<IamError> for ApiError {
    fn from(e: IamError) -> Self {
        let message = e.to_string();
        match e {
            IamError::Invalid(i) => Self::Invalid(i),
            IamError::Unauthenticated(m) => Self::Unauthenticated(m),
            IamError::Forbidden(m) => Self::Forbidden(m),
            IamError::NotFound(m) => Self::NotFound(m),
            IamError::Conflict(m) => Self::AlreadyExists(m),
            IamError::TotpRequired { nonce, expires_at } => Self::Challenge {
                message,
                fields: vec![
                    ("totp_required", true.into()),
                    ("totp_nonce", nonce.into()),
                    ("expires_at", expires_at.into()),
                ],
            },
            IamError::PasskeyRequired => Self::Challenge {
                message,
                fields: vec![("passkey_required", true.into())],
            },
            IamError::RateLimited(m) => Self::RateLimited(m),
            IamError::Internal(m) => Self::Internal(m),
        }
    }
}

/// The serving layer's errors (a missing principal, a malformed body) as
/// MCIAS outcomes, so core operations can `?` them.
impl From<ApiError> for IamError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Invalid(i) => Self::Invalid(i),
            ApiError::Unauthenticated(m) | ApiError::Challenge { message: m, .. } => {
                Self::Unauthenticated(m)
            }
            ApiError::Forbidden(m) => Self::Forbidden(m),
            ApiError::NotFound(m) => Self::NotFound(m),
            ApiError::AlreadyExists(m) => Self::Conflict(m),
            ApiError::RateLimited(m) => Self::RateLimited(m),
            // FailedPrecondition, Unavailable, Internal and any later kind.
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<IamError> for tonic::Status {
    fn from(e: IamError) -> Self {
        ApiError::from(e).into()
    }
}

impl axum::response::IntoResponse for IamError {
    fn into_response(self) -> axum::response::Response {
        ApiError::from(self).into_response()
    }
}

impl From<mc_kit::store::StoreError> for IamError {
    fn from(e: mc_kit::store::StoreError) -> Self {
        Self::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_keep_their_fields_and_codes() {
        let e = IamError::TotpRequired {
            nonce: "n".into(),
            expires_at: 7,
        };
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            ApiError::from(e.clone()).json_body(),
            serde_json::json!({"error": e.to_string(), "totp_required": true, "totp_nonce": "n", "expires_at": 7})
        );
        assert_eq!(tonic::Status::from(e).code(), tonic::Code::Unauthenticated);
        assert_eq!(
            ApiError::from(IamError::PasskeyRequired).json_body()["passkey_required"],
            true
        );
        let i = IamError::invalid("username", "empty");
        assert_eq!(i.to_string(), "username: empty");
        assert_eq!(i.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            IamError::Conflict("x".into()).status(),
            StatusCode::CONFLICT
        );
        assert_eq!(
            tonic::Status::from(IamError::Conflict("x".into())).code(),
            tonic::Code::AlreadyExists
        );
    }
}
