//! The one method → requirement map of Metacrypt, for REST and gRPC alike.
//! A route or RPC missing here is denied to everyone (see `mc_service::auth`).
//! `sys` methods are Admin (not policy-governed); status is Public; engine
//! methods are [`ENGINE`]: authenticated, with a token scoped to `crypt` if
//! scoped at all, then governed by policy in `Core::run`.

use mc_service::auth::{MethodMap, Requirement, Requirement::*};

/// Engine methods: any valid token whose scopes (if any) include `crypt`.
pub const ENGINE: Requirement = Requirement::Scoped {
    scope: "crypt",
    inner: &Requirement::Authenticated,
};

/// The kv engine's REST routes (all [`ENGINE`]).
pub const KV_ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/crypt/{mount}/data/{*path}"),
    ("POST", "/v1/crypt/{mount}/data/{*path}"),
    ("PUT", "/v1/crypt/{mount}/data/{*path}"),
    ("PATCH", "/v1/crypt/{mount}/data/{*path}"),
    ("DELETE", "/v1/crypt/{mount}/data/{*path}"),
    ("POST", "/v1/crypt/{mount}/delete/{*path}"),
    ("PUT", "/v1/crypt/{mount}/delete/{*path}"),
    ("POST", "/v1/crypt/{mount}/undelete/{*path}"),
    ("PUT", "/v1/crypt/{mount}/undelete/{*path}"),
    ("POST", "/v1/crypt/{mount}/destroy/{*path}"),
    ("PUT", "/v1/crypt/{mount}/destroy/{*path}"),
    ("GET", "/v1/crypt/{mount}/metadata/{*path}"),
    ("POST", "/v1/crypt/{mount}/metadata/{*path}"),
    ("PUT", "/v1/crypt/{mount}/metadata/{*path}"),
    ("DELETE", "/v1/crypt/{mount}/metadata/{*path}"),
    ("GET", "/v1/crypt/{mount}/metadata"),
    ("GET", "/v1/crypt/{mount}/metadata/"),
    ("GET", "/v1/crypt/{mount}/config"),
    ("POST", "/v1/crypt/{mount}/config"),
    ("PUT", "/v1/crypt/{mount}/config"),
];

const KV_RPCS: &[&str] = &[
    "Read",
    "Write",
    "Patch",
    "DeleteLatest",
    "DeleteVersions",
    "Undelete",
    "Destroy",
    "ReadMetadata",
    "WriteMetadata",
    "DeleteMetadata",
    "List",
    "ReadConfig",
    "WriteConfig",
];

const TRANSIT_RPCS: &[&str] = &[
    "ListKeys",
    "CreateKey",
    "GetKey",
    "UpdateKeyConfig",
    "RotateKey",
    "TrimKey",
    "DeleteKey",
    "ExportKey",
    "Encrypt",
    "Decrypt",
    "Rewrap",
    "GenerateDataKey",
    "Sign",
    "Verify",
    "Hmac",
    "RandomBytes",
    "Hash",
];

const USER_RPCS: &[&str] = &[
    "GetOwnKey",
    "CreateOwnKey",
    "RotateOwnKey",
    "GetPublicKey",
    "Encrypt",
    "Decrypt",
];
const PKI_RPCS: &[&str] = &[
    "GenerateRoot",
    "ImportRoot",
    "ListIssuers",
    "GetIssuer",
    "CreateIssuer",
    "RotateIssuer",
    "ListRoles",
    "GetRole",
    "PutRole",
    "DeleteRole",
    "Issue",
    "SignCsr",
    "ListCerts",
    "GetCert",
    "Renew",
    "Revoke",
    "RotateCrl",
    "Tidy",
    "AcmeEab",
];

const SSH_RPCS: &[&str] = &[
    "CreateCa",
    "GetCa",
    "ListProfiles",
    "GetProfile",
    "PutProfile",
    "DeleteProfile",
    "Sign",
    "ListIssued",
    "GetIssued",
    "Revoke",
    "Tidy",
];

const ADMIN_RPCS: &[&str] = &[
    "Mounts/List",
    "Mounts/Get",
    "Mounts/Create",
    "Mounts/Update",
    "Mounts/Delete",
    "Mounts/RotateDek",
    "Policy/List",
    "Policy/Get",
    "Policy/Create",
    "Policy/Update",
    "Policy/Delete",
    "Policy/Explain",
];

pub fn map() -> MethodMap {
    let mut map = base();
    for (method, path) in crate::api::rest_engines::ROUTES {
        map = map.rest(method, path, Admin);
    }
    for (method, path) in KV_ROUTES {
        map = map.rest(method, path, ENGINE);
    }
    for (method, path) in crate::api::rest_transit::ROUTES {
        map = map.rest(method, path, ENGINE);
    }
    for (method, path) in crate::api::rest_user::ROUTES {
        map = map.rest(method, path, ENGINE);
    }
    for (method, path) in crate::api::rest_pki::ROUTES {
        map = map.rest(method, path, ENGINE);
    }
    for (method, path) in crate::api::rest_ssh::ROUTES {
        map = map.rest(method, path, ENGINE);
    }
    // Public data (CA certificates, chains, CRLs, the SSH CA key and KRL):
    // explicitly anonymous.
    for (method, path) in crate::api::rest_pki::PUBLIC_ROUTES {
        map = map.rest(method, path, Public);
    }
    for (method, path) in crate::api::rest_ssh::PUBLIC_ROUTES {
        map = map.rest(method, path, Public);
    }
    // ACME: the JWS of each request is its authentication (core::acme).
    for (method, path) in crate::api::rest_acme::ROUTES {
        map = map.rest(method, path, Public);
    }
    // The web UI: the session is a cookie, not a bearer token, so the map
    // lets every UI route through and `ui::guard` resolves the cookie,
    // refuses non-admins on /ui/crypt/admin/… and checks every POST's CSRF.
    for (method, path) in crate::ui::ROUTES {
        map = map.rest(method, path, Public);
    }
    map = crate::api::vault::methods(map);
    for rpc in ADMIN_RPCS {
        map = map.grpc(&format!("/mc.crypt.v1.{rpc}"), Admin);
    }
    for rpc in KV_RPCS {
        map = map.grpc(&format!("/mc.crypt.v1.Kv/{rpc}"), ENGINE);
    }
    for rpc in TRANSIT_RPCS {
        map = map.grpc(&format!("/mc.crypt.v1.Transit/{rpc}"), ENGINE);
    }
    for rpc in USER_RPCS {
        map = map.grpc(&format!("/mc.crypt.v1.UserCrypto/{rpc}"), ENGINE);
    }
    for rpc in PKI_RPCS {
        map = map.grpc(&format!("/mc.crypt.v1.Pki/{rpc}"), ENGINE);
    }
    for rpc in SSH_RPCS {
        map = map.grpc(&format!("/mc.crypt.v1.SshCa/{rpc}"), ENGINE);
    }
    map
}

fn base() -> MethodMap {
    MethodMap::new()
        // REST: the barrier.
        .rest("GET", "/v1/crypt/sys/status", Public)
        .rest("POST", "/v1/crypt/sys/init", Admin)
        .rest("POST", "/v1/crypt/sys/unseal", Admin)
        .rest("POST", "/v1/crypt/sys/seal", Admin)
        .rest("POST", "/v1/crypt/sys/barrier/rotate-mek", Admin)
        .rest("GET", "/v1/crypt/sys/barrier/slots", Admin)
        .rest("POST", "/v1/crypt/sys/barrier/slots", Admin)
        .rest("GET", "/v1/crypt/sys/jobs", Admin)
        .rest("GET", "/v1/crypt/sys/audit", Admin)
        .rest("POST", "/v1/crypt/sys/barrier/passphrase", Admin)
        .rest("POST", "/v1/crypt/sys/barrier/shamir", Admin)
        .rest("POST", "/v1/crypt/sys/barrier/rekey", Admin)
        .rest("DELETE", "/v1/crypt/sys/barrier/slots/{id}", Admin)
        // gRPC mc.crypt.v1 (same meanings as above).
        .grpc("/mc.crypt.v1.Barrier/Status", Public)
        .grpc("/mc.crypt.v1.Barrier/Init", Admin)
        .grpc("/mc.crypt.v1.Barrier/Unseal", Admin)
        .grpc("/mc.crypt.v1.Barrier/Seal", Admin)
        .grpc("/mc.crypt.v1.Barrier/RotateMek", Admin)
        .grpc("/mc.crypt.v1.Barrier/ListSlots", Admin)
        .grpc("/mc.crypt.v1.Barrier/AddSlot", Admin)
        .grpc("/mc.crypt.v1.Barrier/ListJobs", Admin)
        .grpc("/mc.crypt.v1.Audit/Query", Admin)
        .grpc("/mc.crypt.v1.Barrier/ChangePassphrase", Admin)
        .grpc("/mc.crypt.v1.Barrier/Reshare", Admin)
        .grpc("/mc.crypt.v1.Barrier/RemoveSlot", Admin)
        .grpc("/mc.crypt.v1.Barrier/Rekey", Admin)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forgetting an RPC in the map fails here (and the RPC is denied to everyone).
    #[test]
    fn every_crypt_rpc_is_in_the_map_and_nothing_else_is() {
        mc_service::auth::testing::assert_map_covers("mc.crypt.v1", &map(), 5);
    }

    /// Every REST route the router serves is in the map (and only those).
    #[test]
    fn every_rest_route_is_mapped() {
        let map = map();
        let rest: Vec<_> = map
            .entries()
            .filter(|(k, _)| !k.starts_with('/') && !map.is_vault(k))
            .collect();
        assert_eq!(
            rest.len(),
            13 + crate::api::rest_engines::ROUTES.len()
                + KV_ROUTES.len()
                + crate::api::rest_transit::ROUTES.len()
                + crate::api::rest_user::ROUTES.len()
                + crate::ui::ROUTES.len()
                + crate::api::rest_pki::ROUTES.len()
                + crate::api::rest_pki::PUBLIC_ROUTES.len()
                + crate::api::rest_ssh::ROUTES.len()
                + crate::api::rest_ssh::PUBLIC_ROUTES.len()
                + crate::api::rest_acme::ROUTES.len()
        );
        let vault = map.entries().filter(|(k, _)| map.is_vault(k)).count();
        assert_eq!(vault, crate::api::vault::route_count());
        for (key, _) in rest {
            assert!(
                key.contains(" /v1/crypt/")
                    || key.contains(" /ui/crypt/")
                    || key.contains(" /v1/pki/")
                    || key.contains(" /v1/ssh/")
                    || key.contains(" /v1/acme/"),
                "{key} lives under /v1/crypt/, /ui/crypt/, /v1/pki/, /v1/ssh/ or /v1/acme/"
            );
        }
    }
}
