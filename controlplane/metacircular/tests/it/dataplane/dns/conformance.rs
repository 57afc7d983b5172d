//! The conformance suite: a table of dig cases against the conformance zones,
//! then the raw-wire cases dig cannot send, and the IPv6 listener.

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use super::{Dig, conformance_toml, dig, free_dns_port, parse_dig, rcode, wire_query};
use crate::peers::Dataplane;

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

fn udp_exchange(port: u16, msg: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(wait)).expect("timeout");
    s.send_to(msg, ("127.0.0.1", port)).expect("send");
    let mut buf = [0_u8; 4096];
    s.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
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
    // An unsigned UPDATE (opcode 5) → REFUSED; NOTIFY (4) and STATUS (2) → NOTIMP.
    for (name, opcode, want) in [
        ("unsigned UPDATE → REFUSED", 5_u16, 5_u8),
        ("NOTIFY to the primary → NOTIMP", 4, 4),
        ("STATUS → NOTIMP", 2, 4),
    ] {
        let q = wire_query(11, "conf.test", 6, opcode << 11);
        let r = udp_exchange(port, &q, Duration::from_secs(2));
        out.push((
            name,
            match r {
                Some(b) if rcode(&b) == want && b[0] == 0 && b[1] == 11 => Ok(()),
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
