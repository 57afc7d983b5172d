use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use mc_firewall::{
    CompiledFirewall, CountryCode, FirewallRules, GeoIp, GeoIpError, Reason, parse_cidr,
};

use crate::support::{make_mmdb, make_mmdb_typed};

const SPECS: [&str; 5] = [
    "10.1.0.0/16=FR",
    "10.2.0.0/16=fr", // lower case in the file: still FR
    "127.0.0.2/32=CN",
    "2001:db8::/32=DE",
    "2a02:1::/32=US",
];

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).expect("test country code")
}

fn open_fixture() -> (tempfile::TempDir, GeoIp) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = make_mmdb(dir.path(), "country.mmdb", &SPECS);
    let db = GeoIp::open(&path).expect("open the fixture database");
    (dir, db)
}

#[test]
fn open_reads_metadata() {
    let (dir, db) = open_fixture();
    assert_eq!(db.database_type(), "GeoIP2-Country");
    assert_eq!(db.path(), dir.path().join("country.mmdb"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        db.build_epoch() <= now && now - db.build_epoch() < 600,
        "{}",
        db.build_epoch()
    );
}

#[test]
fn country_lookups_follow_the_database() {
    let (_dir, db) = open_fixture();
    assert_eq!(db.country(ip("10.1.2.3")), Some(cc("FR")));
    assert_eq!(db.country(ip("10.2.0.1")), Some(cc("FR")));
    assert_eq!(db.country(ip("::ffff:10.1.2.3")), Some(cc("FR")));
    assert_eq!(db.country(ip("127.0.0.2")), Some(cc("CN")));
    assert_eq!(db.country(ip("127.0.0.3")), None);
    assert_eq!(db.country(ip("2001:db8:1::1")), Some(cc("DE")));
    assert_eq!(db.country(ip("2001:db9::1")), None);
    // 6to4 alias of 10.1.2.3 (the writer aliases 2002::/16 to IPv4).
    assert_eq!(db.country(ip("2002:a01:203::1")), Some(cc("FR")));
}

#[test]
fn country_blocks_resolve_through_the_compiled_table() {
    let (_dir, db) = open_fixture();
    let rules = FirewallRules {
        countries: vec![cc("FR"), cc("DE")],
        ..FirewallRules::default()
    };
    let fw = CompiledFirewall::build(&rules, Some(&db));
    let stats = fw.stats();
    assert!(stats.country_networks >= 3, "{stats:?}");
    assert_eq!(
        (stats.geoip_errors, stats.countries_without_geoip),
        (0, false)
    );

    assert_eq!(fw.check(ip("10.1.2.3")), Some(Reason::Country(cc("FR"))));
    assert_eq!(
        fw.check(ip("10.2.255.255")),
        Some(Reason::Country(cc("FR")))
    );
    assert_eq!(
        fw.check(ip("::ffff:10.1.0.0")),
        Some(Reason::Country(cc("FR")))
    );
    assert_eq!(fw.check(ip("2001:db8::1")), Some(Reason::Country(cc("DE"))));
    assert_eq!(
        fw.check(ip("2002:a01:203::1")),
        Some(Reason::Country(cc("FR")))
    );
    assert_eq!(fw.check(ip("127.0.0.2")), None, "CN is not blocked");
    assert_eq!(fw.check(ip("10.3.0.1")), None);
    assert_eq!(fw.check(ip("2a02:1::1")), None, "US is not blocked");
    assert_eq!(Reason::Country(cc("FR")).label(), "country");
}

#[test]
fn compiled_table_agrees_with_direct_lookups() {
    let (_dir, db) = open_fixture();
    let rules = FirewallRules {
        countries: ["FR", "CN", "DE", "US"].iter().map(|c| cc(c)).collect(),
        ..FirewallRules::default()
    };
    let fw = CompiledFirewall::build(&rules, Some(&db));
    let samples = [
        "0.0.0.0",
        "10.0.255.255",
        "10.1.0.0",
        "10.1.128.1",
        "10.2.255.255",
        "10.3.0.0",
        "127.0.0.1",
        "127.0.0.2",
        "127.0.0.3",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:127.0.0.2",
        "2001:db8::",
        "2001:db8:ffff:ffff::1",
        "2001:db9::",
        "2002:7f00:2::",
        "2001:0:a01:203::1", // Teredo alias of the IPv4 space
        "2002:a02:1::",
        "2a02:1:2::3",
        "2a02:2::",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ];
    for s in samples {
        let a = ip(s);
        assert_eq!(fw.check(a), db.country(a).map(Reason::Country), "{s}");
    }
}

#[test]
fn an_explicit_cidr_more_specific_than_a_country_wins() {
    let (_dir, db) = open_fixture();
    let rules = FirewallRules {
        ips: vec![ip("10.1.2.3")],
        cidrs: vec![
            parse_cidr("10.1.2.0/24").unwrap(),
            parse_cidr("10.0.0.0/8").unwrap(),
            parse_cidr("2001:db8:1::/48").unwrap(),
        ],
        countries: vec![cc("FR"), cc("DE")],
    };
    let fw = CompiledFirewall::build(&rules, Some(&db));
    assert_eq!(fw.check(ip("10.1.2.3")), Some(Reason::Ip));
    assert_eq!(fw.check(ip("10.1.2.4")), Some(Reason::Cidr));
    // The country network (/16) is more specific than 10.0.0.0/8.
    assert_eq!(fw.check(ip("10.1.3.4")), Some(Reason::Country(cc("FR"))));
    assert_eq!(fw.check(ip("10.9.0.1")), Some(Reason::Cidr));
    assert_eq!(fw.check(ip("2001:db8:1::9")), Some(Reason::Cidr));
    assert_eq!(
        fw.check(ip("2001:db8:2::9")),
        Some(Reason::Country(cc("DE")))
    );
}

#[test]
fn reload_picks_up_a_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = make_mmdb(dir.path(), "country.mmdb", &["10.1.0.0/16=FR"]);
    let rules = FirewallRules {
        countries: vec![cc("FR")],
        ..FirewallRules::default()
    };
    let old = CompiledFirewall::build(&rules, Some(&GeoIp::open(&path).unwrap()));
    assert_eq!(old.check(ip("10.1.0.1")), Some(Reason::Country(cc("FR"))));
    assert_eq!(old.check(ip("10.9.0.1")), None);

    // The file is replaced (as a GeoIP updater does: write, then rename).
    let next = make_mmdb(
        dir.path(),
        "next.mmdb",
        &["10.1.0.0/16=DE", "10.9.0.0/16=FR"],
    );
    std::fs::rename(&next, &path).unwrap();
    let db = GeoIp::open(&path).unwrap();
    assert_eq!(db.country(ip("10.1.0.1")), Some(cc("DE")));
    let new = CompiledFirewall::build(&rules, Some(&db));
    assert_eq!(new.check(ip("10.1.0.1")), None);
    assert_eq!(new.check(ip("10.9.0.1")), Some(Reason::Country(cc("FR"))));
    // The table built before the reload is unchanged (it is immutable).
    assert_eq!(old.check(ip("10.1.0.1")), Some(Reason::Country(cc("FR"))));
}

#[test]
fn bad_files_are_refused_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.mmdb");
    let err = GeoIp::open(&missing).unwrap_err();
    assert!(matches!(err, GeoIpError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.mmdb"), "{err}");

    let junk = dir.path().join("junk.mmdb");
    std::fs::write(&junk, b"not a maxmind database").unwrap();
    let err = GeoIp::open(&junk).unwrap_err();
    assert!(matches!(err, GeoIpError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("junk.mmdb"), "{err}");

    // A valid database that is cut short.
    let good = make_mmdb(dir.path(), "good.mmdb", &SPECS);
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.mmdb");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(GeoIp::open(&cut), Err(GeoIpError::Invalid { .. })));

    // A valid database of the wrong kind.
    let asn = make_mmdb_typed(dir.path(), "asn.mmdb", &SPECS, Some("GeoLite2-ASN"));
    let err = GeoIp::open(&asn).unwrap_err();
    assert!(matches!(err, GeoIpError::UnsupportedType { .. }), "{err:?}");
    assert!(err.to_string().contains("GeoLite2-ASN"), "{err}");
}
