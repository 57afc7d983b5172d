//! MCDoc deployed end to end: one control plane (MCIAS, Metacrypt with a
//! pki mount and a role for `svc.test`, MCR, the master with `pki_mount`,
//! `pki_role` and `dns`), one node (`mcd dataplane` with MC-Proxy, managed
//! certificates from that Metacrypt and MCNS; `mcd agent` on the test's own
//! Podman storage). The image is built by `scripts/mcdoc-image` from local
//! files and pushed to MCR; `mcctl deploy docs.toml` pulls it, gets the
//! certificate on the node's proxy and the name in its MCNS through the
//! front door; curl verifies the chain against the pki root, dig answers;
//! a certificate refused by the role deploys nothing; a hostname outside
//! the service's label is marked failed at `dns`; undeploy removes record,
//! route and certificate. Loopback only.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::front_door::dig;
use super::master::{json, mcctl, text};
use super::{agent_files, mcp_section, spawn_agent, system_token};
use crate::dataplane::l7::managed::pki_controlplane;
use crate::peers::{Dataplane, free_port};

const HOST: &str = "docs.svc.test";

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn steps(d: &Value, name: &str) -> Vec<(bool, String)> {
    d["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["step"] == name)
        .map(|s| {
            (
                s["success"].as_bool().unwrap_or(false),
                s["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn service_file(dir: &Path, name: &str, image: &str, route: &str) -> String {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nnode = \"test\"\n[[components]]\nname = \"site\"\nimage = \"{image}\"\n\
             health = {{ http = \"/healthz\", timeout = 30 }}\n[[components.routes]]\nname = \"http\"\n{route}\n"
        ),
    )
    .expect("service file");
    path.display().to_string()
}

#[test]
fn mcdoc_deploys_with_a_certificate_from_metacrypt_and_a_name_in_mcns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cp_dir, dp_dir, ag) = (
        dir.path().join("cp"),
        dir.path().join("dp"),
        dir.path().join("agent"),
    );
    for d in [&cp_dir, &dp_dir, &ag] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let mcp = format!(
        "{}pki_mount = \"pki\"\npki_role = \"proxy\"\ndns = true\n",
        mcp_section(&cp_dir, &["test"])
    );
    let (cp, admin, root) = pki_controlplane(&cp_dir, &mcp, "svc.test");
    let master = system_token(&cp, &admin, "mcp-master");
    std::fs::write(cp_dir.join("mcp-token"), &master).expect("mcp token");
    std::fs::write(ag.join("token"), system_token(&cp, &admin, "agent-test")).expect("token");

    let (listen, dns) = (free_port(), crate::dataplane::dns::free_dns_port());
    let _dp = Dataplane::start(
        &dp_dir,
        "off",
        &format!(
            "certificate_authorities = [\"{root}\"]\n\
             [proxy.metacrypt]\ngrpc = \"{}\"\nca_cert = \"{}\"\ntoken_file = \"{}\"\n\
             [[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n\
             [dns]\nlisten = [\"127.0.0.1:{dns}\"]\n",
            cp.grpc,
            cp.ca,
            cp_dir.join("proxy.token").display(),
        ),
    );
    let files = agent_files(&ag, "test", &cp_dir, &cp, &dp_dir, "127.0.0.1");
    let _agent = Agent(spawn_agent(&files.config));
    let endpoints = dir.path().join("endpoints.json");
    cp.write_endpoints(&endpoints);
    let e = endpoints.as_path();
    let deadline = Instant::now() + Duration::from_secs(60);
    while json(e, &admin, &["nodes"])[0]["health"] != "healthy" {
        assert!(Instant::now() < deadline, "the node never registered");
        std::thread::sleep(Duration::from_millis(250));
    }
    // The node's zone, through the front door.
    json(
        e,
        &admin,
        &["dns", "zones", "create", "svc.test", "--node", "test"],
    );

    // The image: local files only, pushed to MCR.
    let registry = cp.rest.trim_start_matches("https://");
    let image = format!("{registry}/apps/mcdoc:1");
    crate::mcdoc::build_image(
        &dir.path().join("oci"),
        "1",
        &[
            "--push",
            &image,
            "--creds",
            &format!("admin:{}", cp.password),
            "--cert-dir",
            &files.registry_certs.display().to_string(),
        ],
    );

    // Deploy: certificate, image pulled, health, route, name.
    let docs = service_file(dir.path(), "docs", &image, "mode = \"l7\"");
    let d = json(e, &admin, &["deploy", &docs]);
    assert_eq!(d["success"], true, "{d}");
    let cert = steps(&d, "certificate");
    assert!(
        cert.len() == 1 && cert[0].0 && cert[0].1.contains("metacrypt:pki/proxy"),
        "{d}"
    );
    assert_eq!(
        steps(&d, "dns"),
        [(true, format!("{HOST} A 127.0.0.1"))],
        "{d}"
    );
    assert!(
        steps(&d, "site/image")
            .iter()
            .any(|s| s.1.ends_with("pulled")),
        "{d}"
    );
    let order: Vec<&str> = d["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert_eq!(order.first(), Some(&"place"), "{d}");
    assert_eq!(order.get(1), Some(&"certificate"), "{d}");
    assert_eq!(order.last(), Some(&"dns"), "{d}");

    // Through the node's MC-Proxy, the chain verified against the pki root.
    let url = format!("https://{HOST}:{listen}/design/mcp");
    let resolve = format!("{HOST}:{listen}:127.0.0.1");
    let via_proxy = ["--resolve", resolve.as_str(), "--cacert", root.as_str()];
    crate::mcdoc::wait_200(&url, &via_proxy);
    let mut args = via_proxy.to_vec();
    args.push(&url);
    let (code, body) = crate::support::curl(&args);
    assert_eq!(code, 200);
    assert!(
        body.contains("<title>MCP: design · Metacircular</title>"),
        "{body}"
    );
    assert_eq!(dig(dns, HOST), "127.0.0.1");

    let ps = json(e, &admin, &["ps"]);
    assert_eq!(ps[0]["service"], "docs", "{ps}");
    assert_eq!(ps[0]["components"][0]["state"], "running", "{ps}");
    let st = json(e, &admin, &["status", "docs"]);
    assert_eq!(st["node"], "test", "{st}");
    assert_eq!(st["components"][0]["image"], image.as_str(), "{st}");
    // The master's own changes are in the data-plane audit trail, under
    // the operator's name.
    let audit = json(e, &admin, &["audit", "--node", "test"]);
    for method in ["proxy.PutManagedCertificate", "dns.UpsertRecord"] {
        assert!(
            audit
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["method"] == method
                    && r["account"] == "admin"
                    && r["result"] == "ok"
                    && r["summary"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("deploy docs"))),
            "{method}: {audit}"
        );
    }

    // A hostname the role does not sign: nothing deployed, nothing left.
    let bad = service_file(
        dir.path(),
        "other",
        &image,
        "mode = \"l7\"\nhostname = \"other.elsewhere.test\"",
    );
    let out = mcctl(e, &admin, &["--json", "deploy", &bad]);
    assert!(!out.status.success(), "{}", text(&out));
    let d: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(steps(&d, "certificate").iter().any(|s| !s.0), "{d}");
    assert!(
        steps(&d, "site/container").is_empty(),
        "no container started: {d}"
    );
    assert_eq!(json(e, &admin, &["ps"]).as_array().map(Vec::len), Some(1));
    let certs = json(e, &admin, &["proxy", "certs", "list", "--node", "test"]);
    assert!(
        !certs.to_string().contains("other.elsewhere.test"),
        "rolled back: {certs}"
    );

    // A name outside the service's label: it serves, the deploy is marked failed at dns.
    let blog = service_file(
        dir.path(),
        "blog",
        &image,
        "mode = \"l4\"\nhostname = \"docs2.svc.test\"",
    );
    let out = mcctl(e, &admin, &["--json", "deploy", &blog]);
    assert!(!out.status.success(), "{}", text(&out));
    let d: Value = serde_json::from_slice(&out.stdout).expect("json");
    let dns_steps = steps(&d, "dns");
    assert!(
        dns_steps.len() == 1 && !dns_steps[0].0 && dns_steps[0].1.contains("blog.svc.test"),
        "{d}"
    );
    assert_eq!(dig(dns, "docs2.svc.test"), "");
    assert_eq!(
        json(e, &admin, &["status", "blog"])["components"][0]["state"],
        "running"
    );
    assert_eq!(json(e, &admin, &["undeploy", "blog"])["success"], true);

    // Undeploy: record, route and certificate gone.
    let u = json(e, &admin, &["undeploy", "docs"]);
    assert_eq!(u["success"], true, "{u}");
    assert_eq!(
        steps(&u, "certificate"),
        [(true, format!("{HOST}: removed"))],
        "{u}"
    );
    assert_eq!(dig(dns, HOST), "");
    let certs = json(e, &admin, &["proxy", "certs", "list", "--node", "test"]);
    assert!(!certs.to_string().contains(HOST), "{certs}");
    let routes = json(e, &admin, &["proxy", "routes", "list", "--node", "test"]);
    assert!(!routes.to_string().contains(HOST), "{routes}");
    assert_ne!(crate::support::curl(&args).0, 200);
    assert_eq!(json(e, &admin, &["ps"]).as_array().map(Vec::len), Some(0));
}
