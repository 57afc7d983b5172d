//! The agent at rest (issue 16's targets: RSS ≤ 20 MiB, ≤ 1 KiB/s of
//! control-plane traffic per idle node), measured, not asserted: one node
//! as the other agent tests start it (heartbeats every 1 s, the watcher
//! every 1 s, no service), settled, then for `AGENT_IDLE_SECONDS` (default
//! 60) the bytes on the agent's TCP connections to the control plane's
//! gRPC port (`ss -ti`: tcp_info's bytes_sent/bytes_received, TLS
//! included) and its VmRSS. Ignored by default; `loadtest/agent-idle` runs
//! it and prints its one JSON line.

use std::process::Command;
use std::time::Duration;

use super::Node;

/// Bytes sent and received on `pid`'s established connections to `port`.
fn ss_bytes(pid: u32, port: u16) -> (u64, u64) {
    let out = Command::new("ss")
        .args(["-tinpH", "state", "established"])
        .arg(format!("( dport = :{port} )"))
        .output()
        .expect("ss (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let (mut sent, mut received) = (0, 0);
    let field = |l: &str, key: &str| -> u64 {
        l.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    for (i, l) in lines.iter().enumerate() {
        if !l.contains(&format!("pid={pid},")) {
            continue;
        }
        // `-i` puts tcp_info on the socket's own line or the next one.
        let info = format!("{l} {}", lines.get(i + 1).unwrap_or(&""));
        sent += field(&info, "bytes_sent:");
        received += field(&info, "bytes_received:");
    }
    (sent, received)
}

/// `key` (`VmRSS:`, `RssAnon:`, `RssFile:`) of `pid`'s status, in KiB.
fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "a measurement: loadtest/agent-idle runs it"]
fn agent_idle_footprint() {
    let seconds: u64 = std::env::var("AGENT_IDLE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path());
    let pid = node.agent.as_ref().expect("agent").id();
    let port: u16 = node
        ._cp
        .grpc
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("grpc port");
    std::thread::sleep(Duration::from_secs(10));
    let (s0, r0) = ss_bytes(pid, port);
    std::thread::sleep(Duration::from_secs(seconds));
    let (s1, r1) = ss_bytes(pid, port);
    let bytes = (s1 - s0) + (r1 - r0);
    let per_s = bytes as f64 / seconds as f64;
    println!(
        "{}",
        serde_json::json!({
            "agent_idle": true,
            "seconds": seconds,
            "heartbeat_interval_s": 1,
            "rss_kib": status_kib(pid, "VmRSS:"),
            // The heap and stacks; the rest is the (debug) binary's mapped pages.
            "rss_anon_kib": status_kib(pid, "RssAnon:"),
            "rss_file_kib": status_kib(pid, "RssFile:"),
            "bytes_sent": s1 - s0,
            "bytes_received": r1 - r0,
            "bytes_per_s": per_s,
            // One heartbeat per second here: the default 30 s interval
            // carries the same exchange 30 times less often.
            "bytes_per_s_at_30s": per_s / 30.0,
        })
    );
}
