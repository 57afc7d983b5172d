//! Request bodies, the same way in every service:
//! - [`JsonBody`]: a JSON request body whose rejection is the kit's
//!   [`ApiError`] — 400 `{"error": "body: …"}` naming what was wrong — so
//!   every service words a malformed body the same way and no handler sees
//!   axum's rejection types.
//! - [`drain_refused`]: what a layer does with the body of a request it
//!   refuses before any handler runs (no token, sealed barrier, forged form).
//! - [`read_small_bodies`]: the REST surface's outermost layer, so that no
//!   answer (a refusal, a route that takes no body) goes out while a small
//!   body is still arriving.

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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

/// The largest declared body [`read_small_bodies`] reads before routing.
pub const EARLY_READ_LIMIT: usize = 64 * 1024;

/// Reads a body whose `Content-Length` is at most [`EARLY_READ_LIMIT`] in
/// full before the request is routed, and hands the handler the bytes.
///
/// Why: a handler that answers without reading its body (a policy refusal,
/// a route that takes none) leaves the client still sending; HTTP/2 then
/// ends the stream with `RST_STREAM`, which RFC 9113 §8.1 allows but curl
/// reports as error 92 instead of the answer. Every JSON handler reads its
/// whole body anyway, so this costs no extra copy. Larger bodies and bodies
/// of unknown length (blob uploads, gRPC) stream to their handler as before.
pub async fn read_small_bodies(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if !declared.is_some_and(|n| (1..=EARLY_READ_LIMIT).contains(&n)) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, EARLY_READ_LIMIT).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        // The peer sent more than it declared, or went away mid-body.
        Err(e) => ApiError::invalid("body", e.to_string()).into_response(),
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

    #[tokio::test]
    async fn a_small_declared_body_is_read_before_a_handler_that_ignores_it() {
        use std::sync::atomic::Ordering;
        use tower::ServiceExt;
        let router = axum::Router::new()
            .route("/", axum::routing::post(|| async { "ignored the body" }))
            .layer(axum::middleware::from_fn(read_small_bodies));
        let send = |chunks: usize, size: usize, declared: Option<usize>| {
            let router = router.clone();
            async move {
                let (mut request, pulled) = counted(chunks, size);
                *request.method_mut() = axum::http::Method::POST;
                if let Some(n) = declared {
                    request.headers_mut().insert(CONTENT_LENGTH, n.into());
                }
                let response = router.oneshot(request).await.expect("infallible");
                (response.status().as_u16(), pulled.load(Ordering::SeqCst))
            }
        };
        // Small and declared: read whole before the handler answers.
        assert_eq!(send(4, 1024, Some(4096)).await, (200, 4096));
        // Undeclared or large: left to the handler (which ignores it).
        assert_eq!(send(4, 1024, None).await, (200, 0));
        assert_eq!(send(8, 16 * 1024, Some(128 * 1024)).await, (200, 0));
        // More than declared (and more than the limit): a 400 naming the body.
        assert_eq!(send(8, 16 * 1024, Some(1024)).await.0, 400);
    }
}
