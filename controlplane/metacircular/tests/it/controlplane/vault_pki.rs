//! Vault's PKI paths with the real hvac client (`vault_pki_hvac.py`) against
//! `mcd controlplane`: mount, root, role, issue, sign an `openssl req` CSR,
//! list, read, revoke, CA, chain, CRL, tidy, and a caller without policy
//! refused with Vault's 403; then openssl checks what hvac got: both leaves
//! verify against the CA hvac read, the key is the certificate's, the names
//! are the role's, and the CRL lists the revoked serial (`-crl_check` fails).

use std::path::Path;

use serde_json::{Value, json};

use super::crypt::{init, start};
use super::crypt_pki::openssl;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/it/controlplane/vault_pki_hvac.py"
);

fn hvac(url: &str, admin: &str, user: &str, ca: &str, out: &Path) -> Value {
    let o = std::process::Command::new("python3")
        .arg(SCRIPT)
        .args([url, admin, user, ca])
        .arg(out)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "hvac script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// `openssl` must succeed; its output.
fn ok_ssl(dir: &Path, args: &[&str]) -> String {
    let (ok, text) = openssl(dir, args);
    assert!(ok, "openssl {args:?}: {text}");
    text
}

/// Vault's `aa:bb:…` serial as openssl prints it (`AABB…`, without the
/// zero bytes DER drops).
fn openssl_serial(vault: &str) -> String {
    let mut s = vault.replace(':', "").to_ascii_uppercase();
    while s.len() > 2 && s.starts_with("00") {
        s.drain(..2);
    }
    s
}

#[test]
fn vault_pki_with_hvac_issue_sign_revoke_and_openssl_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = start(dir.path());
    let admin = cp.token("admin", &cp.password);
    init(&cp, &admin);
    cp.create_user(&admin, "carol", "carol's long password");
    let carol = cp.token("carol", "carol's long password");
    let out = dir.path().join("hvac");
    std::fs::create_dir(&out).expect("out dir");
    ok_ssl(
        &out,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=csr.example.test",
            "-keyout",
            "req-key.pem",
            "-out",
            "req.csr",
        ],
    );

    let r = hvac(&cp.rest, &admin, &carol, &cp.ca, &out);
    assert_eq!(r["mounted"], true, "{r}");
    for k in ["certificate", "issuing_ca", "serial_number", "expiration"] {
        assert!(
            r["root_keys"]
                .as_array()
                .is_some_and(|a| a.contains(&json!(k))),
            "{k}: {r}"
        );
    }
    assert_eq!(r["role"]["allowed_domains"], json!(["example.test"]), "{r}");
    assert_eq!(r["role"]["allow_subdomains"], true, "{r}");
    assert_eq!(
        (r["role"]["ttl"].clone(), r["role"]["max_ttl"].clone()),
        (json!(3600), json!(259_200))
    );
    assert_eq!(r["roles"], json!(["web"]));
    // Vault's issue fields, exactly.
    assert_eq!(
        r["issue_keys"],
        json!([
            "ca_chain",
            "certificate",
            "expiration",
            "issuing_ca",
            "private_key",
            "private_key_type",
            "serial_number"
        ])
    );
    assert_eq!(r["issue_lease_id"], "");
    assert_eq!(r["private_key_type"], "ec");
    assert_eq!(
        (
            r["ca_chain_len"].clone(),
            r["issuing_ca_is_chain_head"].clone()
        ),
        (json!(1), json!(true))
    );
    assert_eq!(
        r["sign_keys"],
        json!([
            "ca_chain",
            "certificate",
            "expiration",
            "issuing_ca",
            "serial_number"
        ])
    );
    assert_eq!(r["outside"]["class"], "InvalidRequest", "{r}");
    let issued = r["issued_serial"].as_str().expect("serial");
    let signed = r["signed_serial"].as_str().expect("serial");
    assert_eq!(issued.len(), 47, "{issued}");
    let certs = r["certs"].as_array().expect("certs");
    assert!(
        certs.contains(&json!(issued)) && certs.contains(&json!(signed)),
        "{r}"
    );
    assert_eq!(certs.len(), 2, "the refused issue stored nothing: {r}");
    assert_eq!(
        (
            r["read_cert_matches"].clone(),
            r["read_revocation_time"].clone()
        ),
        (json!(true), json!(0))
    );
    assert_eq!(r["revoked_state"], "revoked");
    assert_eq!(r["read_revoked_time_set"], true);
    assert_eq!(r["tidy"]["status"], 202, "{r}");
    assert!(
        r["tidy"]["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with("tidy removed")),
        "{r}"
    );
    // A caller no rule names: hvac's Forbidden, from Vault's exact body.
    assert_eq!(
        r["forbidden"],
        json!({"class": "Forbidden", "errors": ["permission denied"]})
    );
    assert_eq!(
        r["forbidden_raw"],
        json!({"status": 403, "body": {"errors": ["permission denied"]}})
    );
    assert_eq!(r["forbidden_list"], "Forbidden");
    assert_eq!(r["user_reads_ca"], true);

    // openssl on what hvac got.
    for leaf in ["cert.pem", "signed.pem"] {
        let v = ok_ssl(&out, &["verify", "-CAfile", "ca.pem", leaf]);
        assert!(v.contains(&format!("{leaf}: OK")), "{v}");
        let v = ok_ssl(
            &out,
            &[
                "verify",
                "-CAfile",
                "chain.pem",
                "-untrusted",
                "issuing_ca.pem",
                leaf,
            ],
        );
        assert!(v.contains("OK"), "{v}");
    }
    let sans = ok_ssl(
        &out,
        &[
            "x509",
            "-in",
            "cert.pem",
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    );
    assert!(
        sans.contains("DNS:www.example.test") && sans.contains("DNS:api.example.test"),
        "{sans}"
    );
    let sans = ok_ssl(
        &out,
        &[
            "x509",
            "-in",
            "signed.pem",
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    );
    assert!(sans.contains("DNS:csr.example.test"), "{sans}");
    let cert_key = ok_ssl(&out, &["x509", "-in", "cert.pem", "-noout", "-pubkey"]);
    let key = ok_ssl(&out, &["pkey", "-in", "key.pem", "-pubout"]);
    assert_eq!(
        cert_key, key,
        "the private key hvac got is the certificate's"
    );
    let csr_key = ok_ssl(&out, &["pkey", "-in", "req-key.pem", "-pubout"]);
    let signed_key = ok_ssl(&out, &["x509", "-in", "signed.pem", "-noout", "-pubkey"]);
    assert_eq!(
        csr_key, signed_key,
        "the signed certificate carries the CSR's key"
    );
    let serial = ok_ssl(&out, &["x509", "-in", "cert.pem", "-noout", "-serial"]);
    assert_eq!(serial.trim(), format!("serial={}", openssl_serial(issued)));
    let crl = ok_ssl(
        &out,
        &[
            "crl", "-in", "crl.pem", "-noout", "-text", "-CAfile", "ca.pem",
        ],
    );
    assert!(crl.contains(&openssl_serial(issued)), "{crl}");
    assert!(!crl.contains(&openssl_serial(signed)), "{crl}");
    let (ok, v) = openssl(
        &out,
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "ca.pem",
            "-CRLfile",
            "crl.pem",
            "cert.pem",
        ],
    );
    assert!(!ok && v.contains("certificate revoked"), "{v}");
    ok_ssl(
        &out,
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "ca.pem",
            "-CRLfile",
            "crl.pem",
            "signed.pem",
        ],
    );
}
