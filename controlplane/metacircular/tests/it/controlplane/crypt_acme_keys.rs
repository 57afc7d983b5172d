//! ACME key rollover and revocation by the certificate's key, end to end:
//! a hand-built RFC 8555 client (JWS made with aws-lc-rs, the server's own
//! crypto) creates an account with EAB, rolls its key over with a nested
//! JWS (key-change), after which the old key is refused and the new one
//! accepted; a key already bound to another account is 409 with that
//! account's `Location`. lego obtains a certificate, a JWS carrying another
//! key's `jwk` cannot revoke it, a bad reason is `badRevocationReason`, and
//! `certbot revoke --cert-path --key-path --reason keycompromise` (signed
//! with the certificate's own key) revokes it: the CRL entry says Key
//! Compromise and `openssl ocsp` reports it revoked with that reason.

use std::process::Command;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use super::crypt_acme::{
    certbot, eab, free_port, lego, nonce, problem_type, root_and_web_role, serve_acme,
};
use super::crypt_pki::{openssl, start_with_pki_mount};
use super::iam::Controlplane;

/// An ES256 account key.
struct Key(EcdsaKeyPair);

impl Key {
    fn new() -> Key {
        Key(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("key"))
    }

    fn jwk(&self) -> Value {
        let p = self.0.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..])})
    }

    /// A flattened JWS of `payload` (`None`: POST-as-GET) under `protected`.
    fn sign(&self, protected: &Value, payload: Option<&Value>) -> Value {
        let p = B64.encode(protected.to_string());
        let body = payload.map_or_else(String::new, |v| B64.encode(v.to_string()));
        let sig = self
            .0
            .sign(&SystemRandom::new(), format!("{p}.{body}").as_bytes())
            .expect("sign");
        json!({"protected": p, "payload": body, "signature": B64.encode(sig.as_ref())})
    }
}

/// POSTs a JWS to `url`: status, JSON body, `Location`.
fn post(cp: &Controlplane, url: &str, jws: &Value) -> (u16, Value, Option<String>) {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "20", "--cacert", &cp.ca])
        .args(["-H", "content-type: application/jose+json", "--data"])
        .arg(jws.to_string())
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let location = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .starts_with("location:")
            .then(|| l[9..].trim().to_owned())
    });
    (
        code,
        serde_json::from_str(body).unwrap_or(Value::Null),
        location,
    )
}

/// A request of account `kid` signed by `key`.
fn as_account(
    cp: &Controlplane,
    key: &Key,
    kid: &str,
    url: &str,
    payload: Option<&Value>,
) -> Value {
    let h = json!({"alg": "ES256", "nonce": nonce(cp), "url": url, "kid": kid});
    key.sign(&h, payload)
}

/// new-account for `key` with a fresh EAB key; the account URL.
fn new_account(cp: &Controlplane, admin: &str, base: &str, key: &Key) -> String {
    let (eab_kid, hmac_b64) = eab(cp, admin);
    let url = format!("{base}/new-account");
    let eh = B64.encode(json!({"alg": "HS256", "kid": eab_kid, "url": url}).to_string());
    let ep = B64.encode(key.jwk().to_string());
    let mac_key = hmac::Key::new(hmac::HMAC_SHA256, &B64.decode(hmac_b64).expect("hmac"));
    let mac = hmac::sign(&mac_key, format!("{eh}.{ep}").as_bytes());
    let binding = json!({"protected": eh, "payload": ep, "signature": B64.encode(mac.as_ref())});
    let h = json!({"alg": "ES256", "nonce": nonce(cp), "url": url, "jwk": key.jwk()});
    let payload = json!({"termsOfServiceAgreed": true, "externalAccountBinding": binding});
    let (code, body, location) = post(cp, &url, &key.sign(&h, Some(&payload)));
    assert_eq!(code, 201, "{body}");
    location.expect("account Location")
}

/// key-change of account `kid` from `old` to `new` (RFC 8555 §7.3.5).
fn key_change(
    cp: &Controlplane,
    base: &str,
    kid: &str,
    old: &Key,
    new: &Key,
) -> (u16, Value, Option<String>) {
    let url = format!("{base}/key-change");
    let inner = new.sign(
        &json!({"alg": "ES256", "url": url, "jwk": new.jwk()}),
        Some(&json!({"account": kid, "oldKey": old.jwk()})),
    );
    post(cp, &url, &as_account(cp, old, kid, &url, Some(&inner)))
}

#[test]
fn crypt_acme_key_change_and_revoke_by_certificate_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (cp, admin) = start_with_pki_mount(d);
    root_and_web_role(&cp, &admin, true);
    let http_port = free_port();
    serve_acme(
        &cp,
        &admin,
        json!({"roles": ["web"], "http_port": http_port, "timeout": 5}),
    );
    let base = format!("{}/v1/acme/pki/web", cp.rest);

    // Key rollover: the new key signs, the old one no longer does.
    let (k1, k2, k3) = (Key::new(), Key::new(), Key::new());
    let kid = new_account(&cp, &admin, &base, &k1);
    let (code, body, _) = key_change(&cp, &base, &kid, &k1, &k2);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "valid", "{body}");
    let (code, body, _) = post(&cp, &kid, &as_account(&cp, &k1, &kid, &kid, None));
    assert_eq!(
        (code, problem_type(&body)),
        (400, "urn:ietf:params:acme:error:malformed"),
        "{body}"
    );
    let (code, body, _) = post(&cp, &kid, &as_account(&cp, &k2, &kid, &kid, None));
    assert_eq!(code, 200, "{body}");
    // The old key cannot roll over any more either (it no longer signs for the account).
    let (code, _, _) = key_change(&cp, &base, &kid, &k1, &k3);
    assert_eq!(code, 400);
    // A key bound to another account: 409 with that account's Location.
    let other = new_account(&cp, &admin, &base, &k3);
    let (code, body, location) = key_change(&cp, &base, &kid, &k2, &k3);
    assert_eq!(code, 409, "{body}");
    assert_eq!(location.as_deref(), Some(other.as_str()));
    // An inner JWS naming another account, or with a nonce, is malformed.
    let url = format!("{base}/key-change");
    let k4 = Key::new();
    for (inner_header, account) in [
        (
            json!({"alg": "ES256", "url": url, "jwk": k4.jwk()}),
            other.as_str(),
        ),
        (
            json!({"alg": "ES256", "url": url, "jwk": k4.jwk(), "nonce": "x"}),
            kid.as_str(),
        ),
    ] {
        let inner = k4.sign(
            &inner_header,
            Some(&json!({"account": account, "oldKey": k2.jwk()})),
        );
        let (code, body, _) = post(&cp, &url, &as_account(&cp, &k2, &kid, &url, Some(&inner)));
        assert_eq!(
            (code, problem_type(&body)),
            (400, "urn:ietf:params:acme:error:malformed"),
            "{body}"
        );
    }

    // lego obtains a certificate (HTTP-01 for 127.0.0.1).
    let (lk, lh) = eab(&cp, &admin);
    let http = format!("127.0.0.1:{http_port}");
    let (good, text) = lego(
        &cp,
        d,
        &[
            "--path",
            "lego",
            "--eab",
            "--kid",
            &lk,
            "--hmac",
            &lh,
            "--domains",
            "127.0.0.1",
            "--http",
            "--http.port",
            &http,
            "run",
        ],
    );
    assert!(good, "{text}");
    let (cert, key) = (
        "lego/certificates/127.0.0.1.crt",
        "lego/certificates/127.0.0.1.key",
    );
    let (_, der_text) = openssl(
        d,
        &[
            "x509",
            "-in",
            cert,
            "-outform",
            "DER",
            "-out",
            "pki-leaf.der",
        ],
    );
    let der = std::fs::read(d.join("pki-leaf.der")).unwrap_or_else(|_| panic!("{der_text}"));
    let revoke_url = format!("{base}/revoke-cert");
    let payload = json!({"certificate": B64.encode(&der)});
    // Another key's jwk cannot revoke it; a bad reason is badRevocationReason.
    let h = json!({"alg": "ES256", "nonce": nonce(&cp), "url": revoke_url, "jwk": k4.jwk()});
    let (code, body, _) = post(&cp, &revoke_url, &k4.sign(&h, Some(&payload)));
    assert_eq!(
        (code, problem_type(&body)),
        (403, "urn:ietf:params:acme:error:unauthorized"),
        "{body}"
    );
    let (code, body, _) = post(
        &cp,
        &revoke_url,
        &as_account(
            &cp,
            &k2,
            &kid,
            &revoke_url,
            Some(&json!({"certificate": B64.encode(&der), "reason": 6})),
        ),
    );
    assert_eq!(
        (code, problem_type(&body)),
        (400, "urn:ietf:params:acme:error:badRevocationReason"),
        "{body}"
    );

    // certbot revokes with the certificate's own key, reason keyCompromise.
    let (good, text) = certbot(
        &cp,
        &d.join("certbot"),
        &[
            "revoke",
            "--cert-path",
            &d.join(cert).display().to_string(),
            "--key-path",
            &d.join(key).display().to_string(),
            "--reason",
            "keycompromise",
            "--no-delete-after-revoke",
        ],
    );
    assert!(good, "{text}");
    let (_, crl) =
        crate::support::curl(&["--cacert", &cp.ca, &format!("{}/v1/pki/pki/crl", cp.rest)]);
    std::fs::write(d.join("pki-crl.pem"), crl).expect("crl");
    let (good, text) = openssl(d, &["crl", "-in", "pki-crl.pem", "-noout", "-text"]);
    assert!(good && text.contains("Key Compromise"), "{text}");
    let (_, ca) =
        crate::support::curl(&["--cacert", &cp.ca, &format!("{}/v1/pki/pki/ca", cp.rest)]);
    let tls_ca = std::fs::read_to_string(&cp.ca).expect("tls ca");
    std::fs::write(d.join("pki-ca.pem"), &ca).expect("ca");
    std::fs::write(d.join("pki-trust.pem"), format!("{ca}{tls_ca}")).expect("trust");
    let url = format!("{}/v1/pki/pki/ocsp", cp.rest);
    let (good, text) = openssl(
        d,
        &[
            "ocsp",
            "-issuer",
            "pki-ca.pem",
            "-cert",
            cert,
            "-url",
            &url,
            "-CAfile",
            "pki-trust.pem",
        ],
    );
    assert!(
        good && text.contains(": revoked") && text.contains("Reason: keyCompromise"),
        "{text}"
    );
    // An account that did not order it cannot revoke it.
    let h = json!({"alg": "ES256", "nonce": nonce(&cp), "url": revoke_url, "kid": kid});
    let (code, body, _) = post(&cp, &revoke_url, &k2.sign(&h, Some(&payload)));
    assert_eq!(code, 403, "another account did not order it: {body}");
}
