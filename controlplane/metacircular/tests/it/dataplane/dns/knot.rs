//! Knot DNS as a peer: the forwarding upstream (relay, cache, SERVFAIL) and
//! a zone-transfer secondary (TSIG AXFR, NOTIFY, identical answers).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{conformance_toml, dig, free_dns_port};
use crate::peers::Dataplane;

/// A Knot DNS server (Debian `knot`) with its own config and storage.
pub(super) struct Knot {
    child: Child,
    pub(super) port: u16,
}

/// The TSIG secret shared with Knot in the transfer test (base64 of 32 bytes).
pub(super) const XFR_SECRET: &str = "bWNucy10ZXN0LXRzaWcta2V5LTMyLWJ5dGVzLWxvbmchIQ==";

impl Knot {
    fn start(dir: &Path, body: &str) -> Self {
        Self::start_on(dir, free_dns_port(), body)
    }

    pub(super) fn start_on(dir: &Path, port: u16, body: &str) -> Self {
        let d = dir.display();
        std::fs::create_dir_all(dir.join("db")).expect("knot dir");
        let conf = format!(
            "server:\n    listen: 127.0.0.1@{port}\n    rundir: \"{d}\"\n    background-workers: 1\n    udp-workers: 1\n    tcp-workers: 1\n\
             log:\n  - target: stderr\n    any: warning\n\
             database:\n    storage: \"{d}/db\"\n\
             template:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n\
             {body}"
        );
        let path = dir.join("knot.conf");
        std::fs::write(&path, conf).expect("knot.conf");
        let child = Command::new("/usr/sbin/knotd")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("knotd is installed (scripts/test installs knot)");
        let me = Self { child, port };
        crate::peers::wait_port(port);
        me
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(super) fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Forwarding against Knot as the upstream: relayed, cached, expiring with
/// the TTL, SERVFAIL once the upstream stops answering; recursion only for
/// allowed clients.
fn forwarding_through_knot(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let kdir = dir.path().join("knot");
    std::fs::create_dir_all(&kdir).expect("dir");
    std::fs::write(
        kdir.join("up.test.zone"),
        "$ORIGIN up.test.\n$TTL 3600\n@ SOA ns.up.test. h.up.test. 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\n\
         cached 300 A 198.51.100.1\nshort 2 A 198.51.100.2\nbig 60 TXT \"{}\" \"{}\" \"{}\" \"{}\" \"{}\" \"{}\"\n",
    )
    .expect("zone");
    let zone_text = std::fs::read_to_string(kdir.join("up.test.zone")).expect("zone");
    let long = "z".repeat(250);
    std::fs::write(kdir.join("up.test.zone"), zone_text.replace("{}", &long)).expect("zone");
    let mut knot = Knot::start(
        &kdir,
        "zone:\n  - domain: up.test\n    file: up.test.zone\n",
    );
    let port = free_dns_port();
    let _dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "[dns]\nlisten = [\"127.0.0.1:{port}\"]\nupstreams = [\"127.0.0.1:{}\"]\nupstream_timeout = \"500ms\"\n\
             recursion_allowed = [\"127.0.0.1/32\"]\n[[dns.zones]]\nname = \"local.test\"\nrecords = [\"www A 192.0.2.9\"]\n",
            knot.port
        ),
    );
    let endpoints = dir.path().join("endpoints.json");
    // The cache is per worker and SO_REUSEPORT picks the worker by source
    // address and port: a fixed source port keeps these queries on one worker.
    let src = format!("127.0.0.1#{}", free_dns_port());
    let dig = |port: u16, args: &[&str]| {
        let mut a = vec!["-b", src.as_str()];
        a.extend_from_slice(args);
        dig(port, &a)
    };
    let status = || -> serde_json::Value {
        let out = Command::new(crate::support::mcctl())
            .arg("--endpoints")
            .arg(&endpoints)
            .args(["--json", "dns", "status"])
            .output()
            .expect("mcctl");
        serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).expect("status json")
    };

    let d = dig(port, &["cached.up.test", "A"]);
    assert!(
        d.status == "NOERROR" && d.has_flag("ra") && !d.has_flag("aa"),
        "relayed, RA, no AA: {}",
        d.raw
    );
    assert_eq!(d.answer_data(), ["A 198.51.100.1"], "{}", d.raw);
    // Our own zone still answers authoritatively, with RA for this client.
    let own = dig(port, &["www.local.test", "A"]);
    assert!(own.has_flag("aa") && own.has_flag("ra"), "{}", own.raw);
    // Negative answers are relayed (and cached by the SOA minimum).
    let nx = dig(port, &["nope.up.test", "A"]);
    assert!(
        nx.status == "NXDOMAIN" && nx.authority.iter().any(|l| l.contains(" SOA ")),
        "{}",
        nx.raw
    );
    // TC from Knot → TCP to Knot; the client gets TC over UDP (too big for 1232), full over TCP.
    let big = self::dig(port, &["big.up.test", "TXT", "+tcp"]);
    assert!(
        big.status == "NOERROR" && big.answer.len() == 1,
        "{}",
        big.raw
    );
    // RD clear: no forwarding.
    assert_eq!(
        dig(port, &["cached.up.test", "A", "+norec"]).status,
        "REFUSED"
    );
    let misses = status()["cache_misses"].as_u64().unwrap_or(0);

    // Short TTL answer, then the upstream goes away.
    let d = dig(port, &["short.up.test", "A"]);
    assert_eq!(d.answer_data(), ["A 198.51.100.2"], "{}", d.raw);
    knot.stop();
    // Cached answers keep coming, their TTL counting down.
    let again = dig(port, &["cached.up.test", "A"]);
    assert_eq!(
        again.answer_data(),
        ["A 198.51.100.1"],
        "served from cache: {}",
        again.raw
    );
    let ttl: u32 = again.answer[0]
        .split_whitespace()
        .nth(1)
        .and_then(|t| t.parse().ok())
        .expect("ttl");
    assert!(ttl <= 300 && ttl > 250, "remaining TTL {ttl}");
    let s = status();
    assert!(s["cache_hits"].as_u64().unwrap_or(0) >= 1, "{s}");
    assert!(s["cache_entries"].as_u64().unwrap_or(0) >= 3, "{s}");
    assert!(
        s["cache_misses"].as_u64().unwrap_or(0) > misses.saturating_sub(1),
        "{s}"
    );
    // The 2 s answer expires; the upstream is gone: SERVFAIL, never cached.
    std::thread::sleep(Duration::from_millis(2500));
    let d = dig(port, &["short.up.test", "A"]);
    assert!(
        d.status == "SERVFAIL" && d.answer.is_empty() && d.has_flag("ra"),
        "{}",
        d.raw
    );
    let s = status();
    let up = &s["upstreams"][0];
    assert!(
        up["failures"].as_u64().unwrap_or(0) + up["timeouts"].as_u64().unwrap_or(0) >= 1,
        "{s}"
    );
    // Flush drops the cache: the 300 s answer is gone too.
    let out = Command::new(crate::support::mcctl())
        .arg("--endpoints")
        .arg(&endpoints)
        .args(["dns", "flush"])
        .output()
        .expect("mcctl");
    assert!(out.status.success());
    assert_eq!(dig(port, &["cached.up.test", "A"]).status, "SERVFAIL");
}
both_drivers!(forwarding_through_knot);

/// Knot as a secondary: AXFR with TSIG at start, NOTIFY + AXFR on change,
/// and the same answers as ours.
fn knot_secondary(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_dns_port();
    let knot_port = free_dns_port();
    let mut toml = conformance_toml(port);
    toml.push_str(&format!(
        "[[dns.tsig_keys]]\nname = \"xfr\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{XFR_SECRET}\"\n\
         [[dns.secondaries]]\naddress = \"127.0.0.1:{knot_port}\"\ntsig_key = \"xfr\"\nzones = [\"conf.test\"]\n"
    ));
    let dp = Dataplane::start(dir.path(), io, &toml);
    // Unsigned and wrongly signed transfers are refused.
    let d = dig(port, &["conf.test", "AXFR"]);
    assert!(
        d.raw.contains("Transfer failed") || d.status == "REFUSED",
        "{}",
        d.raw
    );
    let out = Command::new("kdig")
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "-y",
            "hmac-sha256:xfr:c2hvcnQtYnV0LXdyb25nLXNlY3JldC0xMjM0NTY3OA==",
            "conf.test",
            "AXFR",
        ])
        .output()
        .expect("kdig");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("192.0.2.1"),
        "bad key must not transfer: {text}"
    );
    // A correctly signed AXFR from the secondary's address works (kdig verifies our TSIG).
    let out = Command::new("kdig")
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "-y",
            &format!("hmac-sha256:xfr:{XFR_SECRET}"),
            "conf.test",
            "AXFR",
        ])
        .output()
        .expect("kdig");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("192.0.2.1") && !text.contains("WARNING") && !text.contains("failed"),
        "{text}"
    );

    let kdir = dir.path().join("knot");
    std::fs::create_dir_all(&kdir).expect("dir");
    // Knot listens on the secondary address we NOTIFY.
    let body = format!(
        "key:\n  - id: xfr\n    algorithm: hmac-sha256\n    secret: {XFR_SECRET}\n\
         remote:\n  - id: primary\n    address: 127.0.0.1@{port}\n    key: xfr\n\
         acl:\n  - id: notify\n    address: 127.0.0.1\n    key: xfr\n    action: notify\n\
         zone:\n  - domain: conf.test\n    master: primary\n    acl: notify\n"
    );
    let knot = Knot::start_on(&kdir, knot_port, &body);
    let serial = |p: u16| -> Option<String> {
        let d = dig(p, &["conf.test", "SOA", "+norec"]);
        d.answer
            .first()
            .and_then(|l| l.split_whitespace().nth(6).map(str::to_owned))
    };
    wait_until("Knot to transfer the zone", Duration::from_secs(20), || {
        serial(knot.port).is_some()
    });
    assert_eq!(serial(knot.port), serial(port));
    // The same answers as ours, for the conformance queries.
    let mut compared = 0;
    for q in [
        ["www.conf.test", "A"],
        ["conf.test", "NS"],
        ["conf.test", "MX"],
        ["nope.conf.test", "A"],
        ["www.conf.test", "MX"],
        ["alias.conf.test", "A"],
        ["chain1.conf.test", "A"],
        ["x.wild.conf.test", "A"],
        ["a.b.wild.conf.test", "TXT"],
        ["explicit.wild.conf.test", "A"],
        ["c.conf.test", "A"],
        ["host.sub.conf.test", "A"],
        ["_sip._tcp.conf.test", "SRV"],
        ["conf.test", "CAA"],
        ["WwW.CoNf.TeSt", "A"],
    ] {
        let ours = dig(port, &[q[0], q[1], "+norec"]);
        let theirs = dig(knot.port, &[q[0], q[1], "+norec"]);
        let mut a = ours.answer.clone();
        let mut b = theirs.answer.clone();
        a.sort();
        b.sort();
        assert_eq!(
            ours.status, theirs.status,
            "{q:?}\nours: {}\nknot: {}",
            ours.raw, theirs.raw
        );
        assert_eq!(a, b, "{q:?}\nours: {}\nknot: {}", ours.raw, theirs.raw);
        assert_eq!(ours.has_flag("aa"), theirs.has_flag("aa"), "{q:?}");
        if ours.status != "NOERROR" || ours.answer.is_empty() {
            assert_eq!(
                ours.authority, theirs.authority,
                "{q:?}\nours: {}\nknot: {}",
                ours.raw, theirs.raw
            );
        }
        compared += 1;
    }
    eprintln!("knot secondary ({io}): {compared} queries answered identically");
    // A change: NOTIFY, Knot transfers the new serial.
    dp.ok(&[
        "dns",
        "records",
        "add",
        "conf.test",
        "new",
        "A",
        "192.0.2.123",
    ]);
    let want = serial(port);
    wait_until("Knot to follow the NOTIFY", Duration::from_secs(20), || {
        serial(knot.port) == want
    });
    assert_eq!(
        dig(knot.port, &["new.conf.test", "A", "+norec"]).answer_data(),
        ["A 192.0.2.123"]
    );
}
both_drivers!(knot_secondary);
