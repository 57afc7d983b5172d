//! L7 balancing and health with curl and hyper backends: an HTTP health
//! check and passive ejection take a killed backend out (the failures before
//! the ejection counted, none after it) and bring it back when it returns;
//! least-request routing favours a fast backend over a slow one; hashing a
//! header keeps its clients on one backend whatever their address.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use super::backends::Backends;
use super::{Site, add_l7};
use crate::peers::Dataplane;

/// `n` GETs of `/` on one curl run from `source` with `extra` flags: each
/// answer's backend name, or `ERR <status>`.
pub(super) fn requests(
    proxy: std::net::SocketAddr,
    ca: &str,
    host: &str,
    source: &str,
    n: usize,
    extra: &[&str],
) -> Vec<String> {
    let url = format!("https://{host}:{}/", proxy.port());
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            ca,
            "--interface",
            source,
        ])
        .arg("--resolve")
        .arg(format!("{host}:{}:127.0.0.1", proxy.port()))
        .args(extra)
        .args(["-w", "|%{http_code}\\n"])
        .args((0..n).map(|_| url.as_str()))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut answers = Vec::new();
    let mut body = String::new();
    for line in text.lines() {
        match line.strip_prefix('|') {
            Some("200") => {
                // "backend NAME /"
                let name = body.split_whitespace().nth(1).unwrap_or("?").to_owned();
                answers.push(name);
                body.clear();
            }
            Some(code) => {
                answers.push(format!("ERR {code}"));
                body.clear();
            }
            None => body.push_str(line),
        }
    }
    answers
}

pub(super) fn tally(answers: &[String]) -> BTreeMap<String, usize> {
    let mut t = BTreeMap::new();
    for a in answers {
        *t.entry(a.clone()).or_default() += 1;
    }
    t
}

/// The status line of `backend` on `host`.
pub(super) fn backend(dp: &Dataplane, host: &str, backend: &str) -> serde_json::Value {
    let status = dp.status();
    status["listeners"][0]["routes"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["hostname"] == host))
        .and_then(|r| r["backends"].as_array())
        .and_then(|bs| bs.iter().find(|b| b["address"] == backend).cloned())
        .unwrap_or_default()
}

fn killed_backend_is_ejected_and_readmitted(io: &str) {
    let site = Site::new();
    let backends = Backends::new();
    let ports: Vec<u16> = (0..3).map(|_| crate::ports::free_port()).collect();
    let names = ["one", "two", "three"];
    let mut handles: Vec<_> = names
        .iter()
        .zip(&ports)
        .map(|(n, p)| backends.http_at(n, *p, Duration::ZERO))
        .collect();
    let (dp, proxy) = site.start(io, "");
    let addr = |p: u16| format!("127.0.0.1:{p}");
    let (b1, b2) = (addr(ports[1]), addr(ports[2]));
    let out = add_l7(
        &dp,
        "hc.l7.test",
        ports[0],
        &[
            "--backend",
            &b1,
            "--backend",
            &b2,
            "--health-check",
            "http",
            "--check-path",
            "/healthz",
            "--check-interval",
            "200ms",
            "--check-timeout",
            "150ms",
            "--check-rise",
            "2",
            "--check-fall",
            "2",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let ca = site.pki.ca();
    let get = |n: usize| requests(proxy, &ca, "hc.l7.test", "127.0.0.1", n, &[]);
    let t = tally(&get(30));
    assert_eq!(t.len(), 3, "all three serve, nothing fails: {t:?}");

    // Killed: requests until it shows down fail at most while pooled
    // connections to it break; after that none fails and none reaches it.
    handles[1].abort();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut before = Vec::new();
    while backend(&dp, "hc.l7.test", &b1)["up"] != false {
        assert!(Instant::now() < deadline, "never taken out");
        before.extend(get(3));
    }
    let failed_before = before.iter().filter(|a| a.starts_with("ERR")).count();
    eprintln!(
        "failed requests before the ejection: {failed_before} of {}",
        before.len()
    );
    assert!(
        failed_before <= 4,
        "one per broken pooled connection at most: {before:?}"
    );
    let after = get(60);
    let t = tally(&after);
    assert!(t.contains_key("one") && t.contains_key("three"), "{t:?}");
    assert!(
        !t.contains_key("two"),
        "the killed backend gets nothing: {t:?}"
    );
    assert!(
        t.keys().all(|k| !k.starts_with("ERR")),
        "zero failures after: {t:?}"
    );
    let down = backend(&dp, "hc.l7.test", &b1);
    assert!(
        down["down_reason"] == "check" || down["down_reason"] == "ejected",
        "{down}"
    );
    let (code, metrics) = crate::support::curl(&[&dp.metrics]);
    assert_eq!(code, 200);
    let up_line = |v: u8| {
        format!(
            "proxy_backend_up{{listener=\"public\",route=\"hc.l7.test\",pool=\"\",backend=\"{b1}\"}} {v}"
        )
    };
    assert!(metrics.contains(&up_line(0)), "{metrics}");

    // Back on its port: the check readmits it.
    handles[1] = backends.http_at("two", ports[1], Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(20);
    while backend(&dp, "hc.l7.test", &b1)["up"] != true {
        assert!(Instant::now() < deadline, "never readmitted");
        std::thread::sleep(Duration::from_millis(100));
    }
    let t = tally(&get(30));
    assert!(t.contains_key("two"), "readmitted: {t:?}");
    assert!(t.keys().all(|k| !k.starts_with("ERR")), "{t:?}");
    let (_, metrics) = crate::support::curl(&[&dp.metrics]);
    assert!(metrics.contains(&up_line(1)), "{metrics}");
    assert!(
        metrics.contains("proxy_backend_ejections_total"),
        "{metrics}"
    );
    drop(handles);
}
both_drivers!(killed_backend_is_ejected_and_readmitted);

fn least_request_favours_the_fast_backend_and_header_hashing_sticks(io: &str) {
    let site = Site::new();
    let backends = Backends::new();
    let (fast, slow) = (crate::ports::free_port(), crate::ports::free_port());
    let _fast = backends.http_at("fast", fast, Duration::ZERO);
    let _slow = backends.http_at("slow", slow, Duration::from_millis(400));
    let (dp, proxy) = site.start(io, "");
    let slow_addr = format!("127.0.0.1:{slow}");
    let out = add_l7(
        &dp,
        "least.l7.test",
        fast,
        &["--backend", &slow_addr, "--balance", "least"],
    );
    assert!(out.status.success(), "{out:?}");
    let ca = site.pki.ca();
    // Four clients at once: while the slow backend holds a request the fast
    // one has none outstanding, so it takes the next.
    let answers: Vec<String> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..4)
            .map(|_| s.spawn(|| requests(proxy, &ca, "least.l7.test", "127.0.0.1", 15, &[])))
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().expect("client"))
            .collect()
    });
    let t = tally(&answers);
    let (f, sl) = (
        t.get("fast").copied().unwrap_or(0),
        t.get("slow").copied().unwrap_or(0),
    );
    assert_eq!(f + sl, 60, "{t:?}");
    assert!(
        f > 2 * sl,
        "least outstanding favours the fast backend: {t:?}"
    );

    // Hashing a header: one user, many addresses, one backend.
    let ports: Vec<u16> = (0..3).map(|_| crate::ports::free_port()).collect();
    let _hs: Vec<_> = ["h1", "h2", "h3"]
        .iter()
        .zip(&ports)
        .map(|(n, p)| backends.http_at(n, *p, Duration::ZERO))
        .collect();
    let (h2, h3) = (
        format!("127.0.0.1:{}", ports[1]),
        format!("127.0.0.1:{}", ports[2]),
    );
    let out = add_l7(
        &dp,
        "hash.l7.test",
        ports[0],
        &[
            "--backend",
            &h2,
            "--backend",
            &h3,
            "--balance",
            "hash",
            "--hash-header",
            "x-user",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let mut homes = std::collections::BTreeSet::new();
    for user in [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    ] {
        let header = format!("x-user: {user}");
        let seen: Vec<String> = (2..=5)
            .flat_map(|k| {
                requests(
                    proxy,
                    &ca,
                    "hash.l7.test",
                    &format!("127.0.0.{k}"),
                    2,
                    &["-H", &header],
                )
            })
            .collect();
        let t = tally(&seen);
        assert_eq!(
            t.len(),
            1,
            "{user} stays on one backend from every address: {t:?}"
        );
        homes.extend(t.into_keys());
    }
    assert!(
        homes.len() >= 2,
        "users spread over the backends: {homes:?}"
    );
    // A hash header without the hash policy is refused, naming the field.
    let out = dp.mcctl(&[
        "proxy",
        "routes",
        "add",
        "bad.l7.test",
        "--backend",
        &h2,
        "--hash-header",
        "x-user",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hash_header"),
        "{out:?}"
    );
}
both_drivers!(least_request_favours_the_fast_backend_and_header_hashing_sticks);
