//! What a new operator did with MCNS (issue 19), and what they now get: a
//! DKIM-sized TXT value is served (not SERVFAIL), an unservable record is
//! refused with nothing changed, a restore does not rewind the SOA serial,
//! and the SOA MNAME follows `--ns`.

use std::path::Path;

use super::{dig, free_dns_port};
use crate::peers::Dataplane;
use crate::support::{mcd, run};

/// `a > b` in RFC 1982 serial arithmetic.
fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// The served SOA serial of `zone` (dig, over TCP).
fn served_serial(port: u16, zone: &str) -> u32 {
    let d = dig(port, &["+tcp", zone, "SOA"]);
    assert_eq!(d.status, "NOERROR", "{}", d.raw);
    let fields: Vec<&str> = d.answer[0].split_whitespace().collect();
    fields[6]
        .parse()
        .unwrap_or_else(|_| panic!("serial in {}", d.raw))
}

fn dns_toml(port: u16) -> String {
    format!("[dns]\nlisten = [\"127.0.0.1:{port}\"]\n")
}

#[test]
fn a_long_txt_value_is_served_and_an_unservable_record_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_dns_port();
    let dp = Dataplane::start(dir.path(), "off", &dns_toml(port));
    dp.ok(&["dns", "zones", "create", "ox.test"]);
    // A DKIM key pasted as one 600-character string.
    let key: String = (0..600)
        .map(|i| char::from(b'a' + u8::try_from(i % 26).expect("small")))
        .collect();
    dp.ok(&["dns", "records", "add", "ox.test", "dkim", "TXT", &key]);
    for transport in ["+tcp", "+bufsize=4096"] {
        let d = dig(port, &[transport, "dkim.ox.test", "TXT"]);
        assert_eq!(d.status, "NOERROR", "{transport}: {}", d.raw);
        let data = d.answer_data();
        assert_eq!(data.len(), 1, "{}", d.raw);
        let strings: Vec<&str> = data[0]
            .trim_start_matches("TXT ")
            .split('"')
            .filter(|s| !s.trim().is_empty())
            .collect();
        assert_eq!(
            strings.iter().map(|s| s.len()).collect::<Vec<_>>(),
            [255, 255, 90],
            "{}",
            d.raw
        );
        assert_eq!(
            strings.concat(),
            key,
            "the strings concatenate to the value"
        );
    }

    // A name that cannot go on the wire: refused, naming the field; nothing changes.
    let before = served_serial(port, "ox.test");
    let long_label = "l".repeat(64);
    let out = dp.mcctl(&[
        "dns",
        "records",
        "add",
        "ox.test",
        &long_label,
        "A",
        "192.0.2.1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted a 64-byte label");
    assert!(err.contains("record.name"), "{err}");
    assert_eq!(served_serial(port, "ox.test"), before, "the serial moved");
}

#[test]
fn the_soa_mname_follows_ns_and_minimum_has_one_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_dns_port();
    let dp = Dataplane::start(dir.path(), "off", &dns_toml(port));
    dp.ok(&[
        "dns",
        "zones",
        "create",
        "mn.test",
        "--ns",
        "dns1.example.org",
    ]);
    let d = dig(port, &["mn.test", "SOA"]);
    assert!(
        d.answer_data()[0].starts_with("SOA dns1.example.org. "),
        "{}",
        d.raw
    );
    let help = dp.ok(&["dns", "zones", "create", "--help"]);
    let minimum = help
        .lines()
        .skip_while(|l| !l.contains("--minimum"))
        .take_while(|l| !l.contains("--ttl"))
        .collect::<String>();
    assert_eq!(minimum.matches("default").count(), 1, "{minimum}");
    assert!(minimum.contains("300"), "{minimum}");
}

/// `mcd snapshot dataplane`: the MCNS store's snapshot path.
fn snapshot_mcns(cwd: &Path, config: &Path, dir: &Path) -> String {
    let out = run(
        &mcd(),
        &[
            "snapshot",
            "dataplane",
            "--config",
            config.to_str().expect("utf8"),
            "--dir",
            dir.to_str().expect("utf8"),
        ],
        cwd,
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| l.split('\t').nth(1))
        .find(|p| p.contains("mcns") && p.ends_with(".redb"))
        .unwrap_or_else(|| panic!("no mcns snapshot in {text}"))
        .to_owned()
}

#[test]
fn a_restore_does_not_rewind_the_soa_serial() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snaps = tempfile::tempdir().expect("tempdir");
    let port = free_dns_port();
    let mut dp = Dataplane::start(dir.path(), "off", &dns_toml(port));
    dp.ok(&["dns", "zones", "create", "rs.test"]);
    dp.ok(&["dns", "records", "add", "rs.test", "www", "A", "192.0.2.1"]);
    let s1 = served_serial(port, "rs.test");
    let snapshot = snapshot_mcns(dir.path(), &dp.config, snaps.path());
    for i in 2..5 {
        dp.ok(&[
            "dns",
            "records",
            "add",
            "rs.test",
            "www",
            "A",
            &format!("192.0.2.{i}"),
        ]);
    }
    let s2 = served_serial(port, "rs.test");
    assert!(serial_gt(s2, s1), "{s2} after {s1}");

    dp.stop();
    let out = run(
        &mcd(),
        &[
            "restore",
            "dataplane",
            "--config",
            dp.config.to_str().expect("utf8"),
            "--store",
            "mcns",
            "--from",
            &snapshot,
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dp.restart();
    // The restored content is served (one www address), at a newer serial.
    assert_eq!(
        dig(port, &["www.rs.test", "A"]).answer_data(),
        ["A 192.0.2.1"]
    );
    let restored = served_serial(port, "rs.test");
    assert!(
        serial_gt(restored, s2),
        "restored at {restored}, published {s2}"
    );
    dp.ok(&["dns", "records", "add", "rs.test", "api", "A", "192.0.2.9"]);
    let s3 = served_serial(port, "rs.test");
    assert!(
        serial_gt(s3, s2),
        "{s3} after a restore; {s2} was published"
    );
}
