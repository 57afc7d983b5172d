//! Operating MC-Proxy: listener management from mcctl, and every `/metrics`
//! of `mcd dev` (control plane and data plane) passing `promtool check metrics`.

use std::process::{Command, Stdio};

use crate::peers::{Dataplane, free_port};
use crate::support::{Dev, curl, http_backend};

/// `promtool check metrics` on `text`: its exit status and complaints.
pub(crate) fn promtool(text: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test installs Debian `prometheus`)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Fetches `url` and asserts promtool accepts it; OpenMetrics is still served
/// to a scraper that asks for it.
fn assert_promtool_clean(url: &str, must_contain: &str) {
    let (code, text) = curl(&[url]);
    assert_eq!(code, 200, "{url}: {text}");
    assert!(text.contains(must_contain), "{url}: {text}");
    let (ok, complaints) = promtool(&text);
    assert!(ok, "promtool check metrics {url}:\n{complaints}\n{text}");
    let (code, om) = curl(&["-H", "accept: application/openmetrics-text", url]);
    assert_eq!(code, 200);
    assert!(om.trim_end().ends_with("# EOF"), "{url}: {om}");
}

fn listeners_are_managed_from_mcctl(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = http_backend("hello");
    let public = free_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &format!("[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{public}\"\n"),
    );
    let extra = free_port();
    let addr = format!("127.0.0.1:{extra}");
    let out = dp.ok(&[
        "proxy",
        "listeners",
        "add",
        "extra",
        "--address",
        &addr,
        "--min-tls",
        "1.2",
        "--client-hello-timeout",
        "3s",
    ]);
    assert!(out.contains("extra") && out.contains(&addr), "{out}");
    // The socket is bound once the command returns.
    assert!(
        std::net::TcpStream::connect(&addr).is_ok(),
        "nothing on {addr}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&dp.ok(&["--json", "proxy", "listeners", "list"])).expect("json");
    let extra_row = listed
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == "extra"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(extra_row["address"], addr.as_str());
    assert_eq!(extra_row["origin"], "api");
    // Adding the same listener again changes nothing; a config-file listener is not the API's.
    dp.ok(&[
        "proxy",
        "listeners",
        "add",
        "extra",
        "--address",
        &addr,
        "--min-tls",
        "1.2",
        "--client-hello-timeout",
        "3s",
    ]);
    let refused = dp.mcctl(&[
        "proxy",
        "listeners",
        "add",
        "public",
        "--address",
        &format!("127.0.0.1:{}", free_port()),
    ]);
    assert!(!refused.status.success(), "config-owned listener replaced");
    // Bad input: a message and a non-zero exit, nothing changed.
    for bad in [
        vec![
            "proxy",
            "listeners",
            "add",
            "Bad_Name",
            "--address",
            "127.0.0.1:1",
        ],
        vec!["proxy", "listeners", "add", "x", "--address", "nowhere"],
    ] {
        let out = dp.mcctl(&bad);
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(!out.stderr.is_empty(), "{bad:?}: no message");
    }
    let names = dp.ok(&["proxy", "listeners", "list"]);
    assert!(
        !names.contains("Bad_Name") && !names.contains(" x "),
        "{names}"
    );

    // A route on the new listener keeps it from being removed without --force.
    dp.ok(&[
        "proxy",
        "routes",
        "add",
        "a.test",
        "--listener",
        "extra",
        "--backend",
        &format!("127.0.0.1:{backend}"),
    ]);
    let out = dp.mcctl(&["proxy", "listeners", "remove", "extra"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("route"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dp.ok(&["proxy", "listeners", "remove", "extra", "--force"]);
    let listing = dp.ok(&["proxy", "routes", "list"]);
    assert!(
        !listing.contains("a.test"),
        "routes went with it: {listing}"
    );
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "{addr} still accepts after remove"
    );
    let out = dp.mcctl(&["proxy", "listeners", "remove", "extra"]);
    assert!(
        !out.status.success(),
        "removing a missing listener succeeds"
    );
    // The data plane's metrics pass promtool with listeners and routes in them.
    assert_promtool_clean(&dp.metrics, "mc_proxy_listener_connections_total");
}
both_drivers!(listeners_are_managed_from_mcctl);

#[test]
fn every_metrics_endpoint_of_mcd_dev_passes_promtool() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let dev = Dev::start(cwd.path(), None);
    let ca = dev.ca();
    let get = |p: &str| {
        dev.endpoints
            .pointer(p)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("{p}"))
            .to_owned()
    };
    // Some traffic first, so labelled families have samples.
    let (code, _) = curl(&["--cacert", &ca, &get("/controlplane/health")]);
    assert_eq!(code, 200);
    let (code, _) = curl(&[&get("/dataplane/health")]);
    assert_eq!(code, 200);
    let mut urls = vec![
        get("/controlplane/metrics"),
        get("/dataplane/metrics"),
        get("/proxy/metrics"),
    ];
    urls.dedup();
    for url in &urls {
        assert_promtool_clean(url, "mc_build_info");
    }
    assert!(urls.len() >= 2, "{urls:?}");

    // And `/metrics` on the public REST port, which needs an admin token.
    let rest = get("/controlplane/rest");
    let (code, login) = crate::support::rest_call(
        &rest,
        &ca,
        "POST",
        "/v1/auth/login",
        None,
        Some(serde_json::json!({
            "username": get("/bootstrap/username"),
            "password": get("/bootstrap/password"),
        })),
    );
    assert_eq!(code, 200, "{login}");
    let token = login["token"].as_str().expect("token");
    let (code, text) = curl(&[
        "--cacert",
        &ca,
        "-H",
        &format!("authorization: Bearer {token}"),
        &format!("{rest}/metrics"),
    ]);
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("mc_http_requests_total"), "{text}");
    let (ok, complaints) = promtool(&text);
    assert!(
        ok,
        "promtool check metrics {rest}/metrics:\n{complaints}\n{text}"
    );
}
