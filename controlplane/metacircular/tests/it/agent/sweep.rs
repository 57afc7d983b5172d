//! The caller rule: every Agent RPC refuses anyone but `mcp-master` —
//! anonymous (UNAUTHENTICATED), a plain user, a human admin and another
//! node's agent (PERMISSION_DENIED) — and the master gets through.

use super::Node;

#[test]
fn every_agent_rpc_refuses_anyone_but_the_master() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path());
    let rpcs = mc_proto::grpc_methods("mc.deploy.v1");
    let rpcs: Vec<&String> = rpcs
        .iter()
        .filter(|r| r.starts_with("/mc.deploy.v1.Agent/"))
        .collect();
    assert_eq!(rpcs.len(), 13, "{rpcs:?}");
    let call = |path: &str, token: Option<&str>| {
        crate::support::grpc_status(&node.grpc, &node.ca, path, token)
    };
    for rpc in rpcs {
        let code = |s: String| s.split('|').next().unwrap_or("").to_owned();
        assert_eq!(code(call(rpc, None)), "16", "{rpc} anonymous");
        for (who, token) in [
            ("user", &node.user),
            ("admin", &node.admin),
            ("other agent", &node.other_agent),
        ] {
            assert_eq!(code(call(rpc, Some(token))), "7", "{rpc} as {who}");
        }
        let master = code(call(rpc, Some(&node.master)));
        // Success sends grpc-status in trailers (not shown here); a refusal
        // is a trailers-only reply, so 7 or 16 would show.
        assert!(
            !["7", "16"].contains(&master.as_str()),
            "{rpc} as the master: {master}"
        );
    }
    // Health and metrics on the private ops address; the calls counted.
    assert_eq!(
        crate::support::curl(&[&format!("{}/healthz", node.ops)]).0,
        200
    );
    let (code, metrics) = crate::support::curl(&[&format!("{}/metrics", node.ops)]);
    assert_eq!(code, 200);
    assert!(metrics.contains("mc.deploy.v1.Agent"), "{metrics}");
}
