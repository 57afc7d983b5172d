//! MCR's entries in the one auth map.
//!
//! Every `/v2` route is [`Requirement::Delegated`]: the registry speaks
//! Docker token auth, so the layer refuses nothing there and
//! `registry::auth` (the guard every handler passes) answers 401 with a
//! `Bearer` challenge in the registry's error shape. The sweep test
//! (`mcr::every_registry_route_refuses_anonymous_callers`) calls each entry.

use mc_service::auth::{MethodMap, Requirement};

const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// The map.
pub fn map() -> MethodMap {
    let mut m = MethodMap::new()
        .rest("GET", "/v2/", Requirement::Delegated)
        .rest("HEAD", "/v2/", Requirement::Delegated);
    for method in METHODS {
        m = m.rest(method, "/v2/{*path}", Requirement::Delegated);
    }
    m
}
