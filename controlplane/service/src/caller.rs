//! Who is calling, as every handler sees it: the [`Principal`] the auth
//! layer verified (if any) and the source address. One extractor for axum
//! handlers and one constructor for tonic methods, so REST and gRPC twins
//! pass the same value to the service's core.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use mc_kit::api::ApiError;

use crate::auth::{Principal, SourceAddr};

/// The verified caller of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    pub principal: Option<Principal>,
    pub source: Option<IpAddr>,
}

impl Caller {
    fn from_extensions(ext: &axum::http::Extensions) -> Self {
        Self {
            principal: ext.get::<Principal>().cloned(),
            source: ext.get::<SourceAddr>().map(|s| s.0),
        }
    }

    /// The caller of a gRPC method (tonic keeps the HTTP extensions the auth
    /// layer set).
    pub fn from_grpc<T>(request: &tonic::Request<T>) -> Self {
        Self::from_extensions(request.extensions())
    }

    /// The principal, or 401 when the method was reached without one.
    pub fn require(&self) -> Result<&Principal, ApiError> {
        self.principal
            .as_ref()
            .ok_or_else(|| ApiError::Unauthenticated("missing bearer token".to_owned()))
    }

    /// The acting account id for audit rows (empty when anonymous).
    pub fn actor(&self) -> String {
        self.principal
            .as_ref()
            .map(|p| p.account_id.clone())
            .unwrap_or_default()
    }

    /// The source address for audit rows (empty when unknown).
    pub fn ip(&self) -> String {
        self.source.map(|i| i.to_string()).unwrap_or_default()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_extensions(&parts.extensions))
    }
}
