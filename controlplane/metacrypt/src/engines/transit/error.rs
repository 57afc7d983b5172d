//! Transit's one error: a 400 naming the field (Vault's texts where Vault has
//! one), a 404 for a missing key, or an internal fault whose detail is logged
//! and never sent. Batch items carry its text; a single request maps it to
//! the kit's [`ApiError`](mc_kit::api::ApiError).

use mc_kit::api::{ApiError, Invalid};

/// Vault's refusal of a version below `min_decryption_version`.
pub const TOO_OLD: &str = "ciphertext or signature version is disallowed by policy (too old)";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitError {
    /// Bad input or a request the key's policy refuses. 400.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// No such key. 404 on key routes, as in Vault.
    #[error("{0}")]
    NotFound(String),
    /// A fault on our side (randomness, a library refusing its own key).
    #[error("internal error")]
    Internal(String),
}

impl TransitError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn internal(what: impl Into<String>) -> Self {
        Self::Internal(what.into())
    }

    /// Whether a batch counts this as the caller's error (400) or ours (500).
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Internal(_))
    }
}

impl From<TransitError> for ApiError {
    fn from(e: TransitError) -> Self {
        match e {
            TransitError::Invalid { field, message } => Self::Invalid(Invalid::new(field, message)),
            TransitError::NotFound(m) => Self::NotFound(m),
            TransitError::Internal(m) => Self::internal(m),
        }
    }
}

impl From<aws_lc_rs::error::Unspecified> for TransitError {
    fn from(_: aws_lc_rs::error::Unspecified) -> Self {
        Self::internal("aws-lc-rs refused an operation")
    }
}
