//! The agent's one method map: every `mc.deploy.v1.Agent` RPC requires the
//! `mcp-master` system account (the proto header's caller rule); a human
//! admin, a plain user or another node's `agent-*` account is refused.
//! Health is public. Anything unmapped is denied by the auth layer.

use mc_service::auth::{AccountPattern, MethodMap, Requirement};

/// The only caller of agent RPCs.
pub(crate) const MASTER: Requirement = Requirement::System(AccountPattern::Name("mcp-master"));

pub(crate) const RPCS: [&str; 13] = [
    "ApplyService",
    "RemoveService",
    "GetServiceStatus",
    "ListServices",
    "StopService",
    "StartService",
    "RestartService",
    "ServiceLogs",
    "Reconcile",
    "HealthCheck",
    "ExportServiceData",
    "ImportServiceData",
    "RelayDataPlane",
];

pub(crate) fn map() -> MethodMap {
    RPCS.iter()
        .fold(MethodMap::new(), |m, rpc| {
            m.grpc(&format!("/mc.deploy.v1.Agent/{rpc}"), MASTER)
        })
        .with_grpc_health()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_agent_rpc_is_in_the_map_and_nothing_else_is() {
        let rpcs: Vec<String> = mc_proto::grpc_methods("mc.deploy.v1")
            .into_iter()
            .filter(|r| r.starts_with("/mc.deploy.v1.Agent/"))
            .collect();
        assert_eq!(rpcs.len(), RPCS.len(), "{rpcs:?}");
        let m = map();
        for rpc in &rpcs {
            assert_eq!(m.get(rpc), Some(MASTER), "{rpc}");
        }
        for (key, _) in m.entries().filter(|(k, _)| k.starts_with("/mc.deploy")) {
            assert!(
                rpcs.iter().any(|r| r == key),
                "{key} is mapped but no such RPC exists"
            );
        }
    }

    #[test]
    fn only_the_master_account_passes() {
        use mc_service::auth::{Decision, Principal, decide};
        let p = |name: &str, typ: &str, roles: &[&str]| Principal {
            account_id: name.to_owned(),
            username: name.to_owned(),
            account_type: typ.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            tags: Vec::new(),
            jti: "j".to_owned(),
            expires_at: i64::MAX,
            scopes: Vec::new(),
        };
        assert_eq!(
            decide(MASTER, Some(&p("mcp-master", "system", &[]))),
            Decision::Allow
        );
        for refused in [
            p("admin", "human", &["admin"]),
            p("mcp-master", "human", &["admin"]),
            p("agent-rift", "system", &[]),
            p("ci", "system", &["admin"]),
        ] {
            assert!(
                matches!(decide(MASTER, Some(&refused)), Decision::Forbidden(_)),
                "{refused:?}"
            );
        }
        assert!(matches!(decide(MASTER, None), Decision::Unauthenticated(_)));
    }
}
