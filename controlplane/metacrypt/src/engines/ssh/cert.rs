//! `ssh-key` glue: CA key generation and import, subject key parsing and
//! certificate signing. Key material comes from aws-lc-rs's generator
//! (seeds and scalars), so no panicking RNG adapter is needed.
//!
//! Invariants: a CA key is ed25519, ECDSA P-256 or P-384 and unencrypted;
//! a subject key is never a certificate, DSA or RSA under 2048 bits; a
//! certificate always carries at least one principal.

use ssh_key::certificate::{Builder, CertType};
use ssh_key::private::{EcdsaKeypair, Ed25519Keypair, KeypairData};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, EcdsaCurve, LineEnding, PrivateKey, PublicKey};

use super::MAX_KEY_LINE;
use super::model::{CaKeyType, CertKind};
use super::profile::Checked;
use crate::error::CryptError;

fn random<const N: usize>() -> Result<[u8; N], CryptError> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| CryptError::internal("random"))?;
    Ok(b)
}

fn ssh_err(e: ssh_key::Error) -> CryptError {
    CryptError::internal(format!("ssh-key: {e}"))
}

/// A new CA key of type `kt`, commented `comment`.
pub(crate) fn generate(kt: CaKeyType, comment: &str) -> Result<PrivateKey, CryptError> {
    let data = match kt {
        CaKeyType::Ed25519 => KeypairData::from(Ed25519Keypair::from_seed(&random::<32>()?)),
        CaKeyType::EcdsaP256 => {
            let sk = loop {
                // A random 32-byte string is a valid scalar but for ~2^-32 of them.
                if let Ok(sk) = p256::SecretKey::from_slice(&random::<32>()?) {
                    break sk;
                }
            };
            KeypairData::from(EcdsaKeypair::NistP256 {
                public: sk.public_key().into(),
                private: sk.into(),
            })
        }
        CaKeyType::EcdsaP384 => {
            let sk = loop {
                if let Ok(sk) = p384::SecretKey::from_slice(&random::<48>()?) {
                    break sk;
                }
            };
            KeypairData::from(EcdsaKeypair::NistP384 {
                public: sk.public_key().into(),
                private: sk.into(),
            })
        }
    };
    PrivateKey::new(data, comment).map_err(ssh_err)
}

/// The key type of a CA key, if it is one the engine signs with.
pub(crate) fn ca_type(key: &PrivateKey) -> Option<CaKeyType> {
    match key.algorithm() {
        Algorithm::Ed25519 => Some(CaKeyType::Ed25519),
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        } => Some(CaKeyType::EcdsaP256),
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP384,
        } => Some(CaKeyType::EcdsaP384),
        _ => None,
    }
}

/// An imported CA key: an unencrypted OpenSSH private key of a CA type.
pub(crate) fn import(pem: &str, comment: &str) -> Result<(CaKeyType, PrivateKey), CryptError> {
    if pem.len() > MAX_KEY_LINE {
        return Err(CryptError::invalid("private_key", "at most 16 KiB"));
    }
    let mut key = PrivateKey::from_openssh(pem.trim()).map_err(|e| {
        CryptError::invalid("private_key", format!("not an OpenSSH private key: {e}"))
    })?;
    if key.is_encrypted() {
        return Err(CryptError::invalid(
            "private_key",
            "encrypted; import it unencrypted",
        ));
    }
    let kt = ca_type(&key).ok_or_else(|| {
        CryptError::invalid(
            "private_key",
            format!(
                "{}: one of ed25519, ecdsa-p256, ecdsa-p384",
                key.algorithm()
            ),
        )
    })?;
    key.set_comment(comment);
    Ok((kt, key))
}

/// The OpenSSH PEM of `key` (to be sealed).
pub(crate) fn to_pem(key: &PrivateKey) -> Result<String, CryptError> {
    Ok(key.to_openssh(LineEnding::LF).map_err(ssh_err)?.to_string())
}

/// Loads a stored CA key.
pub(crate) fn load(pem: &str) -> Result<PrivateKey, CryptError> {
    PrivateKey::from_openssh(pem).map_err(ssh_err)
}

/// The public key line (`<algo> <base64> <comment>`).
pub(crate) fn public_line(key: &PrivateKey) -> Result<String, CryptError> {
    key.public_key().to_openssh().map_err(ssh_err)
}

/// The CA public key's wire encoding (the KRL's `ca_key`).
pub(crate) fn public_blob(key: &PrivateKey) -> Result<Vec<u8>, CryptError> {
    key.public_key().to_bytes().map_err(ssh_err)
}

/// A subject's public key from its OpenSSH line.
pub(crate) fn parse_subject(line: &str) -> Result<KeyData, CryptError> {
    let field = "public_key";
    if line.len() > MAX_KEY_LINE {
        return Err(CryptError::invalid(field, "at most 16 KiB"));
    }
    let key = PublicKey::from_openssh(line.trim())
        .map_err(|e| CryptError::invalid(field, format!("not an OpenSSH public key: {e}")))?;
    let data = key.key_data().clone();
    match &data {
        KeyData::Dsa(_) => Err(CryptError::invalid(field, "DSA keys are refused")),
        KeyData::Rsa(r) if r.key_size() < 2048 => Err(CryptError::invalid(
            field,
            "RSA keys need at least 2048 bits",
        )),
        KeyData::Other(_) => Err(CryptError::invalid(field, "unsupported key type")),
        d if d.is_certificate() => Err(CryptError::invalid(field, "a certificate, not a key")),
        _ => Ok(data),
    }
}

/// What to sign, besides the checked profile fields.
pub(crate) struct ToSign<'a> {
    pub subject: KeyData,
    pub kind: CertKind,
    pub serial: u64,
    pub key_id: &'a str,
    pub valid_after: u64,
    pub valid_before: u64,
    pub checked: &'a Checked,
}

/// Signs a certificate with `ca`; returns its OpenSSH line.
pub(crate) fn sign(ca: &PrivateKey, t: ToSign<'_>) -> Result<String, CryptError> {
    if t.checked.principals.is_empty() {
        return Err(CryptError::internal("refusing to sign without principals"));
    }
    let invalid = |e: ssh_key::Error| CryptError::invalid("certificate", e.to_string());
    let mut b = Builder::new(
        random::<32>()?.to_vec(),
        t.subject,
        t.valid_after,
        t.valid_before,
    )
    .map_err(invalid)?;
    b.serial(t.serial).map_err(invalid)?;
    b.key_id(t.key_id).map_err(invalid)?;
    b.cert_type(match t.kind {
        CertKind::User => CertType::User,
        CertKind::Host => CertType::Host,
    })
    .map_err(invalid)?;
    for p in &t.checked.principals {
        b.valid_principal(p.as_str()).map_err(invalid)?;
    }
    for (k, v) in &t.checked.critical_options {
        b.critical_option(k.as_str(), v.as_str()).map_err(invalid)?;
    }
    for e in &t.checked.extensions {
        b.extension(e.as_str(), "").map_err(invalid)?;
    }
    b.comment(t.key_id).map_err(invalid)?;
    let cert = b.sign(ca).map_err(ssh_err)?;
    cert.to_openssh().map_err(ssh_err)
}
