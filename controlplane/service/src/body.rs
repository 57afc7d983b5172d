//! [`JsonBody`]: a JSON request body whose rejection is the kit's
//! [`ApiError`] — 400 `{"error": "body: …"}` naming what was wrong — so
//! every service words a malformed body the same way and no handler sees
//! axum's rejection types.

use axum::Json;
use axum::extract::{FromRequest, Request};
use mc_kit::api::ApiError;
use serde::de::DeserializeOwned;

/// The request body, parsed as JSON into `T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::invalid("body", rejection.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::header::CONTENT_TYPE;

    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq, Eq)]
    struct Named {
        name: String,
    }

    async fn parse(content_type: &str, body: &'static str) -> Result<Named, ApiError> {
        let request = Request::builder()
            .header(CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        JsonBody::<Named>::from_request(request, &())
            .await
            .map(|b| b.0)
    }

    #[tokio::test]
    async fn a_bad_body_is_a_400_naming_the_body() {
        let ok = parse("application/json", r#"{"name":"a"}"#).await;
        assert_eq!(ok, Ok(Named { name: "a".into() }));
        for (content_type, body) in [
            ("application/json", r#"{"nom":"a"}"#),
            ("application/json", "{"),
            ("text/plain", r#"{"name":"a"}"#),
        ] {
            let err = parse(content_type, body).await.expect_err(body);
            assert_eq!(err.http_status(), 400, "{body}");
            assert!(err.to_string().starts_with("body: "), "{err}");
        }
    }
}
