//! Metacrypt's pki engine end to end (`mcd controlplane`, curl, openssl):
//! a root and an intermediate, a role; an issued certificate verifies with
//! `openssl verify` against the public CA route and the intermediate's
//! public chain; a name outside the role, too long a TTL and a bad CSR are
//! refused with 400 and store nothing; an `openssl req` CSR is signed;
//! after a revocation the public CRL (`openssl crl -text`) lists the serial
//! and `openssl verify -crl_check` refuses the certificate; an account
//! without rules gets 403; sealed, engine routes answer 503 while the
//! public routes still serve the CA.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::crypt::{PASSPHRASE, start};
use super::iam::Controlplane;

/// A public route's body (no token), with its status.
fn public(cp: &Controlplane, path: &str) -> (u16, String) {
    let url = format!("{}{path}", cp.rest);
    let answer = crate::support::curl(&["--cacert", &cp.ca, &url]);
    if answer.0 == 0 {
        let out = Command::new("curl")
            .args(["-sSv", "--max-time", "10", "--cacert", &cp.ca, &url])
            .output()
            .expect("curl");
        panic!(
            "{path}: curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    answer
}

pub(super) fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (scripts/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Test files are named `pki-*`: the control plane's own `ca.pem` lives in the same directory.
fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

pub(super) fn ok(answer: (u16, Value)) -> Value {
    assert_eq!(answer.0, 200, "{}", answer.1);
    answer.1
}

#[test]
fn crypt_pki_issue_verify_refuse_sign_revoke_crl_policy_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let cp = start(d);
    let admin = cp.token("admin", &cp.password);
    ok(cp.call(
        "POST",
        "/v1/crypt/sys/init",
        Some(&admin),
        Some(json!({"passphrase": PASSPHRASE})),
    ));
    ok(cp.call(
        "POST",
        "/v1/crypt/sys/mounts",
        Some(&admin),
        Some(json!({"name": "pki", "type": "pki"})),
    ));
    // Before a root, the public routes have nothing to serve.
    assert_eq!(public(&cp, "/v1/pki/pki/ca").0, 404);
    let root = ok(cp.call(
        "POST",
        "/v1/crypt/pki/root/generate",
        Some(&admin),
        Some(json!({"common_name": "Metacircular Test Root", "key_type": "ec-p384", "ttl": "87600h"})),
    ));
    assert_eq!(root["name"], "root");
    ok(cp.call(
        "POST",
        "/v1/crypt/pki/issuers/services",
        Some(&admin),
        Some(json!({"common_name": "Services CA", "key_type": "ec-p256", "ttl": "43800h"})),
    ));
    ok(cp.call(
        "POST",
        "/v1/crypt/pki/roles/web",
        Some(&admin),
        Some(
            json!({"issuer": "services", "allowed_domains": ["example.test"],
            "allow_subdomains": true, "ttl": "1h", "max_ttl": "24h"}),
        ),
    ));

    // The public CA and the intermediate's chain, fetched without a token.
    let (code, ca) = public(&cp, "/v1/pki/pki/ca");
    assert_eq!(code, 200, "{ca}");
    write(d, "pki-ca.pem", &ca);
    let (code, chain) = public(&cp, "/v1/pki/pki/issuer/services/chain");
    assert_eq!(code, 200, "{chain}");
    write(d, "pki-chain.pem", &chain);

    // Issue: openssl verifies it and the returned key is the certificate's.
    let issued = ok(cp.call(
        "POST",
        "/v1/crypt/pki/issue/web",
        Some(&admin),
        Some(json!({"common_name": "www.example.test", "alt_names": ["api.example.test"]})),
    ));
    write(
        d,
        "pki-leaf.pem",
        issued["certificate"].as_str().expect("cert"),
    );
    write(
        d,
        "pki-leaf.key",
        issued["private_key"].as_str().expect("key"),
    );
    let (good, text) = openssl(
        d,
        &[
            "verify",
            "-CAfile",
            "pki-ca.pem",
            "-untrusted",
            "pki-chain.pem",
            "pki-leaf.pem",
        ],
    );
    assert!(good && text.contains("pki-leaf.pem: OK"), "{text}");
    let (_, cert_pub) = openssl(d, &["x509", "-in", "pki-leaf.pem", "-noout", "-pubkey"]);
    let (_, key_pub) = openssl(d, &["pkey", "-in", "pki-leaf.key", "-pubout"]);
    assert_eq!(cert_pub, key_pub);
    let (_, text) = openssl(d, &["x509", "-in", "pki-leaf.pem", "-noout", "-text"]);
    assert!(
        text.contains("DNS:www.example.test, DNS:api.example.test"),
        "{text}"
    );
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    let serial = issued["serial"].as_str().expect("serial").to_owned();

    // Refusals: 400 with a reason; nothing stored.
    let refused = |body: Value, path: &str, needle: &str| {
        let (code, answer) = cp.call("POST", path, Some(&admin), Some(body));
        assert_eq!(code, 400, "{answer}");
        let e = answer["error"].as_str().unwrap_or_default();
        assert!(e.contains(needle), "{needle:?} not in {e}");
    };
    refused(
        json!({"common_name": "www.other.test"}),
        "/v1/crypt/pki/issue/web",
        "not allowed by the role",
    );
    refused(
        json!({"common_name": "a.example.test", "ttl": "48h"}),
        "/v1/crypt/pki/issue/web",
        "max_ttl",
    );
    refused(
        json!({"csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIIBAA==\n-----END CERTIFICATE REQUEST-----\n"}),
        "/v1/crypt/pki/sign-csr/web",
        "csr",
    );
    let serials = ok(cp.call("GET", "/v1/crypt/pki/certs", Some(&admin), None));
    assert_eq!(serials["serials"], json!([serial]));

    // A CSR made by openssl req (its key never leaves this directory).
    let (good, text) = openssl(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "pki-csr.key",
            "-subj",
            "/CN=db.example.test",
            "-addext",
            "subjectAltName=DNS:db.example.test",
            "-out",
            "pki-req.pem",
        ],
    );
    assert!(good, "{text}");
    let csr = std::fs::read_to_string(d.join("pki-req.pem")).expect("csr");
    let signed = ok(cp.call(
        "POST",
        "/v1/crypt/pki/sign-csr/web",
        Some(&admin),
        Some(json!({"csr": csr})),
    ));
    assert!(signed.get("private_key").is_none(), "{signed}");
    write(
        d,
        "pki-signed.pem",
        signed["certificate"].as_str().expect("cert"),
    );
    let (good, text) = openssl(
        d,
        &[
            "verify",
            "-CAfile",
            "pki-ca.pem",
            "-untrusted",
            "pki-chain.pem",
            "pki-signed.pem",
        ],
    );
    assert!(good, "{text}");
    let (_, key_pub) = openssl(d, &["pkey", "-in", "pki-csr.key", "-pubout"]);
    let (_, cert_pub) = openssl(d, &["x509", "-in", "pki-signed.pem", "-noout", "-pubkey"]);
    assert_eq!(cert_pub, key_pub);

    // Revoke: the public CRL lists the serial; verification with it refuses.
    let revoked = ok(cp.call(
        "POST",
        "/v1/crypt/pki/revoke",
        Some(&admin),
        Some(json!({"serial": serial})),
    ));
    assert_eq!(revoked["crl_number"], 2);
    let (code, crl) = public(&cp, "/v1/pki/pki/issuer/services/crl");
    assert_eq!(code, 200, "{crl}");
    write(d, "pki-crl.pem", &crl);
    let (good, text) = openssl(d, &["crl", "-in", "pki-crl.pem", "-noout", "-text"]);
    assert!(good, "{text}");
    assert!(
        text.contains(&serial.to_uppercase()),
        "{serial} not in {text}"
    );
    assert!(
        text.contains("X509v3 CRL Number: \n                2")
            || text.contains("CRL Number: 2")
            || text.contains("                2\n"),
        "{text}"
    );
    let (good, text) = openssl(
        d,
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "pki-ca.pem",
            "-untrusted",
            "pki-chain.pem",
            "-CRLfile",
            "pki-crl.pem",
            "pki-leaf.pem",
        ],
    );
    assert!(!good && text.contains("revoked"), "{text}");
    let (good, text) = openssl(
        d,
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "pki-ca.pem",
            "-untrusted",
            "pki-chain.pem",
            "-CRLfile",
            "pki-crl.pem",
            "pki-signed.pem",
        ],
    );
    assert!(good, "{text}");

    // Policy: an account without rules is refused with 403.
    cp.create_user(&admin, "carol", "carol's long password");
    let carol = cp.token("carol", "carol's long password");
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/pki/issue/web",
        Some(&carol),
        Some(json!({"common_name": "x.example.test"})),
    );
    assert_eq!(code, 403, "{body}");
    // No token on an engine route: 401.
    let (code, _) = cp.call("GET", "/v1/crypt/pki/certs", None, None);
    assert_eq!(code, 401);

    // Sealed: engine routes 503, the public routes still serve.
    ok(cp.call("POST", "/v1/crypt/sys/seal", Some(&admin), None));
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/pki/issue/web",
        Some(&admin),
        Some(json!({"common_name": "x.example.test"})),
    );
    assert_eq!((code, body), (503, json!({"error": "sealed"})));
    assert_eq!(public(&cp, "/v1/pki/pki/ca"), (200, ca));
    let (code, again) = public(&cp, "/v1/pki/pki/issuer/services/crl");
    assert_eq!((code, again), (200, crl));
    let (code, _) = public(&cp, "/v1/pki/pki/ca/der");
    assert_eq!(code, 200);
}
