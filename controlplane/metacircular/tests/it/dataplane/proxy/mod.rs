//! MC-Proxy end to end: `mcd dataplane` with real clients (openssl s_client,
//! curl) and real backends (openssl s_server, nginx stream), on 127.0.0.0/8.
//! Every scenario runs on io_uring (where the kernel allows it) and on epoll.
//!
//! Layout: the shared helpers below (addresses, certificates, `openssl
//! s_server` backends, `s_client`), then one module per concept: `routing`
//! (SNI, PROXY protocol, failover), `refusals` (firewall, rate limits, bad
//! hellos, connection limits), `changes` (route changes and imports
//! under load, the SIGTERM drain) and `balance` (an L4 TCP health check,
//! consistent hashing across table swaps).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::peers::wait_port;

mod balance;
mod changes;
mod refusals;
mod routing;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A self-signed certificate for `names`, written as `<stem>.pem` / `<stem>.key`.
fn cert(dir: &Path, stem: &str, cn: &str, names: &[&str]) -> (String, String) {
    let pem = dir.join(format!("{stem}.pem"));
    let key = dir.join(format!("{stem}.key"));
    let san = names
        .iter()
        .map(|n| format!("DNS:{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&pem)
        .args([
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            &format!("subjectAltName={san}"),
        ])
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
    (pem.display().to_string(), key.display().to_string())
}

struct SServer(std::process::Child);

impl SServer {
    fn start(port: u16, pem: &str, key: &str) -> Self {
        let child = Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-cert",
                pem,
                "-key",
                key,
                "-www",
                "-quiet",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        wait_port(port);
        Self(child)
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl s_client` through the proxy; returns (success, output).
fn s_client(proxy: std::net::SocketAddr, servername: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &proxy.to_string(), "-brief"]);
    match servername {
        Some(s) => cmd.args(["-servername", s]),
        None => cmd.arg("-noservername"),
    };
    let out = cmd.stdin(Stdio::null()).output().expect("openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && text.contains("CONNECTION ESTABLISHED"),
        text,
    )
}
