//! MCIAS errors: one kind per client-visible outcome, mapped once to HTTP and gRPC.

use axum::http::StatusCode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    /// Bad input: names the field. 400 / INVALID_ARGUMENT.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
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
        Self::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::Internal("internal error".to_owned())
    }
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthenticated(_) | Self::TotpRequired { .. } | Self::PasskeyRequired => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<IamError> for tonic::Status {
    fn from(e: IamError) -> Self {
        let m = e.to_string();
        match e {
            IamError::Invalid { .. } => Self::invalid_argument(m),
            IamError::Unauthenticated(_)
            | IamError::TotpRequired { .. }
            | IamError::PasskeyRequired => Self::unauthenticated(m),
            IamError::Forbidden(_) => Self::permission_denied(m),
            IamError::NotFound(_) => Self::not_found(m),
            IamError::Conflict(_) => Self::already_exists(m),
            IamError::RateLimited(_) => Self::resource_exhausted(m),
            IamError::Internal(_) => Self::internal(m),
        }
    }
}

impl axum::response::IntoResponse for IamError {
    fn into_response(self) -> axum::response::Response {
        if let Self::TotpRequired { nonce, expires_at } = &self {
            let body = serde_json::json!({
                "error": self.to_string(), "totp_required": true,
                "totp_nonce": nonce, "expires_at": expires_at,
            });
            return (self.status(), axum::Json(body)).into_response();
        }
        if let Self::PasskeyRequired = &self {
            let body = serde_json::json!({"error": self.to_string(), "passkey_required": true});
            return (self.status(), axum::Json(body)).into_response();
        }
        mc_shell::serve::error_response(self.status(), self.to_string())
    }
}

impl From<mc_kit::store::StoreError> for IamError {
    fn from(e: mc_kit::store::StoreError) -> Self {
        Self::internal(e)
    }
}
