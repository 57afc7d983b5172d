use std::net::Ipv6Addr;

use super::*;
use crate::rules::parse_cidr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

#[test]
fn shared_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CompiledFirewall>();
    send_sync::<GeoIp>();
    send_sync::<crate::RateLimiter>();
    send_sync::<crate::ConnectionLimiter>();
    send_sync::<crate::ConnGuard>();
}

#[test]
fn empty_blocks_nothing() {
    let fw = CompiledFirewall::build(&FirewallRules::default(), None);
    for a in [
        "0.0.0.0",
        "255.255.255.255",
        "::",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ] {
        assert_eq!(fw.check(ip(a)), None, "{a}");
    }
    assert_eq!(fw.stats(), BuildStats::default());
}

#[test]
fn longest_prefix_wins_and_ip_beats_cidr() {
    let rules = FirewallRules {
        ips: vec![ip("10.1.2.3"), ip("2001:db8::1")],
        cidrs: vec![
            net("10.0.0.0/8"),
            net("10.1.0.0/16"),
            net("10.1.2.3/32"), // same prefix as the IP: the IP reason wins
            net("2001:db8::/32"),
        ],
        countries: vec![],
    };
    let fw = CompiledFirewall::build(&rules, None);
    assert_eq!(fw.check(ip("10.1.2.3")), Some(Reason::Ip));
    assert_eq!(fw.check(ip("10.1.2.4")), Some(Reason::Cidr));
    assert_eq!(fw.check(ip("10.200.0.1")), Some(Reason::Cidr));
    assert_eq!(fw.check(ip("9.255.255.255")), None);
    assert_eq!(fw.check(ip("11.0.0.0")), None);
    assert_eq!(fw.check(ip("2001:db8::1")), Some(Reason::Ip));
    assert_eq!(fw.check(ip("2001:db8:ffff::1")), Some(Reason::Cidr));
    assert_eq!(fw.check(ip("2001:db9::1")), None);
    let stats = fw.stats();
    assert_eq!((stats.ips, stats.cidrs, stats.country_networks), (2, 4, 0));
}

#[test]
fn whole_address_space_and_last_address() {
    let rules = FirewallRules {
        ips: vec![
            ip("255.255.255.255"),
            ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ],
        cidrs: vec![net("0.0.0.0/0"), net("::/0")],
        countries: vec![],
    };
    let fw = CompiledFirewall::build(&rules, None);
    assert_eq!(fw.check(ip("0.0.0.0")), Some(Reason::Cidr));
    assert_eq!(fw.check(ip("255.255.255.254")), Some(Reason::Cidr));
    assert_eq!(fw.check(ip("255.255.255.255")), Some(Reason::Ip));
    assert_eq!(fw.check(ip("::")), Some(Reason::Cidr));
    assert_eq!(
        fw.check(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
        Some(Reason::Ip)
    );
    assert_eq!(
        fw.check(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")),
        Some(Reason::Cidr)
    );
}

#[test]
fn ipv4_mapped_addresses_and_rules_are_ipv4() {
    let rules = FirewallRules {
        ips: vec![ip("::ffff:192.0.2.7")],
        cidrs: vec![net("198.51.100.0/24"), net("::ffff:203.0.113.0/120")],
        countries: vec![],
    };
    let fw = CompiledFirewall::build(&rules, None);
    assert_eq!(fw.check(ip("192.0.2.7")), Some(Reason::Ip));
    assert_eq!(fw.check(ip("::ffff:192.0.2.7")), Some(Reason::Ip));
    assert_eq!(fw.check(ip("::ffff:198.51.100.9")), Some(Reason::Cidr));
    assert_eq!(fw.check(ip("203.0.113.200")), Some(Reason::Cidr));
    assert_eq!(fw.check(ip("203.0.114.1")), None);
    // Only IPv4 was blocked: the IPv6 table stays empty.
    assert_eq!(fw.stats().v6_ranges, 0);
    // IPv4-compatible (::a.b.c.d) is not mapped: it stays IPv6.
    assert_eq!(fw.check(ip("::192.0.2.7")), None);
}

#[test]
fn host_bits_are_ignored_and_strict_parse_refuses_them() {
    let rules = FirewallRules {
        cidrs: vec![net("10.1.2.3/16")],
        ..FirewallRules::default()
    };
    let fw = CompiledFirewall::build(&rules, None);
    assert_eq!(fw.check(ip("10.1.0.0")), Some(Reason::Cidr));
    assert_eq!(fw.check(ip("10.1.255.255")), Some(Reason::Cidr));
    assert_eq!(fw.check(ip("10.2.0.0")), None);

    let err = parse_cidr("10.1.2.3/16").unwrap_err();
    assert!(
        err.to_string().contains("did you mean 10.1.0.0/16"),
        "{err}"
    );
    assert!(parse_cidr("10.1.2.3").is_err());
    assert_eq!(parse_cidr(" 2001:db8::/32 ").unwrap(), net("2001:db8::/32"));
}

#[test]
fn countries_without_geoip_are_reported() {
    let rules = FirewallRules {
        countries: vec![cc("FR")],
        ..FirewallRules::default()
    };
    let fw = CompiledFirewall::build(&rules, None);
    assert!(fw.stats().countries_without_geoip);
    assert_eq!(fw.check(ip("10.0.0.1")), None);
}

#[test]
fn adjacent_equal_ranges_are_merged() {
    let rules = FirewallRules {
        cidrs: (0..=255u8)
            .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::new(10, i, 0, 0), 16).unwrap()))
            .collect(),
        ..FirewallRules::default()
    };
    let fw = CompiledFirewall::build(&rules, None);
    // [0, 10/8) open, 10/8 blocked, [11.0.0.0, end] open.
    assert_eq!(fw.stats().v4_ranges, 3);
    assert_eq!(fw.check(ip("10.77.1.1")), Some(Reason::Cidr));
}

/// Deterministic pseudo-random numbers (splitmix64), no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Reference: scan every entry, keep the longest (then strongest) match.
fn naive(entries: &[(IpNet, Reason)], a: IpAddr) -> Option<Reason> {
    entries
        .iter()
        .filter(|(n, _)| n.contains(&a))
        .max_by_key(|(n, r)| (n.prefix_len(), r.rank()))
        .map(|(_, r)| *r)
}

#[test]
fn matches_a_naive_longest_prefix_scan() {
    let mut rng = Rng(7);
    let reasons = [Reason::Ip, Reason::Cidr, Reason::Country(cc("DE"))];
    for round in 0..10 {
        // Addresses clustered in a small space so prefixes nest often.
        let mut entries: Vec<(IpNet, Reason)> = Vec::new();
        for _ in 0..200 {
            let v4 = Ipv4Addr::from(0x0a00_0000 | (rng.next() as u32 & 0xffff));
            let len = 16 + (rng.next() % 17) as u8;
            let r = reasons[(rng.next() % 3) as usize];
            entries.push((IpNet::V4(Ipv4Net::new(v4, len).unwrap().trunc()), r));
            let v6 = Ipv6Addr::from((0x2001_0db8_u128 << 96) | u128::from(rng.next() & 0xffff));
            let len = 112 + (rng.next() % 17) as u8;
            entries.push((IpNet::V6(Ipv6Net::new(v6, len).unwrap().trunc()), r));
        }
        let mut v4: Vec<Entry<u32>> = Vec::new();
        let mut v6: Vec<Entry<u128>> = Vec::new();
        for &(n, r) in &entries {
            push_net(&mut v4, &mut v6, n, r);
        }
        let fw = CompiledFirewall {
            v4: RangeTable::build(v4),
            v6: RangeTable::build(v6),
            stats: BuildStats::default(),
        };

        for _ in 0..2000 {
            let a4 = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (rng.next() as u32 & 0x1_ffff)));
            assert_eq!(fw.check(a4), naive(&entries, a4), "round {round} {a4}");
            let bits = u128::from(rng.next() & 0x1_ffff);
            let a6 = IpAddr::V6(Ipv6Addr::from((0x2001_0db8_u128 << 96) | bits));
            assert_eq!(fw.check(a6), naive(&entries, a6), "round {round} {a6}");
        }
    }
}
