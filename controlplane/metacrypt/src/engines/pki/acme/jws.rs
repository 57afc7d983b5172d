//! ACME's JWS (RFC 8555 §6.2 over RFC 7515): the flattened JSON form only,
//! a protected header with `alg`, `nonce`, `url` and exactly one of `kid`
//! or `jwk`; ES256, ES384, RS256 and EdDSA verified with aws-lc-rs; JWK
//! thumbprints per RFC 7638.
//!
//! Invariants: nothing larger than [`MAX_JWS_BYTES`] is decoded; base64url
//! is strict (no padding, canonical trailing bits); an `alg` is accepted
//! only with its key type (ES256 with P-256 …); the thumbprint is computed
//! from the decoded key material re-encoded, so two spellings of one key
//! have one thumbprint. Parsing never panics (fuzzed: `acme_jws`).

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::problem::{Kind, Problem};

/// The largest request body decoded (RFC 8555 sets none; 64 KiB holds an
/// RSA-8192 key and a CSR with 100 names several times over).
pub const MAX_JWS_BYTES: usize = 64 * 1024;

/// The algorithms accepted for account keys, as the directory lists them.
pub const ALGORITHMS: &[&str] = &["ES256", "ES384", "RS256", "EdDSA"];

/// A signature algorithm of an account key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Es256,
    Es384,
    Rs256,
    EdDsa,
}

impl Alg {
    pub(crate) fn parse(s: &str) -> Result<Alg, Problem> {
        match s {
            "ES256" => Ok(Alg::Es256),
            "ES384" => Ok(Alg::Es384),
            "RS256" => Ok(Alg::Rs256),
            "EdDSA" => Ok(Alg::EdDsa),
            other => Err(Problem::new(
                Kind::BadSignatureAlgorithm,
                format!(
                    "algorithm {other:?} is not accepted; use one of {}",
                    ALGORITHMS.join(", ")
                ),
            )),
        }
    }
}

/// A public account key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicJwk {
    /// P-256 (`p384 == false`) or P-384: the uncompressed SEC1 point.
    Ec { p384: bool, x: Vec<u8>, y: Vec<u8> },
    /// RSA: modulus and exponent, big-endian, no leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Ed25519: the 32-byte public key.
    Ed25519 { x: Vec<u8> },
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>, Problem> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| Problem::malformed(format!("{field} is not unpadded base64url")))
}

fn enc(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn bad_key(detail: impl Into<String>) -> Problem {
    Problem::new(Kind::BadPublicKey, detail)
}

fn member<'a>(o: &'a Map<String, Value>, name: &str) -> Result<&'a str, Problem> {
    o.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| bad_key(format!("jwk member {name:?} is missing or not a string")))
}

impl PublicJwk {
    /// Decodes a public JWK (a private one, with `d`, is refused).
    pub fn from_value(v: &Value) -> Result<PublicJwk, Problem> {
        let o = v
            .as_object()
            .ok_or_else(|| bad_key("jwk is not an object"))?;
        if o.contains_key("d") {
            return Err(bad_key("jwk holds a private key"));
        }
        match member(o, "kty")? {
            "EC" => {
                let (p384, len) = match member(o, "crv")? {
                    "P-256" => (false, 32),
                    "P-384" => (true, 48),
                    c => return Err(bad_key(format!("curve {c:?} is not accepted"))),
                };
                let x = b64("jwk x", member(o, "x")?)?;
                let y = b64("jwk y", member(o, "y")?)?;
                if x.len() != len || y.len() != len {
                    return Err(bad_key("EC coordinates have the wrong length"));
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let on_curve = if p384 {
                    p384::PublicKey::from_sec1_bytes(&point).is_ok()
                } else {
                    p256::PublicKey::from_sec1_bytes(&point).is_ok()
                };
                if !on_curve {
                    return Err(bad_key("EC point is not on the curve"));
                }
                Ok(PublicJwk::Ec { p384, x, y })
            }
            "RSA" => {
                let n = b64("jwk n", member(o, "n")?)?;
                let e = b64("jwk e", member(o, "e")?)?;
                if n.first() == Some(&0) || e.first() == Some(&0) || e.is_empty() {
                    return Err(bad_key("RSA n and e must have no leading zero"));
                }
                let bits = n.len() * 8;
                if !(2048..=8192).contains(&bits) {
                    return Err(bad_key("RSA keys must be 2048 to 8192 bits"));
                }
                if e.len() > 4 || e.last().is_none_or(|b| b & 1 == 0) || e == [1] {
                    return Err(bad_key("RSA exponent must be odd, > 1 and < 2^32"));
                }
                Ok(PublicJwk::Rsa { n, e })
            }
            "OKP" => {
                if member(o, "crv")? != "Ed25519" {
                    return Err(bad_key("OKP keys must be Ed25519"));
                }
                let x = b64("jwk x", member(o, "x")?)?;
                if x.len() != 32 {
                    return Err(bad_key("Ed25519 keys are 32 bytes"));
                }
                Ok(PublicJwk::Ed25519 { x })
            }
            k => Err(bad_key(format!("key type {k:?} is not accepted"))),
        }
    }

    /// The RFC 7638 members in lexicographic order, as JSON text: the
    /// thumbprint's input and how the key is stored and shown.
    pub fn canonical_json(&self) -> String {
        // Every value is base64url or a fixed name: no escaping is needed.
        match self {
            PublicJwk::Ec { p384, x, y } => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                if *p384 { "P-384" } else { "P-256" },
                enc(x),
                enc(y)
            ),
            PublicJwk::Rsa { n, e } => {
                format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, enc(e), enc(n))
            }
            PublicJwk::Ed25519 { x } => {
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, enc(x))
            }
        }
    }

    /// RFC 7638 thumbprint (SHA-256), base64url.
    pub fn thumbprint(&self) -> String {
        let d =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.canonical_json().as_bytes());
        enc(d.as_ref())
    }

    fn fits(&self, alg: Alg) -> bool {
        matches!(
            (self, alg),
            (PublicJwk::Ec { p384: false, .. }, Alg::Es256)
                | (PublicJwk::Ec { p384: true, .. }, Alg::Es384)
                | (PublicJwk::Rsa { .. }, Alg::Rs256)
                | (PublicJwk::Ed25519 { .. }, Alg::EdDsa)
        )
    }

    /// Verifies `sig` over `msg` with `alg`; the algorithm must fit the key.
    pub fn verify(&self, alg: Alg, msg: &[u8], sig: &[u8]) -> Result<(), Problem> {
        if !self.fits(alg) {
            return Err(Problem::new(
                Kind::BadSignatureAlgorithm,
                "the algorithm does not match the key type",
            ));
        }
        let ok = match self {
            PublicJwk::Ec { p384, x, y } => {
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(4);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                let algorithm = if *p384 {
                    &signature::ECDSA_P384_SHA384_FIXED
                } else {
                    &signature::ECDSA_P256_SHA256_FIXED
                };
                UnparsedPublicKey::new(algorithm, &point).verify(msg, sig)
            }
            PublicJwk::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }.verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                msg,
                sig,
            ),
            PublicJwk::Ed25519 { x } => {
                UnparsedPublicKey::new(&signature::ED25519, x).verify(msg, sig)
            }
        };
        ok.map_err(|_| Problem::malformed("JWS signature does not verify"))
    }
}

/// How the request names its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// An account URL (every request of an existing account).
    Kid(String),
    /// The key itself (new-account, revoke-cert by certificate key).
    Jwk(PublicJwk),
}

/// The protected header, decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    pub alg: Alg,
    pub nonce: String,
    pub url: String,
    pub key: KeyRef,
}

/// The three members of the flattened form, still encoded.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
}

/// A flattened JWS whose parts are decoded; the signature is not yet
/// checked (that needs the account's key for `kid`).
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The protected header's JSON object.
    pub header: Map<String, Value>,
    /// The decoded payload (empty for POST-as-GET).
    pub payload: Vec<u8>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

impl Decoded {
    /// Splits a flattened JWS (bounded, strict base64url, no unprotected
    /// `header`); any algorithm.
    pub fn parse(body: &[u8]) -> Result<Decoded, Problem> {
        if body.len() > MAX_JWS_BYTES {
            return Err(Problem::malformed(format!(
                "request body over {MAX_JWS_BYTES} bytes"
            )));
        }
        let f: Flattened = serde_json::from_slice(body).map_err(|e| {
            Problem::malformed(format!(
                "not a flattened JWS (protected, payload, signature): {e}"
            ))
        })?;
        Self::from_parts(&f.protected, &f.payload, &f.signature)
    }

    /// The same from a JSON value (an EAB binding inside a payload).
    pub fn from_value(v: &Value) -> Result<Decoded, Problem> {
        let f: Flattened = serde_json::from_value(v.clone())
            .map_err(|e| Problem::malformed(format!("not a flattened JWS: {e}")))?;
        Self::from_parts(&f.protected, &f.payload, &f.signature)
    }

    fn from_parts(protected: &str, payload: &str, signature: &str) -> Result<Decoded, Problem> {
        let header_bytes = b64("protected", protected)?;
        let header = match serde_json::from_slice::<Value>(&header_bytes) {
            Ok(Value::Object(m)) => m,
            _ => return Err(Problem::malformed("protected header is not a JSON object")),
        };
        if header.contains_key("crit") {
            return Err(Problem::malformed("no crit header parameter is understood"));
        }
        let mut signing_input = Vec::with_capacity(protected.len() + 1 + payload.len());
        signing_input.extend_from_slice(protected.as_bytes());
        signing_input.push(b'.');
        signing_input.extend_from_slice(payload.as_bytes());
        Ok(Decoded {
            header,
            payload: b64("payload", payload)?,
            signing_input,
            signature: b64("signature", signature)?,
        })
    }

    /// A string member of the protected header.
    pub fn header_str(&self, name: &str) -> Result<Option<&str>, Problem> {
        match self.header.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Problem::malformed(format!(
                "protected header {name} is not a string"
            ))),
        }
    }

    /// `protected.payload`, what the signature covers.
    pub fn signing_input(&self) -> &[u8] {
        &self.signing_input
    }

    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The ACME protected header (RFC 8555 §6.2).
    pub fn acme_header(&self) -> Result<Protected, Problem> {
        let alg = Alg::parse(
            self.header_str("alg")?
                .ok_or_else(|| Problem::malformed("protected header has no alg"))?,
        )?;
        let nonce = self
            .header_str("nonce")?
            .ok_or_else(|| Problem::new(Kind::BadNonce, "protected header has no nonce"))?
            .to_owned();
        let url = self
            .header_str("url")?
            .ok_or_else(|| Problem::malformed("protected header has no url"))?
            .to_owned();
        let key = match (self.header_str("kid")?, self.header.get("jwk")) {
            (Some(kid), None) => KeyRef::Kid(kid.to_owned()),
            (None, Some(jwk)) => KeyRef::Jwk(PublicJwk::from_value(jwk)?),
            _ => {
                return Err(Problem::malformed(
                    "protected header needs exactly one of kid and jwk",
                ));
            }
        };
        Ok(Protected {
            alg,
            nonce,
            url,
            key,
        })
    }

    /// Verifies the signature with `key` under the header's `alg`.
    pub fn verify(&self, alg: Alg, key: &PublicJwk) -> Result<(), Problem> {
        key.verify(alg, &self.signing_input, &self.signature)
    }

    /// The payload as JSON; POST-as-GET (empty payload) is refused here.
    pub fn payload_json(&self) -> Result<Value, Problem> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| Problem::malformed(format!("payload is not JSON: {e}")))
    }

    /// True for POST-as-GET (RFC 8555 §6.3).
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }
}

#[cfg(test)]
#[path = "jws_tests.rs"]
pub(crate) mod tests;
