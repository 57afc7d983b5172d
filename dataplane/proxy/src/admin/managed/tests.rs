//! The pure parts: schedule, back-off, chain, CSR and the spec's checks.

use super::issue::{self, ManagedSpec};

fn spec() -> ManagedSpec {
    ManagedSpec {
        name: "app.test".into(),
        dns_names: vec!["app.test".into(), "*.app.test".into()],
        mount: "pki".into(),
        role: "proxy".into(),
        ttl_seconds: 0,
        acme: None,
    }
}

#[test]
fn an_acme_spec_takes_no_mount_role_ttl_or_wildcard() {
    let acme = ManagedSpec {
        dns_names: vec!["app.test".into()],
        mount: String::new(),
        role: String::new(),
        acme: Some(super::AcmeSpec {
            directory: "https://ca.test/directory".into(),
            eab_kid: String::new(),
            eab_hmac_sealed: String::new(),
        }),
        ..spec()
    };
    assert!(acme.check().is_ok());
    assert_eq!(acme.source(), "acme:https://ca.test/directory");
    let with_role = ManagedSpec {
        role: "proxy".into(),
        ..acme.clone()
    };
    assert_eq!(with_role.check().expect_err("role").field, "acme_directory");
    let wildcard = ManagedSpec {
        dns_names: vec!["*.app.test".into()],
        ..acme.clone()
    };
    assert_eq!(wildcard.check().expect_err("wildcard").field, "dns_names");
    // Stored specs from before ACME (no `acme` key) still load.
    let old = r#"{"name":"a","dns_names":["a.test"],"mount":"pki","role":"r"}"#;
    let parsed: ManagedSpec = serde_json::from_str(old).expect("old spec");
    assert_eq!(parsed.acme, None);
}

#[test]
fn renewal_is_due_at_two_thirds_of_the_lifetime() {
    assert_eq!(issue::renew_at(1000, 1090), 1060);
    assert_eq!(issue::renew_at(0, 90 * 86_400), 60 * 86_400);
    // Degenerate lifetimes are due at once, never in the past of not_before.
    assert_eq!(issue::renew_at(50, 40), 50);
}

#[test]
fn backoff_doubles_and_is_capped() {
    let secs: Vec<u64> = (1..=9).map(|n| issue::backoff(n).as_secs()).collect();
    assert_eq!(secs, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
    assert_eq!(issue::backoff(u32::MAX).as_secs(), 300);
}

#[test]
fn the_served_chain_drops_the_self_signed_root() {
    let ca_params = |cn: &str| {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p
    };
    let rk = rcgen::KeyPair::generate().expect("key");
    let root = ca_params("root").self_signed(&rk).expect("root");
    let root_issuer = rcgen::Issuer::new(ca_params("root"), rk);
    let ik = rcgen::KeyPair::generate().expect("key");
    let inter = ca_params("inter")
        .signed_by(&ik, &root_issuer)
        .expect("inter");
    let inter_issuer = rcgen::Issuer::new(ca_params("inter"), ik);
    let lk = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["app.test".to_owned()])
        .expect("params")
        .signed_by(&lk, &inter_issuer)
        .expect("leaf");
    let chain =
        issue::served_chain(&leaf.pem(), &format!("{}{}", inter.pem(), root.pem())).expect("chain");
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "{chain}");
    assert!(chain.starts_with(leaf.pem().trim()));
    assert!(chain.contains(inter.pem().trim()));
    assert!(!chain.contains(root.pem().trim()));
    // Issued by the root itself: the leaf alone.
    let only = issue::served_chain(&leaf.pem(), &root.pem()).expect("chain");
    assert_eq!(only.matches("BEGIN CERTIFICATE").count(), 1);
    assert!(
        issue::served_chain(
            &leaf.pem(),
            "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----"
        )
        .is_err()
    );
}

#[test]
fn a_bad_spec_names_its_field() {
    spec().check().expect("good");
    let field = |f: &dyn Fn(&mut ManagedSpec)| {
        let mut s = spec();
        f(&mut s);
        match s.check() {
            Err(e) => e.field,
            Ok(()) => "accepted".to_owned(),
        }
    };
    assert_eq!(field(&|s| s.name = "Bad Name".into()), "name");
    assert_eq!(field(&|s| s.dns_names.clear()), "dns_names");
    assert_eq!(
        field(&|s| s.dns_names = vec!["UPPER.test".into()]),
        "dns_names"
    );
    assert_eq!(
        field(&|s| s.dns_names = vec!["-a.test".into()]),
        "dns_names"
    );
    assert_eq!(field(&|s| s.dns_names = vec!["a".into(); 101]), "dns_names");
    assert_eq!(field(&|s| s.mount = String::new()), "mount");
    assert_eq!(field(&|s| s.role = "a/b".into()), "role");
    assert_eq!(field(&|s| s.ttl_seconds = u64::MAX), "ttl_seconds");
    assert_eq!(spec().source(), "metacrypt:pki/proxy");
}

proptest::proptest! {
    /// Metacrypt's answer is a peer's input: any text is an answer or an error, never a panic.
    #[test]
    fn any_ca_chain_text_is_an_answer_or_an_error(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        wrap in proptest::prelude::any::<bool>(),
    ) {
        let text = String::from_utf8_lossy(&body).into_owned();
        let text = if wrap {
            format!("-----BEGIN CERTIFICATE-----\n{text}\n-----END CERTIFICATE-----\n")
        } else {
            text
        };
        let _ = issue::served_chain("leaf", &text);
    }
}
