//! The adapters over [`crate::core`]: REST ([`rest`]), gRPC ([`grpc`]),
//! the OAuth 2.0 / OIDC endpoints ([`oidc`]) and the proto conversions
//! ([`convert`]). Each handler turns a request into one core call and its
//! result into a response; REST and gRPC twins call the same operation,
//! authorized by the one method map ([`crate::methods`]).

pub mod convert;
pub mod grpc;
pub mod oidc;
pub mod rest;

use axum::extract::rejection::JsonRejection;
use axum::{Extension, Json};
use mc_service::auth::{Principal, SourceAddr};

use crate::core::Caller;
use crate::error::IamError;

type Result<T> = std::result::Result<T, IamError>;

/// The verified caller of a REST request (the auth layer's extensions).
pub(crate) fn caller(p: Option<Extension<Principal>>, s: Option<Extension<SourceAddr>>) -> Caller {
    Caller {
        principal: p.map(|Extension(p)| p),
        source: s.map(|Extension(SourceAddr(ip))| ip),
    }
}

/// Body parse errors as `{"error": …}` 400s, naming what was wrong.
pub(crate) fn body<T>(b: std::result::Result<Json<T>, JsonRejection>) -> Result<T> {
    b.map(|Json(v)| v)
        .map_err(|e| IamError::invalid("body", e.body_text()))
}

/// The principal extension, if the route is authenticated.
pub(crate) type P = Option<Extension<Principal>>;
/// The source address extension.
pub(crate) type S = Option<Extension<SourceAddr>>;

/// The whole REST surface of MCIAS: the API, OIDC and the web UI.
pub fn router(iam: std::sync::Arc<crate::core::Mcias>) -> axum::Router {
    rest::router(iam.clone())
        .merge(oidc::router(iam.clone()))
        .merge(crate::ui::router(iam))
}
