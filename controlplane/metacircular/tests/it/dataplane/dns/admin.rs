//! Zones and records through `mcctl dns`: the admin API, validation,
//! persistence, changes under query load, and DNS on a dev node.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{dig, free_dns_port, rcode, wire_query};
use crate::peers::Dataplane;

/// `mcctl dns …` against a running data plane: zones and records through
/// the admin API, validation, config-owned refusals, restart persistence.
fn admin_api_and_persistence(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_dns_port();
    let mut dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "[dns]\nlisten = [\"127.0.0.1:{port}\"]\n[[dns.zones]]\nname = \"cfg.test\"\nrecords = [\"www A 192.0.2.1\"]\n"
        ),
    );
    dp.ok(&[
        "dns",
        "zones",
        "create",
        "svc.test",
        "--ns",
        "ns1.svc.test",
        "--minimum",
        "60",
    ]);
    dp.ok(&[
        "dns",
        "records",
        "add",
        "svc.test",
        "ns1",
        "A",
        "192.0.2.53",
    ]);
    dp.ok(&[
        "dns",
        "records",
        "add",
        "svc.test",
        "api",
        "A",
        "192.0.2.10",
        "--ttl",
        "30",
    ]);
    dp.ok(&["dns", "records", "add", "svc.test", "@", "MX", "10", "mail"]);
    dp.ok(&[
        "dns",
        "records",
        "add",
        "svc.test",
        "@",
        "TXT",
        "\"hello world\"",
    ]);
    dp.ok(&[
        "dns",
        "records",
        "add",
        "cfg.test",
        "api",
        "A",
        "192.0.2.11",
    ]);
    let d = dig(port, &["api.svc.test", "A"]);
    assert!(
        d.status == "NOERROR" && d.answer == ["api.svc.test. 30 IN A 192.0.2.10"],
        "{}",
        d.raw
    );
    let d = dig(port, &["svc.test", "TXT"]);
    assert_eq!(d.answer_data(), ["TXT \"hello world\""], "{}", d.raw);
    assert_eq!(
        dig(port, &["api.cfg.test", "A"]).answer_data(),
        ["A 192.0.2.11"]
    );

    let zones: serde_json::Value =
        serde_json::from_str(&dp.ok(&["--json", "dns", "zones", "list"])).expect("json");
    let serial_of = |z: &serde_json::Value, name: &str| {
        z.as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == name))
            .and_then(|x| x["serial"].as_u64())
            .expect("serial")
    };
    let serial = serial_of(&zones, "svc.test");
    // The SOA on the wire carries the stored serial.
    let soa = dig(port, &["svc.test", "SOA"]);
    assert!(
        soa.answer[0].contains(&format!(" {serial} ")),
        "{}",
        soa.raw
    );

    // Bad input: a clear error, nothing changed.
    for (args, needle) in [
        (
            vec!["dns", "records", "add", "svc.test", "bad", "A", "300.1.1.1"],
            "not valid A",
        ),
        (
            vec![
                "dns",
                "records",
                "add",
                "svc.test",
                "bad",
                "AAAA",
                "192.0.2.1",
            ],
            "AAAA",
        ),
        (
            vec!["dns", "records", "add", "svc.test", "api", "CNAME", "www"],
            "CNAME",
        ),
        (
            vec!["dns", "records", "add", "svc.test", "a b", "A", "192.0.2.1"],
            "label",
        ),
        (
            vec![
                "dns",
                "records",
                "add",
                "svc.test",
                "x",
                "A",
                "192.0.2.1",
                "--ttl",
                "99999999",
            ],
            "ttl",
        ),
        (
            vec!["dns", "records", "add", "svc.test", "x", "SOA", "whatever"],
            "SOA",
        ),
        (
            vec!["dns", "records", "add", "svc.test", "x", "BOGUS", "1"],
            "unknown record type `BOGUS` (A, AAAA, CNAME",
        ),
        (
            vec!["dns", "records", "list", "svc.test", "--type", "mx2"],
            "unknown record type `mx2`",
        ),
        (
            vec![
                "dns",
                "records",
                "add",
                "nosuch.test",
                "x",
                "A",
                "192.0.2.1",
            ],
            "no zone",
        ),
        (
            vec!["dns", "records", "remove", "svc.test", "@", "NS"],
            "NS",
        ),
        (vec!["dns", "zones", "create", "svc.test"], "already exists"),
        (vec!["dns", "zones", "create", "tld"], "two labels"),
        (vec!["dns", "zones", "delete", "cfg.test"], "config file"),
        (
            vec!["dns", "records", "remove", "cfg.test", "www", "A"],
            "config file",
        ),
    ] {
        let out = dp.mcctl(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            err.to_lowercase().contains(&needle.to_lowercase()),
            "{args:?}: {err}"
        );
    }
    let zones: serde_json::Value =
        serde_json::from_str(&dp.ok(&["--json", "dns", "zones", "list"])).expect("json");
    assert_eq!(
        serial_of(&zones, "svc.test"),
        serial,
        "refused changes leave the serial alone"
    );

    // Idempotent upsert; TTL change bumps; remove one value, then a whole RRset.
    dp.ok(&[
        "dns",
        "records",
        "add",
        "svc.test",
        "api",
        "A",
        "192.0.2.10",
        "--ttl",
        "30",
    ]);
    let zones: serde_json::Value =
        serde_json::from_str(&dp.ok(&["--json", "dns", "zones", "list"])).expect("json");
    assert_eq!(
        serial_of(&zones, "svc.test"),
        serial,
        "an identical upsert changes nothing"
    );
    dp.ok(&[
        "dns",
        "records",
        "add",
        "svc.test",
        "api",
        "A",
        "192.0.2.12",
    ]);
    dp.ok(&[
        "dns",
        "records",
        "remove",
        "svc.test",
        "api",
        "A",
        "192.0.2.10",
    ]);
    assert_eq!(
        dig(port, &["api.svc.test", "A"]).answer_data(),
        ["A 192.0.2.12"]
    );
    let listing = dp.ok(&["dns", "records", "list", "svc.test"]);
    assert!(
        listing.contains("10 mail.svc.test.") && listing.contains("api"),
        "{listing}"
    );
    let listing = dp.ok(&["dns", "records", "list", "cfg.test"]);
    assert!(
        listing.contains("config") && listing.contains("api"),
        "origins shown: {listing}"
    );

    // Restart keeps everything; the config zone is re-applied.
    dp.restart();
    assert_eq!(
        dig(port, &["api.svc.test", "A"]).answer_data(),
        ["A 192.0.2.12"]
    );
    assert_eq!(
        dig(port, &["api.cfg.test", "A"]).answer_data(),
        ["A 192.0.2.11"]
    );
    assert_eq!(
        dig(port, &["www.cfg.test", "A"]).answer_data(),
        ["A 192.0.2.1"]
    );
    dp.ok(&["dns", "records", "remove", "svc.test", "api", "A"]);
    assert_eq!(dig(port, &["api.svc.test", "A"]).status, "NXDOMAIN");
    dp.ok(&["dns", "zones", "delete", "svc.test"]);
    assert_eq!(dig(port, &["api.svc.test", "A"]).status, "REFUSED");

    let status: serde_json::Value =
        serde_json::from_str(&dp.ok(&["--json", "dns", "status"])).expect("json");
    assert_eq!(status["listen"][0], format!("127.0.0.1:{port}"), "{status}");
    assert!(
        status["responses"]["NOERROR"].as_u64().unwrap_or(0) > 0,
        "{status}"
    );
    let (code, metrics) = crate::support::curl(&[&dp.metrics]);
    assert_eq!(code, 200);
    assert!(
        metrics.contains("mc_dns_responses_total{rcode=\"NOERROR\"}")
            || metrics.contains("dns_responses_total{rcode=\"NOERROR\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("dns_answer_seconds_bucket"), "{metrics}");
}
both_drivers!(admin_api_and_persistence);

/// Records changed through mcctl while queries run: every query answered,
/// and each change visible on the next query.
fn changes_under_load(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_dns_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "[dns]\nlisten = [\"127.0.0.1:{port}\"]\n[[dns.zones]]\nname = \"load.test\"\nrecords = [\"stable A 192.0.2.1\"]\n"
        ),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for t in 0..2_u16 {
        let (stop, sent, bad) = (stop.clone(), sent.clone(), bad.clone());
        threads.push(std::thread::spawn(move || {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
            s.set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            let mut id = t * 10_000;
            let mut buf = [0_u8; 1500];
            while !stop.load(Ordering::Relaxed) {
                id = id.wrapping_add(1);
                let q = wire_query(id, "stable.load.test", 1, 0);
                s.send_to(&q, ("127.0.0.1", port)).expect("send");
                sent.fetch_add(1, Ordering::Relaxed);
                match s.recv(&mut buf) {
                    Ok(n)
                        if n > 12
                            && u16::from_be_bytes([buf[0], buf[1]]) == id
                            && rcode(&buf[..n]) == 0
                            && buf[7] == 1 => {}
                    _ => {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    for i in 0..15 {
        let name = format!("n{i}");
        dp.ok(&[
            "dns",
            "records",
            "add",
            "load.test",
            &name,
            "A",
            &format!("192.0.2.{}", i + 10),
        ]);
        let d = dig(port, &[&format!("{name}.load.test"), "A"]);
        assert_eq!(
            d.answer_data(),
            [format!("A 192.0.2.{}", i + 10)],
            "visible at once: {}",
            d.raw
        );
        if i % 3 == 0 {
            dp.ok(&["dns", "records", "remove", "load.test", &name, "A"]);
            assert_eq!(
                dig(port, &[&format!("{name}.load.test"), "A"]).status,
                "NXDOMAIN"
            );
        }
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("query thread");
    }
    let (sent, bad) = (sent.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    eprintln!(
        "changes under load ({io}): {sent} queries during 25 changes in {took:?}, {bad} failed"
    );
    assert!(sent > 100, "the load ran: {sent}");
    assert_eq!(bad, 0, "no query may fail during changes");
}
both_drivers!(changes_under_load);

/// `mcd dev` serves DNS on `dns.listen` (UDP and TCP), and `mcctl dns` works with no flags.
#[test]
fn dev_serves_dns() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let dev = crate::support::Dev::start(cwd.path(), None);
    let listen: SocketAddr = dev.endpoints["dns"]["listen"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("dns.listen in endpoints.json");
    assert_eq!(
        dev.endpoints["dns"]["admin_socket"], dev.endpoints["dataplane"]["admin_socket"],
        "one data-plane socket"
    );
    let mcctl = |args: &[&str]| {
        let out = crate::support::run(&crate::support::mcctl(), args, cwd.path());
        assert!(
            out.status.success(),
            "mcctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    mcctl(&["dns", "zones", "create", "dev.test"]);
    mcctl(&[
        "dns",
        "records",
        "add",
        "dev.test",
        "www",
        "A",
        "192.0.2.44",
    ]);
    let d = dig(listen.port(), &["www.dev.test", "A"]);
    assert_eq!(d.answer_data(), ["A 192.0.2.44"], "{}", d.raw);
    let d = dig(listen.port(), &["www.dev.test", "A", "+tcp"]);
    assert_eq!(d.answer_data(), ["A 192.0.2.44"], "{}", d.raw);
    assert!(mcctl(&["dns", "status"]).contains(&listen.to_string()));
    let (status, _) = dev.stop(rustix::process::Signal::TERM);
    assert!(status.success());
}
