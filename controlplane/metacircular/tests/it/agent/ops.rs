//! The master's operations end to end, on one node (control plane, data
//! plane, `mcd agent` with real root Podman): `mcctl sync DIR --dry-run`
//! and `sync` (deploy, update with the changed fields, undeploy, a bad
//! file refused, the REST twin); a container whose command exits after two
//! seconds, restarted by its restart policy, reported flapping in status,
//! `ps` and the agent's `/metrics`; scheduled snapshots every 2 s keeping
//! 2, the oldest pruned with their files; the web UI page (the guard swept
//! with curl, then headless Chromium); and the probe after missed
//! heartbeats: the agent killed → the node unreachable (`mcctl nodes`,
//! `node status`, `/metrics`) and placement refusing it; restarted →
//! healthy again and placement takes it.

use std::path::Path;
use std::time::{Duration, Instant};

use super::Node;
use super::master::{json, mcctl, refused, text, web_toml};
use crate::support::curl;

/// Polls `f` (bounded) until it returns `Some`.
fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn node_health(e: &Path, admin: &str) -> serde_json::Value {
    json(e, admin, &["nodes"])[0].clone()
}

fn flap_toml(dir: &Path, image: &str) {
    std::fs::write(
        dir.join("flap.toml"),
        format!(
            "name = \"flap\"\n[[components]]\nname = \"app\"\nimage = \"{image}\"\n\
             command = [\"/bin/busybox\", \"sh\", \"-c\", \"sleep 2; exit 1\"]\n"
        ),
    )
    .expect("flap.toml");
}

fn actions(sync: &serde_json::Value) -> Vec<(String, String)> {
    sync["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap_or("").to_owned(),
                c["service"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn scrape(url: &str, token: Option<&str>, ca: Option<&str>) -> String {
    let mut args: Vec<String> = Vec::new();
    if let Some(ca) = ca {
        args.extend(["--cacert".into(), ca.into()]);
    }
    if let Some(t) = token {
        args.extend(["-H".into(), format!("authorization: Bearer {t}")]);
    }
    args.push(format!("{url}/metrics"));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, body) = curl(&refs);
    assert_eq!(code, 200, "{body}");
    body
}

#[test]
fn sync_flapping_scheduled_snapshots_the_ui_and_the_probe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = Node::start(dir.path());
    let endpoints = dir.path().join("endpoints.json");
    node._cp.write_endpoints(&endpoints);
    let e = endpoints.as_path();
    let admin = node.admin.clone();
    let admin = admin.as_str();
    until("the node is healthy", || {
        (node_health(e, admin)["health"] == "healthy").then_some(())
    });
    let v1 = node.image(1);
    let v2 = node.image(2);

    // Sync: a dry run plans two deploys and changes nothing; then it applies.
    let sd = dir.path().join("services");
    std::fs::create_dir_all(&sd).expect("mkdir");
    let schedule = "[snapshots]\nevery = \"2s\"\nkeep = 2";
    web_toml(&sd, "web.toml", &v1, schedule);
    flap_toml(&sd, &v1);
    let sdir = sd.display().to_string();
    let dry = json(e, admin, &["sync", &sdir, "--dry-run"]);
    assert_eq!(dry["success"], true, "{dry}");
    assert_eq!(
        actions(&dry),
        [
            ("deploy".into(), "flap".into()),
            ("deploy".into(), "web".into())
        ],
        "{dry}"
    );
    assert_eq!(
        dry["changes"][1]["node"], "test",
        "placement's choice: {dry}"
    );
    assert_eq!(
        json(e, admin, &["ps"]),
        serde_json::json!([]),
        "a dry run changes nothing"
    );
    let applied = json(e, admin, &["sync", &sdir]);
    assert_eq!(applied["success"], true, "{applied}");
    node.wait_serving("web v1\n");

    // Flapping: the container exits after 2 s and Podman restarts it.
    let st = until("flap is reported flapping", || {
        let st = json(e, admin, &["status", "flap"]);
        (st["components"][0]["flapping"] == true).then_some(st)
    });
    assert!(
        st["components"][0]["recent_restarts"].as_u64() >= Some(3),
        "{st}"
    );
    assert!(
        st["drift"].as_array().is_some_and(|d| d
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains("flap-app: flapping")))),
        "{st}"
    );
    let ps = text(&mcctl(e, admin, &["ps"]));
    assert!(ps.contains("(flapping)"), "{ps}");
    until("the agent's /metrics counts it", || {
        let m = scrape(&node.ops, None, None);
        // A sample without labels may carry `{}`.
        m.lines()
            .any(|l| l.replace("{}", "") == "mc_agent_flapping_containers 1")
            .then_some(())
    });
    let web = json(e, admin, &["status", "web"]);
    assert_eq!(web["components"][0]["flapping"], false, "{web}");

    // Scheduled snapshots: every 2 s, the newest 2 kept, older files deleted.
    let ids = |e: &Path| -> Vec<String> {
        json(e, admin, &["snapshots", "web"])
            .as_array()
            .expect("snapshots")
            .iter()
            .filter_map(|s| s["id"].as_str().map(str::to_owned))
            .collect()
    };
    let first = until("two scheduled snapshots", || {
        let v = ids(e);
        (v.len() == 2).then_some(v)
    });
    let later = until("a newer one replaces the oldest", || {
        let v = ids(e);
        v.iter().any(|id| !first.contains(id)).then_some(v)
    });
    assert_eq!(later.len(), 2, "{later:?}");
    let files = dir.path().join("cp/mcp/snapshots/web");
    let oldest = first.last().expect("two");
    if !later.contains(oldest) {
        assert!(
            !files.join(format!("{oldest}.tar")).exists(),
            "{oldest} pruned"
        );
    }
    for id in &later {
        assert!(
            files.join(format!("{id}.tar")).exists() || !ids(e).contains(id),
            "{id}"
        );
    }
    let list = text(&mcctl(e, admin, &["snapshots", "web"]));
    assert!(list.contains("next scheduled snapshot:"), "{list}");
    let (code, rest) = node
        ._cp
        .call("GET", "/v1/mcp/snapshots?service=web", Some(admin), None);
    assert_eq!(code, 200, "{rest}");
    assert!(rest["next_at_unix"].as_i64() > Some(0), "{rest}");

    // Sync again: web's image changed, flap gone from the directory.
    web_toml(&sd, "web.toml", &v2, schedule);
    std::fs::remove_file(sd.join("flap.toml")).expect("rm");
    let dry = json(e, admin, &["sync", &sdir, "--dry-run"]);
    assert_eq!(
        actions(&dry),
        [
            ("update".into(), "web".into()),
            ("undeploy".into(), "flap".into())
        ],
        "{dry}"
    );
    let diff = dry["changes"][0]["diff"].to_string();
    assert!(
        diff.contains(&format!("-components[0].image: \\\"{v1}\\\""))
            && diff.contains(&format!("+components[0].image: \\\"{v2}\\\"")),
        "{diff}"
    );
    let table = text(&mcctl(e, admin, &["sync", &sdir, "--dry-run"]));
    assert!(
        table.contains("update") && table.contains("dry run: nothing changed"),
        "{table}"
    );
    assert_eq!(
        json(e, admin, &["status", "web"])["components"][0]["image"],
        v1.as_str()
    );
    assert_eq!(json(e, admin, &["status", "flap"])["service"], "flap");
    // A bad file refuses the whole sync, naming it; nothing changes.
    std::fs::write(
        sd.join("bad.toml"),
        "name = \"bad\"\n[[components]]\nname = \"a\"\nimage = \"x:latest\"\n",
    )
    .expect("bad");
    refused(
        e,
        admin,
        &["sync", &sdir],
        &["bad.toml", "components[0].image"],
    );
    std::fs::remove_file(sd.join("bad.toml")).expect("rm");
    assert_eq!(json(e, admin, &["status", "flap"])["service"], "flap");
    let applied = json(e, admin, &["sync", &sdir]);
    assert_eq!(applied["success"], true, "{applied}");
    node.wait_serving("web v2\n");
    refused(e, admin, &["status", "flap"], &["no service is named flap"]);
    // The REST twin: the same definition is unchanged; a bad body is 400.
    let def = mc_master::spec::ServiceDef::from_toml(
        &std::fs::read_to_string(sd.join("web.toml")).expect("read"),
    )
    .expect("def");
    let body = serde_json::json!({"specs": [def], "dry_run": true});
    let (code, r) = node
        ._cp
        .call("POST", "/v1/mcp/sync", Some(admin), Some(body));
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["changes"][0]["action"], "unchanged", "{r}");
    let (code, r) = node._cp.call(
        "POST",
        "/v1/mcp/sync",
        Some(admin),
        Some(serde_json::json!({"specs": "web"})),
    );
    assert_eq!(code, 400, "{r}");
    assert_eq!(
        json(e, admin, &["status", "web"])["components"][0]["image"],
        v2.as_str()
    );

    // The web UI: the guard on every route, then Chromium.
    let cp = &node._cp;
    let gina = "gina's long enough password";
    for (method, path) in mc_master::ui::ROUTES {
        let (code, _) = cp.call(method, path, None, None);
        if path.starts_with("/ui/mcp/assets/") {
            assert_eq!(code, 200, "{method} {path}");
            continue;
        }
        assert_eq!(code, 303, "{method} {path} without a session");
        let url = format!("{}{path}", cp.rest);
        for (who, token) in [("user", &node.user), ("agent", &node.agent_token)] {
            let cookie = format!("cookie: __Host-mc_session={token}");
            let (code, _) = curl(&["--cacert", &cp.ca, "-X", method, "-H", &cookie, &url]);
            assert_eq!(code, 403, "{method} {path} as {who}");
        }
        let cookie = format!("cookie: __Host-mc_session={admin}");
        let (code, page) = curl(&["--cacert", &cp.ca, "-H", &cookie, &url]);
        assert_eq!(code, 200, "{method} {path} as the admin");
        assert!(page.contains("test"), "{page}");
    }
    let base = cp.rest.replace("127.0.0.1", "localhost");
    let profile = dir.path().join("chromium-profile");
    crate::support::browser_test(
        "mcp.test.mjs",
        &[
            base.as_ref(),
            cp.password.as_ref(),
            "gina".as_ref(),
            gina.as_ref(),
            "test".as_ref(),
            "web".as_ref(),
            v2.as_ref(),
            profile.as_os_str(),
        ],
    );

    // The probe: the agent killed, its node turns unreachable and
    // placement refuses it; restarted, it is healthy again.
    node.kill_agent();
    let n = until("the node is unreachable", || {
        let n = node_health(e, admin);
        (n["health"] == "unreachable").then_some(n)
    });
    assert_eq!(n["probe"]["ok"], false, "{n}");
    assert!(
        n["probe"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{n}"
    );
    let status = text(&mcctl(e, admin, &["node", "status", "test"]));
    assert!(
        status.contains("unreachable") && status.contains("probe:"),
        "{status}"
    );
    let m = scrape(&node._cp.rest, Some(admin), Some(&node._cp.ca));
    assert!(m.contains("mc_mcp_nodes{health=\"unreachable\"} 1"), "{m}");
    assert!(m.contains("mc_mcp_node_healthy{node=\"test\"} 0"), "{m}");
    assert!(
        !m.contains("mc_mcp_probes_total{result=\"unreachable\"} 0"),
        "{m}"
    );
    let api = web_toml(dir.path(), "api.toml", &v2, "")
        .display()
        .to_string();
    let api_text = std::fs::read_to_string(&api)
        .expect("read")
        .replacen("\"web\"", "\"api\"", 1);
    std::fs::write(&api, api_text).expect("write");
    refused(
        e,
        admin,
        &["deploy", &api, "--dry-run"],
        &["no healthy node"],
    );
    node.start_agent();
    until("the node is healthy again", || {
        (node_health(e, admin)["health"] == "healthy").then_some(())
    });
    let d = json(e, admin, &["deploy", &api, "--dry-run"]);
    assert_eq!(d["node"], "test", "{d}");
    node.wait_serving("web v2\n");
}
