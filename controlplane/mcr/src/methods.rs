//! MCR's entries in the one auth map.
//!
//! Every `/v2` route is [`Requirement::Delegated`]: the registry speaks
//! Docker token auth, so the layer refuses nothing there and
//! `registry::auth` (the guard every handler passes) answers 401 with a
//! `Bearer` challenge in the registry's error shape. The sweep test
//! (`mcr::every_registry_route_refuses_anonymous_callers`) calls each entry.
//!
//! The admin API (`/v1/registry/…`, `mc.registry.v1`): reads of
//! repositories, tags and manifests are [`READ`] (any account whose token, if scoped,
//! carries `mcr`; the core filters by the policy's `pull`); everything else
//! is [`ADMIN`] (the `admin` role, and `mcr:admin` if scoped).

use mc_service::auth::{MethodMap, Requirement};

const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// Reads filtered by policy.
pub const READ: Requirement = Requirement::Scoped {
    scope: "mcr",
    inner: &Requirement::Authenticated,
};

/// Registry administration.
pub const ADMIN: Requirement = Requirement::Scoped {
    scope: "mcr:admin",
    inner: &Requirement::Admin,
};

const REST: &[(&str, &str, Requirement)] = &[
    ("GET", "/v1/registry/repositories", READ),
    ("GET", "/v1/registry/repositories/{repo}", READ),
    ("PATCH", "/v1/registry/repositories/{repo}", ADMIN),
    ("DELETE", "/v1/registry/repositories/{repo}", ADMIN),
    ("GET", "/v1/registry/repositories/{repo}/tags", READ),
    (
        "GET",
        "/v1/registry/repositories/{repo}/manifests/{reference}",
        READ,
    ),
    ("GET", "/v1/registry/namespaces/{ns}", ADMIN),
    ("PUT", "/v1/registry/namespaces/{ns}", ADMIN),
    ("GET", "/v1/registry/quotas/{repo}", ADMIN),
    ("PUT", "/v1/registry/quotas/{repo}", ADMIN),
    ("GET", "/v1/registry/policy", ADMIN),
    ("POST", "/v1/registry/policy", ADMIN),
    ("GET", "/v1/registry/policy/{id}", ADMIN),
    ("PUT", "/v1/registry/policy/{id}", ADMIN),
    ("DELETE", "/v1/registry/policy/{id}", ADMIN),
    ("POST", "/v1/registry/policy/explain", ADMIN),
    ("GET", "/v1/registry/audit", ADMIN),
    // Garbage collection (`crate::gc::api`).
    ("POST", "/v1/registry/gc", ADMIN),
    ("GET", "/v1/registry/gc", ADMIN),
    ("GET", "/v1/registry/gc/{id}", ADMIN),
    ("POST", "/v1/registry/gc/{id}/cancel", ADMIN),
    // Retention (`crate::gc::retention_api`).
    ("GET", "/v1/registry/retention", ADMIN),
    ("POST", "/v1/registry/retention", ADMIN),
    ("POST", "/v1/registry/retention/run", ADMIN),
    ("PUT", "/v1/registry/retention/{id}", ADMIN),
    ("DELETE", "/v1/registry/retention/{id}", ADMIN),
    // Storage (`crate::api::storage`).
    ("GET", "/v1/registry/status", ADMIN),
    ("POST", "/v1/registry/fsck", ADMIN),
];

const GRPC: &[(&str, Requirement)] = &[
    ("Repositories/List", READ),
    ("Repositories/Get", READ),
    ("Repositories/Update", ADMIN),
    ("Repositories/Delete", ADMIN),
    ("Repositories/ListTags", READ),
    ("Repositories/GetManifest", READ),
    ("Namespaces/Get", ADMIN),
    ("Namespaces/Update", ADMIN),
    ("Quotas/Get", ADMIN),
    ("Quotas/Set", ADMIN),
    ("Policy/ListRules", ADMIN),
    ("Policy/GetRule", ADMIN),
    ("Policy/CreateRule", ADMIN),
    ("Policy/UpdateRule", ADMIN),
    ("Policy/DeleteRule", ADMIN),
    ("Policy/Explain", ADMIN),
    ("Audit/Query", ADMIN),
    ("Gc/Start", ADMIN),
    ("Gc/List", ADMIN),
    ("Gc/Get", ADMIN),
    ("Gc/Cancel", ADMIN),
    ("Gc/Watch", ADMIN),
    ("Retention/List", ADMIN),
    ("Retention/Put", ADMIN),
    ("Retention/Delete", ADMIN),
    ("Retention/Run", ADMIN),
    ("Storage/Status", ADMIN),
    ("Storage/Fsck", ADMIN),
];

/// The map.
pub fn map() -> MethodMap {
    let mut m = MethodMap::new()
        .rest("GET", "/v2/", Requirement::Delegated)
        .rest("HEAD", "/v2/", Requirement::Delegated);
    for method in METHODS {
        m = m.rest(method, "/v2/{*path}", Requirement::Delegated);
    }
    for (method, path, req) in REST {
        m = m.rest(method, path, *req);
    }
    // The web UI: its guard resolves the session cookie, refuses non-admins
    // on /ui/registry/admin/… and checks every POST's CSRF token.
    for (method, path) in crate::ui::ROUTES {
        m = m.rest(method, path, Requirement::Public);
    }
    for (rpc, req) in GRPC {
        m = m.grpc(&format!("/mc.registry.v1.{rpc}"), *req);
    }
    m
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_registry_rpc_is_in_the_map_and_nothing_else_is() {
        mc_service::auth::testing::assert_map_covers("mc.registry.v1", &super::map(), 27);
    }
}
