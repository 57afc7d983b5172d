//! The `vault:v<N>:<body>` codec shared by ciphertexts, signatures and HMACs.
//!
//! Invariant: [`parse`] never panics on any input, accepts exactly
//! `vault:v` + a decimal version in `1..=u32::MAX` (Vault reads `v0` as `v1`,
//! so do we) + `:` + a body in the given alphabet, and answers Vault's
//! 400 texts otherwise. The version is checked against the key by the caller.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::error::TransitError;

/// The prefix every transit output carries.
pub(crate) const PREFIX: &str = "vault:v";

/// How the body after the version is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alphabet {
    /// Standard base64 with padding (ciphertexts, HMACs, most signatures).
    Standard,
    /// URL-safe base64 without padding (ECDSA signatures marshaled as JWS).
    UrlNoPad,
}

/// A parsed `vault:vN:` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub version: u32,
    pub body: Vec<u8>,
}

/// Writes `vault:v<version>:<base64(body)>`.
pub fn encode(version: u32, body: &[u8], alphabet: Alphabet) -> String {
    let b64 = match alphabet {
        Alphabet::Standard => STANDARD.encode(body),
        Alphabet::UrlNoPad => URL_SAFE_NO_PAD.encode(body),
    };
    format!("{PREFIX}{version}:{b64}")
}

/// The version of a `vault:vN:` value without decoding its body (for the
/// policy checks that come before base64, as in Vault).
pub fn version_of(field: &'static str, text: &str) -> Result<u32, TransitError> {
    let rest = text
        .strip_prefix(PREFIX)
        .ok_or_else(|| TransitError::invalid(field, "invalid ciphertext: no prefix"))?;
    let (ver, _) = rest.split_once(':').ok_or_else(|| {
        TransitError::invalid(field, "invalid ciphertext: wrong number of fields")
    })?;
    // Digits only: `u32::from_str` would also take a leading `+`.
    if ver.is_empty() || ver.len() > 10 || !ver.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TransitError::invalid(
            field,
            "invalid ciphertext: version number could not be decoded",
        ));
    }
    let v: u32 = ver.parse().map_err(|_| {
        TransitError::invalid(
            field,
            "invalid ciphertext: version number could not be decoded",
        )
    })?;
    // Vault's legacy rule: version 0 means 1.
    Ok(v.max(1))
}

/// Parses a whole value: prefix, version and body.
pub fn parse(field: &'static str, text: &str, alphabet: Alphabet) -> Result<Parsed, TransitError> {
    let version = version_of(field, text)?;
    let body_text = text
        .strip_prefix(PREFIX)
        .and_then(|r| r.split_once(':'))
        .map(|(_, b)| b)
        .unwrap_or_default();
    let body = decode_body(body_text, alphabet).ok_or_else(|| {
        TransitError::invalid(field, "invalid ciphertext: could not decode base64")
    })?;
    Ok(Parsed { version, body })
}

fn decode_body(text: &str, alphabet: Alphabet) -> Option<Vec<u8>> {
    match alphabet {
        Alphabet::Standard => STANDARD.decode(text).ok(),
        // JWS signatures are unpadded URL-safe; accept a padded one too.
        Alphabet::UrlNoPad => URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(e: TransitError) -> String {
        e.to_string()
    }

    #[test]
    fn round_trips_in_both_alphabets() {
        for a in [Alphabet::Standard, Alphabet::UrlNoPad] {
            for body in [&b""[..], b"x", b"\xff\xfe\xfd\x00", &[7u8; 100]] {
                let t = encode(42, body, a);
                assert!(t.starts_with("vault:v42:"));
                assert_eq!(
                    parse("ciphertext", &t, a).unwrap(),
                    Parsed {
                        version: 42,
                        body: body.to_vec()
                    }
                );
            }
        }
        assert_eq!(encode(1, b"\xfb\xff", Alphabet::Standard), "vault:v1:+/8=");
        assert_eq!(encode(1, b"\xfb\xff", Alphabet::UrlNoPad), "vault:v1:-_8");
    }

    #[test]
    fn refuses_with_vaults_texts() {
        let cases = [
            ("", "invalid ciphertext: no prefix"),
            ("vault:1:abc", "invalid ciphertext: no prefix"),
            ("VAULT:v1:abc", "invalid ciphertext: no prefix"),
            ("vault:v1", "invalid ciphertext: wrong number of fields"),
            (
                "vault:v:abc",
                "invalid ciphertext: version number could not be decoded",
            ),
            (
                "vault:v+1:abc",
                "invalid ciphertext: version number could not be decoded",
            ),
            (
                "vault:v-1:abc",
                "invalid ciphertext: version number could not be decoded",
            ),
            (
                "vault:v4294967296:abc",
                "invalid ciphertext: version number could not be decoded",
            ),
            (
                "vault:v99999999999999999999:a",
                "invalid ciphertext: version number could not be decoded",
            ),
            (
                "vault:v1:***",
                "invalid ciphertext: could not decode base64",
            ),
            ("vault:v1:YQ", "invalid ciphertext: could not decode base64"),
        ];
        for (text, want) in cases {
            let e = parse("ciphertext", text, Alphabet::Standard).unwrap_err();
            assert_eq!(msg(e), format!("ciphertext: {want}"), "{text:?}");
        }
    }

    #[test]
    fn version_zero_reads_as_one_and_the_maximum_is_accepted() {
        assert_eq!(version_of("c", "vault:v0:").unwrap(), 1);
        assert_eq!(version_of("c", "vault:v4294967295:").unwrap(), u32::MAX);
        // The body may contain colons' absence only; a second colon is base64 garbage.
        assert!(parse("c", "vault:v1:YQ==:x", Alphabet::Standard).is_err());
    }
}
