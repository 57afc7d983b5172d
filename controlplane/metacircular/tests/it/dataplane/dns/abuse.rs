//! What strangers cannot get: recursion outside `recursion_allowed`, and
//! floods of answers (response rate limiting).

use std::net::UdpSocket;
use std::time::Duration;

use super::{dig, free_dns_port, rcode, wire_query};
use crate::peers::Dataplane;

/// Clients outside `recursion_allowed` never get recursion.
fn not_an_open_resolver(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_dns_port();
    let _dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "[dns]\nlisten = [\"127.0.0.1:{port}\"]\nupstreams = [\"127.0.0.1:9\"]\nrecursion_allowed = [\"127.0.0.2/32\"]\n"
        ),
    );
    // dig from 127.0.0.1 (not allowed).
    let d = dig(port, &["example.org", "A"]);
    assert!(d.status == "REFUSED" && !d.has_flag("ra"), "{}", d.raw);
    // From 127.0.0.2 (allowed): forwarded; the upstream port is closed → SERVFAIL with RA.
    let d = dig(port, &["-b", "127.0.0.2", "example.org", "A"]);
    assert!(d.status == "SERVFAIL" && d.has_flag("ra"), "{}", d.raw);
}
both_drivers!(not_an_open_resolver);

/// Response rate limiting: one client prefix flooding gets a few answers,
/// some truncated "slip" replies and silence for the rest. (Loopback is
/// exempt by default; the test client is on loopback, so no exemption here.)
fn response_rate_limiting(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_dns_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "[dns]\nlisten = [\"127.0.0.1:{port}\"]\n[dns.rrl]\nresponses_per_second = 5\nburst = 5\nslip = 2\nexempt = []\n\
             [[dns.zones]]\nname = \"rrl.test\"\nrecords = [\"www A 192.0.2.1\"]\n"
        ),
    );
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let total = 60_u16;
    for id in 0..total {
        s.send_to(&wire_query(id, "www.rrl.test", 1, 0), ("127.0.0.1", port))
            .expect("send");
    }
    let (mut full, mut slipped) = (0, 0);
    let mut buf = [0_u8; 512];
    while let Ok(n) = s.recv(&mut buf) {
        let b = &buf[..n];
        if b[2] & 0x02 != 0 {
            slipped += 1;
        } else if rcode(b) == 0 && b[7] == 1 {
            full += 1;
        }
    }
    eprintln!(
        "rrl ({io}): {total} queries → {full} answers, {slipped} slipped (TC), {} dropped",
        usize::from(total) - full - slipped
    );
    assert!(
        (5..=12).contains(&full),
        "about the burst is answered: {full}"
    );
    assert!(
        slipped > 5,
        "every second limited response slips: {slipped}"
    );
    assert!(full + slipped < usize::from(total), "the rest is dropped");
    // Another prefix is unaffected; TCP is never limited.
    let d = dig(port, &["-b", "127.0.1.1", "www.rrl.test", "A"]);
    assert_eq!(d.answer_data(), ["A 192.0.2.1"], "{}", d.raw);
    let d = dig(port, &["+tcp", "www.rrl.test", "A"]);
    assert_eq!(d.answer_data(), ["A 192.0.2.1"], "{}", d.raw);
    let status: serde_json::Value =
        serde_json::from_str(&dp.ok(&["--json", "dns", "status"])).expect("json");
    assert!(status["rrl_dropped"].as_u64().unwrap_or(0) > 0, "{status}");
}
both_drivers!(response_rate_limiting);
