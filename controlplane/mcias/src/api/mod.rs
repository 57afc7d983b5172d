//! The adapters over [`crate::core`]: REST ([`rest`]), gRPC ([`grpc`]),
//! the OAuth 2.0 / OIDC endpoints ([`oidc`]) and the proto conversions
//! ([`convert`]). Each handler turns a request into one core call and its
//! result into a response; REST and gRPC twins call the same operation,
//! authorized by the one method map ([`crate::methods`]).

pub mod convert;
pub mod grpc;
pub mod oidc;
pub mod rest;

/// The whole REST surface of MCIAS: the API, OIDC and the web UI.
pub fn router(iam: std::sync::Arc<crate::core::Mcias>) -> axum::Router {
    rest::router(iam.clone())
        .merge(oidc::router(iam.clone()))
        .merge(crate::ui::router(iam))
}
