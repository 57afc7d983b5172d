//! `sign` and `verify` for Ed25519 (aws-lc-rs; the input itself is signed),
//! ECDSA P-256/P-384 (RustCrypto, RFC 6979, over the digest `hash_algorithm`
//! names, DER or JWS `r‖s`) and RSA (aws-lc-rs, PSS with a digest-length
//! salt or PKCS#1 v1.5, SHA-2 256/384/512). `verify` also checks HMACs.
//!
//! Invariant: a signature that does not verify is `valid: false`, never an
//! error; an error means the request itself is wrong (policy, field, type).

use aws_lc_rs::digest::Digest;
use aws_lc_rs::signature::RsaEncoding;
use aws_lc_rs::signature::{self as sig, KeyPair as _, RsaParameters, UnparsedPublicKey};
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use serde::{Deserialize, Serialize};

use super::ciphertext::{self, Alphabet};
use super::error::TransitError;
use super::keys::TransitKey;
use super::material::{Cached, Engine, unsupported};
use super::types::{Hash, KeyType};
use super::wire::{Input, flexible_bool, flexible_u32, opt_bytes};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SignParams {
    /// `sha2-256` by default; the URL's `{hash}` is put here.
    pub hash_algorithm: Option<String>,
    /// Vault's older name for `hash_algorithm`.
    pub algorithm: Option<String>,
    #[serde(deserialize_with = "flexible_bool")]
    pub prehashed: Option<bool>,
    /// RSA: `pss` (default) or `pkcs1v15`.
    pub signature_algorithm: Option<String>,
    /// ECDSA: `asn1` (default) or `jws`.
    pub marshaling_algorithm: Option<String>,
    #[serde(deserialize_with = "flexible_u32")]
    pub key_version: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SignItem {
    pub input: Option<Input>,
    pub context: Option<Input>,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignOut {
    pub signature: String,
    pub key_version: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VerifyItem {
    pub input: Option<Input>,
    pub signature: Option<String>,
    pub hmac: Option<String>,
    pub context: Option<Input>,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyOut {
    pub valid: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RsaPad {
    Pss,
    Pkcs1,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Marshal {
    Asn1,
    Jws,
}

struct Resolved {
    hash: Hash,
    prehashed: bool,
    pad: RsaPad,
    marshal: Marshal,
}

fn resolve(p: &SignParams) -> Result<Resolved, TransitError> {
    let name = p
        .hash_algorithm
        .as_deref()
        .or(p.algorithm.as_deref())
        .unwrap_or("sha2-256");
    Ok(Resolved {
        hash: Hash::parse("hash_algorithm", name)?,
        prehashed: p.prehashed.unwrap_or(false),
        pad: match p.signature_algorithm.as_deref().unwrap_or("pss") {
            "pss" => RsaPad::Pss,
            "pkcs1v15" => RsaPad::Pkcs1,
            _ => {
                return Err(TransitError::invalid(
                    "signature_algorithm",
                    "must be pss or pkcs1v15",
                ));
            }
        },
        marshal: match p.marshaling_algorithm.as_deref().unwrap_or("asn1") {
            "asn1" => Marshal::Asn1,
            "jws" => Marshal::Jws,
            _ => {
                return Err(TransitError::invalid(
                    "marshaling_algorithm",
                    "must be asn1 or jws",
                ));
            }
        },
    })
}

fn required<'a>(
    v: &'a Option<Input>,
    field: &'static str,
) -> Result<std::borrow::Cow<'a, [u8]>, TransitError> {
    v.as_ref()
        .ok_or_else(|| TransitError::invalid(field, "missing"))?
        .decode(field)
}

/// The digest to sign: the input when `prehashed` (its length checked), else its hash.
fn digest_of(r: &Resolved, input: &[u8]) -> Result<Digest, TransitError> {
    if r.prehashed {
        Digest::import_less_safe(input, r.hash.digest_alg()).map_err(|_| {
            TransitError::invalid(
                "input",
                format!(
                    "a prehashed input must be the {}-byte digest hash_algorithm names",
                    r.hash.output_len()
                ),
            )
        })
    } else {
        Ok(r.hash.digest(input))
    }
}

fn rsa_sign_encoding(r: &Resolved) -> Result<&'static dyn RsaEncoding, TransitError> {
    Ok(match (r.pad, r.hash) {
        (RsaPad::Pss, Hash::Sha256) => &sig::RSA_PSS_SHA256,
        (RsaPad::Pss, Hash::Sha384) => &sig::RSA_PSS_SHA384,
        (RsaPad::Pss, Hash::Sha512) => &sig::RSA_PSS_SHA512,
        (RsaPad::Pkcs1, Hash::Sha256) => &sig::RSA_PKCS1_SHA256,
        (RsaPad::Pkcs1, Hash::Sha384) => &sig::RSA_PKCS1_SHA384,
        (RsaPad::Pkcs1, Hash::Sha512) => &sig::RSA_PKCS1_SHA512,
        _ => return Err(rsa_hash_refused()),
    })
}

fn rsa_verify_params(r: &Resolved) -> Result<&'static RsaParameters, TransitError> {
    Ok(match (r.pad, r.hash) {
        (RsaPad::Pss, Hash::Sha256) => &sig::RSA_PSS_2048_8192_SHA256,
        (RsaPad::Pss, Hash::Sha384) => &sig::RSA_PSS_2048_8192_SHA384,
        (RsaPad::Pss, Hash::Sha512) => &sig::RSA_PSS_2048_8192_SHA512,
        (RsaPad::Pkcs1, Hash::Sha256) => &sig::RSA_PKCS1_2048_8192_SHA256,
        (RsaPad::Pkcs1, Hash::Sha384) => &sig::RSA_PKCS1_2048_8192_SHA384,
        (RsaPad::Pkcs1, Hash::Sha512) => &sig::RSA_PKCS1_2048_8192_SHA512,
        _ => return Err(rsa_hash_refused()),
    })
}

fn rsa_hash_refused() -> TransitError {
    TransitError::invalid(
        "hash_algorithm",
        "RSA keys sign with sha2-256, sha2-384 or sha2-512",
    )
}

impl TransitKey {
    fn check_signing(&self) -> Result<(), TransitError> {
        if self.state.kind.supports_signing() {
            Ok(())
        } else {
            Err(unsupported(self.state.kind, "signing"))
        }
    }

    /// `sign/{name}[/{hash}]`.
    pub fn sign(&self, params: &SignParams, item: &SignItem) -> Result<SignOut, TransitError> {
        self.check_signing()?;
        let r = resolve(params)?;
        let input = required(&item.input, "input")?;
        let context = opt_bytes(&item.context, "context")?;
        let (v, c) = self.version_for_use(params.key_version)?;
        let (bytes, alphabet) = sign_with(c, &r, &input, context.as_deref())?;
        Ok(SignOut {
            signature: ciphertext::encode(v, &bytes, alphabet),
            key_version: v,
        })
    }

    /// `verify/{name}[/{hash}]`: exactly one of `signature` or `hmac`.
    pub fn verify(
        &self,
        params: &SignParams,
        item: &VerifyItem,
    ) -> Result<VerifyOut, TransitError> {
        let input = required(&item.input, "input")?;
        match (&item.signature, &item.hmac) {
            (Some(_), Some(_)) | (None, None) => Err(TransitError::invalid(
                "signature",
                "provide exactly one of 'signature' or 'hmac'",
            )),
            (None, Some(h)) => {
                let alg = params
                    .hash_algorithm
                    .as_deref()
                    .or(params.algorithm.as_deref());
                Ok(VerifyOut {
                    valid: self.verify_hmac(alg, &input, h)?,
                })
            }
            (Some(text), None) => {
                self.check_signing()?;
                let r = resolve(params)?;
                let context = opt_bytes(&item.context, "context")?;
                let alphabet = if r.marshal == Marshal::Jws
                    && matches!(self.state.kind, KeyType::EcdsaP256 | KeyType::EcdsaP384)
                {
                    Alphabet::UrlNoPad
                } else {
                    Alphabet::Standard
                };
                let v = ciphertext::version_of("signature", text)?;
                let c = self.version_for_read("signature", v)?;
                let parsed = ciphertext::parse("signature", text, alphabet)?;
                Ok(VerifyOut {
                    valid: verify_with(c, &r, &input, context.as_deref(), &parsed.body)?,
                })
            }
        }
    }
}

fn sign_with(
    c: &Cached,
    r: &Resolved,
    input: &[u8],
    context: Option<&[u8]>,
) -> Result<(Vec<u8>, Alphabet), TransitError> {
    let ecdsa = |der: Vec<u8>, raw: Vec<u8>| match r.marshal {
        Marshal::Asn1 => (der, Alphabet::Standard),
        Marshal::Jws => (raw, Alphabet::UrlNoPad),
    };
    match &c.engine {
        Engine::Ed25519(_) | Engine::Derived => {
            if r.prehashed {
                return Err(TransitError::invalid(
                    "prehashed",
                    "Ed25519 signs the input itself",
                ));
            }
            let derived = c.ed25519(context)?;
            let kp = match (&derived, &c.engine) {
                (Some(kp), _) => kp,
                (None, Engine::Ed25519(kp)) => kp,
                _ => return Err(unsupported(c.kind, "signing")),
            };
            Ok((kp.sign(input).as_ref().to_vec(), Alphabet::Standard))
        }
        Engine::P256(k) => {
            let d = digest_of(r, input)?;
            let s: p256::ecdsa::Signature = k
                .sign_prehash(d.as_ref())
                .map_err(|_| TransitError::internal("ecdsa sign"))?;
            Ok(ecdsa(s.to_der().as_bytes().to_vec(), s.to_bytes().to_vec()))
        }
        Engine::P384(k) => {
            let d = digest_of(r, input)?;
            let s: p384::ecdsa::Signature = k
                .sign_prehash(d.as_ref())
                .map_err(|_| TransitError::internal("ecdsa sign"))?;
            Ok(ecdsa(s.to_der().as_bytes().to_vec(), s.to_bytes().to_vec()))
        }
        Engine::Rsa(kp) => {
            let enc = rsa_sign_encoding(r)?;
            let mut out = vec![0u8; kp.public_modulus_len()];
            if r.prehashed {
                let d = digest_of(r, input)?;
                kp.sign_digest(enc, &d, &mut out)?;
            } else {
                kp.sign(enc, &aws_lc_rs::rand::SystemRandom::new(), input, &mut out)?;
            }
            Ok((out, Alphabet::Standard))
        }
        _ => Err(unsupported(c.kind, "signing")),
    }
}

fn verify_with(
    c: &Cached,
    r: &Resolved,
    input: &[u8],
    context: Option<&[u8]>,
    signature: &[u8],
) -> Result<bool, TransitError> {
    match &c.engine {
        Engine::Ed25519(_) | Engine::Derived => {
            if r.prehashed {
                return Err(TransitError::invalid(
                    "prehashed",
                    "Ed25519 signs the input itself",
                ));
            }
            let derived = c.ed25519(context)?;
            let kp = match (&derived, &c.engine) {
                (Some(kp), _) => kp,
                (None, Engine::Ed25519(kp)) => kp,
                _ => return Err(unsupported(c.kind, "verification")),
            };
            let public = UnparsedPublicKey::new(&sig::ED25519, kp.public_key().as_ref());
            Ok(public.verify(input, signature).is_ok())
        }
        Engine::P256(k) => {
            let d = digest_of(r, input)?;
            let s = match r.marshal {
                Marshal::Asn1 => p256::ecdsa::Signature::from_der(signature).ok(),
                Marshal::Jws => p256::ecdsa::Signature::from_slice(signature).ok(),
            };
            Ok(s.is_some_and(|s| k.verifying_key().verify_prehash(d.as_ref(), &s).is_ok()))
        }
        Engine::P384(k) => {
            let d = digest_of(r, input)?;
            let s = match r.marshal {
                Marshal::Asn1 => p384::ecdsa::Signature::from_der(signature).ok(),
                Marshal::Jws => p384::ecdsa::Signature::from_slice(signature).ok(),
            };
            Ok(s.is_some_and(|s| k.verifying_key().verify_prehash(d.as_ref(), &s).is_ok()))
        }
        Engine::Rsa(kp) => {
            let params = rsa_verify_params(r)?;
            let public = UnparsedPublicKey::new(params, kp.public_key().as_ref());
            Ok(if r.prehashed {
                let d = digest_of(r, input)?;
                public.verify_digest(&d, signature).is_ok()
            } else {
                public.verify(input, signature).is_ok()
            })
        }
        _ => Err(unsupported(c.kind, "verification")),
    }
}
