//! Config reload in the running process: the file edited, then SIGHUP or
//! `mcctl proxy reload`. The new route answers, a route gone from the file
//! stops answering, an API route stays, an HTTP/2 stream open across the
//! reload completes on the same process, and a bad file changes nothing
//! (refused with a message, counted in the metrics).

use std::time::{Duration, Instant};

use super::backends::Backends;
use super::{Site, curl, route};
use crate::peers::Dataplane;

fn hup(dp: &Dataplane) {
    let pid = dp.child_id().expect("running");
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).expect("pid")).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).expect("SIGHUP");
}

/// Rewrites the `[proxy]` part of `dp`'s config file: the header the test
/// harness wrote, then `proxy_toml`.
fn rewrite(dp: &Dataplane, proxy_toml: &str) {
    let text = std::fs::read_to_string(&dp.config).expect("config");
    let (head, _) = text.split_once("[proxy]\n").expect("a [proxy] section");
    std::fs::write(
        &dp.config,
        format!("{head}[proxy]\nshutdown_timeout = \"2s\"\n{proxy_toml}"),
    )
    .expect("write config");
}

/// Waits until `host` answers `want` (a reload is applied asynchronously to SIGHUP).
fn wait_code(proxy: std::net::SocketAddr, ca: &str, host: &str, want: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = curl(proxy, ca, host, "/", &[]);
        if code == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{host} never answered {want} (last {code} {body})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metric(dp: &Dataplane, line: &str) -> bool {
    let (_, text) = crate::support::curl(&[&dp.metrics]);
    text.lines().any(|l| l == line)
}

fn sighup_applies_the_file_and_a_bad_file_changes_nothing(io: &str) {
    let site = Site::new();
    let b = Backends::new();
    let one = b.http("one");
    let two = b.http("two");
    let cert = "certificate = \"site\"";
    let first = format!(
        "{}{}",
        route("a.l7.test", one, cert),
        route("s.l7.test", one, cert)
    );
    let (dp, proxy) = site.start(io, &first);
    let ca = site.pki.ca();
    let pid = dp.status()["pid"].as_u64().expect("pid");
    let proxy_toml = |routes: &str| {
        let text = std::fs::read_to_string(&dp.config).expect("config");
        // The listener and certificate lines the harness wrote, new routes.
        let start = text.find("certificate_authorities").expect("proxy body");
        let end = text.find("[[proxy.routes]]").expect("routes");
        format!("{}{routes}", &text[start..end])
    };
    let base = proxy_toml("");
    super::add_l7(&dp, "api.l7.test", two, &[]);
    assert!(wait_code(proxy, &ca, "a.l7.test", 200).starts_with("backend one"));

    // A long HTTP/2 stream, open across the reload.
    let stream = {
        let ca = ca.clone();
        std::thread::spawn(move || curl(proxy, &ca, "s.l7.test", "/slow?ms=2500", &["--http2"]))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while dp.status()["listeners"][0]["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|r| r["hostname"] != "s.l7.test" || r["connections_active"] == 0)
    {
        assert!(Instant::now() < deadline, "the stream never opened");
        std::thread::sleep(Duration::from_millis(20));
    }

    // a.l7.test moves to backend two, b.l7.test appears; SIGHUP.
    rewrite(
        &dp,
        &format!(
            "{base}{}{}{}",
            route("a.l7.test", two, cert),
            route("b.l7.test", two, cert),
            route("s.l7.test", one, cert)
        ),
    );
    hup(&dp);
    assert!(wait_code(proxy, &ca, "b.l7.test", 200).starts_with("backend two"));
    assert!(wait_code(proxy, &ca, "a.l7.test", 200).starts_with("backend two"));
    let (code, body) = stream.join().expect("stream");
    assert_eq!((code, body.as_str()), (200, "slow"), "the open stream");
    let (code, body) = curl(proxy, &ca, "api.l7.test", "/", &[]);
    assert_eq!(code, 200, "the API's route survives a reload: {body}");
    assert_eq!(dp.status()["pid"].as_u64(), Some(pid), "same process");
    assert_eq!(dp.listen("public"), proxy, "the listener was not moved");
    assert!(metric(
        &dp,
        "mc_dataplane_config_reloads_total{result=\"ok\"} 1"
    ));

    // Bad files: a syntax error, a route naming a missing certificate, a
    // listener address that cannot be bound. Each is refused, by SIGHUP and
    // by mcctl, and changes nothing.
    let held = std::net::TcpListener::bind(("127.0.0.1", crate::peers::free_port())).expect("bind");
    let taken = held.local_addr().expect("addr");
    let bad = [
        ("[[proxy.routes]\n".to_owned(), "not valid TOML"),
        (
            format!(
                "{base}{}",
                route("c.l7.test", two, "certificate = \"missing\"")
            ),
            "missing",
        ),
        (
            format!("{base}[[proxy.listeners]]\nname = \"more\"\naddress = \"{taken}\"\n"),
            "cannot listen",
        ),
    ];
    for (i, (text, why)) in bad.iter().enumerate() {
        rewrite(&dp, text);
        hup(&dp);
        let out = dp.mcctl(&["proxy", "reload"]);
        assert!(!out.status.success(), "bad file {i} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "bad file {i}: {err}");
        let failed = format!(
            "mc_dataplane_config_reloads_total{{result=\"failed\"}} {}",
            2 * (i + 1)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !metric(&dp, &failed) {
            assert!(Instant::now() < deadline, "no `{failed}`");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(metric(&dp, "mc_dataplane_config_reload_failing 1"));
        for host in ["a.l7.test", "b.l7.test", "api.l7.test"] {
            let (code, body) = curl(proxy, &ca, host, "/", &[]);
            assert_eq!(code, 200, "{host} after bad file {i}: {body}");
        }
        let (code, _) = curl(proxy, &ca, "c.l7.test", "/", &[]);
        assert_ne!(code, 200, "c.l7.test from bad file {i}");
    }
    assert_eq!(dp.status()["pid"].as_u64(), Some(pid));

    // mcctl proxy reload: b.l7.test leaves the file, c.l7.test arrives.
    rewrite(&dp, &format!("{base}{}", route("c.l7.test", one, cert)));
    let out = dp.ok(&["proxy", "reload"]);
    assert!(out.contains("reloaded"), "{out}");
    let (code, body) = curl(proxy, &ca, "c.l7.test", "/", &[]);
    assert_eq!(code, 200, "{body}");
    let (code, _) = curl(proxy, &ca, "b.l7.test", "/", &[]);
    assert_ne!(code, 200, "a route gone from the file stops answering");
    let listed = dp.ok(&["proxy", "routes", "list"]);
    assert!(
        listed.contains("api.l7.test") && !listed.contains("b.l7.test"),
        "{listed}"
    );
    assert!(metric(&dp, "mc_dataplane_config_reload_failing 0"));
}

both_drivers!(sighup_applies_the_file_and_a_bad_file_changes_nothing);
