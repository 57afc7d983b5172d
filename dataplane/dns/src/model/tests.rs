//! Unit tests for names, rdata and serials.

use super::*;

fn zone() -> ZoneName {
    ZoneName::parse("Example.NET.").expect("zone")
}

#[test]
fn zone_names_are_lower_case_without_the_dot() {
    assert_eq!(zone().as_str(), "example.net");
    for bad in ["", "net", "a..b", "-a.net", "a b.net", "*.a.net"] {
        assert!(ZoneName::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn owners_are_relative() {
    let z = zone();
    assert_eq!(parse_owner(&z, "@").expect("apex"), "@");
    assert_eq!(parse_owner(&z, "example.net.").expect("apex"), "@");
    assert_eq!(parse_owner(&z, "WWW").expect("www"), "www");
    assert_eq!(parse_owner(&z, "www.example.net.").expect("abs"), "www");
    assert_eq!(parse_owner(&z, "_sip._tcp").expect("srv"), "_sip._tcp");
    assert_eq!(parse_owner(&z, "*.dev").expect("wild"), "*.dev");
    for bad in ["www.other.org.", "a.*", "a b", "x..y", &"a".repeat(64)] {
        assert!(parse_owner(&z, bad).is_err(), "{bad}");
    }
}

#[test]
fn rdata_is_parsed_and_canonical() {
    let z = zone();
    let c = |t, v| parse_rdata(&z, t, v).map(|d| canonical(&d));
    assert_eq!(c(RType::A, "192.0.2.1").expect("a"), "192.0.2.1");
    assert_eq!(c(RType::MX, "10 Mail").expect("mx"), "10 mail.example.net.");
    assert_eq!(
        c(RType::CNAME, "www.other.org.").expect("cname"),
        "www.other.org."
    );
    assert_eq!(c(RType::TXT, "\"a b\" c").expect("txt"), "\"a b\" \"c\"");
    assert_eq!(
        c(RType::SRV, "1 2 3 sip").expect("srv"),
        "1 2 3 sip.example.net."
    );
    assert!(c(RType::CAA, "0 issue \"ca.example\"").is_ok());
    for (t, bad) in [
        (RType::A, "300.0.0.1"),
        (RType::A, "192.0.2.1 extra"),
        (RType::AAAA, "192.0.2.1"),
        (RType::MX, "mail"),
        (RType::CNAME, "a b"),
        (RType::TXT, "\"unterminated"),
        (RType::TXT, "two\nlines"),
        (RType::A, "$INCLUDE /etc/passwd"),
        (RType::A, ""),
    ] {
        assert!(c(t, bad).is_err(), "{t} {bad}");
    }
}

#[test]
fn ttl_default_and_range() {
    let z = zone();
    let r =
        RecordSpec::new(&z, "www", RType::A, 0, "192.0.2.1", 123, Origin::AdminApi).expect("ok");
    assert_eq!(r.ttl, 123);
    assert!(
        RecordSpec::new(
            &z,
            "www",
            RType::A,
            MAX_TTL + 1,
            "192.0.2.1",
            1,
            Origin::AdminApi
        )
        .is_err()
    );
}

#[test]
fn serials_are_yyyymmddnn_and_monotonic() {
    assert_eq!(next_serial(0, 20260101), 2026010100);
    assert_eq!(next_serial(2026010100, 20260101), 2026010101);
    assert_eq!(
        next_serial(2026010199, 20260101),
        2026010200,
        "past 99 keeps counting"
    );
    assert_eq!(next_serial(2026010105, 20260102), 2026010200);
    let today = today_yyyymmdd();
    assert!((20_240_101..21_000_101).contains(&today), "{today}");
}

#[test]
fn soa_defaults_and_checks() {
    let z = zone();
    let s = SoaParams {
        primary_ns: String::new(),
        admin_email: String::new(),
        refresh: 0,
        retry: 0,
        expire: 0,
        minimum: 0,
        ttl: 0,
    }
    .normalize(&z)
    .expect("defaults");
    assert_eq!(s.primary_ns, "ns1.example.net");
    assert_eq!(s.rname().to_ascii(), "hostmaster.example.net.");
    assert_eq!(s.negative_ttl(), DEFAULT_MINIMUM.min(DEFAULT_TTL));
    let bad = SoaParams {
        admin_email: "not-an-address".to_owned(),
        ..s.clone()
    };
    assert!(bad.normalize(&z).is_err());
    let bad = SoaParams {
        retry: 10_000,
        refresh: 100,
        ..s
    };
    assert!(bad.normalize(&z).is_err());
}

#[test]
fn long_txt_strings_are_split_into_character_strings_and_encode() {
    let z = zone();
    let long = "k".repeat(600);
    let data = parse_rdata(&z, RType::TXT, &long).expect("txt");
    let RData::TXT(txt) = &data else {
        panic!("not TXT")
    };
    let lens: Vec<usize> = txt.txt_data.iter().map(|s| s.len()).collect();
    assert_eq!(lens, [255, 255, 90]);
    // The canonical form parses back to the same strings (idempotent keys).
    let again = parse_rdata(&z, RType::TXT, &canonical(&data)).expect("again");
    assert_eq!(canonical(&again), canonical(&data));
    let spec = RecordSpec::new(&z, "dkim", RType::TXT, 0, &long, 300, Origin::AdminApi)
        .expect("a 600-byte TXT is accepted and servable");
    assert_eq!(spec.value.matches('"').count(), 6);
    check_encodes("record.value", &owner_name(&z, "dkim"), 300, &data).expect("encodes");
    // What the wire encoder refuses is refused at write time, naming the field.
    let unsplit = RData::TXT(hickory_proto::rr::rdata::TXT::new(vec![long]));
    let e = check_encodes("record.value", &owner_name(&z, "dkim"), 300, &unsplit)
        .expect_err("a 600-byte character-string cannot be encoded");
    assert_eq!(e.field, "record.value");
}
