//! MCR's entries in the one auth map.
//!
//! Every `/v2` route is [`Requirement::Delegated`]: the registry speaks
//! Docker token auth, so the layer refuses nothing there and
//! `registry::auth` (the guard every handler passes) answers 401 with a
//! `Bearer` challenge in the registry's error shape. The sweep test
//! (`mcr::every_registry_route_refuses_anonymous_callers`) calls each entry.

use mc_service::auth::{MethodMap, Requirement};

/// Admin entries: an admin account, and a scoped token must carry `mcr:admin`.
const ADMIN: Requirement = Requirement::Scoped {
    scope: "mcr:admin",
    inner: &Requirement::Admin,
};

const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// The map.
pub fn map() -> MethodMap {
    let mut m = MethodMap::new()
        .rest("GET", "/v2/", Requirement::Delegated)
        .rest("HEAD", "/v2/", Requirement::Delegated);
    for method in METHODS {
        m = m.rest(method, "/v2/{*path}", Requirement::Delegated);
    }
    // Garbage collection (`crate::gc::api`).
    m.rest("POST", "/v1/registry/gc", ADMIN)
        .rest("GET", "/v1/registry/gc", ADMIN)
        .rest("GET", "/v1/registry/gc/{id}", ADMIN)
        .grpc("/mc.registry.v1.Gc/Start", ADMIN)
        .grpc("/mc.registry.v1.Gc/List", ADMIN)
        .grpc("/mc.registry.v1.Gc/Get", ADMIN)
        // Retention (`crate::gc::retention_api`).
        .rest("GET", "/v1/registry/retention", ADMIN)
        .rest("POST", "/v1/registry/retention", ADMIN)
        .rest("POST", "/v1/registry/retention/run", ADMIN)
        .rest("PUT", "/v1/registry/retention/{id}", ADMIN)
        .rest("DELETE", "/v1/registry/retention/{id}", ADMIN)
        .grpc("/mc.registry.v1.Retention/List", ADMIN)
        .grpc("/mc.registry.v1.Retention/Put", ADMIN)
        .grpc("/mc.registry.v1.Retention/Delete", ADMIN)
        .grpc("/mc.registry.v1.Retention/Run", ADMIN)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_registry_rpc_is_in_the_map_and_nothing_else_is() {
        mc_service::auth::testing::assert_map_covers("mc.registry.v1", &super::map(), 7);
    }
}
