//! Creation, rotation, config, trim, delete, serde, describe and export.

use super::*;
use crate::engines::transit::types::ALL_TYPES;

fn create(kind: &str, f: impl FnOnce(&mut CreateKey)) -> Result<KeyState, TransitError> {
    let mut req = CreateKey {
        kind: Some(kind.into()),
        ..Default::default()
    };
    f(&mut req);
    KeyState::create("k", &req, NOW)
}

#[test]
fn create_defaults_and_refusals() {
    let s = KeyState::create("orders", &CreateKey::default(), NOW).unwrap();
    assert_eq!(
        s.kind,
        KeyType::Aes256Gcm,
        "aes256-gcm by default, as Vault"
    );
    assert_eq!(
        (
            s.latest_version,
            s.min_decryption_version,
            s.min_encryption_version,
            s.min_available_version
        ),
        (1, 1, 0, 0)
    );
    assert!(!s.deletion_allowed && !s.exportable && !s.derived);
    assert_eq!(s.versions[&1].created_at, NOW);
    assert_eq!(s.versions[&1].material.len(), 32);
    assert!(
        create("ecdsa-p256", |r| r.derived = Some(true)).is_err(),
        "derivation is for aes, xchacha, ed25519"
    );
    assert!(create("hmac", |r| r.derived = Some(true)).is_err());
    assert!(create("aes256-gcm96", |r| r.convergent_encryption = Some(true)).is_err());
    assert!(create("aes256-gcm96", |r| r.allow_plaintext_backup = Some(true)).is_err());
    assert!(create("aes128-gcm96", |_| ()).is_err());
    assert!(create("hmac", |r| r.key_size = Some(48)).is_err());
    assert!(
        create("aes256-gcm", |r| r.auto_rotate_period =
            Some(wire::Period::Text("30m".into())))
        .is_err()
    );
    let s = create("aes256-gcm", |r| {
        r.auto_rotate_period = Some(wire::Period::Text("1h".into()))
    })
    .unwrap();
    assert_eq!(s.auto_rotate_period, 3600);
    for bad in ["", "-x", ".x", "a/b", "a b", &"a".repeat(129)] {
        assert!(
            KeyState::create(bad, &CreateKey::default(), NOW).is_err(),
            "{bad:?}"
        );
    }
    for good in ["a", "A.b_c-9", &"a".repeat(128)] {
        validate_name(good).unwrap();
    }
}

#[test]
fn every_type_creates_loads_and_round_trips_through_json() {
    for kind in ALL_TYPES {
        let s = KeyState::create(
            "k",
            &CreateKey {
                kind: Some(kind.native_name().into()),
                ..Default::default()
            },
            NOW,
        )
        .unwrap();
        assert_eq!(
            s.versions[&1].public_key.is_some(),
            kind.is_asymmetric(),
            "{kind:?}"
        );
        let json = serde_json::to_string(&s).unwrap();
        let back: KeyState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert!(
            !format!("{s:?}").contains(&STANDARD.encode(s.versions[&1].material.as_slice())),
            "Debug redacts"
        );
        TransitKey::load(back).unwrap();
    }
}

#[test]
fn a_stored_key_decrypts_after_reload_from_json() {
    let k = key("xchacha20-poly1305");
    let ct = enc(&k, b"kept").ciphertext;
    let json = serde_json::to_vec(k.state()).unwrap();
    let again = TransitKey::load(serde_json::from_slice(&json).unwrap()).unwrap();
    assert_eq!(dec(&again, &ct).unwrap(), b"kept");
}

#[test]
fn rotation_is_bounded_at_a_thousand_versions() {
    let mut s = state("hmac-sha256");
    for n in 2..=MAX_VERSIONS as u32 {
        assert_eq!(s.rotate(NOW).unwrap(), n);
    }
    let before = s.clone();
    let e = s.rotate(NOW).unwrap_err();
    assert!(e.to_string().contains("1000 versions"), "{e}");
    assert_eq!(s, before);
    // Trimming makes room.
    s.configure(&ConfigKey {
        min_decryption_version: Some(10),
        min_encryption_version: Some(10),
        ..Default::default()
    })
    .unwrap();
    s.trim(Some(10)).unwrap();
    assert_eq!(s.versions.len(), MAX_VERSIONS - 9);
    assert_eq!(s.rotate(NOW).unwrap(), 1001);
}

#[test]
fn config_follows_vaults_rules_and_refusals_change_nothing() {
    let mut s = state("aes256-gcm");
    s.rotate(NOW).unwrap();
    s.rotate(NOW).unwrap();
    let cases: [(ConfigKey, &str); 5] = [
        (
            ConfigKey {
                min_decryption_version: Some(4),
                ..Default::default()
            },
            "cannot set min decryption version of 4, latest key version is 3",
        ),
        (
            ConfigKey {
                min_encryption_version: Some(4),
                ..Default::default()
            },
            "cannot set min encryption version of 4, latest key version is 3",
        ),
        (
            ConfigKey {
                min_decryption_version: Some(3),
                min_encryption_version: Some(2),
                ..Default::default()
            },
            "min encryption version of 2 must be greater than or equal to min decryption version of 3",
        ),
        (
            ConfigKey {
                auto_rotate_period: Some(wire::Period::Seconds(59)),
                ..Default::default()
            },
            "at least an hour",
        ),
        (
            ConfigKey {
                allow_plaintext_backup: Some(true),
                deletion_allowed: Some(true),
                ..Default::default()
            },
            "not offered",
        ),
    ];
    for (req, want) in cases {
        let before = s.clone();
        let e = s.configure(&req).unwrap_err().to_string();
        assert!(e.contains(want), "{e} !~ {want}");
        assert_eq!(s, before, "a refused config changes nothing");
    }
    let w = s
        .configure(&ConfigKey {
            min_decryption_version: Some(0),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(s.min_decryption_version, 1);
    assert_eq!(w.len(), 1);
    s.configure(&ConfigKey {
        min_decryption_version: Some(2),
        min_encryption_version: Some(3),
        deletion_allowed: Some(true),
        exportable: Some(true),
        auto_rotate_period: Some(wire::Period::Text("24h".into())),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        (
            s.min_decryption_version,
            s.min_encryption_version,
            s.auto_rotate_period
        ),
        (2, 3, 86_400)
    );
    assert!(s.deletion_allowed && s.exportable);
    let e = s
        .configure(&ConfigKey {
            exportable: Some(false),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "exportable: exportable key cannot be made non-exportable"
    );
    s.configure(&ConfigKey {
        exportable: Some(true),
        deletion_allowed: Some(false),
        ..Default::default()
    })
    .unwrap();
    assert!(!s.deletion_allowed);
}

#[test]
fn trim_follows_vaults_rules() {
    let mut s = state("aes256-gcm");
    for _ in 0..4 {
        s.rotate(NOW).unwrap();
    }
    let e = |s: &mut KeyState, v: Option<u32>| s.trim(v).unwrap_err().to_string();
    assert!(e(&mut s, None).contains("missing"));
    assert!(e(&mut s, Some(2)).contains("minimum encryption version is not set"));
    s.configure(&ConfigKey {
        min_decryption_version: Some(3),
        min_encryption_version: Some(4),
        ..Default::default()
    })
    .unwrap();
    assert!(e(&mut s, Some(5)).contains("greater than minimum encryption version"));
    assert!(e(&mut s, Some(4)).contains("greater than minimum decryption version"));
    assert!(e(&mut s, Some(0)).contains("positive"));
    let before = s.clone();
    assert_eq!(s, before);
    s.trim(Some(3)).unwrap();
    assert_eq!(
        s.versions.keys().copied().collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert_eq!(s.min_available_version, 3);
    assert!(e(&mut s, Some(2)).contains("cannot be decremented"));
    let e2 = s
        .configure(&ConfigKey {
            min_decryption_version: Some(2),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        e2.to_string().contains("below min available version 3"),
        "{e2}"
    );
    s.trim(Some(3)).unwrap();
}

#[test]
fn delete_needs_deletion_allowed() {
    let mut s = state("ed25519");
    assert_eq!(
        s.check_delete().unwrap_err().to_string(),
        "deletion_allowed: deletion is not allowed for this key"
    );
    s.configure(&ConfigKey {
        deletion_allowed: Some(true),
        ..Default::default()
    })
    .unwrap();
    s.check_delete().unwrap();
}

#[test]
fn rotation_due_by_age_and_by_aes_budget() {
    let mut s = state("aes256-gcm");
    assert!(
        !s.rotation_due(NOW + 10 * 86_400, 0),
        "no period: never by age"
    );
    s.auto_rotate_period = 3600;
    assert!(!s.rotation_due(NOW + 3599, 0));
    assert!(s.rotation_due(NOW + 3600, 0));
    s.auto_rotate_period = 0;
    assert!(s.rotation_due(NOW, crate::engines::transit::keys::AES_GCM_ROTATE_AFTER));
    assert!(
        !state("xchacha20-poly1305")
            .rotation_due(NOW, crate::engines::transit::keys::AES_GCM_ROTATE_AFTER)
    );
}

#[test]
fn describe_has_vaults_shape_and_no_private_material() {
    let mut s = state("aes256-gcm");
    s.rotate(NOW + 60).unwrap();
    let d = describe(&s, Dialect::Vault);
    assert_eq!(d["type"], "aes256-gcm96");
    assert_eq!(describe(&s, Dialect::Native)["type"], "aes256-gcm");
    assert_eq!(d["keys"]["1"], NOW);
    assert_eq!(d["keys"]["2"], NOW + 60);
    assert_eq!(d["latest_version"], 2);
    assert_eq!(d["supports_encryption"], true);
    assert_eq!(d["supports_signing"], false);
    assert!(d.get("kdf").is_none());
    for kind in ["ecdsa-p384", "rsa-2048", "ed25519"] {
        let s = state(kind);
        let d = describe(&s, Dialect::Vault);
        let v1 = &d["keys"]["1"];
        assert_eq!(v1["creation_time"], "2023-11-14T22:13:20Z");
        assert_eq!(
            v1["public_key"].as_str(),
            s.versions[&1].public_key.as_deref()
        );
        let text = d.to_string();
        assert!(!text.contains(&STANDARD.encode(s.versions[&1].material.as_slice())));
        assert!(!text.contains(&STANDARD.encode(s.versions[&1].hmac_key.as_slice())));
    }
    assert_eq!(
        describe(&state("ecdsa-p256"), Dialect::Vault)["keys"]["1"]["name"],
        "P-256"
    );
    let d = describe(derived("ed25519").state(), Dialect::Vault);
    assert_eq!(d["kdf"], "hkdf_sha256");
    assert!(d["keys"]["1"].get("public_key").is_none());
}

#[test]
fn rfc3339_dates() {
    assert_eq!(info::rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(info::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(info::rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
}

#[test]
fn export_needs_exportable_and_uses_vaults_formats() {
    let k = key("aes256-gcm");
    let e = export(&k, "encryption-key", None, Dialect::Vault).unwrap_err();
    assert_eq!(
        e.to_string(),
        "name: private key material is not exportable"
    );
    let mut s = k.state().clone();
    s.configure(&ConfigKey {
        exportable: Some(true),
        ..Default::default()
    })
    .unwrap();
    s.rotate(NOW).unwrap();
    let k = k.reload(s).unwrap();
    let all = export(&k, "encryption-key", None, Dialect::Vault).unwrap();
    assert_eq!(all["keys"].as_object().unwrap().len(), 2);
    assert_eq!(
        unb64(all["keys"]["1"].as_str().unwrap()),
        k.state().versions[&1].material.as_slice()
    );
    let latest = export(&k, "hmac-key", Some("latest"), Dialect::Vault).unwrap();
    assert_eq!(
        unb64(latest["keys"]["2"].as_str().unwrap()),
        k.state().versions[&2].hmac_key.as_slice()
    );
    assert!(export(&k, "hmac-key", Some("3"), Dialect::Vault).is_err());
    assert!(export(&k, "signing-key", None, Dialect::Vault).is_err());
    assert!(export(&k, "backup", None, Dialect::Vault).is_err());
    // Public keys need no exportable flag.
    let ed = key("ed25519");
    let pk = export(&ed, "public-key", None, Dialect::Vault).unwrap();
    assert_eq!(
        pk["keys"]["1"].as_str(),
        ed.state().versions[&1].public_key.as_deref()
    );
}
