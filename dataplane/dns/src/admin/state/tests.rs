//! Admin-side tests on a real redb file: atomicity, serials, origins, restart.

use super::*;
use crate::admin::config::DnsSection;
use crate::model::SoaParams;

fn settings(zones_toml: &str) -> DnsSettings {
    let section: DnsSection = toml::from_str(zones_toml).expect("toml");
    section.settings().expect("settings")
}

fn start(dir: &Path, zones_toml: &str) -> DnsState {
    DnsState::start(
        dir,
        settings(zones_toml),
        Path::new("/etc/dp.toml"),
        1,
        Default::default(),
    )
    .expect("start")
    .0
}

fn zone(s: &str) -> ZoneName {
    ZoneName::parse(s).expect("zone")
}

fn soa() -> SoaParams {
    SoaParams {
        primary_ns: String::new(),
        admin_email: String::new(),
        refresh: 0,
        retry: 0,
        expire: 0,
        minimum: 0,
        ttl: 0,
    }
}

#[test]
fn changes_bump_the_serial_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let z = zone("a.test");
    let s0 = {
        let st = start(dir.path(), "");
        let spec = st.create_zone(z.clone(), soa(), &[]).expect("create");
        let (s1, n) = st
            .upsert_record(&z, "www", RType::A, 0, "192.0.2.1")
            .expect("upsert");
        assert!(s1 > spec.serial && n == 1);
        let (s2, n) = st
            .upsert_record(&z, "www", RType::A, 0, "192.0.2.1")
            .expect("again");
        assert_eq!((s2, n), (s1, 0), "idempotent");
        assert_eq!(st.published.snapshot.load().generation, 3);
        s1
    };
    let st = start(dir.path(), "");
    let data = st.zone(&z).expect("kept");
    assert_eq!(data.spec.serial, s0);
    assert_eq!(data.records.len(), 2, "NS + A");
    assert_eq!(st.published.snapshot.load().zones.len(), 1);
}

#[test]
fn replace_zone_is_all_or_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = start(dir.path(), "");
    let z = zone("r.test");
    st.create_zone(z.clone(), soa(), &[]).expect("create");
    let serial = st.zone(&z).expect("zone").spec.serial;
    let good = vec![
        ("@".to_owned(), RType::NS, 0, "ns1".to_owned()),
        ("www".to_owned(), RType::A, 0, "192.0.2.1".to_owned()),
    ];
    // A stale expected serial is refused.
    assert!(matches!(
        st.replace_zone(&z, None, good.clone(), serial + 1000),
        Err(ApiError::FailedPrecondition(_))
    ));
    // One bad record: nothing changes.
    let mut bad = good.clone();
    bad.push(("x".to_owned(), RType::A, 0, "not-an-ip".to_owned()));
    let e = st.replace_zone(&z, None, bad, 0).expect_err("bad");
    assert!(e.to_string().contains("records[2]"), "{e}");
    // CNAME exclusivity across the whole set.
    let mut clash = good.clone();
    clash.push(("www".to_owned(), RType::CNAME, 0, "ns1".to_owned()));
    assert!(st.replace_zone(&z, None, clash, 0).is_err());
    assert_eq!(
        st.zone(&z).expect("zone").spec.serial,
        serial,
        "nothing changed"
    );
    let (new_serial, changed) = st.replace_zone(&z, None, good, serial).expect("replace");
    assert!(new_serial > serial);
    assert_eq!(changed, 1, "one record added (the NS stayed)");
    // Removing the last apex NS is refused.
    assert!(st.delete_records(&z, "@", RType::NS, None).is_err());
}

#[test]
fn config_zones_are_file_owned_and_api_records_persist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = "[[zones]]\nname = \"c.test\"\nrecords = [\"www A 192.0.2.1\"]\n";
    let z = zone("c.test");
    {
        let st = start(dir.path(), toml);
        assert!(matches!(
            st.delete_zone(&z),
            Err(ApiError::FailedPrecondition(_))
        ));
        assert!(matches!(
            st.delete_records(&z, "www", RType::A, None),
            Err(ApiError::FailedPrecondition(_))
        ));
        st.upsert_record(&z, "api", RType::A, 0, "192.0.2.2")
            .expect("api record");
    }
    let serial = {
        let st = start(dir.path(), toml);
        let data = st.zone(&z).expect("zone");
        assert_eq!(data.records.len(), 3, "NS, config www, api record");
        data.spec.serial
    };
    // Same file again: no change, no serial bump.
    assert_eq!(
        start(dir.path(), toml).zone(&z).expect("zone").spec.serial,
        serial
    );
    // The file changes: applied, serial bumped; the API record stays.
    let st = start(
        dir.path(),
        "[[zones]]\nname = \"c.test\"\nrecords = [\"www A 192.0.2.9\"]\n",
    );
    let data = st.zone(&z).expect("zone");
    assert!(data.spec.serial > serial);
    let values: Vec<&str> = data
        .records
        .values()
        .map(|(r, _)| r.value.as_str())
        .collect();
    assert!(
        values.contains(&"192.0.2.9")
            && values.contains(&"192.0.2.2")
            && !values.contains(&"192.0.2.1")
    );
    drop(st);
    // Removed from the file: gone.
    let st = start(dir.path(), "");
    assert!(st.zone(&z).is_err());
}

/// Security suite, item 12: a config holding secrets is flagged when its
/// group or others may read it, not when it is 0600.
#[test]
fn secret_config_readable_by_others_is_flagged() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let f = dir.path().join("dataplane.toml");
    std::fs::write(&f, "[dns]\n").expect("write");
    for (mode, flagged) in [(0o644, true), (0o640, true), (0o604, true), (0o600, false)] {
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).expect("chmod");
        assert_eq!(super::readable_by_others(&f).is_some(), flagged, "{mode:o}");
    }
}

/// What `mcd restore` does to MCNS (the redb file replaced by an older
/// copy): the serial must not go back to one already published.
#[test]
fn a_restored_store_does_not_rewind_the_serial() {
    let dir = tempfile::tempdir().expect("tempdir");
    let z = zone("r.test");
    let db_path = db::path(dir.path());
    let saved = dir.path().join("saved.redb");
    let s1 = {
        let st = start(dir.path(), "");
        st.create_zone(z.clone(), soa(), &[]).expect("create");
        let (s1, _) = st
            .upsert_record(&z, "a", RType::A, 0, "192.0.2.1")
            .expect("a");
        s1
    };
    std::fs::copy(&db_path, &saved).expect("snapshot");
    let s2 = {
        let st = start(dir.path(), "");
        let mut s = 0;
        for i in 2..6 {
            s = st
                .upsert_record(&z, "a", RType::A, 0, &format!("192.0.2.{i}"))
                .expect("a")
                .0;
        }
        s
    };
    assert!(model::serial_gt(s2, s1));
    std::fs::copy(&saved, &db_path).expect("restore");
    let st = start(dir.path(), "");
    let served = st.zone(&z).expect("zone").spec.serial;
    assert!(model::serial_gt(served, s2), "{served} after {s2}");
    let (s3, _) = st
        .upsert_record(&z, "b", RType::A, 0, "192.0.2.9")
        .expect("b");
    assert!(model::serial_gt(s3, s2), "{s3} after {s2}");
    // Deleting and re-creating the zone does not reuse serials either.
    st.delete_zone(&z).expect("delete");
    let again = st.create_zone(z.clone(), soa(), &[]).expect("again");
    assert!(
        model::serial_gt(again.serial, s3),
        "{} after {s3}",
        again.serial
    );
}

#[test]
fn the_soa_mname_follows_the_first_ns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = start(dir.path(), "");
    let spec = st
        .create_zone(zone("m.test"), soa(), &["dns1.other.test".to_owned()])
        .expect("create");
    assert_eq!(spec.soa.primary_ns, "dns1.other.test");
    let spec = st.create_zone(zone("n.test"), soa(), &[]).expect("create");
    assert_eq!(spec.soa.primary_ns, "ns1.n.test");
}
