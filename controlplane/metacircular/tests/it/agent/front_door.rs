//! The control plane as the front door to every node's data plane: one
//! `mcd controlplane` (MCIAS, the master), two nodes on this host — each an
//! `mcd dataplane` (MC-Proxy, MCNS on its own port) and an `mcd agent`
//! relaying to it. `mcctl proxy|dns … --node NAME` with an MCIAS token
//! changes that node's data plane only, every change in `mcctl audit`; the
//! record API's name rule for system accounts; unknown and unhealthy nodes;
//! the caller sweep over every relayed method, gRPC and REST. Loopback only.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::master::{json, mcctl, refused, text};
use super::{agent_files, mcp_section, spawn_agent, system_token};
use crate::controlplane::iam::Controlplane;
use crate::peers::Dataplane;

const NODES: [&str; 2] = ["alpha", "beta"];

/// One node: its data plane (with MCNS on `dns`) and its agent.
struct NodeProcs {
    dp: Dataplane,
    agent: Option<Child>,
    dns: u16,
}

impl Drop for NodeProcs {
    fn drop(&mut self) {
        if let Some(mut a) = self.agent.take() {
            let _ = a.kill();
            let _ = a.wait();
        }
    }
}

struct Site {
    nodes: Vec<NodeProcs>,
    cp: Controlplane,
    endpoints: PathBuf,
    admin: String,
    user: String,
    /// `agent-alpha`'s token: another node's agent, for beta's data plane.
    agent_alpha: String,
    master: String,
    /// The system account `web`.
    web: String,
}

fn start(dir: &Path) -> Site {
    let cp_dir = dir.join("cp");
    std::fs::create_dir_all(&cp_dir).expect("mkdir");
    let cp = Controlplane::start(&cp_dir, &mcp_section(&cp_dir, &NODES));
    let admin = cp.token("admin", &cp.password);
    let master = system_token(&cp, &admin, "mcp-master");
    std::fs::write(cp_dir.join("mcp-token"), &master).expect("mcp token");
    cp.create_user(&admin, "gina", "gina's long enough password");
    let user = cp.token("gina", "gina's long enough password");
    let web = system_token(&cp, &admin, "web");
    let mut agent_alpha = String::new();
    let mut nodes = Vec::new();
    for name in NODES {
        let dp_dir = dir.join(format!("dp-{name}"));
        let ag = dir.join(format!("agent-{name}"));
        std::fs::create_dir_all(&dp_dir).expect("mkdir");
        std::fs::create_dir_all(&ag).expect("mkdir");
        let dns = crate::dataplane::dns::free_dns_port();
        let dp = Dataplane::start(
            &dp_dir,
            "off",
            &format!("[dns]\nlisten = [\"127.0.0.1:{dns}\"]\n"),
        );
        let token = system_token(&cp, &admin, &format!("agent-{name}"));
        if name == "alpha" {
            agent_alpha = token.clone();
        }
        std::fs::write(ag.join("token"), token).expect("token");
        let files = agent_files(&ag, name, &cp_dir, &cp, &dp_dir, "127.0.0.1");
        let agent = spawn_agent(&files.config);
        nodes.push(NodeProcs {
            dp,
            agent: Some(agent),
            dns,
        });
    }
    let endpoints = dir.join("endpoints.json");
    cp.write_endpoints(&endpoints);
    let site = Site {
        nodes,
        cp,
        endpoints,
        admin,
        user,
        agent_alpha,
        master,
        web,
    };
    site.wait_nodes("healthy");
    site
}

impl Site {
    /// Waits (bounded) until `mcctl nodes` shows both nodes with `health`.
    fn wait_nodes(&self, health: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let nodes = json(&self.endpoints, &self.admin, &["nodes"]);
            let healthy = NODES.iter().all(|n| {
                nodes
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|x| x["name"] == *n && x["health"] == health)
            });
            if healthy {
                return;
            }
            assert!(Instant::now() < deadline, "nodes never {health}: {nodes}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn ok(&self, token: &str, args: &[&str]) -> serde_json::Value {
        json(&self.endpoints, token, args)
    }

    fn audit(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        self.ok(&self.admin, &all)
            .as_array()
            .cloned()
            .expect("audit rows")
    }
}

/// `dig +short NAME A` at 127.0.0.1:`port`.
pub(super) fn dig(port: u16, name: &str) -> String {
    let out = Command::new("dig")
        .arg("@127.0.0.1")
        .args([
            "-p",
            &port.to_string(),
            "+tries=1",
            "+time=3",
            "+short",
            name,
            "A",
        ])
        .output()
        .expect("dig is installed (scripts/test installs bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn hostnames(routes: &serde_json::Value) -> Vec<String> {
    let list = routes.get("routes").unwrap_or(routes);
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["hostname"].as_str().map(str::to_owned))
        .collect()
}

/// `ARGS --node beta`.
fn on_beta<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend_from_slice(&["--node", "beta"]);
    v
}

/// The newest audit row of `method` whose target is `target` or ends in
/// `/target` (`svc.test/web` for `web`).
fn row_of<'a>(rows: &'a [Value], method: &str, target: &str) -> &'a Value {
    let suffix = format!("/{target}");
    rows.iter()
        .find(|r| {
            r["method"] == method
                && r["target"]
                    .as_str()
                    .is_some_and(|t| t == target || t.ends_with(&suffix))
        })
        .unwrap_or_else(|| panic!("no {method} {target} in {rows:?}"))
}

#[test]
fn remote_data_plane_changes_land_on_the_named_node_and_in_the_audit_trail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut site = start(dir.path());
    let e = site.endpoints.clone();
    let e = e.as_path();
    let admin = site.admin.clone();
    let admin = admin.as_str();
    let web = site.web.clone();
    let (alpha_dns, beta_dns) = (site.nodes[0].dns, site.nodes[1].dns);

    // MC-Proxy: a listener and a route on beta, through the control plane.
    let address = format!("127.0.0.1:{}", crate::ports::free_port());
    site.ok(
        admin,
        &on_beta(&["proxy", "listeners", "add", "edge", "--address", &address]),
    );
    site.ok(
        admin,
        &on_beta(&[
            "proxy",
            "routes",
            "add",
            "app.test",
            "--backend",
            "127.0.0.1:9",
        ]),
    );
    let remote = site.ok(admin, &on_beta(&["proxy", "routes", "list"]));
    assert_eq!(hostnames(&remote), ["app.test"], "{remote}");
    // On beta's own socket, and not on alpha's.
    let local = |dp: &Dataplane| -> Value {
        serde_json::from_str(&dp.ok(&["--json", "proxy", "routes", "list"])).expect("json")
    };
    assert_eq!(hostnames(&local(&site.nodes[1].dp)), ["app.test"]);
    assert!(hostnames(&local(&site.nodes[0].dp)).is_empty());
    // A data-plane refusal comes back with the node's name.
    let bad = [
        "proxy",
        "routes",
        "add",
        "b.test",
        "--listener",
        "nope",
        "--backend",
        "127.0.0.1:9",
    ];
    refused(e, admin, &on_beta(&bad), &["node beta"]);

    // MCNS: a zone and a record on beta, answered by beta's MCNS only.
    let record = |token: &str, verb: &str, name: &str, value: &str| {
        let mut args = vec!["dns", "records", verb, "svc.test", name, "A"];
        if !value.is_empty() {
            args.push(value);
        }
        mcctl(e, token, &on_beta(&args))
    };
    let ok = |o: std::process::Output| assert!(o.status.success(), "{}", text(&o));
    site.ok(admin, &on_beta(&["dns", "zones", "create", "svc.test"]));
    ok(record(admin, "add", "app", "192.0.2.7"));
    assert_eq!(dig(beta_dns, "app.svc.test"), "192.0.2.7");
    assert_eq!(dig(alpha_dns, "app.svc.test"), "");

    // A system account changes names under its own label only.
    ok(record(&web, "add", "web", "192.0.2.8"));
    ok(record(&web, "add", "api.web", "192.0.2.9"));
    assert_eq!(dig(beta_dns, "web.svc.test"), "192.0.2.8");
    assert_eq!(dig(beta_dns, "api.web.svc.test"), "192.0.2.9");
    for (verb, name, value) in [
        ("add", "docs", "192.0.2.66"),
        ("add", "app", "192.0.2.66"),
        ("add", "webx", "192.0.2.66"),
        ("remove", "app", ""),
    ] {
        let out = record(&web, verb, name, value);
        assert!(
            !out.status.success() && text(&out).contains("may change only web"),
            "{}",
            text(&out)
        );
    }
    assert_eq!(dig(beta_dns, "docs.svc.test"), "");
    assert_eq!(
        dig(beta_dns, "app.svc.test"),
        "192.0.2.7",
        "nothing changed"
    );
    // ... and nothing else: no routes, no zones, no reads.
    refused(e, &web, &on_beta(&["proxy", "routes", "list"]), &["human"]);
    refused(
        e,
        &web,
        &on_beta(&["dns", "zones", "create", "web.test"]),
        &["human"],
    );
    ok(record(&web, "remove", "api.web", ""));
    assert_eq!(dig(beta_dns, "api.web.svc.test"), "");

    // The audit trail: every change, who, where from, the outcome; no reads.
    let rows = site.audit(&["--limit", "100"]);
    let route = row_of(&rows, "proxy.UpsertRoute", "app.test");
    assert_eq!(route["result"], "ok", "{route}");
    assert_eq!(route["account"], "admin", "{route}");
    assert_eq!(route["node"], "beta", "{route}");
    assert_eq!(route["source_ip"], "127.0.0.1", "{route}");
    assert!(
        route["summary"]
            .as_str()
            .is_some_and(|s| s.contains("127.0.0.1:9")),
        "{route}"
    );
    assert_eq!(
        row_of(&rows, "proxy.UpsertListener", "edge")["result"],
        "ok"
    );
    let failed = row_of(&rows, "proxy.UpsertRoute", "b.test");
    assert!(
        !["ok", "sent"].contains(&failed["result"].as_str().unwrap_or("")),
        "{failed}"
    );
    let denied = row_of(&rows, "dns.UpsertRecord", "docs");
    assert_eq!(
        (&denied["result"], &denied["account"]),
        (&"denied".into(), &"web".into()),
        "{denied}"
    );
    assert_eq!(row_of(&rows, "dns.UpsertRecord", "web")["result"], "ok");
    let reads = rows.iter().filter(|r| {
        let m = r["method"].as_str().unwrap_or("");
        m.contains(".List") || m.contains(".Get")
    });
    assert_eq!(reads.count(), 0, "reads are not audited: {rows:?}");
    // Filters: actor, node, since, limit; the table; admins only.
    let by_web = site.audit(&["--actor", "web"]);
    assert!(
        !by_web.is_empty() && by_web.iter().all(|r| r["account"] == "web"),
        "{by_web:?}"
    );
    assert!(site.audit(&["--node", "alpha"]).is_empty());
    assert_eq!(site.audit(&["--limit", "2"]).len(), 2);
    assert!(site.audit(&["--since", "4000000000"]).is_empty());
    assert_eq!(site.audit(&["--since", "1h"]).len(), rows.len().min(50));
    let table = mcctl(e, admin, &["audit", "--actor", "admin"]);
    assert!(
        text(&table).contains("proxy.UpsertRoute"),
        "{}",
        text(&table)
    );
    refused(e, &site.user, &["audit"], &["admin"]);

    // The REST twins: the same relay, JSON in and out.
    let cp = &site.cp;
    let body = serde_json::json!({"zone": "svc.test", "name": "app"});
    let (code, body) = cp.call(
        "POST",
        "/v1/mcp/nodes/beta/dns/ListRecords",
        Some(admin),
        Some(body),
    );
    assert_eq!(
        (code, &body["records"][0]["value"]),
        (200, &"192.0.2.7".into()),
        "{body}"
    );
    let docs = serde_json::json!({"record": {"zone": "svc.test", "name": "docs", "type": "RECORD_TYPE_A", "value": "192.0.2.66"}});
    let (code, body) = cp.call(
        "POST",
        "/v1/mcp/nodes/beta/dns/UpsertRecord",
        Some(&web),
        Some(docs),
    );
    assert_eq!(code, 403, "{body}");
    let nope = serde_json::json!({"nope": 1});
    let (code, body) = cp.call(
        "POST",
        "/v1/mcp/nodes/beta/proxy/RemoveRoute",
        Some(admin),
        Some(nope),
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = cp.call("GET", "/v1/mcp/audit?actor=web&limit=1", Some(admin), None);
    assert_eq!(
        (code, &body["events"][0]["account"]),
        (200, &"web".into()),
        "{body}"
    );

    // Unknown and unhealthy nodes; the other node still answers.
    refused(
        e,
        admin,
        &["proxy", "status", "--node", "nowhere"],
        &["unknown node nowhere"],
    );
    if let Some(mut a) = site.nodes[0].agent.take() {
        let _ = a.kill();
        let _ = a.wait();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = mcctl(e, admin, &["dns", "status", "--node", "alpha"]);
        let t = text(&out);
        if !out.status.success() && t.contains("node alpha is unhealthy") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alpha never reported unhealthy: {t}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    site.ok(admin, &on_beta(&["proxy", "status"]));
}

#[test]
fn every_relayed_method_refuses_the_wrong_kind_of_caller() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = start(dir.path());
    let cp = &site.cp;
    let methods = mc_master::dataplane::methods();
    assert!(methods.len() > 30, "{methods:?}");
    let code = |path: &str, token: Option<&str>| {
        let s = crate::support::grpc_status(&cp.grpc, &cp.ca, path, token);
        s.split('|').next().unwrap_or("").to_owned()
    };
    for rpc in methods {
        assert_eq!(code(rpc, None), "16", "{rpc} anonymous");
        for (who, token) in [
            ("user", &site.user),
            ("another node's agent", &site.agent_alpha),
            ("the master's own account", &site.master),
            ("a system account", &site.web),
        ] {
            assert_eq!(code(rpc, Some(token)), "7", "{rpc} as {who}");
        }
        // An admin gets through the map: refused only for the missing node header.
        assert_eq!(code(rpc, Some(&site.admin)), "3", "{rpc} as admin");
        let short = mc_master::dataplane::short(rpc).replacen('.', "/", 1);
        let path = format!("/v1/mcp/nodes/beta/{short}");
        let body = Some(serde_json::json!({}));
        assert_eq!(
            cp.call("POST", &path, None, body.clone()).0,
            401,
            "{path} anonymous"
        );
        for token in [&site.user, &site.agent_alpha, &site.web] {
            assert_eq!(
                cp.call("POST", &path, Some(token), body.clone()).0,
                403,
                "{path}"
            );
        }
    }
    // Refusals changed nothing on beta.
    let routes = site.nodes[1].dp.ok(&["--json", "proxy", "routes", "list"]);
    assert!(!routes.contains("hostname"), "{routes}");
}
