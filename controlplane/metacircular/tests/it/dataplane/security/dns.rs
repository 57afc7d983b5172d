//! MCNS and configs (item 12): response rate limiting is on by default,
//! a config holding TSIG secrets that others can read is warned about at
//! start, and `mcd dev` writes its configs 0600. (The default recursion
//! ACL, loopback only, cannot be attacked from a non-loopback source on a
//! loopback-only CI: `mc-dns`'s unit test
//! `recursion_defaults_to_loopback_and_rrl_is_on` covers that decision.)

use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::dataplane::dns::{free_dns_port, rcode, wire_query};
use crate::peers::Dataplane;
use crate::support::Dev;

/// Sends `total` queries for `name` as fast as possible from one socket
/// (a reader thread drains replies meanwhile, so the socket buffer is not
/// what drops them); returns (full answers, slipped TC replies).
fn flood(port: u16, name: &str, total: u16) -> (usize, usize) {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let reader = s.try_clone().expect("clone");
    let counts = std::thread::spawn(move || {
        let (mut full, mut slipped) = (0, 0);
        let mut buf = [0_u8; 512];
        while let Ok(n) = reader.recv(&mut buf) {
            let b = &buf[..n];
            if b[2] & 0x02 != 0 {
                slipped += 1;
            } else if rcode(b) == 0 && b[7] == 1 {
                full += 1;
            }
        }
        (full, slipped)
    });
    for id in 0..total {
        s.send_to(&wire_query(id, name, 1, 0), ("127.0.0.1", port))
            .expect("send");
    }
    counts.join().expect("reader")
}

/// Item 12, RRL: with no `responses_per_second` configured, a flood from
/// one prefix gets about the default burst answered, slipped (TC) replies
/// and silence for the rest. Loopback is exempt by default (only the
/// exemption is configured away here), so a flood from 127.0.0.1 on a
/// default config is answered in full.
fn response_rate_limiting_is_on_by_default(io: &str) {
    let zone = "[[dns.zones]]\nname = \"rrl.test\"\nrecords = [\"www A 192.0.2.1\"]\n";
    let total = 600_u16;

    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_dns_port();
    let _dp = Dataplane::start(
        dir.path(),
        io,
        &format!("[dns]\nlisten = [\"127.0.0.1:{port}\"]\n[dns.rrl]\nexempt = []\n{zone}"),
    );
    let (full, slipped) = flood(port, "www.rrl.test", total);
    eprintln!("default rrl ({io}): {total} queries → {full} answers, {slipped} slipped");
    assert!(full >= 50, "the default burst is answered: {full}");
    assert!(
        full < usize::from(total) / 2,
        "the flood is limited: {full}"
    );
    assert!(slipped > 0, "limited replies slip: {slipped}");

    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_dns_port();
    let _dp = Dataplane::start(
        dir.path(),
        io,
        &format!("[dns]\nlisten = [\"127.0.0.1:{port}\"]\n{zone}"),
    );
    let (full, slipped) = flood(port, "www.rrl.test", 200);
    assert_eq!((full, slipped), (200, 0), "loopback is exempt by default");
}
both_drivers!(response_rate_limiting_is_on_by_default);

/// Item 12, secrets: a data-plane config with a TSIG key that its group or
/// others can read (0644, as `fs::write` leaves it) starts with a warning
/// naming the file; at 0600 it starts without one.
#[test]
fn readable_config_with_tsig_secret_warns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_dns_port();
    let mut dp = Dataplane::start_logged(
        dir.path(),
        "off",
        &format!(
            "[dns]\nlisten = [\"127.0.0.1:{port}\"]\n[[dns.tsig_keys]]\nname = \"xfr\"\n\
             algorithm = \"hmac-sha256\"\nsecret = \"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=\"\n"
        ),
    );
    std::fs::set_permissions(&dp.config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let log = dp.log.clone().expect("log");
    std::fs::write(&log, "").expect("truncate");
    dp.restart();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("TSIG secrets") && text.contains(&dp.config.display().to_string()),
        "no warning for a 0644 config with a TSIG key: {text}"
    );
    std::fs::set_permissions(&dp.config, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::write(&log, "").expect("truncate");
    dp.restart();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(!text.contains("TSIG secrets"), "{text}");
}

/// Item 12, generated configs: `mcd dev` writes its control- and data-plane
/// configs (and the endpoints file with the bootstrap credentials) 0600.
#[test]
fn dev_generated_configs_are_private() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let data = cwd.path().join("dev-data");
    let dev = Dev::start(cwd.path(), Some(&data));
    for f in ["controlplane.toml", "dataplane.toml", "endpoints.json"] {
        let mode = std::fs::metadata(dev.data_dir.join(f))
            .expect("generated file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}: {:o}", mode & 0o777);
    }
}
