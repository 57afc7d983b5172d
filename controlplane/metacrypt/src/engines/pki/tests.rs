//! Unit tests of the pki engine against a temporary store: issuance under
//! role rules, refusals that change nothing, CSR signing, revocation and
//! CRL numbering, rotation keeping the old chain, no_store, import, and
//! the public rows holding no secret and answering while sealed.

use std::sync::Arc;

use serde_json::{Value, json};
use x509_parser::prelude::*;

use super::model::{CaRequest, ImportRequest, IssueRequest, KeyType, Role, Ttl};
use crate::core::{Caller, Metacrypt, MountInput, PublicPki};
use crate::error::CryptError;

/// A revocation of `serial` for reason `unspecified`.
pub(crate) fn revoke_req(serial: &str) -> super::model::RevokeRequest {
    super::model::RevokeRequest {
        serial: serial.to_owned(),
        reason: super::reason::Reason::default(),
    }
}

async fn setup() -> (tempfile::TempDir, Arc<Metacrypt>, Caller) {
    let (d, m, admin) = crate::testing::unsealed().await;
    m.create_mount(
        &admin,
        MountInput {
            name: "pki".to_owned(),
            kind: "pki".to_owned(),
            description: String::new(),
            config: None,
        },
    )
    .expect("mount");
    (d, m, admin)
}

fn ca(cn: &str, kt: KeyType) -> CaRequest {
    CaRequest {
        common_name: cn.to_owned(),
        key_type: kt,
        ttl: Ttl(5 * 365 * 86_400),
    }
}

fn role(v: Value) -> Role {
    serde_json::from_value(v).expect("role")
}

fn der(pem: &str) -> Vec<u8> {
    super::x509::pem_der(pem, "c", "CERTIFICATE").expect("pem")
}

/// Checks `leaf` is signed by `issuer` (both PEM) with x509-parser.
fn signed_by(leaf: &str, issuer: &str) -> bool {
    let (l, i) = (der(leaf), der(issuer));
    let (_, l) = X509Certificate::from_der(&l).expect("leaf");
    let (_, i) = X509Certificate::from_der(&i).expect("issuer");
    l.verify_signature(Some(i.public_key())).is_ok()
}

/// A CSR for `names` (no subject: the names are the SANs) signed by `key`.
fn csr_for(key: &rcgen::KeyPair, names: &[&str]) -> rcgen::CertificateSigningRequest {
    let mut p =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("params");
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.serialize_request(key).expect("csr")
}

fn first_cert(chain: &str) -> String {
    let end = "-----END CERTIFICATE-----\n";
    let at = chain.find(end).expect("a cert") + end.len();
    chain[..at].to_owned()
}

fn invalid(r: Result<impl std::fmt::Debug, CryptError>, needle: &str) {
    match r {
        Err(CryptError::Invalid(i)) => {
            let s = format!("{i:?}");
            assert!(s.contains(needle), "{needle:?} not in {s}");
        }
        other => panic!("expected Invalid({needle}), got {other:?}"),
    }
}

#[tokio::test]
async fn issue_under_role_chain_verifies_and_refusals_change_nothing() {
    let (_d, m, admin) = setup().await;
    // No root yet: issuing intermediates is a precondition failure.
    let r = m.pki_create_issuer(&admin, "pki", "services", || {
        Ok(ca("Services", KeyType::EcP256))
    });
    assert!(matches!(r, Err(CryptError::FailedPrecondition(_))), "{r:?}");
    let root = m
        .pki_root_generate(&admin, "pki", || Ok(ca("Test Root", KeyType::EcP384)))
        .expect("root");
    assert!(matches!(
        m.pki_root_generate(&admin, "pki", || Ok(ca("Again", KeyType::EcP256))),
        Err(CryptError::AlreadyExists(_))
    ));
    let inter = m
        .pki_create_issuer(&admin, "pki", "services", || {
            Ok(ca("Services", KeyType::Ed25519))
        })
        .expect("intermediate");
    assert!(signed_by(&inter.certificate, &root.certificate));
    assert_eq!(
        inter.chain,
        format!("{}{}", inter.certificate, root.certificate)
    );
    m.pki_put_role(&admin, "pki", "web", || {
        Ok(role(
            json!({"issuer": "services", "allowed_domains": ["example.test"],
            "allow_subdomains": true, "max_ttl": "48h", "ttl": "1h",
            "key_types": ["ec-p256", "rsa-2048"]}),
        ))
    })
    .expect("role");
    let issued = m
        .pki_issue(&admin, "pki", "web", || {
            Ok(IssueRequest {
                common_name: "www.example.test".to_owned(),
                alt_names: vec!["api.example.test".to_owned()],
                ..IssueRequest::default()
            })
        })
        .expect("issue");
    assert!(signed_by(&issued.certificate, &inter.certificate));
    assert!(
        issued
            .private_key
            .as_deref()
            .is_some_and(|k| k.contains("PRIVATE KEY"))
    );
    let d = der(&issued.certificate);
    let (_, c) = X509Certificate::from_der(&d).expect("leaf");
    let sans: Vec<String> = c
        .subject_alternative_name()
        .expect("ext")
        .expect("san")
        .value
        .general_names
        .iter()
        .map(|g| format!("{g}"))
        .collect();
    assert_eq!(
        sans,
        ["DNSName(www.example.test)", "DNSName(api.example.test)"]
    );
    let eku = c.extended_key_usage().expect("ext").expect("eku").value;
    assert!(eku.server_auth && !eku.client_auth);
    let life = c.validity().not_after.timestamp() - c.validity().not_before.timestamp();
    assert_eq!(life, 3600 + super::x509::BACKDATE_SECS);
    // The stored record has no key.
    let rec = m.pki_cert(&admin, "pki", &issued.serial).expect("get");
    assert_eq!(rec.certificate, issued.certificate);
    assert_eq!(
        m.pki_certs(&admin, "pki", || Ok(None)).expect("list"),
        std::slice::from_ref(&issued.serial)
    );

    // Refusals: a name outside the role, too long a TTL, a key type the
    // role does not allow, a bad CSR; nothing is stored.
    let req = |cn: &str, ttl: Option<Ttl>| IssueRequest {
        common_name: cn.to_owned(),
        ttl,
        ..IssueRequest::default()
    };
    invalid(
        m.pki_issue(&admin, "pki", "web", || Ok(req("www.other.test", None))),
        "not allowed by the role",
    );
    invalid(
        m.pki_issue(&admin, "pki", "web", || {
            Ok(req("a.example.test", Some(Ttl(49 * 3600))))
        }),
        "max_ttl",
    );
    invalid(
        m.pki_issue(&admin, "pki", "web", || {
            Ok(IssueRequest {
                key_type: Some(KeyType::Ed25519),
                ..req("a.example.test", None)
            })
        }),
        "not allowed by the role",
    );
    invalid(
        m.pki_sign(&admin, "pki", "web", || Ok(IssueRequest { csr: Some("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".to_owned()), ..IssueRequest::default() })),
        "csr",
    );
    assert_eq!(
        m.pki_certs(&admin, "pki", || Ok(None)).expect("list").len(),
        1
    );
    assert!(matches!(
        m.pki_issue(&admin, "pki", "nope", || Ok(req("a.example.test", None))),
        Err(CryptError::NotFound(_))
    ));
}

#[tokio::test]
async fn sign_csr_revoke_crl_renew_rotate_and_no_store() {
    let (_d, m, admin) = setup().await;
    let root = m
        .pki_root_generate(&admin, "pki", || Ok(ca("Root", KeyType::EcP256)))
        .expect("root");
    m.pki_put_role(&admin, "pki", "svc", || {
        Ok(role(
            json!({"allowed_domains": ["svc.test"], "allow_subdomains": true, "client": true}),
        ))
    })
    .expect("role");
    // A CSR from a key the engine never sees; its names are used.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let csr = csr_for(&key, &["db.svc.test"]).pem().expect("pem");
    let signed = m
        .pki_sign(&admin, "pki", "svc", || {
            Ok(IssueRequest {
                csr: Some(csr.clone()),
                ..IssueRequest::default()
            })
        })
        .expect("sign");
    assert!(signed.private_key.is_none());
    assert!(signed_by(&signed.certificate, &root.certificate));
    let d = der(&signed.certificate);
    let (_, c) = X509Certificate::from_der(&d).expect("leaf");
    assert_eq!(
        c.public_key().raw,
        rcgen::PublicKeyData::subject_public_key_info(&key).as_slice()
    );
    // A CSR whose names the role refuses.
    let outside = csr_for(&key, &["db.other.test"]).pem().expect("pem");
    invalid(
        m.pki_sign(&admin, "pki", "svc", || {
            Ok(IssueRequest {
                csr: Some(outside),
                ..IssueRequest::default()
            })
        }),
        "db.other.test",
    );
    // A CSR with its signature broken (one byte of the signature flipped).
    let good = csr_for(&key, &["x.svc.test"]).der().to_vec();
    assert!(super::csr::parse(&good).is_ok());
    let mut bad = good;
    let n = bad.len();
    bad[n - 3] ^= 0x55;
    assert!(super::csr::parse(&bad).is_err());

    // Renew: same key, new serial.
    let renewed = m.pki_renew(&admin, "pki", &signed.serial).expect("renew");
    assert_ne!(renewed.serial, signed.serial);
    let d2 = der(&renewed.certificate);
    let (_, c2) = X509Certificate::from_der(&d2).expect("renewed");
    assert_eq!(c2.public_key().raw, c.public_key().raw);

    // Revoke: the CRL lists the serial, its number grows; twice is the first answer.
    let crl_number = |m: &Metacrypt| match m.pki_public_crl("pki", None, None, true).expect("crl") {
        PublicPki::Der(d) => {
            let (_, crl) = CertificateRevocationList::from_der(&d).expect("crl parses");
            let serials: Vec<String> = crl
                .iter_revoked_certificates()
                .map(|r| {
                    let reason = r.reason_code().map(|(_, c)| c.0);
                    format!("{}:{reason:?}", super::x509::hex(r.raw_serial()))
                })
                .collect();
            (crl.crl_number().map(|n| n.to_string()), serials)
        }
        PublicPki::Pem(_) => panic!("der asked"),
    };
    let (before, none) = crl_number(&m);
    assert_eq!((before.as_deref(), none.len()), (Some("1"), 0));
    let r1 = m
        .pki_revoke(&admin, "pki", || {
            serde_json::from_value(json!({"serial": signed.serial, "reason": "superseded"}))
                .map_err(|e| CryptError::invalid("body", e.to_string()))
        })
        .expect("revoke");
    let r2 = m
        .pki_revoke(&admin, "pki", || Ok(revoke_req(&signed.serial)))
        .expect("revoke again");
    assert_eq!(r1.crl_number, 2);
    assert_eq!((r2.revoked_at, r2.crl_number), (r1.revoked_at, 2));
    assert_eq!(
        r2.reason,
        super::reason::Reason::Superseded,
        "the first answer"
    );
    let (after, listed) = crl_number(&m);
    assert_eq!(
        (after.as_deref(), listed),
        (Some("2"), vec![format!("{}:Some(4)", signed.serial)])
    );
    assert!(matches!(
        m.pki_renew(&admin, "pki", &signed.serial),
        Err(CryptError::FailedPrecondition(_))
    ));
    assert_eq!(m.pki_rotate_crl(&admin, "pki").expect("rotate"), 1);
    assert_eq!(crl_number(&m).0.as_deref(), Some("3"));

    // Rotation: version 2 signs new certificates; version 1 stays in the chain and keeps its CRL.
    let v2 = m.pki_rotate_issuer(&admin, "pki", "root").expect("rotate");
    assert_eq!((v2.version, v2.versions), (2, 2));
    let chain = m.pki_public_chain("pki", None, None).expect("chain");
    assert_eq!(chain, format!("{}{}", v2.certificate, root.certificate));
    let next = m
        .pki_issue(&admin, "pki", "svc", || {
            Ok(IssueRequest {
                common_name: "n.svc.test".to_owned(),
                ..IssueRequest::default()
            })
        })
        .expect("issue");
    assert_eq!(next.issuer.version, 2);
    assert!(signed_by(&next.certificate, &v2.certificate));
    match m
        .pki_public_crl("pki", Some("root"), Some(1), true)
        .expect("old crl")
    {
        PublicPki::Der(d) => assert!(CertificateRevocationList::from_der(&d).is_ok()),
        PublicPki::Pem(_) => panic!("der asked"),
    }

    // no_store: issued, never stored, so never revocable.
    m.pki_put_role(&admin, "pki", "short", || {
        Ok(role(
            json!({"allowed_domains": ["svc.test"], "allow_subdomains": true, "no_store": true}),
        ))
    })
    .expect("role");
    let ephemeral = m
        .pki_issue(&admin, "pki", "short", || {
            Ok(IssueRequest {
                common_name: "e.svc.test".to_owned(),
                ..IssueRequest::default()
            })
        })
        .expect("issue");
    assert!(!ephemeral.stored);
    assert!(matches!(
        m.pki_revoke(&admin, "pki", || Ok(revoke_req(&ephemeral.serial))),
        Err(CryptError::NotFound(_))
    ));
    assert!(
        !m.pki_certs(&admin, "pki", || Ok(None))
            .expect("list")
            .contains(&ephemeral.serial)
    );
}

#[tokio::test]
async fn public_rows_hold_no_secret_and_answer_while_sealed() {
    let (_d, m, admin) = setup().await;
    // An imported root (made outside Metacrypt).
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    p.not_before = ::time::OffsetDateTime::now_utc() - ::time::Duration::hours(1);
    p.not_after = ::time::OffsetDateTime::now_utc() + ::time::Duration::days(365);
    let cert = p.self_signed(&key).expect("cert").pem();
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    invalid(
        m.pki_root_import(&admin, "pki", || {
            Ok(ImportRequest {
                certificate: cert.clone(),
                private_key: other.serialize_pem(),
            })
        }),
        "does not match",
    );
    let root = m
        .pki_root_import(&admin, "pki", || {
            Ok(ImportRequest {
                certificate: cert.clone(),
                private_key: key.serialize_pem(),
            })
        })
        .expect("import");
    assert_eq!(root.key_type, KeyType::Ed25519);
    m.pki_put_role(&admin, "pki", "r", || {
        Ok(role(json!({"allowed_domains": ["a.test"]})))
    })
    .expect("role");
    let issued = m
        .pki_issue(&admin, "pki", "r", || {
            Ok(IssueRequest {
                common_name: "a.test".to_owned(),
                ..IssueRequest::default()
            })
        })
        .expect("issue");
    assert!(signed_by(&issued.certificate, &cert));

    // Clear tables hold certificates, CRLs and ids only.
    let rx = redb::ReadableDatabase::begin_read(m.store().db()).expect("rx");
    for t in crate::store::PUBLIC_TABLES {
        let table = rx.open_table(*t).expect("table");
        for row in redb::ReadableTable::iter(&table).expect("iter") {
            let (_, v) = row.expect("row");
            let text = String::from_utf8_lossy(v.value());
            assert!(!text.contains("PRIVATE"), "a secret in a clear table");
        }
    }
    // Sealed: engine calls answer 503, the public data is still served.
    m.seal(&admin).await.expect("seal");
    assert!(matches!(
        m.pki_certs(&admin, "pki", || Ok(None)),
        Err(CryptError::Unavailable(_))
    ));
    assert_eq!(
        m.pki_public_cert("pki", None, false).expect("ca"),
        PublicPki::Pem(first_cert(&root.certificate))
    );
    assert!(matches!(
        m.pki_public_cert("nope", None, false),
        Err(CryptError::NotFound(_))
    ));
}
