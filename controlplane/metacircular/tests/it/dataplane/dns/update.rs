//! RFC 2136 UPDATE with TSIG, driven by BIND's `nsupdate`: records added
//! and deleted (dig sees them, the serial goes up once per update, they
//! survive a restart), prerequisite failures with their rcodes, refusals
//! (another zone's key, a bad MAC, a name outside the zone, a config
//! record) that change nothing, Knot as a secondary following, and keys
//! managed with `mcctl dns tsig`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::knot::{Knot, XFR_SECRET, wait_until};
use super::{dig, free_dns_port};
use crate::peers::Dataplane;

const UPD_SECRET: &str = "dXBkYXRlLWtleS1mb3ItdXBkLnRlc3QtMzItYnl0ZXMh";
const OTHER_SECRET: &str = "b3RoZXIta2V5LWZvci1vdGhlci50ZXN0LTMyLWJ5dGVz";
const WRONG_SECRET: &str = "d3Jvbmctc2VjcmV0LXNhbWUtbGVuZ3RoLTMyLWJ5dGVz";

/// Runs `nsupdate -y <key>` with `commands` against `port`; returns
/// (success, stdout + stderr).
fn nsupdate(port: u16, key: &str, tcp: bool, commands: &str) -> (bool, String) {
    let mut cmd = Command::new("nsupdate");
    cmd.args(["-y", key, "-t", "5"]);
    if tcp {
        cmd.arg("-v");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nsupdate is installed (scripts/test installs bind9-dnsutils)");
    let script = format!("server 127.0.0.1 {port}\nzone upd.test\n{commands}\nsend\n");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("nsupdate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn serial(port: u16) -> u32 {
    let d = dig(port, &["upd.test", "SOA", "+norec"]);
    d.answer
        .first()
        .and_then(|l| l.split_whitespace().nth(6))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no SOA: {}", d.raw))
}

fn upd_key() -> String {
    format!("hmac-sha256:upd:{UPD_SECRET}")
}

fn nsupdate_through_tsig(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_dns_port();
    let knot_port = free_dns_port();
    let toml = format!(
        "[dns]\nlisten = [\"127.0.0.1:{port}\"]\n\
         [[dns.tsig_keys]]\nname = \"upd\"\nsecret = \"{UPD_SECRET}\"\nupdate_zones = [\"upd.test\"]\n\
         [[dns.tsig_keys]]\nname = \"other\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{OTHER_SECRET}\"\nupdate_zones = [\"other.test\"]\n\
         [[dns.tsig_keys]]\nname = \"xfr\"\nsecret = \"{XFR_SECRET}\"\n\
         [[dns.secondaries]]\naddress = \"127.0.0.1:{knot_port}\"\ntsig_key = \"xfr\"\nzones = [\"upd.test\"]\n\
         [[dns.zones]]\nname = \"upd.test\"\nnameservers = [\"ns1.upd.test\"]\nrecords = [\"ns1 A 192.0.2.53\", \"fixed A 192.0.2.1\"]\n\
         [[dns.zones]]\nname = \"other.test\"\nrecords = [\"host A 192.0.2.77\"]\n"
    );
    let mut dp = Dataplane::start(dir.path(), io, &toml);
    let kdir = dir.path().join("knot");
    std::fs::create_dir_all(&kdir).expect("dir");
    let knot = Knot::start_on(
        &kdir,
        knot_port,
        &format!(
            "key:\n  - id: xfr\n    algorithm: hmac-sha256\n    secret: {XFR_SECRET}\n\
             remote:\n  - id: primary\n    address: 127.0.0.1@{port}\n    key: xfr\n\
             acl:\n  - id: notify\n    address: 127.0.0.1\n    key: xfr\n    action: notify\n\
             zone:\n  - domain: upd.test\n    master: primary\n    acl: notify\n"
        ),
    );
    let s0 = serial(port);

    // Add two records in one update (UDP): both visible, the serial up by one.
    let (ok, out) = nsupdate(
        port,
        &upd_key(),
        false,
        "update add _acme-challenge.upd.test. 60 TXT \"token-1\"\nupdate add web.upd.test. 300 A 192.0.2.80",
    );
    assert!(ok, "{out}");
    let d = dig(port, &["_acme-challenge.upd.test", "TXT", "+norec"]);
    assert_eq!(d.answer_data(), ["TXT \"token-1\""], "{}", d.raw);
    assert_eq!(
        dig(port, &["web.upd.test", "A", "+norec"]).answer_data(),
        ["A 192.0.2.80"]
    );
    let s1 = serial(port);
    assert_eq!(s1, s0 + 1, "one bump for one update");

    // Knot follows the NOTIFY.
    wait_until("Knot to follow the update", Duration::from_secs(20), || {
        dig(knot.port, &["web.upd.test", "A", "+norec"]).answer_data() == ["A 192.0.2.80"]
    });

    // Prerequisites that do not hold: their rcode, nothing changes.
    for (prereq, rcode) in [
        ("prereq nxdomain web.upd.test.", "YXDOMAIN"),
        ("prereq yxdomain nope.upd.test.", "NXDOMAIN"),
        ("prereq yxrrset web.upd.test. TXT", "NXRRSET"),
        ("prereq nxrrset web.upd.test. A", "YXRRSET"),
        ("prereq yxrrset web.upd.test. A 192.0.2.99", "NXRRSET"),
    ] {
        let (ok, out) = nsupdate(
            port,
            &upd_key(),
            false,
            &format!("{prereq}\nupdate add never.upd.test. 60 A 192.0.2.66"),
        );
        assert!(!ok && out.contains(rcode), "{prereq}: {out}");
    }
    // One that holds (value-dependent), over TCP.
    let (ok, out) = nsupdate(
        port,
        &upd_key(),
        true,
        "prereq yxrrset web.upd.test. A 192.0.2.80\nupdate add web.upd.test. 300 A 192.0.2.81",
    );
    assert!(ok, "{out}");
    let s2 = serial(port);
    assert_eq!(s2, s1 + 1);

    // Refusals: another zone's key, a bad MAC, a name outside the zone, a config record.
    let refusals = [
        (
            format!("hmac-sha256:other:{OTHER_SECRET}"),
            "update add never.upd.test. 60 A 192.0.2.66",
            "REFUSED",
        ),
        (
            format!("hmac-sha256:upd:{WRONG_SECRET}"),
            "update add never.upd.test. 60 A 192.0.2.66",
            "BADSIG",
        ),
        (
            format!("hmac-sha256:nokey:{UPD_SECRET}"),
            "update add never.upd.test. 60 A 192.0.2.66",
            "BADKEY",
        ),
        (
            upd_key(),
            "update add never.other.test. 60 A 192.0.2.66",
            "NOTZONE",
        ),
        (upd_key(), "update delete fixed.upd.test. A", "REFUSED"),
    ];
    for (key, cmd, want) in &refusals {
        let (ok, out) = nsupdate(port, key, false, cmd);
        assert!(!ok && out.contains(want), "{key} {cmd}: want {want}: {out}");
    }
    assert_eq!(
        dig(port, &["never.upd.test", "A", "+norec"]).status,
        "NXDOMAIN"
    );
    assert_eq!(
        dig(port, &["fixed.upd.test", "A", "+norec"]).answer_data(),
        ["A 192.0.2.1"]
    );
    assert_eq!(serial(port), s2, "refused updates change nothing");

    // Durable: the records are there after a restart.
    dp.restart();
    let mut web = dig(port, &["web.upd.test", "A", "+norec"]).answer_data();
    web.sort();
    assert_eq!(web, ["A 192.0.2.80", "A 192.0.2.81"]);

    // Delete one RR, then the whole name; the TXT RRset goes too.
    let (ok, out) = nsupdate(
        port,
        &upd_key(),
        false,
        "update delete web.upd.test. A 192.0.2.80\nupdate delete _acme-challenge.upd.test. TXT",
    );
    assert!(ok, "{out}");
    assert_eq!(
        dig(port, &["web.upd.test", "A", "+norec"]).answer_data(),
        ["A 192.0.2.81"]
    );
    assert_eq!(
        dig(port, &["_acme-challenge.upd.test", "TXT", "+norec"]).status,
        "NXDOMAIN"
    );
    let (ok, out) = nsupdate(port, &upd_key(), false, "update delete web.upd.test.");
    assert!(ok, "{out}");
    assert_eq!(
        dig(port, &["web.upd.test", "A", "+norec"]).status,
        "NXDOMAIN"
    );
    let want = serial(port);
    wait_until(
        "Knot to follow the deletes",
        Duration::from_secs(20),
        || {
            dig(knot.port, &["upd.test", "SOA", "+norec"])
                .answer
                .first()
                .and_then(|l| l.split_whitespace().nth(6))
                .and_then(|s| s.parse::<u32>().ok())
                == Some(want)
        },
    );
    assert_eq!(
        dig(knot.port, &["web.upd.test", "A", "+norec"]).status,
        "NXDOMAIN"
    );
}
both_drivers!(nsupdate_through_tsig);

/// Keys managed with `mcctl dns tsig`: a generated secret works for
/// nsupdate, survives a restart, is never listed, and a removed key is
/// refused (BADKEY); bad input is refused and changes nothing.
#[test]
fn tsig_keys_through_mcctl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_dns_port();
    let toml = format!(
        "[dns]\nlisten = [\"127.0.0.1:{port}\"]\n\
         [[dns.tsig_keys]]\nname = \"upd\"\nsecret = \"{UPD_SECRET}\"\nupdate_zones = [\"upd.test\"]\n\
         [[dns.zones]]\nname = \"upd.test\"\nrecords = [\"ns1 A 192.0.2.53\"]\n"
    );
    let mut dp = Dataplane::start(dir.path(), "auto", &toml);
    let added: serde_json::Value = serde_json::from_str(
        &dp.ok(&["--json", "dns", "tsig", "add", "acme", "--zone", "upd.test"]),
    )
    .expect("json");
    let secret = added["secret"]
        .as_str()
        .expect("a generated secret")
        .to_owned();
    let key = format!("hmac-sha256:acme:{secret}");
    let (ok, out) = nsupdate(
        port,
        &key,
        false,
        "update add api.upd.test. 60 TXT \"via-api-key\"",
    );
    assert!(ok, "{out}");
    assert_eq!(
        dig(port, &["api.upd.test", "TXT", "+norec"]).answer_data(),
        ["TXT \"via-api-key\""]
    );
    let list = dp.ok(&["--json", "dns", "tsig", "list"]);
    let keys: serde_json::Value = serde_json::from_str(&list).expect("json");
    assert!(
        !list.contains(&secret) && !list.contains(UPD_SECRET),
        "{list}"
    );
    let names: Vec<(&str, &str)> = keys
        .as_array()
        .expect("array")
        .iter()
        .map(|k| {
            (
                k["name"].as_str().unwrap_or(""),
                k["origin"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    assert!(
        names.contains(&("acme", "api")) && names.contains(&("upd", "config")),
        "{list}"
    );

    // Refused input: a short secret, an unknown algorithm, a bad zone, the config key.
    for args in [
        vec![
            "dns", "tsig", "add", "k2", "--zone", "upd.test", "--secret", "c2hvcnQ=",
        ],
        vec![
            "dns",
            "tsig",
            "add",
            "k2",
            "--zone",
            "upd.test",
            "--algorithm",
            "hmac-md5",
        ],
        vec!["dns", "tsig", "add", "k2", "--zone", "bad..zone"],
        vec!["dns", "tsig", "add", "upd", "--zone", "upd.test"],
        vec!["dns", "tsig", "remove", "upd"],
    ] {
        let out = dp.mcctl(&args);
        assert!(!out.status.success() && !out.stderr.is_empty(), "{args:?}");
    }
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&dp.ok(&["--json", "dns", "tsig", "list"]))
            .expect("json")
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // Durable: the key still works after a restart.
    dp.restart();
    let (ok, out) = nsupdate(port, &key, true, "update delete api.upd.test. TXT");
    assert!(ok, "{out}");
    assert_eq!(
        dig(port, &["api.upd.test", "TXT", "+norec"]).status,
        "NXDOMAIN"
    );

    dp.ok(&["dns", "tsig", "remove", "acme"]);
    let (ok, out) = nsupdate(port, &key, false, "update add api.upd.test. 60 TXT \"x\"");
    assert!(!ok && out.contains("BADKEY"), "{out}");

    // Since the restart: one applied, one refused.
    let (code, metrics) = crate::support::curl(&[&dp.metrics]);
    assert_eq!(code, 200);
    let counter = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.contains(name) && !l.starts_with('#'))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}: {metrics}"))
    };
    assert_eq!(counter("dns_updates_applied_total"), 1, "{metrics}");
    assert_eq!(counter("dns_updates_refused_total"), 1, "{metrics}");
}
