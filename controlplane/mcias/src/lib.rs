//! MCIAS: identity and access, the platform's root of trust.
//!
//! Hosted by the control plane. Every other service delegates
//! authentication here: accounts (human and system, roles, tags), Argon2id
//! passwords with lockout and back-off, Ed25519-signed JWTs with JWKS and
//! revocation, priority-ordered login policy with an explain/dry-run tester,
//! an audit log of every mutation and login decision, SSO (OAuth 2.0
//! code + PKCE, OpenID Connect) for registered clients, and a web UI.
//!
//! [`service::Iam`] holds the operations; [`rest`] and [`grpc`] are thin
//! adapters over it, authorized by one [`methods`] map.

pub mod config;
pub mod error;
pub mod grpc;
pub mod hosted;
pub mod keys;
pub mod methods;
pub mod model;
pub mod oidc;
pub mod passkey;
pub mod password;
pub mod policy;
pub mod rest;
pub mod service;
pub mod sso;
pub mod store;
pub mod totp;
pub mod ui;

pub use config::McAuthConfig;
pub use service::{Bootstrap, Iam, LocalVerifier};
