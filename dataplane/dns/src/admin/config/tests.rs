//! Unit tests for the `[dns]` section.

use super::*;

fn parse(text: &str) -> Result<DnsSettings, mc_kit::config::Invalid> {
    let section: DnsSection = toml::from_str(text).expect("toml");
    section.settings()
}

#[test]
fn defaults_are_sane() {
    let s = parse("").expect("defaults");
    assert_eq!(s.udp_payload, 1232);
    assert!(s.recursion_allowed_for("127.0.0.1".parse().expect("ip")));
    assert!(
        !s.recursion_allowed_for("192.0.2.1".parse().expect("ip")),
        "never an open resolver"
    );
    assert!(s.recursion_allowed_for("::ffff:127.0.0.1".parse().expect("ip")));
}

/// Security suite, item 12: unless configured, recursion is for this host
/// only (not for the private ranges around it) and RRL is on.
#[test]
fn recursion_defaults_to_loopback_and_rrl_is_on() {
    let s = parse("").expect("defaults");
    for ip in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
        assert!(s.recursion_allowed_for(ip.parse().expect("ip")), "{ip}");
    }
    for ip in [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "fd00::1",
        "192.0.2.1",
        "2001:db8::1",
    ] {
        assert!(!s.recursion_allowed_for(ip.parse().expect("ip")), "{ip}");
    }
    assert_eq!(s.rrl.responses_per_second, DEFAULT_RRL_RATE);
    assert!(s.rrl.responses_per_second > 0);
    assert!(s.rrl.is_exempt("127.0.0.1".parse().expect("ip")));
    assert!(!s.rrl.is_exempt("192.0.2.1".parse().expect("ip")));
    assert!(!s.holds_secrets);
    // Configured: the operator's list, and RRL off only when asked.
    let s =
        parse("recursion_allowed = [\"10.0.0.0/8\"]\n[rrl]\nresponses_per_second = 0\nexempt = []")
            .expect("configured");
    assert!(s.recursion_allowed_for("10.1.2.3".parse().expect("ip")));
    assert!(!s.recursion_allowed_for("127.0.0.1".parse().expect("ip")));
    assert_eq!(s.rrl.responses_per_second, 0);
    assert!(!s.rrl.is_exempt("127.0.0.1".parse().expect("ip")));
}

#[test]
fn bad_values_name_their_key() {
    for (text, key) in [
        ("udp_payload = 100", "dns.udp_payload"),
        ("cache_entries = 1", "dns.cache_entries"),
        (
            "[rrl]\nresponses_per_second = 5000",
            "dns.rrl.responses_per_second",
        ),
        (
            "[[secondaries]]\naddress = \"127.0.0.1:53\"\ntsig_key = \"nope\"",
            "dns.secondaries[0].tsig_key",
        ),
        (
            "[[tsig_keys]]\nname = \"k\"\nsecret = \"c2hvcnQ=\"",
            "dns.tsig_keys[0]",
        ),
        (
            "[[tsig_keys]]\nname = \"k\"\nalgorithm = \"hmac-md5\"\nsecret = \"c2hvcnQ=\"",
            "dns.tsig_keys[0].algorithm",
        ),
        (
            "[[zones]]\nname = \"z.test\"\nrecords = [\"www A nope\"]",
            "dns.zones[0].records[0]",
        ),
        ("[[zones]]\nname = \"tld\"", "dns.zones[0].name"),
    ] {
        let e = parse(text).expect_err(text);
        assert_eq!(e.field, key, "{text}: {e:?}");
    }
}

#[test]
fn record_lines() {
    let z = ZoneName::parse("z.test").expect("zone");
    let r = parse_record_line(&z, "www 300 A 192.0.2.1", 60, Origin::ConfigFile).expect("a");
    assert_eq!(
        (r.name.as_str(), r.ttl, r.value.as_str()),
        ("www", 300, "192.0.2.1")
    );
    let r = parse_record_line(&z, "@ TXT \"a  b\" c", 60, Origin::ConfigFile).expect("txt");
    assert_eq!((r.ttl, r.value.as_str()), (60, "\"a  b\" \"c\""));
    assert!(parse_record_line(&z, "www", 60, Origin::ConfigFile).is_err());
    assert!(parse_record_line(&z, "www 300", 60, Origin::ConfigFile).is_err());
    assert!(parse_record_line(&z, "www FOO x", 60, Origin::ConfigFile).is_err());
}
