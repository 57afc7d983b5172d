//! L7 request limits: a client over the route's rate gets 429 with
//! Retry-After while another client is served; a route at its cap of
//! requests in flight answers 503 with Retry-After, and serves again once
//! the running request ends.

use std::process::Command;

use super::backends::Backends;
use super::{Site, add_l7, curl, route};

/// `n` requests on one connection from `source`: each `status retry-after`.
fn burst(proxy: std::net::SocketAddr, ca: &str, host: &str, source: &str, n: usize) -> Vec<String> {
    let url = format!("https://{host}:{}/", proxy.port());
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "--http2",
            "--cacert",
            ca,
            "--interface",
            source,
        ])
        .arg("--resolve")
        .arg(format!("{host}:{}:127.0.0.1", proxy.port()))
        .args(["-w", "%{http_code} %header{retry-after}\\n"])
        .args((0..n).flat_map(|_| ["-o", "/dev/null", url.as_str()]))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .collect()
}

fn rate_limit_per_client_and_in_flight_cap(io: &str) {
    let site = Site::new();
    let backends = Backends::new();
    let plain = backends.http("plain");
    let routes = route(
        "rate.l7.test",
        plain,
        "certificate = \"site\", rate_per_second = 1, rate_burst = 2",
    );
    let (dp, proxy) = site.start(io, &routes);
    let ca = site.pki.ca();

    // One request a second after a burst of two: six at once from one
    // client leave at least three refused (more only if a second passed).
    let a = burst(proxy, &ca, "rate.l7.test", "127.0.0.1", 6);
    assert_eq!(a.len(), 6, "{a:?}");
    assert_eq!(&a[..2], ["200", "200"], "the burst is served: {a:?}");
    let refused: Vec<&String> = a.iter().filter(|s| s.starts_with("429")).collect();
    assert!(refused.len() >= 3, "{a:?}");
    for r in refused {
        let secs: u64 = r
            .strip_prefix("429 ")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("429 with Retry-After: {r:?}"));
        assert!((1..=2).contains(&secs), "{r}");
    }
    // Another client address is unaffected.
    let b = burst(proxy, &ca, "rate.l7.test", "127.0.0.2", 2);
    assert_eq!(b, ["200", "200"], "{b:?}");

    // At most one request in flight on a route set through mcctl.
    let out = add_l7(&dp, "cap.l7.test", plain, &["--max-requests", "1"]);
    assert!(out.status.success(), "{out:?}");
    let slow = {
        let ca = ca.clone();
        // It may itself find a polling request in the only place: retried.
        std::thread::spawn(move || {
            let mut r = (0, String::new());
            for _ in 0..50 {
                r = curl(proxy, &ca, "cap.l7.test", "/slow?ms=3000", &[]);
                if r.0 != 503 {
                    break;
                }
            }
            r
        })
    };
    // While the slow request runs (it takes the only place), others are
    // refused; poll until the slow one is in.
    let mut busy = None;
    for _ in 0..100 {
        let r = burst(proxy, &ca, "cap.l7.test", "127.0.0.1", 1);
        if r.first().is_some_and(|s| s.starts_with("503")) {
            busy = r.first().cloned();
            break;
        }
        if slow.is_finished() {
            break;
        }
    }
    let (code, body) = slow.join().expect("slow");
    assert_eq!(
        busy.as_deref(),
        Some("503 1"),
        "503 with Retry-After: 1 (the slow request: {code} {body})"
    );
    assert_eq!((code, body.as_str()), (200, "slow"));
    assert_eq!(
        burst(proxy, &ca, "cap.l7.test", "127.0.0.1", 2),
        ["200", "200"]
    );

    // Limits are refused by name out of range, and nothing changes.
    let out = add_l7(
        &dp,
        "cap.l7.test",
        plain,
        &["--replace", "--rate-limit", "5000"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("rate_per_second"),
        "{err}"
    );
    let listing = dp.ok(&["proxy", "routes", "list"]);
    assert!(listing.contains("cap.l7.test"), "{listing}");
}
both_drivers!(rate_limit_per_client_and_in_flight_cap);
