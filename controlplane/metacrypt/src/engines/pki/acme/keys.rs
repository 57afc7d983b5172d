//! Key rollover (key-change, RFC 8555 §7.3.5) and revocation (revoke-cert,
//! §7.6) by the ordering account or by the certificate's own key.
//!
//! Invariants: after a key change the account row, its thumbprint and the
//! `k` index change in one transaction, so exactly one key signs for an
//! account and one account owns a key (a taken key is 409 with the owner's
//! `Location`); a revocation signed by a key that is neither the ordering
//! account's nor the certificate's changes nothing (`unauthorized`); only
//! reasons the engine accepts reach the CRL (`badRevocationReason`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;
use x509_parser::public_key::PublicKey;

use super::flow::{Body, Reply, Step, Urls};
use super::jws::{Alg, Decoded, PublicJwk};
use super::model::{Account, Order, kind};
use super::problem::{Kind, Problem};
use super::rows::{audit, begin, commit, delete, get_tx, internal, put, scan};
use crate::core::run::Authorized;
use crate::engines::pki::certs;
use crate::engines::pki::reason::Reason;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KeyChange {
    account: String,
    old_key: Value,
}

/// The inner JWS of key-change: its algorithm and the new key, checked
/// (`jwk`, the outer `url`, no `nonce`, no `kid`) and verified.
fn inner_key(inner: &Decoded, url: &str) -> Result<PublicJwk, Problem> {
    let alg = Alg::parse(
        inner
            .header_str("alg")?
            .ok_or_else(|| Problem::malformed("the inner JWS has no alg"))?,
    )?;
    if inner.header.contains_key("nonce") || inner.header.contains_key("kid") {
        return Err(Problem::malformed(
            "the inner JWS carries neither nonce nor kid (RFC 8555 §7.3.5)",
        ));
    }
    if inner.header_str("url")? != Some(url) {
        return Err(Problem::malformed(
            "the inner JWS's url must be the outer JWS's url",
        ));
    }
    let jwk = inner
        .header
        .get("jwk")
        .ok_or_else(|| Problem::malformed("the inner JWS has no jwk (the new key)"))?;
    let key = PublicJwk::from_value(jwk)?;
    inner.verify(alg, &key)?;
    Ok(key)
}

/// key-change's inner JWS in the outer `payload`: decoded, checked and
/// verified with the new key it carries (fuzzed through `acme_jws`).
pub(crate) fn inner(payload: &Value, url: &str) -> Result<(Decoded, PublicJwk), Problem> {
    let inner = Decoded::from_value(payload)?;
    let key = inner_key(&inner, url)?;
    Ok((inner, key))
}

/// key-change (§7.3.5): the outer JWS is already verified with the
/// account's current key.
pub(crate) fn key_change(
    a: &Authorized<'_>,
    urls: &Urls,
    acct: &Account,
    url: &str,
    jws: &Decoded,
) -> Result<Step, Problem> {
    let (inner, new_key) = inner(&jws.payload_json()?, url)?;
    let req: KeyChange = serde_json::from_value(inner.payload_json()?)
        .map_err(|e| Problem::malformed(format!("key-change payload: {e}")))?;
    let account_url = urls.of(&format!("account/{}", acct.id));
    if req.account != account_url {
        return Err(Problem::malformed(
            "the inner payload's account is not the signing account",
        ));
    }
    if PublicJwk::from_value(&req.old_key)?.thumbprint() != acct.thumbprint {
        return Err(Problem::malformed(
            "oldKey is not the account's current key",
        ));
    }
    let thumb = new_key.thumbprint();
    let tx = begin(a)?;
    if let Some(owner) = get_tx::<String>(a, &tx, kind::KEY, &thumb)? {
        return Err(
            Problem::malformed("the new key is already bound to an account")
                .with_status(409)
                .with_location(urls.of(&format!("account/{owner}"))),
        );
    }
    let mut updated = acct.clone();
    updated.jwk = serde_json::from_str(&new_key.canonical_json())
        .map_err(|_| Problem::new(Kind::ServerInternal, "jwk"))?;
    updated.thumbprint = thumb.clone();
    delete(a, &tx, kind::KEY, &acct.thumbprint)?;
    put(a, &tx, kind::KEY, &thumb, &acct.id)?;
    put(a, &tx, kind::ACCOUNT, &acct.id, &updated)?;
    audit(
        a,
        &tx,
        "acme.account.key-change",
        &format!("acme/{}/account/{}", acct.role, acct.id),
        format!("old={} new={thumb}", acct.thumbprint),
    )?;
    commit(tx)?;
    let orders = urls.of(&format!("account/{}/orders", acct.id));
    Ok(Step::Done(Reply {
        status: 200,
        location: Some(account_url),
        links: Vec::new(),
        body: Body::Json(updated.view(&orders)),
    }))
}

/// Who signed a revoke-cert.
pub(crate) enum Revoker<'a> {
    /// An account (`kid`), verified: it must have ordered the certificate.
    Account(&'a Account),
    /// A key (`jwk`), not yet verified: it must be the certificate's key.
    CertKey(Alg, &'a PublicJwk),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    certificate: String,
    #[serde(default)]
    reason: Option<u64>,
}

/// The JWK form of a certificate's public key (`None`: a key ACME cannot
/// sign with, or a compressed EC point).
fn cert_jwk(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Option<PublicJwk> {
    let strip = |b: &[u8]| {
        b.iter()
            .copied()
            .skip_while(|x| *x == 0)
            .collect::<Vec<u8>>()
    };
    match spki.parsed().ok()? {
        PublicKey::EC(point) => {
            let p = point.data();
            let (p384, len) = match p.len() {
                65 => (false, 32),
                97 => (true, 48),
                _ => return None,
            };
            (p.first() == Some(&4)).then(|| PublicJwk::Ec {
                p384,
                x: p[1..=len].to_vec(),
                y: p[1 + len..].to_vec(),
            })
        }
        PublicKey::RSA(r) => Some(PublicJwk::Rsa {
            n: strip(r.modulus),
            e: strip(r.exponent),
        }),
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => Some(PublicJwk::Ed25519 {
            x: spki.subject_public_key.data.to_vec(),
        }),
        _ => None,
    }
}

/// revoke-cert (§7.6) for the mount's role `role`.
pub(crate) fn revoke(
    a: &Authorized<'_>,
    role: &str,
    by: Revoker<'_>,
    jws: &Decoded,
) -> Result<Step, Problem> {
    if let Revoker::CertKey(alg, key) = &by {
        jws.verify(*alg, key)?;
    }
    let r: Revoke = serde_json::from_value(jws.payload_json()?)
        .map_err(|e| Problem::malformed(format!("revoke-cert payload: {e}")))?;
    let reason = r
        .reason
        .map(Reason::from_code)
        .transpose()
        .map_err(|why| Problem::new(Kind::BadRevocationReason, why))?
        .unwrap_or_default();
    let der = URL_SAFE_NO_PAD
        .decode(&r.certificate)
        .map_err(|_| Problem::malformed("certificate is not unpadded base64url"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| Problem::malformed("certificate is not DER"))?;
    // The engine's serials are 16 bytes; DER drops leading zero bytes.
    let raw: Vec<u8> = cert
        .raw_serial()
        .iter()
        .copied()
        .skip_while(|b| *b == 0)
        .collect();
    if raw.len() > 16 {
        return Err(Problem::unauthorized("not a certificate of this mount"));
    }
    let mut s16 = [0u8; 16];
    s16[16 - raw.len()..].copy_from_slice(&raw);
    let serial = crate::engines::pki::x509::hex(&s16);
    let allowed = match &by {
        Revoker::Account(acct) => scan::<Order>(a, kind::ORDER)?
            .into_iter()
            .any(|o| o.account == acct.id && o.serial.as_deref() == Some(serial.as_str())),
        Revoker::CertKey(_, key) => cert_jwk(cert.public_key()).as_ref() == Some(*key),
    };
    if !allowed {
        return Err(Problem::unauthorized(match by {
            Revoker::Account(_) => "the account did not order this certificate",
            Revoker::CertKey(..) => "the JWS is not signed by the certificate's key",
        }));
    }
    let rec = certs::get_cert(a, &serial)
        .ok()
        .filter(|rec| {
            rec.role == role
                && crate::engines::pki::x509::pem_der(&rec.certificate, "c", "CERTIFICATE")
                    .is_ok_and(|stored| stored == der)
        })
        .ok_or_else(|| Problem::unauthorized("not a certificate of this mount and role"))?;
    if rec.revoked_at.is_some() {
        return Err(Problem::new(Kind::AlreadyRevoked, "already revoked"));
    }
    certs::revoke(a, &serial, reason).map_err(internal)?;
    Ok(Step::Done(Reply {
        status: 200,
        location: None,
        links: Vec::new(),
        body: Body::Json(Value::Null),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_keys_become_the_jwk_that_signs_with_them() {
        for kt in [
            crate::engines::pki::model::KeyType::EcP256,
            crate::engines::pki::model::KeyType::EcP384,
            crate::engines::pki::model::KeyType::Ed25519,
            crate::engines::pki::model::KeyType::Rsa2048,
        ] {
            let key = crate::engines::pki::x509::generate(kt).expect("key");
            let params = rcgen::CertificateParams::new(vec!["k.test".to_owned()]).expect("params");
            let pem = params.self_signed(&key).expect("cert").pem();
            let der = crate::engines::pki::x509::pem_der(&pem, "c", "CERTIFICATE").expect("der");
            let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("parse");
            let jwk = cert_jwk(cert.public_key()).expect("a jwk");
            // The same key as a JWK value decodes to the same thing.
            let back: Value = serde_json::from_str(&jwk.canonical_json()).expect("json");
            assert_eq!(
                PublicJwk::from_value(&back).expect("decodes"),
                jwk,
                "{kt:?}"
            );
        }
    }
}
