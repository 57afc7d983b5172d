//! Loopback ports for the processes a test starts, claimed so that no other
//! test process and no outgoing connection can take them in between.
//!
//! Asking the kernel for port 0 and closing the socket leaves a gap before
//! the real server binds: with hundreds of tests in parallel, another test's
//! "free" port or a client's ephemeral source port lands on it now and then
//! (`Address already in use` at start-up). So ports come from a range the
//! kernel never hands out as ephemeral ports (below
//! `net.ipv4.ip_local_port_range`), and each one is claimed with an exclusive
//! lock on a file named after it; the lock is held until this test process
//! exits, and the kernel drops it even on a crash, so nothing goes stale.

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::Mutex;

/// Lock files of the ports this process holds: dropping one would release it.
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// A loopback port free for both TCP and UDP, held by this process until it exits.
pub(crate) fn free_port() -> u16 {
    let (lo, hi) = claimable_range();
    let dir = std::env::temp_dir().join("mc-test-ports");
    std::fs::create_dir_all(&dir).expect("port claim dir");
    let span = u32::from(hi - lo) + 1;
    // Processes start their scan at different places so they rarely contend.
    let start = std::process::id().wrapping_mul(2_654_435_761) % span;
    for i in 0..span {
        let port = lo + u16::try_from((start + i) % span).expect("within the range");
        if let Some(lock) = claim(&dir, port) {
            HELD.lock().unwrap_or_else(|e| e.into_inner()).push(lock);
            return port;
        }
    }
    panic!("no loopback port in {lo}..={hi} is free");
}

/// The lock on `port`'s claim file, if no other process holds it and nothing
/// outside the tests is bound to the port.
fn claim(dir: &std::path::Path, port: u16) -> Option<File> {
    let path: PathBuf = dir.join(port.to_string());
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .ok()?;
    file.try_lock().ok()?;
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).ok()?;
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).ok()?;
    drop((tcp, udp));
    Some(file)
}

/// The widest run of ports outside the kernel's ephemeral range, above 10000
/// (below that sit well-known services a test must not disturb).
fn claimable_range() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_else(|_| "32768 60999".to_owned());
    let mut fields = text.split_whitespace().map(|f| f.parse::<u16>().ok());
    let (eph_lo, eph_hi) = match (fields.next().flatten(), fields.next().flatten()) {
        (Some(a), Some(b)) if a <= b => (a, b),
        _ => (32768, 60999),
    };
    let below = (10_000, eph_lo.saturating_sub(1));
    let above = (eph_hi.saturating_add(1), u16::MAX);
    let width = |(a, b): (u16, u16)| b.saturating_sub(a);
    let best = if width(below) >= width(above) {
        below
    } else {
        above
    };
    assert!(
        width(best) >= 1000,
        "the ephemeral port range {eph_lo}-{eph_hi} leaves no room for test ports"
    );
    best
}

#[test]
fn claimed_ports_are_distinct_and_outside_the_ephemeral_range() {
    let (lo, hi) = claimable_range();
    let ports: Vec<u16> = (0..20).map(|_| free_port()).collect();
    let mut unique = ports.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ports.len(),
        "a port was handed out twice: {ports:?}"
    );
    assert!(
        ports.iter().all(|p| (lo..=hi).contains(p)),
        "{ports:?} outside {lo}..={hi}"
    );
    // Another process cannot claim a port this one holds.
    let dir = std::env::temp_dir().join("mc-test-ports");
    let again = OpenOptions::new()
        .write(true)
        .open(dir.join(ports[0].to_string()))
        .expect("claim file");
    assert!(
        again.try_lock().is_err(),
        "a held port could be claimed again"
    );
}
