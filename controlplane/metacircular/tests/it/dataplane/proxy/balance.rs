//! L4 balancing and health: a TCP health check takes a dead backend out
//! before any connection tries it; consistent hashing keeps each client
//! address (127/8 sources) on its backend across table swaps.

use std::time::{Duration, Instant};

use super::ip;
use super::routing::NamedBackend;
use crate::peers::{Dataplane, exchange, free_port};

/// The route's backends in `proxy status --json`.
fn backends(dp: &Dataplane, host: &str) -> Vec<serde_json::Value> {
    let status = dp.status();
    status["listeners"][0]["routes"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["hostname"] == host))
        .and_then(|r| r["backends"].as_array().cloned())
        .unwrap_or_default()
}

/// Waits until `backend` of `host` shows `up` (and, when down, `reason`).
fn wait_backend(dp: &Dataplane, host: &str, backend: &str, up: bool, reason: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let bs = backends(dp, host);
        let b = bs.iter().find(|b| b["address"] == backend);
        if b.is_some_and(|b| b["up"] == up && (up || b["down_reason"] == reason)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{backend} never became up={up}: {bs:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn failures(dp: &Dataplane, host: &str) -> u64 {
    let status = dp.status();
    status["listeners"][0]["routes"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["hostname"] == host))
        .and_then(|r| r["backend_connect_failures"].as_u64())
        .unwrap_or(0)
}

fn l4_tcp_health_check_and_consistent_hashing(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = NamedBackend::start("backend-a");
    let b = NamedBackend::start("backend-b");
    let c = NamedBackend::start("backend-c");
    let dead = free_port();
    let listen = free_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &format!("[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n"),
    );
    let proxy = dp.listen("public");
    let addr = |p: u16| format!("127.0.0.1:{p}");
    let (pa, pb, pc, pd) = (addr(a.port), addr(b.port), addr(c.port), addr(dead));

    // A dead backend between two live ones: the check takes it out.
    dp.ok(&[
        "proxy",
        "routes",
        "add",
        "hc.test",
        "--backend",
        &pa,
        "--backend",
        &pd,
        "--backend",
        &pb,
        "--health-check",
        "tcp",
        "--check-interval",
        "200ms",
        "--check-timeout",
        "150ms",
        "--check-fall",
        "1",
    ]);
    wait_backend(&dp, "hc.test", &pd, false, "check");
    let before = failures(&dp, "hc.test");
    let seen: Vec<String> = (0..12)
        .map(|_| {
            let out = exchange(proxy, ip(1), b"", Some("hc.test")).expect("through the proxy");
            String::from_utf8_lossy(&out).into_owned()
        })
        .collect();
    assert!(
        seen.iter().all(|s| s == "backend-a" || s == "backend-b"),
        "{seen:?}"
    );
    assert!(seen.iter().any(|s| s == "backend-a") && seen.iter().any(|s| s == "backend-b"));
    assert_eq!(
        failures(&dp, "hc.test"),
        before,
        "no connection tried the backend its check took out"
    );
    let listing = dp.ok(&["proxy", "routes", "list"]);
    assert!(listing.contains("check tcp every 200ms"), "{listing}");

    // Consistent hashing of the client address, across table swaps.
    let hashed = |extra: &[&str]| {
        let mut args = vec![
            "proxy",
            "routes",
            "add",
            "hash.test",
            "--replace",
            "--balance",
            "hash",
            "--backend",
            &pa,
            "--backend",
            &pb,
            "--backend",
            &pc,
        ];
        args.extend_from_slice(extra);
        dp.ok(&args);
    };
    hashed(&[]);
    let sources: Vec<u8> = (2..=25).collect();
    let answer = |k: u8| {
        let out = exchange(proxy, ip(k), b"", Some("hash.test")).expect("through the proxy");
        String::from_utf8_lossy(&out).into_owned()
    };
    let first: Vec<String> = sources.iter().map(|k| answer(*k)).collect();
    let distinct: std::collections::BTreeSet<_> = first.iter().collect();
    assert!(
        distinct.len() >= 2,
        "clients spread over the backends: {first:?}"
    );
    for swap in [
        &["--idle-timeout", "1m"][..],
        &["--idle-timeout", "2m"][..],
        &["--connect-timeout", "3s"][..],
    ] {
        let generation = dp.status()["snapshot_generation"].as_u64();
        hashed(swap);
        assert_ne!(
            dp.status()["snapshot_generation"].as_u64(),
            generation,
            "a new table"
        );
        let again: Vec<String> = sources.iter().map(|k| answer(*k)).collect();
        assert_eq!(
            again, first,
            "every client stays on its backend after {swap:?}"
        );
    }
    let listing: serde_json::Value =
        serde_json::from_str(&dp.ok(&["--json", "proxy", "routes", "list"])).expect("json");
    let route = listing
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["hostname"] == "hash.test"))
        .expect("listed");
    assert_eq!(route["balance"], "hash", "{route}");
}
both_drivers!(l4_tcp_health_check_and_consistent_hashing);
