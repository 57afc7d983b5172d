//! The master's one method map, for gRPC and its REST twin: operator RPCs
//! require a human admin (a system account is refused even with the admin
//! role); `RegisterNode` and `Heartbeat` require an `agent-<node>` system
//! account (an admin is refused: a method meant for an agent is not an
//! operator's method). The proto header's caller rules.
//!
//! The relayed data-plane methods (`crate::dataplane`: every RPC of
//! `mc.proxy.v1.ProxyAdmin` and `mc.dns.v1.DnsAdmin`, gRPC and their REST
//! twins) are human admins only, except the record changes in
//! [`NAME_SCOPED`]: [`RECORD_WRITER`] also admits system accounts, which
//! `relay::scope` then limits per request to names under their own label.

use mc_service::auth::{AccountPattern, MethodMap, Requirement};

/// Operator RPCs.
pub const HUMAN_ADMIN: Requirement = Requirement::AllOf(&[Requirement::Human, Requirement::Admin]);
/// RegisterNode and Heartbeat.
pub const AGENT: Requirement = Requirement::System(AccountPattern::NamePrefix("agent-"));

/// Record changes: a human admin, or any system account (limited per
/// request to its own names by `relay::scope`; an admin role does not widen it).
pub const RECORD_WRITER: Requirement = Requirement::AnyOf(&[
    HUMAN_ADMIN,
    Requirement::System(AccountPattern::NamePrefix("")),
]);

/// The relayed methods open to [`RECORD_WRITER`]; each has a name rule in
/// `relay::scope`.
pub(crate) const NAME_SCOPED: [&str; 2] = [
    "/mc.dns.v1.DnsAdmin/UpsertRecord",
    "/mc.dns.v1.DnsAdmin/DeleteRecords",
];

/// The requirement of a relayed method.
pub(crate) fn relayed(method: &str) -> Requirement {
    if NAME_SCOPED.contains(&method) {
        RECORD_WRITER
    } else {
        HUMAN_ADMIN
    }
}

/// Operator RPCs of `mc.deploy.v1.Master`.
pub(crate) const OPERATOR_RPCS: [&str; 15] = [
    "Deploy",
    "Undeploy",
    "GetServiceStatus",
    "ListServices",
    "ListNodes",
    "StopService",
    "StartService",
    "RestartService",
    "ServiceLogs",
    "CreateSnapshot",
    "ListSnapshots",
    "RestoreSnapshot",
    "MigrateService",
    "QueryDataPlaneAudit",
    "Sync",
];
pub(crate) const AGENT_RPCS: [&str; 2] = ["RegisterNode", "Heartbeat"];

/// REST twins: `(method, path, requirement)`.
pub(crate) const REST: [(&str, &str, Requirement); 17] = [
    ("POST", "/v1/mcp/services", HUMAN_ADMIN),
    ("GET", "/v1/mcp/services", HUMAN_ADMIN),
    ("GET", "/v1/mcp/services/{service}", HUMAN_ADMIN),
    ("DELETE", "/v1/mcp/services/{service}", HUMAN_ADMIN),
    ("POST", "/v1/mcp/services/{service}/stop", HUMAN_ADMIN),
    ("POST", "/v1/mcp/services/{service}/start", HUMAN_ADMIN),
    ("POST", "/v1/mcp/services/{service}/restart", HUMAN_ADMIN),
    ("GET", "/v1/mcp/services/{service}/logs", HUMAN_ADMIN),
    ("POST", "/v1/mcp/services/{service}/snapshots", HUMAN_ADMIN),
    ("POST", "/v1/mcp/services/{service}/migrate", HUMAN_ADMIN),
    ("GET", "/v1/mcp/snapshots", HUMAN_ADMIN),
    ("POST", "/v1/mcp/snapshots/{id}/restore", HUMAN_ADMIN),
    ("GET", "/v1/mcp/nodes", HUMAN_ADMIN),
    ("POST", "/v1/mcp/sync", HUMAN_ADMIN),
    ("GET", crate::relay::rest::AUDIT_PATH, HUMAN_ADMIN),
    ("POST", "/v1/mcp/nodes/register", AGENT),
    ("POST", "/v1/mcp/nodes/heartbeat", AGENT),
];

pub fn map() -> MethodMap {
    let m = OPERATOR_RPCS.iter().fold(MethodMap::new(), |m, rpc| {
        m.grpc(&format!("/mc.deploy.v1.Master/{rpc}"), HUMAN_ADMIN)
    });
    let m = AGENT_RPCS.iter().fold(m, |m, rpc| {
        m.grpc(&format!("/mc.deploy.v1.Master/{rpc}"), AGENT)
    });
    let m = REST
        .iter()
        .fold(m, |m, (method, path, req)| m.rest(method, path, *req));
    // The web UI: its guard resolves the session cookie and admits human
    // admins only.
    let m = crate::ui::ROUTES.iter().fold(m, |m, (method, path)| {
        m.rest(method, path, Requirement::Public)
    });
    crate::dataplane::methods().iter().fold(m, |m, rpc| {
        m.grpc(rpc, relayed(rpc))
            .rest("POST", &crate::relay::rest::rest_path(rpc), relayed(rpc))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use mc_service::auth::{Decision, Principal, decide};

    use super::*;

    #[test]
    fn every_master_rpc_is_in_the_map_and_nothing_else_is() {
        let rpcs: Vec<String> = mc_proto::grpc_methods("mc.deploy.v1")
            .into_iter()
            .filter(|r| r.starts_with("/mc.deploy.v1.Master/"))
            .collect();
        assert_eq!(
            rpcs.len(),
            OPERATOR_RPCS.len() + AGENT_RPCS.len(),
            "{rpcs:?}"
        );
        let m = map();
        for rpc in &rpcs {
            assert!(m.get(rpc).is_some(), "{rpc} is missing from the map");
        }
        let relayed = crate::dataplane::methods();
        for (key, _) in m.entries().filter(|(k, _)| k.starts_with('/')) {
            assert!(
                rpcs.iter().chain(relayed).any(|r| r == key),
                "{key} is mapped but no such RPC exists"
            );
        }
        for rpc in relayed {
            let rest = format!("POST {}", crate::relay::rest::rest_path(rpc));
            assert_eq!(m.get(rpc), m.get(&rest), "{rpc} and its REST twin");
            assert!(m.get(rpc).is_some(), "{rpc} is missing from the map");
        }
    }

    #[test]
    fn every_method_open_to_system_accounts_has_a_name_rule() {
        use prost_reflect::DynamicMessage;
        let web = p("web", "system", &[]);
        let m = map();
        for rpc in crate::dataplane::methods() {
            let Some(req) = m.get(rpc) else { continue };
            if decide(req, Some(&web)) != Decision::Allow {
                continue;
            }
            let input = crate::relay::describe::method(rpc)
                .expect("descriptor")
                .input();
            let empty = DynamicMessage::new(input);
            assert!(
                crate::relay::scope::names(rpc, &empty).is_some(),
                "{rpc} admits system accounts but relay::scope has no name rule for it"
            );
        }
        for rpc in NAME_SCOPED {
            assert_eq!(m.get(rpc), Some(RECORD_WRITER), "{rpc}");
        }
    }

    /// A verified caller, for decision tests.
    pub(crate) fn p(name: &str, typ: &str, roles: &[&str]) -> Principal {
        Principal {
            account_id: name.to_owned(),
            username: name.to_owned(),
            account_type: typ.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            tags: Vec::new(),
            jti: "j".to_owned(),
            expires_at: i64::MAX,
            scopes: Vec::new(),
        }
    }

    #[test]
    fn operators_are_human_admins_and_agents_are_agent_accounts() {
        let admin = p("root", "human", &["admin"]);
        let user = p("gina", "human", &["user"]);
        let agent = p("agent-rift", "system", &[]);
        let master = p("mcp-master", "system", &[]);
        let robot_admin = p("ci", "system", &["admin"]);
        let forbidden = |r, who: &Principal| matches!(decide(r, Some(who)), Decision::Forbidden(_));
        assert_eq!(decide(HUMAN_ADMIN, Some(&admin)), Decision::Allow);
        for who in [&user, &agent, &master, &robot_admin] {
            assert!(forbidden(HUMAN_ADMIN, who), "{who:?}");
        }
        assert_eq!(decide(AGENT, Some(&agent)), Decision::Allow);
        for who in [&admin, &user, &master, &robot_admin] {
            assert!(forbidden(AGENT, who), "{who:?}");
        }
        assert!(matches!(decide(AGENT, None), Decision::Unauthenticated(_)));
    }
}
