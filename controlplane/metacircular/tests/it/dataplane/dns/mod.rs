//! MCNS end to end: `mcd dataplane` answering real clients (dig, kdig), with
//! Knot as a zone-transfer secondary and as a forwarding upstream. Every
//! scenario runs on io_uring (where the kernel allows it) and on epoll.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::peers::{Dataplane, free_port};

/// A loopback port free for both TCP and UDP.
fn free_dns_port() -> u16 {
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

type Check = Box<dyn Fn(&Dig) -> Result<(), String>>;

/// One conformance case: a dig query and checks on the parsed answer.
struct Case {
    name: &'static str,
    args: Vec<String>,
    check: Check,
}

fn case(
    name: &'static str,
    args: &[&str],
    check: impl Fn(&Dig) -> Result<(), String> + 'static,
) -> Case {
    Case {
        name,
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        check: Box::new(check),
    }
}

fn expect(cond: bool, what: &str) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what.to_owned()) }
}

fn noerror_aa(d: &Dig) -> Result<(), String> {
    expect(d.status == "NOERROR", "status NOERROR")?;
    expect(d.has_flag("aa"), "AA set")?;
    expect(!d.has_flag("tc"), "TC clear")
}

fn negative(d: &Dig, status: &str) -> Result<(), String> {
    expect(d.status == status, &format!("status {status}"))?;
    expect(d.has_flag("aa"), "AA set")?;
    expect(d.answer.is_empty(), "empty answer")?;
    expect(
        d.authority.len() == 1
            && d.authority[0]
                .starts_with("conf.test. 120 IN SOA ns1.conf.test. hostmaster.conf.test."),
        "the zone SOA with the negative TTL (120) in authority",
    )
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "A with two records",
            &["www.conf.test", "A", "+norec"],
            |d| {
                noerror_aa(d)?;
                expect(
                    d.answer_data() == ["A 192.0.2.1", "A 192.0.2.2"]
                        || d.answer_data() == ["A 192.0.2.2", "A 192.0.2.1"],
                    "both A records",
                )?;
                expect(
                    d.answer
                        .iter()
                        .all(|l| l.starts_with("www.conf.test. 300 IN A")),
                    "owner and TTL 300",
                )?;
                expect(d.authority.is_empty(), "no authority for a positive answer")?;
                expect(!d.has_flag("ra"), "RA clear without forwarding")
            },
        ),
        case("AAAA", &["www.conf.test", "AAAA"], |d| {
            noerror_aa(d)?;
            expect(d.answer_data() == ["AAAA 2001:db8::1"], "the AAAA")
        }),
        case(
            "NODATA for a type the name lacks",
            &["www.conf.test", "MX"],
            |d| negative(d, "NOERROR"),
        ),
        case("NXDOMAIN with SOA", &["nope.conf.test", "A"], |d| {
            negative(d, "NXDOMAIN")
        }),
        case(
            "NXDOMAIN below an existing name",
            &["x.www.conf.test", "A"],
            |d| negative(d, "NXDOMAIN"),
        ),
        case("SOA at the apex", &["conf.test", "SOA"], |d| {
            noerror_aa(d)?;
            expect(
                d.answer.len() == 1
                    && d.answer[0]
                        .starts_with("conf.test. 3600 IN SOA ns1.conf.test. hostmaster.conf.test."),
                "the SOA with its own TTL",
            )?;
            expect(d.answer[0].ends_with("3600 600 1209600 120"), "timers")
        }),
        case("NS at the apex with glue", &["conf.test", "NS"], |d| {
            noerror_aa(d)?;
            let mut a = d.answer_data();
            a.sort();
            expect(a == ["NS ns1.conf.test.", "NS ns2.conf.test."], "both NS")?;
            expect(
                d.additional
                    .iter()
                    .any(|l| l == "ns1.conf.test. 3600 IN A 192.0.2.53"),
                "ns1 A in additional",
            )?;
            expect(
                d.additional
                    .iter()
                    .any(|l| l == "ns2.conf.test. 3600 IN AAAA 2001:db8::53"),
                "ns2 AAAA in additional",
            )
        }),
        case("MX with target address", &["conf.test", "MX"], |d| {
            noerror_aa(d)?;
            expect(d.answer_data() == ["MX 10 mail.conf.test."], "the MX")?;
            expect(
                d.additional
                    .iter()
                    .any(|l| l == "mail.conf.test. 3600 IN A 192.0.2.25"),
                "mail A in additional",
            )
        }),
        case("TXT", &["conf.test", "TXT"], |d| {
            noerror_aa(d)?;
            expect(d.answer_data() == ["TXT \"v=spf1 -all\""], "the TXT")
        }),
        case(
            "SRV with target address",
            &["_sip._tcp.conf.test", "SRV"],
            |d| {
                noerror_aa(d)?;
                expect(
                    d.answer_data() == ["SRV 10 5 5060 sip.conf.test."],
                    "the SRV",
                )?;
                expect(
                    d.additional
                        .iter()
                        .any(|l| l == "sip.conf.test. 3600 IN A 192.0.2.60"),
                    "sip A in additional",
                )
            },
        ),
        case("CAA", &["conf.test", "CAA"], |d| {
            noerror_aa(d)?;
            expect(
                d.answer_data() == ["CAA 0 issue \"letsencrypt.org\""],
                "the CAA",
            )
        }),
        case("PTR", &["ptr.conf.test", "PTR"], |d| {
            noerror_aa(d)?;
            expect(d.answer_data() == ["PTR www.conf.test."], "the PTR")
        }),
        case("CNAME followed to A", &["alias.conf.test", "A"], |d| {
            noerror_aa(d)?;
            expect(
                d.answer
                    .first()
                    .is_some_and(|l| l == "alias.conf.test. 3600 IN CNAME www.conf.test."),
                "CNAME first",
            )?;
            expect(
                d.answer.len() == 3
                    && d.answer[1..]
                        .iter()
                        .all(|l| l.starts_with("www.conf.test. 300 IN A")),
                "then the target's A records",
            )
        }),
        case(
            "CNAME asked for itself",
            &["alias.conf.test", "CNAME"],
            |d| {
                noerror_aa(d)?;
                expect(
                    d.answer_data() == ["CNAME www.conf.test."],
                    "only the CNAME",
                )
            },
        ),
        case("CNAME chain of three", &["chain1.conf.test", "A"], |d| {
            noerror_aa(d)?;
            let types: Vec<String> = d
                .answer_data()
                .iter()
                .map(|a| a.split(' ').next().unwrap_or("").to_owned())
                .collect();
            expect(
                types == ["CNAME", "CNAME", "CNAME", "A", "A"],
                "three CNAMEs then two A",
            )?;
            expect(
                d.answer[0].starts_with("chain1.conf.test.")
                    && d.answer[1].starts_with("chain2.conf.test.")
                    && d.answer[2].starts_with("alias.conf.test."),
                "in chain order",
            )
        }),
        case("CNAME out of our zones", &["ext.conf.test", "A"], |d| {
            noerror_aa(d)?;
            expect(
                d.answer_data() == ["CNAME www.example.org."],
                "the CNAME only",
            )
        }),
        case("CNAME loop stops", &["loop1.conf.test", "A"], |d| {
            expect(d.status == "NOERROR" && d.has_flag("aa"), "NOERROR AA")?;
            expect(
                d.answer_data() == ["CNAME loop2.conf.test.", "CNAME loop1.conf.test."],
                "both CNAMEs once",
            )
        }),
        case(
            "CNAME into another of our zones",
            &["cross.conf.test", "A"],
            |d| {
                noerror_aa(d)?;
                expect(
                    d.answer_data() == ["CNAME host.other.test.", "A 192.0.2.77"],
                    "CNAME then the other zone's A",
                )
            },
        ),
        case(
            "CNAME to a missing name (RFC 6604)",
            &["dangling.conf.test", "A"],
            |d| {
                expect(d.status == "NXDOMAIN" && d.has_flag("aa"), "NXDOMAIN AA")?;
                expect(
                    d.answer_data() == ["CNAME missing.conf.test."],
                    "the CNAME in the answer",
                )?;
                expect(
                    d.authority.len() == 1 && d.authority[0].contains(" SOA "),
                    "SOA in authority",
                )
            },
        ),
        case("wildcard A", &["x.wild.conf.test", "A"], |d| {
            noerror_aa(d)?;
            expect(
                d.answer == ["x.wild.conf.test. 3600 IN A 192.0.2.100"],
                "synthesized with the query name as owner",
            )
        }),
        case(
            "wildcard several labels deep",
            &["a.b.wild.conf.test", "A"],
            |d| {
                noerror_aa(d)?;
                expect(
                    d.answer == ["a.b.wild.conf.test. 3600 IN A 192.0.2.100"],
                    "synthesized",
                )
            },
        ),
        case("wildcard TXT", &["x.wild.conf.test", "TXT"], |d| {
            noerror_aa(d)?;
            expect(d.answer_data() == ["TXT \"wild\""], "wildcard TXT")
        }),
        case("wildcard NODATA", &["x.wild.conf.test", "MX"], |d| {
            negative(d, "NOERROR")
        }),
        case(
            "explicit name beats wildcard",
            &["explicit.wild.conf.test", "A"],
            |d| {
                noerror_aa(d)?;
                expect(d.answer_data() == ["A 192.0.2.101"], "the explicit record")
            },
        ),
        case(
            "no wildcard for an existing name",
            &["explicit.wild.conf.test", "TXT"],
            |d| negative(d, "NOERROR"),
        ),
        case(
            "wildcard parent is an empty non-terminal",
            &["wild.conf.test", "A"],
            |d| negative(d, "NOERROR"),
        ),
        case("empty non-terminal is NODATA", &["c.conf.test", "A"], |d| {
            negative(d, "NOERROR")
        }),
        case(
            "deeper empty non-terminal",
            &["b.c.conf.test", "TXT"],
            |d| negative(d, "NOERROR"),
        ),
        case(
            "name under an empty non-terminal",
            &["a.b.c.conf.test", "A"],
            |d| {
                noerror_aa(d)?;
                expect(d.answer_data() == ["A 192.0.2.7"], "the A")
            },
        ),
        case(
            "referral below a delegation",
            &["host.sub.conf.test", "A"],
            |d| {
                expect(d.status == "NOERROR", "NOERROR")?;
                expect(!d.has_flag("aa"), "AA clear on a referral")?;
                expect(d.answer.is_empty(), "empty answer")?;
                expect(
                    d.authority == ["sub.conf.test. 3600 IN NS ns.sub.conf.test."],
                    "the delegation NS",
                )?;
                expect(
                    d.additional == ["ns.sub.conf.test. 3600 IN A 192.0.2.200"],
                    "glue",
                )
            },
        ),
        case("referral at the cut", &["sub.conf.test", "NS"], |d| {
            expect(d.status == "NOERROR" && !d.has_flag("aa"), "NOERROR, no AA")?;
            expect(
                d.authority == ["sub.conf.test. 3600 IN NS ns.sub.conf.test."],
                "NS in authority, not answer",
            )
        }),
        case(
            "glue name is referred, not answered",
            &["ns.sub.conf.test", "A"],
            |d| {
                expect(!d.has_flag("aa") && d.answer.is_empty(), "referral")?;
                expect(d.authority.len() == 1, "NS in authority")
            },
        ),
        case(
            "DS at the cut comes from the parent",
            &["sub.conf.test", "DS"],
            |d| negative(d, "NOERROR"),
        ),
        case("query name case preserved", &["WwW.CoNf.TeSt", "A"], |d| {
            noerror_aa(d)?;
            expect(
                d.question
                    .first()
                    .is_some_and(|q| q.starts_with("WwW.CoNf.TeSt.")),
                "question echoed as sent",
            )?;
            expect(
                d.answer.iter().all(|l| l.starts_with("WwW.CoNf.TeSt. ")),
                "answer owner in the query's case",
            )
        }),
        case(
            "case preserved on NXDOMAIN",
            &["NoPe.CONF.test", "A"],
            |d| {
                expect(d.status == "NXDOMAIN", "NXDOMAIN")?;
                expect(
                    d.question
                        .first()
                        .is_some_and(|q| q.starts_with("NoPe.CONF.test.")),
                    "question echoed",
                )
            },
        ),
        case(
            "not our zone: REFUSED, never recursion",
            &["www.example.org", "A"],
            |d| {
                expect(d.status == "REFUSED", "REFUSED")?;
                expect(!d.has_flag("aa") && !d.has_flag("ra"), "no AA, no RA")?;
                expect(d.answer.is_empty(), "empty")
            },
        ),
        case("RD echoed", &["www.conf.test", "A", "+rec"], |d| {
            noerror_aa(d)?;
            expect(d.has_flag("rd"), "RD copied into the response")
        }),
        case(
            "RD clear stays clear",
            &["www.conf.test", "A", "+norec"],
            |d| expect(!d.has_flag("rd"), "no RD"),
        ),
        case(
            "EDNS: our size is 1232 whatever the client offers",
            &["www.conf.test", "A", "+bufsize=4096"],
            |d| {
                noerror_aa(d)?;
                expect(d.edns_udp == Some(1232), "OPT with udp 1232")
            },
        ),
        case(
            "no EDNS in, no OPT out",
            &["www.conf.test", "A", "+noedns"],
            |d| {
                noerror_aa(d)?;
                expect(d.edns_udp.is_none(), "no OPT")
            },
        ),
        case(
            "EDNS version 1 → BADVERS",
            &["www.conf.test", "A", "+edns=1", "+noednsneg"],
            |d| {
                expect(d.status == "BADVERS", "BADVERS")?;
                expect(d.edns_udp.is_some(), "OPT present")?;
                expect(d.answer.is_empty(), "no answer")
            },
        ),
        case(
            "too big for UDP 4096 offer: TC (our cap 1232)",
            &["big.conf.test", "TXT", "+bufsize=4096", "+ignore"],
            |d| {
                expect(
                    d.status == "NOERROR" && d.has_flag("tc") && d.has_flag("aa"),
                    "NOERROR, TC, AA",
                )?;
                expect(d.answer.is_empty(), "empty answer")
            },
        ),
        case(
            "too big without EDNS: TC",
            &["big.conf.test", "TXT", "+noedns", "+ignore"],
            |d| expect(d.has_flag("tc") && d.answer.is_empty(), "TC, empty"),
        ),
        case(
            "fits 1232 but not 512",
            &["mid.conf.test", "TXT", "+bufsize=1232", "+ignore"],
            |d| {
                noerror_aa(d)?;
                expect(d.answer.len() == 3, "all three TXT over EDNS")
            },
        ),
        case(
            "the same without EDNS: TC",
            &["mid.conf.test", "TXT", "+noedns", "+ignore"],
            |d| expect(d.has_flag("tc"), "TC at 512"),
        ),
        case(
            "client offer below 512 is treated as 512",
            &["www.conf.test", "A", "+bufsize=100", "+ignore"],
            |d| {
                noerror_aa(d)?;
                expect(d.answer.len() == 2, "answered in full")
            },
        ),
        case(
            "big answer over TCP",
            &["big.conf.test", "TXT", "+tcp"],
            |d| {
                noerror_aa(d)?;
                expect(d.answer.len() == 8, "all eight TXT")
            },
        ),
        case(
            "TC then automatic TCP retry",
            &["big.conf.test", "TXT"],
            |d| {
                noerror_aa(d)?;
                expect(
                    d.raw.contains("Truncated, retrying in TCP mode"),
                    "dig saw TC and retried",
                )?;
                expect(d.answer.len() == 8, "full answer over TCP")
            },
        ),
        case(
            "ANY over UDP is minimal (RFC 8482)",
            &["conf.test", "ANY", "+notcp"],
            |d| {
                noerror_aa(d)?;
                let types: std::collections::BTreeSet<String> = d
                    .answer_data()
                    .iter()
                    .map(|a| a.split(' ').next().unwrap_or("").to_owned())
                    .collect();
                expect(types.len() == 1, "one RRset")
            },
        ),
        case(
            "ANY over TCP gets every RRset",
            &["conf.test", "ANY", "+tcp"],
            |d| {
                noerror_aa(d)?;
                let types: std::collections::BTreeSet<String> = d
                    .answer_data()
                    .iter()
                    .map(|a| a.split(' ').next().unwrap_or("").to_owned())
                    .collect();
                expect(
                    ["NS", "SOA", "MX", "TXT", "CAA"]
                        .iter()
                        .all(|t| types.contains(*t)),
                    "NS SOA MX TXT CAA",
                )
            },
        ),
        case("ANY on a missing name", &["nope.conf.test", "ANY"], |d| {
            negative(d, "NXDOMAIN")
        }),
        case(
            "unknown type at an existing name: NODATA",
            &["www.conf.test", "HINFO"],
            |d| negative(d, "NOERROR"),
        ),
        case(
            "CHAOS class is refused",
            &["version.bind", "TXT", "-c", "CH"],
            |d| expect(d.status == "REFUSED", "REFUSED"),
        ),
        case(
            "AXFR without TSIG from a non-secondary: REFUSED",
            &["conf.test", "AXFR"],
            |d| {
                expect(
                    d.raw.contains("Transfer failed") || d.status == "REFUSED",
                    "transfer refused",
                )
            },
        ),
        case("second zone answers", &["host.other.test", "A"], |d| {
            noerror_aa(d)?;
            expect(d.answer_data() == ["A 192.0.2.77"], "other.test A")
        }),
    ]
}

/// A query in wire form for raw-socket cases.
fn wire_query(id: u16, name: &str, qtype: u16, flags: u16) -> Vec<u8> {
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

fn udp_exchange(port: u16, msg: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(wait)).expect("timeout");
    s.send_to(msg, ("127.0.0.1", port)).expect("send");
    let mut buf = [0_u8; 4096];
    s.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

fn rcode(resp: &[u8]) -> u8 {
    resp[3] & 0x0f
}

/// Raw-wire cases dig cannot send: returns (name, result) pairs.
fn raw_cases(port: u16) -> Vec<(&'static str, Result<(), String>)> {
    let mut out = Vec::new();
    // Garbage after a valid header: FORMERR echoing the ID.
    let mut garbage = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    garbage.extend_from_slice(&[0xff; 7]);
    let r = udp_exchange(port, &garbage, Duration::from_secs(2));
    out.push((
        "malformed question → FORMERR with the same ID",
        match r {
            Some(b)
                if b.len() >= 12
                    && b[0] == 0xab
                    && b[1] == 0xcd
                    && b[2] & 0x80 != 0
                    && rcode(&b) == 1 =>
            {
                Ok(())
            }
            other => Err(format!("got {other:?}")),
        },
    ));
    // A response (QR=1) is never answered.
    let mut resp = wire_query(7, "www.conf.test", 1, 0x8000);
    resp[2] |= 0x80;
    out.push((
        "a response gets silence",
        expect(
            udp_exchange(port, &resp, Duration::from_millis(500)).is_none(),
            "no reply",
        ),
    ));
    out.push((
        "shorter than a header gets silence",
        expect(
            udp_exchange(port, &[1, 2, 3], Duration::from_millis(500)).is_none(),
            "no reply",
        ),
    ));
    // Two questions: FORMERR.
    let mut two = wire_query(9, "www.conf.test", 1, 0);
    two[5] = 2;
    let q2 = wire_query(0, "conf.test", 6, 0);
    two.extend_from_slice(&q2[12..]);
    let r = udp_exchange(port, &two, Duration::from_secs(2));
    out.push((
        "two questions → FORMERR",
        match r {
            Some(b) if rcode(&b) == 1 => Ok(()),
            other => Err(format!("got {other:?}")),
        },
    ));
    // UPDATE (opcode 5) → NOTIMP; NOTIFY (opcode 4) → NOTIMP.
    for (name, opcode) in [
        ("UPDATE → NOTIMP", 5_u16),
        ("NOTIFY to the primary → NOTIMP", 4),
    ] {
        let q = wire_query(11, "conf.test", 6, opcode << 11);
        let r = udp_exchange(port, &q, Duration::from_secs(2));
        out.push((
            name,
            match r {
                Some(b) if rcode(&b) == 4 && b[0] == 0 && b[1] == 11 => Ok(()),
                other => Err(format!("got {other:?}")),
            },
        ));
    }
    // TCP: three pipelined queries on one connection, answered in order.
    let result = (|| -> Result<(), String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let mut all = Vec::new();
        for (id, name) in [
            (101_u16, "www.conf.test"),
            (102, "nope.conf.test"),
            (103, "mail.conf.test"),
        ] {
            let q = wire_query(id, name, 1, 0);
            all.extend_from_slice(&u16::try_from(q.len()).unwrap_or(0).to_be_bytes());
            all.extend_from_slice(&q);
        }
        s.write_all(&all).map_err(|e| e.to_string())?;
        for (id, want_rcode) in [(101_u16, 0_u8), (102, 3), (103, 0)] {
            let mut len = [0_u8; 2];
            s.read_exact(&mut len).map_err(|e| e.to_string())?;
            let mut body = vec![0_u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut body).map_err(|e| e.to_string())?;
            if u16::from_be_bytes([body[0], body[1]]) != id || rcode(&body) != want_rcode {
                return Err(format!("answer for {id} out of order or wrong rcode"));
            }
        }
        Ok(())
    })();
    out.push((
        "TCP pipelining: three queries, three answers in order",
        result,
    ));
    out
}

fn conformance(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_dns_port();
    let _dp = Dataplane::start(dir.path(), io, &conformance_toml(port));
    let mut failures = Vec::new();
    let cases = cases();
    let total = cases.len();
    for c in &cases {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let d = dig(port, &args);
        if let Err(e) = (c.check)(&d) {
            failures.push(format!("{}: expected {e}\n{}", c.name, d.raw));
        }
    }
    let mut raw = raw_cases(port);
    // IPv6: the same port on ::1, UDP and TCP.
    for transport in ["+notcp", "+tcp"] {
        let out = Command::new("dig")
            .args([
                "@::1",
                "-p",
                &port.to_string(),
                "+tries=1",
                "+time=3",
                transport,
                "www.conf.test",
                "AAAA",
            ])
            .output()
            .expect("dig");
        let d = parse_dig(&String::from_utf8_lossy(&out.stdout));
        raw.push((
            if transport == "+tcp" {
                "IPv6 listener over TCP"
            } else {
                "IPv6 listener over UDP"
            },
            expect(
                d.status == "NOERROR" && d.answer_data() == ["AAAA 2001:db8::1"],
                &d.raw,
            ),
        ));
    }
    let raw_total = raw.len();
    for (name, r) in raw {
        if let Err(e) = r {
            failures.push(format!("{name}: {e}"));
        }
    }
    eprintln!(
        "dns conformance ({io}): {} of {} cases passed ({total} dig, {raw_total} raw wire and IPv6)",
        total + raw_total - failures.len(),
        total + raw_total
    );
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(total + raw_total >= 40);
}
both_drivers!(conformance);

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

/// A Knot DNS server (Debian `knot`) with its own config and storage.
struct Knot {
    child: Child,
    port: u16,
}

/// The TSIG secret shared with Knot in the transfer test (base64 of 32 bytes).
const XFR_SECRET: &str = "bWNucy10ZXN0LXRzaWcta2V5LTMyLWJ5dGVzLWxvbmchIQ==";

impl Knot {
    fn start(dir: &Path, body: &str) -> Self {
        Self::start_on(dir, free_dns_port(), body)
    }

    fn start_on(dir: &Path, port: u16, body: &str) -> Self {
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

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
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

/// Response rate limiting: one client prefix flooding gets a few answers,
/// some truncated "slip" replies and silence for the rest.
fn response_rate_limiting(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_dns_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "[dns]\nlisten = [\"127.0.0.1:{port}\"]\n[dns.rrl]\nresponses_per_second = 5\nburst = 5\nslip = 2\n\
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
