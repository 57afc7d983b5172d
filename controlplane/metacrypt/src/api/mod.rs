//! The adapters over [`crate::core`]: REST ([`rest`], `/v1/crypt/…`) and
//! gRPC ([`grpc`], `mc.crypt.v1`). Each handler turns a request into one
//! core call; REST and gRPC twins call the same operation, authorized by
//! the one method map ([`crate::methods`]). [`vault`] is the Vault-shaped
//! facade over the same core calls.

pub mod grpc;
mod grpc_audit;
mod grpc_engines;
mod grpc_pki;
mod grpc_ssh;
mod grpc_transit;
mod grpc_user;
pub mod rest;
pub mod rest_acme;
pub mod rest_engines;
mod rest_ocsp;
pub mod rest_pki;
pub mod rest_ssh;
pub mod rest_transit;
pub mod rest_user;
pub mod vault;

/// The whole REST surface of Metacrypt.
pub fn router(crypt: std::sync::Arc<crate::core::Metacrypt>) -> axum::Router {
    rest::router(crypt.clone())
        .merge(rest_engines::router(crypt.clone()))
        .merge(rest_transit::router(crypt.clone()))
        .merge(rest_user::router(crypt.clone()))
        .merge(rest_pki::router(crypt.clone()))
        .merge(rest_ocsp::router(crypt.clone()))
        .merge(rest_ssh::router(crypt.clone()))
        .merge(rest_acme::router(crypt.clone()))
        .merge(vault::router(crypt))
}
