//! Unit tests of the ssh engine against a temporary store: each CA key
//! type signs certificates that `ssh-key` validates; refusals change
//! nothing; the KRL agrees with `ssh-keygen -Q` (the real OpenSSH reader);
//! the public rows hold no secret and answer while sealed.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::{Value, json};
use ssh_key::{Certificate, HashAlg};

use super::model::{CaKeyType, CaRequest, Profile, RevokeRequest, SignRequest};
use crate::core::{Caller, Metacrypt, MountInput};
use crate::error::CryptError;

async fn setup() -> (tempfile::TempDir, Arc<Metacrypt>, Caller) {
    let (d, m, admin) = crate::testing::unsealed().await;
    m.create_mount(
        &admin,
        MountInput {
            name: "ssh".to_owned(),
            kind: "ssh".to_owned(),
            description: String::new(),
            config: None,
        },
    )
    .expect("mount");
    (d, m, admin)
}

fn profile(v: Value) -> Profile {
    serde_json::from_value(v).expect("profile")
}

fn sign_req(v: Value) -> SignRequest {
    serde_json::from_value(v).expect("request")
}

/// A fresh ed25519 key made by ssh-keygen; returns its public line.
fn keygen(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen is installed (scripts/test installs openssh-client)");
    assert!(out.status.success(), "{out:?}");
    std::fs::read_to_string(path.with_extension("pub")).expect("pub")
}

/// `ssh-keygen -Q -f krl cert`: true when the KRL revokes the certificate.
fn revoked_by_keygen(dir: &Path, krl: &[u8], cert_line: &str) -> bool {
    std::fs::write(dir.join("krl"), krl).expect("krl");
    std::fs::write(dir.join("c-cert.pub"), cert_line).expect("cert");
    let out = Command::new("ssh-keygen")
        .arg("-Q")
        .arg("-f")
        .arg(dir.join("krl"))
        .arg(dir.join("c-cert.pub"))
        .output()
        .expect("ssh-keygen");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // Exit status 1 with "REVOKED" for a revoked key; 0 and "ok" otherwise;
    // anything else (a KRL it cannot parse) fails the test.
    match out.status.code() {
        Some(0) if text.contains(": ok") => false,
        Some(1) if text.contains("REVOKED") => true,
        _ => panic!("ssh-keygen -Q: {out:?}"),
    }
}

#[tokio::test]
async fn every_ca_type_signs_certificates_ssh_key_validates() {
    let (d, m, admin) = setup().await;
    for (i, kt) in [
        CaKeyType::Ed25519,
        CaKeyType::EcdsaP256,
        CaKeyType::EcdsaP384,
    ]
    .into_iter()
    .enumerate()
    {
        let mount = format!("ssh{i}");
        m.create_mount(
            &admin,
            MountInput {
                name: mount.clone(),
                kind: "ssh".to_owned(),
                description: String::new(),
                config: None,
            },
        )
        .expect("mount");
        let ca = m
            .ssh_create_ca(&admin, &mount, || {
                Ok(CaRequest {
                    key_type: Some(kt),
                    private_key: None,
                })
            })
            .expect("ca");
        assert_eq!(ca.key_type, kt);
        m.ssh_put_profile(&admin, &mount, "ops", || {
            Ok(profile(json!({"allowed_principals": ["alice", "deploy-*"],
                "critical_options": {"source-address": "127.0.0.1/32"}})))
        })
        .expect("profile");
        let key = keygen(d.path(), &format!("k{i}"));
        let s = m
            .ssh_sign(&admin, &mount, "ops", || {
                Ok(sign_req(
                    json!({"public_key": key, "principals": ["deploy-web"], "ttl": "10m"}),
                ))
            })
            .expect("sign");
        assert_eq!(s.serial, 1);
        assert_eq!(s.valid_before - s.valid_after, 600 + super::BACKDATE_SECS);
        let cert = Certificate::from_openssh(&s.certificate).expect("parse");
        let ca_key = ssh_key::PublicKey::from_openssh(&ca.public_key).expect("ca key");
        cert.validate_at(s.valid_after + 1, &[ca_key.fingerprint(HashAlg::Sha256)])
            .expect("signed by the CA");
        assert_eq!(cert.valid_principals(), ["deploy-web".to_owned()]);
        assert_eq!(cert.key_id(), format!("admin@{mount}/ops#1"));
        assert_eq!(
            cert.critical_options()
                .get("source-address")
                .map(String::as_str),
            Some("127.0.0.1/32")
        );
        assert!(cert.extensions().contains_key("permit-pty"));
        // The public route serves the same key line.
        assert_eq!(
            m.ssh_public_key(&mount).expect("public"),
            format!("{}\n", ca.public_key)
        );
    }
}

#[tokio::test]
async fn refusals_change_nothing() {
    let (d, m, admin) = setup().await;
    let key = keygen(d.path(), "k");
    // No CA yet.
    m.ssh_put_profile(&admin, "ssh", "ops", || {
        Ok(profile(
            json!({"allowed_principals": ["alice"], "max_ttl": "1h"}),
        ))
    })
    .expect("profile");
    let e = m
        .ssh_sign(&admin, "ssh", "ops", || {
            Ok(sign_req(
                json!({"public_key": key, "principals": ["alice"]}),
            ))
        })
        .expect_err("no CA");
    assert!(matches!(e, CryptError::FailedPrecondition(_)), "{e:?}");
    m.ssh_create_ca(&admin, "ssh", || Ok(CaRequest::default()))
        .expect("ca");
    assert!(matches!(
        m.ssh_create_ca(&admin, "ssh", || Ok(CaRequest::default())),
        Err(CryptError::AlreadyExists(_))
    ));
    let refused = |v: Value, needle: &str| {
        let e = m
            .ssh_sign(&admin, "ssh", "ops", || Ok(sign_req(v)))
            .expect_err("refused");
        assert!(matches!(e, CryptError::Invalid(_)), "{e:?}");
        assert!(e.to_string().contains(needle), "{needle:?} not in {e}");
    };
    refused(
        json!({"public_key": key, "principals": ["root"]}),
        "\"root\" is not allowed",
    );
    refused(
        json!({"public_key": key, "principals": ["alice"], "ttl": "2h"}),
        "max_ttl",
    );
    refused(
        json!({"public_key": "ssh-ed25519 AAAA", "principals": ["alice"]}),
        "public_key",
    );
    let ca = m.ssh_ca(&admin, "ssh").expect("ca");
    refused(
        json!({"public_key": ca.public_key, "principals": ["alice"]}),
        "CA's own key",
    );
    assert_eq!(m.ssh_ca(&admin, "ssh").expect("ca").next_serial, 1);
    assert!(
        m.ssh_issued(&admin, "ssh", || Ok(None))
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn krl_agrees_with_ssh_keygen() {
    let (d, m, admin) = setup().await;
    m.ssh_create_ca(&admin, "ssh", || {
        Ok(CaRequest {
            key_type: Some(CaKeyType::EcdsaP256),
            private_key: None,
        })
    })
    .expect("ca");
    m.ssh_put_profile(&admin, "ssh", "ops", || {
        Ok(profile(json!({"allowed_principals": ["*"]})))
    })
    .expect("profile");
    let mut certs = Vec::new();
    for i in 0..4 {
        let key = keygen(d.path(), &format!("k{i}"));
        let id = format!("id-{i}");
        let s = m
            .ssh_sign(&admin, "ssh", "ops", || {
                Ok(sign_req(
                    json!({"public_key": key, "principals": ["u"], "key_id": id}),
                ))
            })
            .expect("sign");
        certs.push(s.certificate);
    }
    let krl0 = m.ssh_public_krl("ssh").expect("krl");
    for c in &certs {
        assert!(!revoked_by_keygen(d.path(), &krl0, c));
    }
    let r = m
        .ssh_revoke(&admin, "ssh", || {
            Ok(RevokeRequest {
                serials: vec![2, 4],
                key_ids: vec!["id-0".to_owned()],
            })
        })
        .expect("revoke");
    assert_eq!(
        (r.krl_version, r.revoked_serials, r.revoked_key_ids),
        (2, 2, 1)
    );
    let krl = m.ssh_public_krl("ssh").expect("krl");
    let got: Vec<bool> = certs
        .iter()
        .map(|c| revoked_by_keygen(d.path(), &krl, c))
        .collect();
    assert_eq!(got, [true, true, false, true]);
    assert!(
        m.ssh_cert(&admin, "ssh", "2")
            .expect("cert")
            .revoked_at
            .is_some()
    );
    // An unknown serial is 404 and the KRL stays as it was.
    assert!(matches!(
        m.ssh_revoke(&admin, "ssh", || Ok(RevokeRequest {
            serials: vec![99],
            key_ids: vec![]
        })),
        Err(CryptError::NotFound(_))
    ));
    assert_eq!(m.ssh_public_krl("ssh").expect("krl"), krl);
    // Nothing has expired: tidy keeps every record.
    assert_eq!(m.ssh_tidy(&admin, "ssh").expect("tidy"), 0);
    assert_eq!(
        m.ssh_issued(&admin, "ssh", || Ok(None))
            .expect("list")
            .len(),
        4
    );
}

#[tokio::test]
async fn import_public_rows_and_sealed() {
    let (d, m, admin) = setup().await;
    let path = d.path().join("ca");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-b", "384", "-N", "", "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success());
    let pem = std::fs::read_to_string(&path).expect("key");
    let ca = m
        .ssh_create_ca(&admin, "ssh", || {
            Ok(CaRequest {
                key_type: None,
                private_key: Some(pem),
            })
        })
        .expect("import");
    assert_eq!(ca.key_type, CaKeyType::EcdsaP384);
    let want = std::fs::read_to_string(path.with_extension("pub")).expect("pub");
    let field = |s: &str| s.split_whitespace().nth(1).map(str::to_owned);
    assert_eq!(field(&ca.public_key), field(&want));

    let rx = redb::ReadableDatabase::begin_read(m.store().db()).expect("rx");
    for t in crate::store::PUBLIC_TABLES {
        let table = rx.open_table(*t).expect("table");
        for row in redb::ReadableTable::iter(&table).expect("iter") {
            let (_, v) = row.expect("row");
            assert!(!String::from_utf8_lossy(v.value()).contains("PRIVATE"));
        }
    }
    m.seal(&admin).await.expect("seal");
    assert!(matches!(
        m.ssh_ca(&admin, "ssh"),
        Err(CryptError::Unavailable(_))
    ));
    assert!(
        m.ssh_public_key("ssh")
            .expect("public")
            .starts_with("ecdsa-sha2-nistp384 ")
    );
    assert!(
        m.ssh_public_krl("ssh")
            .expect("krl")
            .starts_with(b"SSHKRL\n\0")
    );
    assert!(matches!(
        m.ssh_public_key("nope"),
        Err(CryptError::NotFound(_))
    ));
}
