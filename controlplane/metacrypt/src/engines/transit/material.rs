//! One key version: its stored form ([`KeyVersion`], serde, base64 bytes)
//! and its cached form ([`Cached`]: the AES key schedule, the XChaCha cipher,
//! the parsed signing key, built once at load). Derived keys keep only the
//! version key and derive per call (HKDF-SHA256, info = context).
//!
//! Invariant: key bytes live in `Zeroizing` buffers or in library types that
//! zeroize on drop; nothing here logs or formats key bytes (`Debug` is redacted).

use std::sync::atomic::AtomicU64;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::TransitError;
use super::types::KeyType;

/// Bytes of every version's own HMAC key (as Vault's `HMACKey`).
pub const HMAC_KEY_LEN: usize = 32;
pub(crate) const AES_NONCE: usize = 12;
pub(crate) const XCHACHA_NONCE: usize = 24;
const TAG: usize = 16;

/// A version as stored (inside the key's sealed JSON row).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyVersion {
    /// Unix seconds.
    pub created_at: u64,
    /// The version key: a symmetric key, an Ed25519 seed, an ECDSA scalar,
    /// an RSA PKCS#8 document or an HMAC key.
    #[serde(with = "b64")]
    pub material: Zeroizing<Vec<u8>>,
    #[serde(with = "b64")]
    pub hmac_key: Zeroizing<Vec<u8>>,
    /// Vault's public-key text (base64 for Ed25519, PEM SPKI otherwise);
    /// absent for symmetric and derived keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// AES-GCM encryptions made with this version, as last flushed by the
    /// frame ([`super::TransitKey::take_counts`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub encryptions: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl std::fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVersion")
            .field("created_at", &self.created_at)
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub(super) fn serialize<S: Serializer>(
        v: &Zeroizing<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v.as_slice()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Zeroizing<Vec<u8>>, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        STANDARD
            .decode(text.as_bytes())
            .map(Zeroizing::new)
            .map_err(serde::de::Error::custom)
    }
}

pub(crate) fn random(n: usize) -> Result<Zeroizing<Vec<u8>>, TransitError> {
    let mut v = Zeroizing::new(vec![0u8; n]);
    aws_lc_rs::rand::fill(v.as_mut_slice()).map_err(|_| TransitError::internal("no randomness"))?;
    Ok(v)
}

/// HKDF-SHA256(ikm = key, salt = none, info = context), `len` bytes: Vault's `hkdf_sha256`.
pub fn derive(key: &[u8], context: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>, TransitError> {
    use aws_lc_rs::hkdf;
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(key);
    let info = [context];
    let okm = prk.expand(&info, Len(len))?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    okm.fill(out.as_mut_slice())?;
    Ok(out)
}

impl KeyVersion {
    /// A fresh version of `kind`. `derived` Ed25519 keys have no single public key.
    pub fn generate(kind: KeyType, derived: bool, now: u64) -> Result<Self, TransitError> {
        let material = match kind {
            KeyType::Aes256Gcm
            | KeyType::XChaCha20Poly1305
            | KeyType::Ed25519
            | KeyType::HmacSha256 => random(32)?,
            KeyType::HmacSha512 => random(64)?,
            KeyType::EcdsaP256 => loop {
                // A uniformly random scalar: retry the ~2^-32 chance of zero or ≥ n.
                let k = random(32)?;
                if p256::ecdsa::SigningKey::from_slice(&k).is_ok() {
                    break k;
                }
            },
            KeyType::EcdsaP384 => loop {
                let k = random(48)?;
                if p384::ecdsa::SigningKey::from_slice(&k).is_ok() {
                    break k;
                }
            },
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                let size = match kind {
                    KeyType::Rsa2048 => KeySize::Rsa2048,
                    KeyType::Rsa3072 => KeySize::Rsa3072,
                    _ => KeySize::Rsa4096,
                };
                let kp = RsaKeyPair::generate(size)?;
                let der: Pkcs8V1Der<'_> = kp.as_der()?;
                Zeroizing::new(der.as_ref().to_vec())
            }
        };
        let mut v = Self {
            created_at: now,
            material,
            hmac_key: random(HMAC_KEY_LEN)?,
            public_key: None,
            encryptions: 0,
        };
        if kind.is_asymmetric() && !(derived && kind == KeyType::Ed25519) {
            v.public_key = Some(Cached::build(kind, false, &v)?.public_key_text()?);
        }
        Ok(v)
    }
}

/// What a version's key can do, ready to use.
pub(crate) enum Engine {
    Aes(LessSafeKey),
    XChaCha(Box<XChaCha20Poly1305>),
    /// Derived symmetric keys: the per-call key comes from [`derive`].
    Derived,
    Ed25519(Ed25519KeyPair),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Rsa(RsaKeyPair),
    Hmac,
}

/// A version in the unsealed cache.
pub struct Cached {
    pub(crate) kind: KeyType,
    pub(crate) engine: Engine,
    pub(crate) material: Zeroizing<Vec<u8>>,
    pub(crate) hmac_key: Zeroizing<Vec<u8>>,
    /// AES-GCM encryptions made with this version and not yet moved into
    /// the stored count (the engine frame flushes them and rotates before 2^32).
    pub(crate) encryptions: AtomicU64,
}

impl Cached {
    pub(crate) fn build(
        kind: KeyType,
        derived: bool,
        v: &KeyVersion,
    ) -> Result<Self, TransitError> {
        let bad = |what: &str| TransitError::internal(format!("stored {what} key does not load"));
        let m = v.material.as_slice();
        let engine = match kind {
            _ if derived && kind.supports_derivation() => Engine::Derived,
            KeyType::Aes256Gcm => Engine::Aes(aes_key(m)?),
            KeyType::XChaCha20Poly1305 => Engine::XChaCha(Box::new(
                XChaCha20Poly1305::new_from_slice(m).map_err(|_| bad("xchacha20"))?,
            )),
            KeyType::Ed25519 => {
                Engine::Ed25519(Ed25519KeyPair::from_seed_unchecked(m).map_err(|_| bad("ed25519"))?)
            }
            KeyType::EcdsaP256 => {
                Engine::P256(p256::ecdsa::SigningKey::from_slice(m).map_err(|_| bad("p256"))?)
            }
            KeyType::EcdsaP384 => {
                Engine::P384(p384::ecdsa::SigningKey::from_slice(m).map_err(|_| bad("p384"))?)
            }
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                Engine::Rsa(RsaKeyPair::from_pkcs8(m).map_err(|_| bad("rsa"))?)
            }
            KeyType::HmacSha256 | KeyType::HmacSha512 => Engine::Hmac,
        };
        Ok(Self {
            kind,
            engine,
            material: v.material.clone(),
            hmac_key: v.hmac_key.clone(),
            encryptions: AtomicU64::new(0),
        })
    }

    /// The public key in Vault's text form.
    pub(crate) fn public_key_text(&self) -> Result<String, TransitError> {
        use p256::pkcs8::EncodePublicKey as _;
        let der_err = |_| TransitError::internal("public key encoding");
        Ok(match &self.engine {
            Engine::Ed25519(kp) => STANDARD.encode(kp.public_key().as_ref()),
            Engine::P256(k) => pem(
                "PUBLIC KEY",
                k.verifying_key()
                    .to_public_key_der()
                    .map_err(der_err)?
                    .as_bytes(),
            ),
            Engine::P384(k) => pem(
                "PUBLIC KEY",
                k.verifying_key()
                    .to_public_key_der()
                    .map_err(der_err)?
                    .as_bytes(),
            ),
            Engine::Rsa(kp) => {
                let der: PublicKeyX509Der<'_> = kp.public_key().as_der()?;
                pem("PUBLIC KEY", der.as_ref())
            }
            _ => return Err(TransitError::internal("no public key for this type")),
        })
    }

    /// The AEAD for this call: the cached one, or one derived from `context`.
    pub(crate) fn seal(
        &self,
        context: Option<&[u8]>,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, TransitError> {
        match (&self.engine, self.kind) {
            (Engine::Aes(k), _) => aes_seal(k, plaintext, aad),
            (Engine::XChaCha(c), _) => xchacha_seal(c, plaintext, aad),
            (Engine::Derived, KeyType::Aes256Gcm) => {
                let key = derive(&self.material, need(context)?, 32)?;
                aes_seal(&aes_key(&key)?, plaintext, aad)
            }
            (Engine::Derived, KeyType::XChaCha20Poly1305) => {
                let key = derive(&self.material, need(context)?, 32)?;
                let c = XChaCha20Poly1305::new_from_slice(&key)
                    .map_err(|_| TransitError::internal("xchacha key"))?;
                xchacha_seal(&c, plaintext, aad)
            }
            _ => Err(unsupported(self.kind, "encryption")),
        }
    }

    pub(crate) fn open(
        &self,
        context: Option<&[u8]>,
        body: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, TransitError> {
        match (&self.engine, self.kind) {
            (Engine::Aes(k), _) => aes_open(k, body, aad),
            (Engine::XChaCha(c), _) => xchacha_open(c, body, aad),
            (Engine::Derived, KeyType::Aes256Gcm) => {
                let key = derive(&self.material, need(context)?, 32)?;
                aes_open(&aes_key(&key)?, body, aad)
            }
            (Engine::Derived, KeyType::XChaCha20Poly1305) => {
                let key = derive(&self.material, need(context)?, 32)?;
                let c = XChaCha20Poly1305::new_from_slice(&key)
                    .map_err(|_| TransitError::internal("xchacha key"))?;
                xchacha_open(&c, body, aad)
            }
            _ => Err(unsupported(self.kind, "decryption")),
        }
    }

    /// The Ed25519 key pair for this call (derived from `context` when the key is derived).
    pub(crate) fn ed25519(
        &self,
        context: Option<&[u8]>,
    ) -> Result<Option<Ed25519KeyPair>, TransitError> {
        match (&self.engine, self.kind) {
            (Engine::Derived, KeyType::Ed25519) => {
                let seed = derive(&self.material, need(context)?, 32)?;
                Ok(Some(
                    Ed25519KeyPair::from_seed_unchecked(&seed)
                        .map_err(|_| TransitError::internal("ed25519 seed"))?,
                ))
            }
            _ => Ok(None),
        }
    }
}

pub(crate) fn unsupported(kind: KeyType, what: &str) -> TransitError {
    TransitError::invalid(
        "name",
        format!("key type {} does not support {what}", kind.native_name()),
    )
}

fn need(context: Option<&[u8]>) -> Result<&[u8], TransitError> {
    context.ok_or_else(|| {
        TransitError::invalid(
            "context",
            "missing 'context' for key derivation; the key was created using a derived key, \
             which means additional, per-request information must be included in order to \
             perform operations with the key",
        )
    })
}

fn aes_key(k: &[u8]) -> Result<LessSafeKey, TransitError> {
    Ok(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, k)?))
}

fn auth_failed() -> TransitError {
    TransitError::invalid("ciphertext", "cipher: message authentication failed")
}

fn aes_seal(k: &LessSafeKey, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, TransitError> {
    let mut nonce = [0u8; AES_NONCE];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| TransitError::internal("no randomness"))?;
    let mut out = Vec::with_capacity(AES_NONCE + plaintext.len() + TAG);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let mut tail = out.split_off(AES_NONCE);
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut tail,
    )?;
    out.append(&mut tail);
    Ok(out)
}

fn aes_open(k: &LessSafeKey, body: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, TransitError> {
    if body.len() < AES_NONCE + TAG {
        return Err(TransitError::invalid(
            "ciphertext",
            "invalid ciphertext: too short",
        ));
    }
    let (nonce, sealed) = body.split_at(AES_NONCE);
    let nonce = Nonce::try_assume_unique_for_key(nonce)?;
    let mut buf = Zeroizing::new(sealed.to_vec());
    let n = k
        .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
        .map_err(|_| auth_failed())?
        .len();
    buf.truncate(n);
    Ok(buf)
}

fn xchacha_seal(
    c: &XChaCha20Poly1305,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, TransitError> {
    let mut nonce = [0u8; XCHACHA_NONCE];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| TransitError::internal("no randomness"))?;
    let sealed = c
        .encrypt(
            &chacha20poly1305::XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| TransitError::internal("xchacha20-poly1305 seal"))?;
    let mut out = Vec::with_capacity(XCHACHA_NONCE + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn xchacha_open(
    c: &XChaCha20Poly1305,
    body: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, TransitError> {
    if body.len() < XCHACHA_NONCE + TAG {
        return Err(TransitError::invalid(
            "ciphertext",
            "invalid ciphertext: too short",
        ));
    }
    let (nonce, sealed) = body.split_at(XCHACHA_NONCE);
    let nonce: [u8; XCHACHA_NONCE] = nonce.try_into().map_err(|_| auth_failed())?;
    c.decrypt(
        &chacha20poly1305::XNonce::from(nonce),
        Payload { msg: sealed, aad },
    )
    .map(Zeroizing::new)
    .map_err(|_| auth_failed())
}

/// PEM with 64-column lines.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
