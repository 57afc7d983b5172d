//! Request bodies, the same way in every service:
//! - [`JsonBody`]: a JSON request body whose rejection is the kit's
//!   [`ApiError`] — 400 `{"error": "body: …"}` naming what was wrong — so
//!   every service words a malformed body the same way and no handler sees
//!   axum's rejection types.
//! - [`drain_refused`]: what a layer does with the body of a request it
//!   refuses before any handler runs (no token, sealed barrier, forged form).

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

/// The most of a refused request's body that is read before answering.
pub const REFUSAL_DRAIN_LIMIT: usize = 64 * 1024;

/// Reads (and drops) at most [`REFUSAL_DRAIN_LIMIT`] bytes of a request that
/// is being refused early: an HTTP/2 client that is still sending then sees
/// the answer and a clean end of stream rather than a reset, and a large
/// body costs the refusal no more than the limit.
pub async fn drain_refused(request: Request) {
    let _ = axum::body::to_bytes(request.into_body(), REFUSAL_DRAIN_LIMIT).await;
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

    /// A body of `chunks` × `size` bytes that counts what was pulled from it.
    fn counted(
        chunks: usize,
        size: usize,
    ) -> (Request, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let pulled = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = pulled.clone();
        let mut left = chunks;
        let stream = std::iter::from_fn(move || {
            (left > 0).then(|| {
                left -= 1;
                seen.fetch_add(size, Ordering::SeqCst);
                Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![0u8; size]))
            })
        });
        let body = Body::from_stream(tokio_stream::iter(stream));
        (Request::new(body), pulled)
    }

    #[tokio::test]
    async fn drains_a_small_body_whole_and_a_large_one_only_to_the_limit() {
        use std::sync::atomic::Ordering;
        let (small, pulled) = counted(3, 1024);
        drain_refused(small).await;
        assert_eq!(pulled.load(Ordering::SeqCst), 3 * 1024);
        let (large, pulled) = counted(100, 16 * 1024);
        drain_refused(large).await;
        let read = pulled.load(Ordering::SeqCst);
        assert!(
            (REFUSAL_DRAIN_LIMIT..=REFUSAL_DRAIN_LIMIT + 16 * 1024).contains(&read),
            "read {read} of 1600 KiB"
        );
    }
}
