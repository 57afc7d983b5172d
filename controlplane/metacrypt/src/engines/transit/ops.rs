//! The data operations on one key, one item at a time (a batch is
//! [`super::batch::BatchResults::run`] over these): encrypt, decrypt,
//! rewrap, datakey, hmac; and the keyless ones, random and hash. Signing is
//! in [`super::sign`]. Request and response fields are Vault's.
//!
//! Invariant: version choice always goes through
//! `TransitKey::version_for_use` (encrypt, sign, hmac) or
//! `version_for_read` (decrypt, rewrap, verify), so the key's minimums are
//! enforced in one place; no operation touches the store.

use std::sync::atomic::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize, Serializer};
use zeroize::Zeroizing;

use super::ciphertext::{self, Alphabet};
use super::error::TransitError;
use super::keys::TransitKey;
use super::material::{Cached, random};
use super::types::{Hash, KeyType};
use super::wire::{Input, flexible_u32, opt_bytes};

pub(crate) fn b64<S: Serializer>(v: &Zeroizing<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&STANDARD.encode(v.as_slice()))
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EncryptItem {
    pub plaintext: Option<Input>,
    pub context: Option<Input>,
    #[serde(deserialize_with = "flexible_u32")]
    pub key_version: Option<u32>,
    pub associated_data: Option<Input>,
    pub nonce: Option<Input>,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EncryptOut {
    pub ciphertext: String,
    pub key_version: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DecryptItem {
    pub ciphertext: Option<String>,
    pub context: Option<Input>,
    pub associated_data: Option<Input>,
    pub nonce: Option<Input>,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecryptOut {
    #[serde(serialize_with = "b64")]
    pub plaintext: Zeroizing<Vec<u8>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RewrapItem {
    pub ciphertext: Option<String>,
    pub context: Option<Input>,
    #[serde(deserialize_with = "flexible_u32")]
    pub key_version: Option<u32>,
    pub nonce: Option<Input>,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DatakeyRequest {
    #[serde(deserialize_with = "flexible_u32")]
    pub bits: Option<u32>,
    pub context: Option<Input>,
    #[serde(deserialize_with = "flexible_u32")]
    pub key_version: Option<u32>,
    pub nonce: Option<Input>,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatakeyOut {
    pub ciphertext: String,
    pub key_version: u32,
    /// Present for `datakey/plaintext`, absent for `datakey/wrapped`.
    #[serde(serialize_with = "opt_b64", skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
}

fn opt_b64<S: Serializer>(v: &Option<Zeroizing<Vec<u8>>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => b64(v, s),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HmacParams {
    /// `sha2-256` unless the key is `hmac-sha512`; the URL's `{algo}` is put here.
    pub algorithm: Option<String>,
    #[serde(deserialize_with = "flexible_u32")]
    pub key_version: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HmacItem {
    pub input: Option<Input>,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HmacOut {
    pub hmac: String,
}

fn refuse_nonce(n: &Option<Input>) -> Result<(), TransitError> {
    if opt_bytes(n, "nonce")?.is_some() {
        return Err(TransitError::invalid(
            "nonce",
            "a nonce is only used by convergent encryption, which is not offered",
        ));
    }
    Ok(())
}

fn required<'a>(
    v: &'a Option<Input>,
    field: &'static str,
) -> Result<std::borrow::Cow<'a, [u8]>, TransitError> {
    v.as_ref()
        .ok_or_else(|| TransitError::invalid(field, "missing"))?
        .decode(field)
}

impl TransitKey {
    fn seal_with(
        &self,
        c: &Cached,
        context: Option<&[u8]>,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, TransitError> {
        if !c.kind.supports_encryption() {
            return Err(super::material::unsupported(c.kind, "encryption"));
        }
        let body = c.seal(context, plaintext, aad)?;
        if c.kind == KeyType::Aes256Gcm {
            c.encryptions.fetch_add(1, Ordering::Relaxed);
        }
        Ok(body)
    }

    /// `encrypt/{name}`: `vault:v<N>:base64(nonce ‖ ciphertext ‖ tag)`.
    pub fn encrypt(&self, item: &EncryptItem) -> Result<EncryptOut, TransitError> {
        refuse_nonce(&item.nonce)?;
        let plaintext = required(&item.plaintext, "plaintext")?;
        let context = opt_bytes(&item.context, "context")?;
        let aad = opt_bytes(&item.associated_data, "associated_data")?;
        let (v, c) = self.version_for_use(item.key_version)?;
        let body = self.seal_with(
            c,
            context.as_deref(),
            &plaintext,
            aad.as_deref().unwrap_or_default(),
        )?;
        Ok(EncryptOut {
            ciphertext: ciphertext::encode(v, &body, Alphabet::Standard),
            key_version: v,
        })
    }

    fn open_text(
        &self,
        text: &str,
        context: Option<&[u8]>,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, TransitError> {
        if !self.state.kind.supports_encryption() {
            return Err(super::material::unsupported(self.state.kind, "decryption"));
        }
        // The policy checks come before base64, as in Vault.
        let v = ciphertext::version_of("ciphertext", text)?;
        let c = self.version_for_read("ciphertext", v)?;
        let parsed = ciphertext::parse("ciphertext", text, Alphabet::Standard)?;
        c.open(context, &parsed.body, aad)
    }

    /// `decrypt/{name}`.
    pub fn decrypt(&self, item: &DecryptItem) -> Result<DecryptOut, TransitError> {
        refuse_nonce(&item.nonce)?;
        let text = item
            .ciphertext
            .as_deref()
            .ok_or_else(|| TransitError::invalid("ciphertext", "missing"))?;
        let context = opt_bytes(&item.context, "context")?;
        let aad = opt_bytes(&item.associated_data, "associated_data")?;
        let plaintext =
            self.open_text(text, context.as_deref(), aad.as_deref().unwrap_or_default())?;
        Ok(DecryptOut { plaintext })
    }

    /// `rewrap/{name}`: decrypt, then encrypt with the latest (or the given) version.
    pub fn rewrap(&self, item: &RewrapItem) -> Result<EncryptOut, TransitError> {
        refuse_nonce(&item.nonce)?;
        let text = item
            .ciphertext
            .as_deref()
            .ok_or_else(|| TransitError::invalid("ciphertext", "missing"))?;
        let context = opt_bytes(&item.context, "context")?;
        let plaintext = self.open_text(text, context.as_deref(), &[])?;
        let (v, c) = self.version_for_use(item.key_version)?;
        let body = self.seal_with(c, context.as_deref(), &plaintext, &[])?;
        Ok(EncryptOut {
            ciphertext: ciphertext::encode(v, &body, Alphabet::Standard),
            key_version: v,
        })
    }

    /// `datakey/{plaintext|wrapped}/{name}`: a random key of `bits` (128, 256
    /// or 512; 256 by default) encrypted under this key.
    pub fn datakey(
        &self,
        req: &DatakeyRequest,
        with_plaintext: bool,
    ) -> Result<DatakeyOut, TransitError> {
        refuse_nonce(&req.nonce)?;
        let bits = req.bits.unwrap_or(256);
        if !matches!(bits, 128 | 256 | 512) {
            return Err(TransitError::invalid(
                "bits",
                "invalid bits value (128, 256 or 512)",
            ));
        }
        let context = opt_bytes(&req.context, "context")?;
        let (v, c) = self.version_for_use(req.key_version)?;
        let key = random(bits as usize / 8)?;
        let body = self.seal_with(c, context.as_deref(), &key, &[])?;
        Ok(DatakeyOut {
            ciphertext: ciphertext::encode(v, &body, Alphabet::Standard),
            key_version: v,
            plaintext: with_plaintext.then_some(key),
        })
    }

    fn hmac_algorithm(
        &self,
        name: Option<&str>,
        field: &'static str,
    ) -> Result<aws_lc_rs::hmac::Algorithm, TransitError> {
        let default = if self.state.kind == KeyType::HmacSha512 {
            "sha2-512"
        } else {
            "sha2-256"
        };
        Hash::parse(field, name.unwrap_or(default))?.hmac_alg(field)
    }

    /// `hmac/{name}[/{algo}]`: keyed by the version's HMAC key (the key itself for HMAC types).
    pub fn hmac(&self, params: &HmacParams, item: &HmacItem) -> Result<HmacOut, TransitError> {
        let input = required(&item.input, "input")?;
        let alg = self.hmac_algorithm(params.algorithm.as_deref(), "algorithm")?;
        let (v, c) = self.version_for_use(params.key_version)?;
        let key = aws_lc_rs::hmac::Key::new(alg, hmac_key_bytes(c));
        let tag = aws_lc_rs::hmac::sign(&key, &input);
        Ok(HmacOut {
            hmac: ciphertext::encode(v, tag.as_ref(), Alphabet::Standard),
        })
    }

    /// `verify` with `hmac`: constant-time comparison.
    pub(crate) fn verify_hmac(
        &self,
        algorithm: Option<&str>,
        input: &[u8],
        text: &str,
    ) -> Result<bool, TransitError> {
        let alg = self.hmac_algorithm(algorithm, "hash_algorithm")?;
        let v = ciphertext::version_of("hmac", text)?;
        let c = self.version_for_read("hmac", v)?;
        let parsed = ciphertext::parse("hmac", text, Alphabet::Standard)?;
        let key = aws_lc_rs::hmac::Key::new(alg, hmac_key_bytes(c));
        Ok(aws_lc_rs::hmac::verify(&key, input, &parsed.body).is_ok())
    }
}

fn hmac_key_bytes(c: &Cached) -> &[u8] {
    if c.kind.is_hmac() {
        &c.material
    } else {
        &c.hmac_key
    }
}

/// The most `random` returns in one call (Vault's bound).
pub const MAX_RANDOM_BYTES: u32 = 128 * 1024;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RandomRequest {
    #[serde(deserialize_with = "flexible_u32")]
    pub bytes: Option<u32>,
    /// `base64` (default) or `hex`.
    pub format: Option<String>,
    /// `platform`, `seal` or `all`: all read the platform's generator here.
    pub source: Option<String>,
    /// The URL's `{bytes}` as given; parsed here, after policy.
    #[serde(skip)]
    pub url_bytes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RandomOut {
    pub random_bytes: String,
}

fn format_bytes(
    field: &'static str,
    format: Option<&str>,
    default: &str,
    b: &[u8],
) -> Result<String, TransitError> {
    match format.unwrap_or(default) {
        "base64" => Ok(STANDARD.encode(b)),
        "hex" => Ok(b.iter().map(|x| format!("{x:02x}")).collect()),
        other => Err(TransitError::invalid(
            field,
            format!("unsupported encoding format {other:?}"),
        )),
    }
}

/// `random[/{bytes}]`.
pub fn random_bytes(req: &RandomRequest) -> Result<RandomOut, TransitError> {
    let from_url = match &req.url_bytes {
        Some(t) => Some(
            t.parse::<u32>()
                .map_err(|_| TransitError::invalid("bytes", "a positive integer"))?,
        ),
        None => None,
    };
    let n = from_url.or(req.bytes).unwrap_or(32);
    if n == 0 || n > MAX_RANDOM_BYTES {
        return Err(TransitError::invalid(
            "bytes",
            format!("must be between 1 and {MAX_RANDOM_BYTES}"),
        ));
    }
    if !matches!(
        req.source.as_deref().unwrap_or("platform"),
        "platform" | "seal" | "all"
    ) {
        return Err(TransitError::invalid(
            "source",
            "must be platform, seal or all",
        ));
    }
    let b = random(n as usize)?;
    Ok(RandomOut {
        random_bytes: format_bytes("format", req.format.as_deref(), "base64", &b)?,
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HashRequest {
    pub input: Option<Input>,
    /// `sha2-256` by default; the URL's `{algo}` is put here.
    pub algorithm: Option<String>,
    /// `hex` (default) or `base64`.
    pub format: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HashOut {
    pub sum: String,
}

/// `hash[/{algo}]`.
pub fn hash(req: &HashRequest) -> Result<HashOut, TransitError> {
    let input = required(&req.input, "input")?;
    let h = Hash::parse("algorithm", req.algorithm.as_deref().unwrap_or("sha2-256"))?;
    let d = h.digest(&input);
    Ok(HashOut {
        sum: format_bytes("format", req.format.as_deref(), "hex", d.as_ref())?,
    })
}
