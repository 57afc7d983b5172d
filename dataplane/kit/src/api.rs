//! The errors every API of the platform answers with, mapped once to the
//! wire: [`ApiError`] → gRPC status here, → HTTP status + `{"error": …}`
//! JSON here too (the axum response with the `http` feature).
//!
//! [`Invalid`] is the one validation error: it names the field (a dotted
//! config key, or a request field) and says what is wrong. Config loading,
//! admin APIs and hosted services all use it, so a bad value reads the same
//! wherever it came from.

/// A field-level validation failure: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same failure under a parent: `listeners[0]` + `address` →
    /// `listeners[0].address`.
    #[must_use]
    pub fn under(self, parent: &str) -> Self {
        let field = if self.field.is_empty() {
            parent.to_owned()
        } else if parent.is_empty() {
            self.field
        } else {
            format!("{parent}.{}", self.field)
        };
        Self { field, ..self }
    }
}

/// Why a request was refused: one kind per client-visible outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Bad input, naming the field. 400 / `INVALID_ARGUMENT`.
    #[error("{0}")]
    Invalid(#[from] Invalid),
    /// No or bad credentials (never says which part). 401 / `UNAUTHENTICATED`.
    #[error("{0}")]
    Unauthenticated(String),
    /// A credential step is still missing; `fields` tell the client what to
    /// send next (they are added to the JSON body). 401 / `UNAUTHENTICATED`.
    #[error("{message}")]
    Challenge {
        message: String,
        fields: Vec<(&'static str, serde_json::Value)>,
    },
    /// Authenticated, but not allowed. 403 / `PERMISSION_DENIED`.
    #[error("{0}")]
    Forbidden(String),
    /// 404 / `NOT_FOUND`.
    #[error("{0}")]
    NotFound(String),
    /// 409 / `ALREADY_EXISTS`.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is valid but the current state forbids it (an entry the
    /// config file owns, a certificate still in use). 409 / `FAILED_PRECONDITION`.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Too many attempts. 429 / `RESOURCE_EXHAUSTED`.
    #[error("{0}")]
    RateLimited(String),
    /// Not able to answer now (sealed, a dependency down). 503 / `UNAVAILABLE`.
    #[error("{0}")]
    Unavailable(String),
    /// A fault on our side; the detail is logged, never sent. 500 / `INTERNAL`.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(Invalid::new(field, message))
    }

    /// Logs `e` and answers a generic internal error, so storage paths and
    /// library messages never reach a client.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::Internal("internal error".to_owned())
    }

    /// The HTTP status code this error answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Invalid(_) => 400,
            Self::Unauthenticated(_) | Self::Challenge { .. } => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::AlreadyExists(_) | Self::FailedPrecondition(_) => 409,
            Self::RateLimited(_) => 429,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
        }
    }

    /// The JSON body: `{"error": message}` plus a challenge's fields.
    pub fn json_body(&self) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        body.insert("error".to_owned(), self.to_string().into());
        if let Self::Challenge { fields, .. } = self {
            for (k, v) in fields {
                body.insert((*k).to_owned(), v.clone());
            }
        }
        serde_json::Value::Object(body)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::internal(e)
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        let m = e.to_string();
        match e {
            ApiError::Invalid(_) => Self::invalid_argument(m),
            ApiError::Unauthenticated(_) | ApiError::Challenge { .. } => Self::unauthenticated(m),
            ApiError::Forbidden(_) => Self::permission_denied(m),
            ApiError::NotFound(_) => Self::not_found(m),
            ApiError::AlreadyExists(_) => Self::already_exists(m),
            ApiError::FailedPrecondition(_) => Self::failed_precondition(m),
            ApiError::RateLimited(_) => Self::resource_exhausted(m),
            ApiError::Unavailable(_) => Self::unavailable(m),
            ApiError::Internal(_) => Self::internal(m),
        }
    }
}

#[cfg(feature = "http")]
impl axum_core::response::IntoResponse for ApiError {
    fn into_response(self) -> axum_core::response::Response {
        json_error(self.http_status(), &self.json_body())
    }
}

/// A JSON error response with `status` (500 when out of range).
#[cfg(feature = "http")]
pub fn json_error(status: u16, body: &serde_json::Value) -> axum_core::response::Response {
    let status =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = axum_core::response::Response::new(axum_core::body::Body::from(
        serde_json::to_vec(body).unwrap_or_default(),
    ));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mapping_per_kind() {
        let cases = [
            (
                ApiError::invalid("name", "empty"),
                400,
                tonic::Code::InvalidArgument,
            ),
            (
                ApiError::Unauthenticated("x".into()),
                401,
                tonic::Code::Unauthenticated,
            ),
            (
                ApiError::Forbidden("x".into()),
                403,
                tonic::Code::PermissionDenied,
            ),
            (ApiError::NotFound("x".into()), 404, tonic::Code::NotFound),
            (
                ApiError::AlreadyExists("x".into()),
                409,
                tonic::Code::AlreadyExists,
            ),
            (
                ApiError::FailedPrecondition("x".into()),
                409,
                tonic::Code::FailedPrecondition,
            ),
            (
                ApiError::RateLimited("x".into()),
                429,
                tonic::Code::ResourceExhausted,
            ),
            (
                ApiError::Unavailable("sealed".into()),
                503,
                tonic::Code::Unavailable,
            ),
            (
                ApiError::internal("disk on fire"),
                500,
                tonic::Code::Internal,
            ),
        ];
        for (e, http, grpc) in cases {
            assert_eq!(e.http_status(), http, "{e:?}");
            assert_eq!(tonic::Status::from(e).code(), grpc);
        }
    }

    #[test]
    fn bodies_name_the_field_and_hide_internals() {
        assert_eq!(
            ApiError::invalid("backends[1]", "not an address").json_body(),
            serde_json::json!({"error": "backends[1]: not an address"})
        );
        assert_eq!(
            ApiError::internal("/srv/x.redb: EIO").json_body(),
            serde_json::json!({"error": "internal error"})
        );
        let c = ApiError::Challenge {
            message: "totp_required".into(),
            fields: vec![("totp_nonce", "n".into())],
        };
        assert_eq!(
            c.json_body(),
            serde_json::json!({"error": "totp_required", "totp_nonce": "n"})
        );
    }

    #[test]
    fn nested_fields() {
        assert_eq!(
            Invalid::new("address", "bad").under("listeners[0]").field,
            "listeners[0].address"
        );
        assert_eq!(Invalid::new("", "bad").under("dns").field, "dns");
    }
}
