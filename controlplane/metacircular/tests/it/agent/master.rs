//! The MCP master end to end: the agent registers and heartbeats with its
//! own `agent-test` token; `mcctl deploy web.toml` (a human admin) places
//! the service on that node, the master calls the agent with its
//! `mcp-master` token, and curl through the node's MC-Proxy gets the
//! answer; `mcctl ps/status/logs/nodes`, a redeploy of a new image,
//! stop/start, undeploy; and the refusals: a `latest` image, an unknown
//! pinned node, malformed TOML, the wrong kind of caller for every Master
//! RPC, a node not on the allowlist.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{HOST, Node};

pub(super) fn mcctl(endpoints: &Path, token: &str, args: &[&str]) -> Output {
    Command::new(crate::support::mcctl())
        .arg("--endpoints")
        .arg(endpoints)
        .args(args)
        .env("MC_TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .expect("mcctl")
}

pub(super) fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `mcctl --json ARGS` as `token`, which must succeed.
pub(super) fn json(endpoints: &Path, token: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = mcctl(endpoints, token, &all);
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out)))
}

/// `mcctl ARGS` as `token`, which must fail saying each of `needles`.
pub(super) fn refused(endpoints: &Path, token: &str, args: &[&str], needles: &[&str]) {
    let out = mcctl(endpoints, token, args);
    let t = text(&out);
    assert!(!out.status.success(), "{args:?} must fail: {t}");
    for n in needles {
        assert!(t.contains(n), "{args:?}: `{n}` not in {t}");
    }
}

pub(super) fn web_toml(dir: &Path, file: &str, image: &str, extra: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(
        &path,
        format!(
            "name = \"web\"\n{extra}\n[[components]]\nname = \"app\"\nimage = \"{image}\"\n\
             command = [\"/bin/busybox\", \"sh\", \"-c\", \"echo {image} starting; exec /bin/busybox httpd -f -p $PORT -h /www\"]\n\
             volumes = [\"data:/data\"]\nhealth = {{ http = \"/\", timeout = 10 }}\n\
             [[components.routes]]\nname = \"http\"\nmode = \"l7\"\nhostname = \"{HOST}\"\n"
        ),
    )
    .expect("web.toml");
    path
}

/// Waits (bounded) until `mcctl nodes` shows the node healthy with
/// `containers`, after a heartbeat (registration alone carries no load).
pub(super) fn wait_node(endpoints: &Path, admin: &str, containers: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let nodes = json(endpoints, admin, &["nodes"]);
        let n = &nodes[0];
        let beat = n["memory_total_bytes"].as_u64() > Some(0);
        if n["name"] == "test" && n["health"] == "healthy" && n["containers"] == containers && beat
        {
            return n.clone();
        }
        assert!(Instant::now() < deadline, "node never became so: {nodes}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn mcctl_deploys_through_the_master_and_the_nodes_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path());
    let cp = &node._cp;
    let endpoints = dir.path().join("endpoints.json");
    cp.write_endpoints(&endpoints);
    let e = endpoints.as_path();
    let admin = node.admin.as_str();

    // The agent registered itself (name from its token) and heartbeats.
    let n = wait_node(e, admin, 0);
    assert_eq!(n["role"], "worker", "{n}");
    assert!(n["disk_free_bytes"].as_u64() > Some(0), "{n}");
    assert!(
        n["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{n}"
    );

    // Deploy: placed on the only node, served through its MC-Proxy.
    let v1 = node.image(1);
    let v2 = node.image(2);
    let web1 = web_toml(dir.path(), "web1.toml", &v1, "");
    let d = json(e, admin, &["deploy", &web1.display().to_string()]);
    assert_eq!(d["success"], true, "{d}");
    assert_eq!(d["node"], "test", "{d}");
    let steps: Vec<&str> = d["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert!(
        steps.starts_with(&["place"]) && steps.contains(&"app/health"),
        "{d}"
    );
    node.wait_serving("web v1\n");

    let ps = json(e, admin, &["ps"]);
    assert_eq!(ps[0]["service"], "web", "{ps}");
    assert_eq!(ps[0]["node"], "test", "{ps}");
    assert_eq!(ps[0]["components"][0]["state"], "running", "{ps}");
    assert_eq!(ps[0]["components"][0]["healthy"], true, "{ps}");
    let st = json(e, admin, &["status", "web"]);
    assert_eq!(st["components"][0]["image"], v1.as_str(), "{st}");
    assert!(st["drift"].as_array().is_some_and(Vec::is_empty), "{st}");
    let table = mcctl(e, admin, &["ps"]);
    assert!(
        text(&table).contains("web") && text(&table).contains("running"),
        "{}",
        text(&table)
    );
    let logs = json(e, admin, &["logs", "web"]);
    assert!(
        logs.as_array().is_some_and(|l| l
            .iter()
            .any(|x| x.as_str() == Some(&format!("{v1} starting")))),
        "{logs}"
    );
    // The heartbeat now counts the container.
    wait_node(e, admin, 1);

    // Redeploy a new image: the cutover serves v2 on the same node.
    let web2 = web_toml(dir.path(), "web2.toml", &v2, "");
    let d = json(e, admin, &["deploy", &web2.display().to_string()]);
    assert_eq!(d["success"], true, "{d}");
    node.wait_serving("web v2\n");
    assert_eq!(
        json(e, admin, &["status", "web"])["components"][0]["image"],
        v2.as_str()
    );

    // Stop and start through the agent.
    assert_eq!(json(e, admin, &["stop", "web"])["success"], true);
    assert_ne!(node.get().0, 200);
    assert_eq!(json(e, admin, &["start", "web"])["success"], true);
    node.wait_serving("web v2\n");

    // Refusals, each changing nothing.
    let latest = web_toml(
        dir.path(),
        "latest.toml",
        "localhost/mcp-test/web:latest",
        "",
    );
    refused(
        e,
        admin,
        &["deploy", &latest.display().to_string()],
        &["components[0].image", "latest"],
    );
    let pinned = web_toml(dir.path(), "pinned.toml", &v1, "node = \"nowhere\"");
    let p = pinned.display().to_string();
    refused(e, admin, &["deploy", &p], &["is a migration"]);
    let other = std::fs::read_to_string(&pinned)
        .expect("read")
        .replacen("\"web\"", "\"api\"", 1);
    std::fs::write(&pinned, other).expect("write");
    refused(
        e,
        admin,
        &["deploy", &p],
        &["no registered node is named nowhere"],
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"web\"\n[[components]\nimage = 1\n").expect("bad");
    refused(
        e,
        admin,
        &["deploy", &bad.display().to_string()],
        &["bad.toml", "line"],
    );
    // The master validates too (REST twin, no client-side check): 400 naming the field.
    let (code, body) = cp.call(
        "POST",
        "/v1/mcp/services",
        Some(admin),
        Some(serde_json::json!({"spec": {"name": "web", "components": [{"name": "app", "image": "x/web"}]}})),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|m| m.contains("components[0].image")),
        "{body}"
    );
    // A user and an agent may not deploy.
    for (who, why) in [(&node.user, "admin role"), (&node.agent_token, "human")] {
        refused(e, who, &["deploy", &web1.display().to_string()], &[why]);
    }
    node.wait_serving("web v2\n");

    // Caller rules on every Master RPC.
    let rpcs = mc_proto::grpc_methods("mc.deploy.v1");
    let master_rpcs: Vec<&String> = rpcs
        .iter()
        .filter(|r| r.starts_with("/mc.deploy.v1.Master/"))
        .collect();
    assert_eq!(master_rpcs.len(), 17, "{master_rpcs:?}");
    let code = |path: &str, token: Option<&str>| {
        let s = crate::support::grpc_status(&cp.grpc, &cp.ca, path, token);
        s.split('|').next().unwrap_or("").to_owned()
    };
    for rpc in master_rpcs {
        assert_eq!(code(rpc, None), "16", "{rpc} anonymous");
        let agent_rpc = rpc.ends_with("/RegisterNode") || rpc.ends_with("/Heartbeat");
        let wrong: Vec<(&str, &str)> = if agent_rpc {
            vec![
                ("admin", admin),
                ("user", &node.user),
                ("master", &node.master),
            ]
        } else {
            vec![
                ("user", &node.user),
                ("agent", &node.agent_token),
                ("other agent", &node.other_agent),
                ("master", &node.master),
            ]
        };
        for (who, token) in wrong {
            assert_eq!(code(rpc, Some(token)), "7", "{rpc} as {who}");
        }
    }
    // And every REST twin.
    let mut rest = 0;
    for (key, req) in mc_master::methods::map().entries() {
        let Some((method, path)) = key.split_once(' ') else {
            continue;
        };
        if path.contains("{node}") || path.starts_with("/ui/") {
            continue; // the relayed data-plane methods: agent/front_door.rs; the UI: agent/ops.rs
        }
        let path = path.replace("{service}", "web").replace("{id}", "web-1-0");
        assert_eq!(cp.call(method, &path, None, None).0, 401, "{key} anonymous");
        let wrong = if req == mc_master::methods::AGENT {
            admin
        } else {
            node.agent_token.as_str()
        };
        assert_eq!(cp.call(method, &path, Some(wrong), None).0, 403, "{key}");
        assert_eq!(
            cp.call(method, &path, Some(&node.user), None).0,
            403,
            "{key} as a user"
        );
        rest += 1;
    }
    assert_eq!(rest, 17);
    // A node not on the allowlist cannot register.
    let s = crate::support::grpc_status(
        &cp.grpc,
        &cp.ca,
        "/mc.deploy.v1.Master/RegisterNode",
        Some(&node.other_agent),
    );
    assert!(s.starts_with("7|") && s.contains("allowlist"), "{s}");
    let (code, body) = cp.call(
        "POST",
        "/v1/mcp/nodes/register",
        Some(&node.other_agent),
        Some(serde_json::json!({"address": "127.0.0.1:1"})),
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(json(e, admin, &["nodes"]).as_array().map(Vec::len), Some(1));

    // Undeploy: route and container gone, the service unlisted.
    let u = json(e, admin, &["undeploy", "web"]);
    assert_eq!(u["success"], true, "{u}");
    assert_ne!(node.get().0, 200);
    assert_eq!(json(e, admin, &["ps"]), serde_json::json!([]));
    refused(e, admin, &["status", "web"], &["no service is named web"]);
}
