//! What a key shows: `keys/{name}` (Vault's read shape: config, flags,
//! capabilities, per-version creation time and public key) and
//! `export/{kind}/{name}[/{version}]` in Vault's formats.
//!
//! Invariant: [`describe`] never contains private material; [`export`]
//! returns private material only for `exportable` keys.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::error::TransitError;
use super::keys::KeyState;
use super::keys::TransitKey;
use super::material::{Engine, pem};
use super::types::KeyType;

/// Which names a description uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Native,
    Vault,
}

fn type_name(kind: KeyType, d: Dialect) -> &'static str {
    match d {
        Dialect::Native => kind.native_name(),
        Dialect::Vault => kind.vault_name(),
    }
}

/// `YYYY-MM-DDThh:mm:ssZ` for unix seconds.
pub fn rfc3339(unix: u64) -> String {
    mc_kit::clock::rfc3339(i64::try_from(unix).unwrap_or(i64::MAX))
}

fn curve_name(kind: KeyType) -> &'static str {
    match kind {
        KeyType::EcdsaP256 => "P-256",
        KeyType::EcdsaP384 => "P-384",
        other => other.native_name(),
    }
}

/// `GET keys/{name}`.
pub fn describe(s: &KeyState, dialect: Dialect) -> Value {
    let mut keys = Map::new();
    for (n, v) in &s.versions {
        let entry = if s.kind.is_asymmetric() {
            let mut e = json!({"creation_time": rfc3339(v.created_at), "name": curve_name(s.kind)});
            if let Some(pk) = &v.public_key {
                e["public_key"] = Value::from(pk.as_str());
            }
            e
        } else {
            Value::from(v.created_at)
        };
        keys.insert(n.to_string(), entry);
    }
    let mut out = json!({
        "name": s.name,
        "type": type_name(s.kind, dialect),
        "derived": s.derived,
        "exportable": s.exportable,
        "allow_plaintext_backup": false,
        "deletion_allowed": s.deletion_allowed,
        "min_decryption_version": s.min_decryption_version,
        "min_encryption_version": s.min_encryption_version,
        "min_available_version": s.min_available_version,
        "latest_version": s.latest_version,
        "auto_rotate_period": s.auto_rotate_period,
        "supports_encryption": s.kind.supports_encryption(),
        "supports_decryption": s.kind.supports_encryption(),
        "supports_derivation": s.kind.supports_derivation(),
        "supports_signing": s.kind.supports_signing(),
        "imported_key": false,
        "keys": keys,
    });
    if s.derived {
        out["kdf"] = Value::from("hkdf_sha256");
        out["convergent_encryption"] = Value::from(false);
    }
    out
}

/// `export/{kind}/{name}[/{version}]`: `kind` is `encryption-key`,
/// `signing-key`, `hmac-key` or `public-key`; `version` a number or `latest`
/// (every live version when absent).
pub fn export(
    key: &TransitKey,
    kind: &str,
    version: Option<&str>,
    dialect: Dialect,
) -> Result<Value, TransitError> {
    let s = key.state();
    match kind {
        "encryption-key" | "signing-key" | "hmac-key" => {
            if !s.exportable {
                return Err(TransitError::invalid(
                    "name",
                    "private key material is not exportable",
                ));
            }
        }
        "public-key" => {}
        other => {
            return Err(TransitError::invalid(
                "type",
                format!("unknown export type {other:?}"),
            ));
        }
    }
    match kind {
        "encryption-key" if !s.kind.supports_encryption() => {
            return Err(TransitError::invalid(
                "type",
                "encryption key not supported by this key type",
            ));
        }
        "signing-key" | "public-key" if !s.kind.supports_signing() => {
            return Err(TransitError::invalid(
                "type",
                "signing key not supported by this key type",
            ));
        }
        "public-key" if s.derived => {
            return Err(TransitError::invalid(
                "type",
                "a derived key has no single public key",
            ));
        }
        _ => {}
    }
    let versions: Vec<u32> = match version {
        None | Some("") => key.cache.keys().copied().collect(),
        Some("latest") => vec![s.latest_version],
        Some(v) => {
            let n: u32 = v
                .parse()
                .map_err(|_| TransitError::invalid("version", "not a version number"))?;
            if !key.cache.contains_key(&n) {
                return Err(TransitError::invalid(
                    "version",
                    "version does not exist or cannot be found",
                ));
            }
            vec![n]
        }
    };
    let mut keys = Map::new();
    for n in versions {
        let c = key.cache.get(&n).ok_or_else(|| {
            TransitError::invalid("version", "version does not exist or cannot be found")
        })?;
        let text: Zeroizing<String> = match kind {
            "hmac-key" => Zeroizing::new(STANDARD.encode(if s.kind.is_hmac() {
                &c.material[..]
            } else {
                &c.hmac_key[..]
            })),
            "encryption-key" => Zeroizing::new(STANDARD.encode(&c.material[..])),
            "public-key" => Zeroizing::new(c.public_key_text()?),
            _ => signing_key_text(c)?,
        };
        keys.insert(n.to_string(), Value::from(text.as_str()));
    }
    Ok(json!({"name": s.name, "type": type_name(s.kind, dialect), "keys": keys}))
}

fn signing_key_text(c: &super::material::Cached) -> Result<Zeroizing<String>, TransitError> {
    use p256::elliptic_curve::pkcs8::LineEnding;
    let enc = |_| TransitError::internal("private key encoding");
    Ok(match (&c.engine, c.kind) {
        // Go's ed25519.PrivateKey: seed ‖ public key (a derived key exports its base key).
        (_, KeyType::Ed25519) => {
            let kp = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&c.material)
                .map_err(|_| TransitError::internal("ed25519 seed"))?;
            let mut b = Zeroizing::new(c.material.to_vec());
            b.extend_from_slice(aws_lc_rs::signature::KeyPair::public_key(&kp).as_ref());
            Zeroizing::new(STANDARD.encode(b.as_slice()))
        }
        (Engine::P256(_), _) => p256::SecretKey::from_slice(&c.material)
            .map_err(enc)?
            .to_sec1_pem(LineEnding::LF)
            .map_err(|_| TransitError::internal("private key encoding"))?,
        (Engine::P384(_), _) => p384::SecretKey::from_slice(&c.material)
            .map_err(enc)?
            .to_sec1_pem(LineEnding::LF)
            .map_err(|_| TransitError::internal("private key encoding"))?,
        (Engine::Rsa(_), _) => {
            // Vault exports PKCS#1 "RSA PRIVATE KEY": the octet string inside our PKCS#8.
            let info = p256::pkcs8::PrivateKeyInfoRef::try_from(c.material.as_slice())
                .map_err(|_| TransitError::internal("private key encoding"))?;
            Zeroizing::new(pem("RSA PRIVATE KEY", info.private_key.as_bytes()))
        }
        _ => {
            return Err(TransitError::invalid(
                "type",
                "signing key not supported by this key type",
            ));
        }
    })
}
