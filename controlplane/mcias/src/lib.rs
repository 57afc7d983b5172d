//! MCIAS: identity and access, the platform's root of trust.
//!
//! Hosted by the control plane. Every other service delegates
//! authentication here: accounts (human and system, roles, tags), Argon2id
//! passwords with lockout and back-off, Ed25519-signed JWTs with JWKS and
//! revocation, priority-ordered login policy with an explain/dry-run tester,
//! an audit log of every mutation and login decision, SSO (OAuth 2.0
//! code + PKCE, OpenID Connect) for registered clients, and a web UI.
//!
//! Split by capability, not transport: [`core`] holds the operations (and
//! imports neither of the others), [`api`] the REST, gRPC and OIDC adapters
//! over it, [`ui`] the web UI; all are authorized by one [`methods`] map.

pub mod api;
pub mod config;
pub mod core;
pub mod error;
pub mod hosted;
pub mod keys;
pub mod methods;
pub mod model;
pub mod password;
pub mod policy;
pub mod store;
pub mod totp;
pub mod ui;

pub use config::McAuthConfig;
pub use core::{Bootstrap, LocalVerifier, Mcias};

/// The core state's name before the split by capability.
pub type Iam = Mcias;
