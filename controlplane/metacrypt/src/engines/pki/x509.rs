//! rcgen glue: key generation, CA and leaf certificate parameters, signing
//! and CRLs; x509-parser for reading back what was stored or imported.
//!
//! Invariant: private keys leave here only as PKCS#8 PEM in a `Zeroizing`
//! string; nothing here touches the store.

use std::net::IpAddr;

use ::time::OffsetDateTime;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    PublicKeyData, RevokedCertParams, SanType, SerialNumber,
};
use x509_parser::prelude::*;
use zeroize::Zeroizing;

use super::model::{KeyType, Revoked};
use crate::error::CryptError;

/// `not_before` is this far in the past (clock skew between peers).
pub(crate) const BACKDATE_SECS: i64 = 30;

fn rc(e: rcgen::Error) -> CryptError {
    CryptError::internal(format!("certificate: {e}"))
}

fn at(unix: i64) -> Result<OffsetDateTime, CryptError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(CryptError::internal)
}

/// A new key of `kt`.
pub(crate) fn generate(kt: KeyType) -> Result<KeyPair, CryptError> {
    let r = match kt {
        KeyType::EcP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::EcP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
        KeyType::Rsa2048 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        }
        KeyType::Rsa3072 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)
        }
        KeyType::Rsa4096 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096)
        }
    };
    r.map_err(rc)
}

pub(crate) fn key_pem(k: &KeyPair) -> Zeroizing<String> {
    Zeroizing::new(k.serialize_pem())
}

/// Loads a stored or imported PKCS#8 PEM key.
pub(crate) fn load_key(pem: &str) -> Result<KeyPair, CryptError> {
    KeyPair::from_pem(pem).map_err(|e| CryptError::invalid("private_key", format!("{e}")))
}

/// 16 random bytes, first byte in 0x40..=0x7f: positive and always 16 bytes long.
pub(crate) fn random_serial() -> Result<[u8; 16], CryptError> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| CryptError::internal("no randomness"))?;
    b[0] = (b[0] & 0x3f) | 0x40;
    Ok(b)
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A serial as given by a client (hex, any case, `:` allowed) → 16 bytes.
pub(crate) fn parse_serial(s: &str) -> Result<[u8; 16], CryptError> {
    let clean: String = s.chars().filter(|c| *c != ':').collect();
    let bad = || CryptError::invalid("serial", "32 hex digits");
    if clean.len() != 32 {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(clean.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
            .map_err(|_| bad())?;
    }
    Ok(out)
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    // X.520 bounds a CN at 64 characters; longer names live in the SANs only.
    if !common_name.is_empty() && common_name.chars().count() <= 64 {
        dn.push(DnType::CommonName, common_name);
    }
    dn
}

/// Parameters of a CA certificate (root: no path length; intermediate: 0).
pub(crate) fn ca_params(
    common_name: &str,
    serial: &[u8; 16],
    not_before: i64,
    not_after: i64,
    intermediate: bool,
) -> Result<CertificateParams, CryptError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(common_name);
    p.serial_number = Some(SerialNumber::from_slice(serial));
    p.not_before = at(not_before)?;
    p.not_after = at(not_after)?;
    p.is_ca = IsCa::Ca(if intermediate {
        BasicConstraints::Constrained(0)
    } else {
        BasicConstraints::Unconstrained
    });
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.use_authority_key_identifier_extension = intermediate;
    p.key_identifier_method = KeyIdMethod::Sha256;
    Ok(p)
}

/// What a leaf certificate says.
pub(crate) struct Leaf<'a> {
    pub common_name: &'a str,
    pub dns: &'a [String],
    pub ips: &'a [IpAddr],
    pub serial: [u8; 16],
    pub not_before: i64,
    pub not_after: i64,
    pub rsa: bool,
    pub server: bool,
    pub client: bool,
}

pub(crate) fn leaf_params(l: &Leaf<'_>) -> Result<CertificateParams, CryptError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(l.common_name);
    p.serial_number = Some(SerialNumber::from_slice(&l.serial));
    p.not_before = at(l.not_before)?;
    p.not_after = at(l.not_after)?;
    for d in l.dns {
        let ia5 = d
            .as_str()
            .try_into()
            .map_err(|_| CryptError::invalid("alt_names", format!("{d}: not IA5")))?;
        p.subject_alt_names.push(SanType::DnsName(ia5));
    }
    for ip in l.ips {
        p.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if l.rsa {
        p.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    if l.server {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if l.client {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = KeyIdMethod::Sha256;
    Ok(p)
}

/// Signs `params` for `public` with the issuer (`ca_pem` + `ca_key`); PEM.
pub(crate) fn sign(
    params: &CertificateParams,
    public: &impl PublicKeyData,
    ca_pem: &str,
    ca_key: &KeyPair,
) -> Result<String, CryptError> {
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key).map_err(rc)?;
    Ok(params.signed_by(public, &issuer).map_err(rc)?.pem())
}

pub(crate) fn self_sign(params: &CertificateParams, key: &KeyPair) -> Result<String, CryptError> {
    Ok(params.self_signed(key).map_err(rc)?.pem())
}

/// A CRL for the issuer (`ca_pem` + `ca_key`), DER.
pub(crate) fn crl(
    ca_pem: &str,
    ca_key: &KeyPair,
    number: u64,
    now: i64,
    ttl: u64,
    revoked: &[Revoked],
) -> Result<Vec<u8>, CryptError> {
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key).map_err(rc)?;
    let mut revoked_certs = Vec::with_capacity(revoked.len());
    for r in revoked {
        revoked_certs.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(&parse_serial(&r.serial)?),
            revocation_time: at(r.revoked_at)?,
            reason_code: r.reason.crl_code(),
            invalidity_date: None,
        });
    }
    let next = now.saturating_add(i64::try_from(ttl).map_err(CryptError::internal)?);
    let params = CertificateRevocationListParams {
        this_update: at(now)?,
        next_update: at(next)?,
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    Ok(params.signed_by(&issuer).map_err(rc)?.der().to_vec())
}

/// The DER inside one PEM block labelled `label`.
pub(crate) fn pem_der(text: &str, field: &str, label: &str) -> Result<Vec<u8>, CryptError> {
    let (_, pem) = parse_x509_pem(text.as_bytes())
        .map_err(|_| CryptError::invalid(field, format!("not a PEM {label}")))?;
    if pem.label != label {
        return Err(CryptError::invalid(field, format!("not a PEM {label}")));
    }
    Ok(pem.contents)
}

/// The key type of a SubjectPublicKeyInfo (`None`: not one the engine uses).
pub(crate) fn spki_key_type(spki: &SubjectPublicKeyInfo<'_>) -> Option<KeyType> {
    let alg = spki.algorithm.algorithm.to_id_string();
    match alg.as_str() {
        "1.3.101.112" => Some(KeyType::Ed25519),
        "1.2.840.10045.2.1" => {
            let curve = spki.algorithm.parameters.as_ref()?.as_oid().ok()?;
            match curve.to_id_string().as_str() {
                "1.2.840.10045.3.1.7" => Some(KeyType::EcP256),
                "1.3.132.0.34" => Some(KeyType::EcP384),
                _ => None,
            }
        }
        "1.2.840.113549.1.1.1" => match spki.parsed().ok()? {
            x509_parser::public_key::PublicKey::RSA(r) => match r.key_size() {
                2048 => Some(KeyType::Rsa2048),
                3072 => Some(KeyType::Rsa3072),
                4096 => Some(KeyType::Rsa4096),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// What the engine reads back from a certificate.
pub(crate) struct CertInfo {
    pub spki_der: Vec<u8>,
    pub key_type: Option<KeyType>,
    pub not_after: i64,
    pub is_ca: bool,
}

pub(crate) fn cert_info(pem: &str, field: &str) -> Result<CertInfo, CryptError> {
    let der = pem_der(pem, field, "CERTIFICATE")?;
    let (rest, cert) = X509Certificate::from_der(&der)
        .map_err(|_| CryptError::invalid(field, "not a DER certificate"))?;
    if !rest.is_empty() {
        return Err(CryptError::invalid(field, "trailing bytes"));
    }
    let is_ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    Ok(CertInfo {
        spki_der: cert.public_key().raw.to_vec(),
        key_type: spki_key_type(cert.public_key()),
        not_after: cert.validity().not_after.timestamp(),
        is_ca,
    })
}
