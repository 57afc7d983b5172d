//! MCNS end to end: `mcd dataplane` answering real clients (dig, kdig,
//! nsupdate), with Knot as a zone-transfer secondary and as a forwarding upstream. Every
//! scenario runs on io_uring (where the kernel allows it) and on epoll.
//! This module holds what the others share: ports, dig, wire-form queries.

use std::net::UdpSocket;
use std::process::Command;

use crate::peers::free_port;

mod abuse;
mod admin;
mod conformance;
mod knot;
mod operator;
mod update;

/// A loopback port free for both TCP and UDP.
pub(crate) fn free_dns_port() -> u16 {
    for _ in 0..64 {
        let p = free_port();
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free TCP+UDP port");
}

/// One dig answer, parsed.
#[derive(Debug, Default)]
struct Dig {
    status: String,
    flags: Vec<String>,
    question: Vec<String>,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
    edns_udp: Option<u16>,
    raw: String,
}

impl Dig {
    fn has_flag(&self, f: &str) -> bool {
        self.flags.iter().any(|x| x == f)
    }
    /// Answer rows as "type rdata" (owner and TTL dropped).
    fn answer_data(&self) -> Vec<String> {
        self.answer.iter().map(|l| rr_tail(l)).collect()
    }
}

fn rr_tail(line: &str) -> String {
    let parts: Vec<&str> = line.split_whitespace().collect();
    parts.get(3..).map(|p| p.join(" ")).unwrap_or_default()
}

fn parse_dig(text: &str) -> Dig {
    let mut d = Dig {
        raw: text.to_owned(),
        ..Dig::default()
    };
    let mut section: Option<&str> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix(";; ->>HEADER<<-") {
            d.status = rest
                .split("status: ")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .unwrap_or("")
                .to_owned();
            continue;
        }
        if let Some(rest) = t.strip_prefix(";; flags:") {
            let flags = rest.split(';').next().unwrap_or("");
            d.flags = flags.split_whitespace().map(str::to_owned).collect();
            continue;
        }
        if let Some(rest) = t.strip_prefix("; EDNS:") {
            d.edns_udp = rest
                .split("udp: ")
                .nth(1)
                .and_then(|s| s.trim().parse().ok());
            continue;
        }
        if t.starts_with(";; ") && t.ends_with("SECTION:") {
            section = Some(if t.contains("QUESTION") {
                "q"
            } else if t.contains("ANSWER") {
                "an"
            } else if t.contains("AUTHORITY") {
                "ns"
            } else if t.contains("ADDITIONAL") {
                "ar"
            } else {
                "other"
            });
            continue;
        }
        if t.is_empty() {
            section = None;
            continue;
        }
        let norm = t.split_whitespace().collect::<Vec<_>>().join(" ");
        match section {
            Some("q") => d.question.push(norm.trim_start_matches(';').to_owned()),
            Some("an") => d.answer.push(norm),
            Some("ns") => d.authority.push(norm),
            Some("ar") => d.additional.push(norm),
            _ => {}
        }
    }
    d
}

fn dig(port: u16, args: &[&str]) -> Dig {
    let out = Command::new("dig")
        .arg("@127.0.0.1")
        .args(["-p", &port.to_string(), "+tries=1", "+time=3"])
        .args(args)
        .output()
        .expect("dig is installed (scripts/test installs bind9-dnsutils)");
    parse_dig(&String::from_utf8_lossy(&out.stdout))
}

/// The conformance zones, config-owned.
fn conformance_toml(port: u16) -> String {
    let big: Vec<String> = (0..8)
        .map(|i| format!("\"big TXT \\\"{i}{}\\\"\"", "x".repeat(200)))
        .collect();
    let mid: Vec<String> = (0..3)
        .map(|i| format!("\"mid TXT \\\"{i}{}\\\"\"", "y".repeat(180)))
        .collect();
    format!(
        r#"[dns]
listen = ["127.0.0.1:{port}", "[::1]:{port}"]
[[dns.zones]]
name = "conf.test"
minimum = 120
ttl = 3600
nameservers = ["ns1.conf.test", "ns2.conf.test"]
records = [
  "ns1 A 192.0.2.53", "ns2 AAAA 2001:db8::53",
  "www 300 A 192.0.2.1", "www 300 A 192.0.2.2", "www 300 AAAA 2001:db8::1",
  "alias CNAME www", "chain1 CNAME chain2", "chain2 CNAME alias",
  "ext CNAME www.example.org.", "loop1 CNAME loop2", "loop2 CNAME loop1",
  "cross CNAME host.other.test.", "dangling CNAME missing",
  "@ MX 10 mail", "mail A 192.0.2.25", "@ TXT \"v=spf1 -all\"",
  "_sip._tcp SRV 10 5 5060 sip", "sip A 192.0.2.60", "ptr PTR www.conf.test.",
  "@ CAA 0 issue \"letsencrypt.org\"",
  "*.wild A 192.0.2.100", "*.wild TXT \"wild\"", "explicit.wild A 192.0.2.101",
  "sub NS ns.sub", "ns.sub A 192.0.2.200", "a.b.c A 192.0.2.7",
  {big}, {mid},
]
[[dns.zones]]
name = "other.test"
records = ["host A 192.0.2.77"]
"#,
        big = big.join(", "),
        mid = mid.join(", "),
    )
}

/// A query in wire form for raw-socket cases.
pub(crate) fn wire_query(id: u16, name: &str, qtype: u16, flags: u16) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&flags.to_be_bytes());
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(u8::try_from(label.len()).expect("label"));
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1_u16.to_be_bytes());
    q
}

pub(crate) fn rcode(resp: &[u8]) -> u8 {
    resp[3] & 0x0f
}
