//! Key types and hash names: native names (stored and shown by the native
//! API), Vault's names (accepted everywhere, shown by the facade) and what
//! each type can do. Invariant: a stored `type` always parses back.

use serde::{Deserialize, Serialize};

use super::error::TransitError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyType {
    #[serde(rename = "aes256-gcm")]
    Aes256Gcm,
    #[serde(rename = "xchacha20-poly1305")]
    XChaCha20Poly1305,
    #[serde(rename = "ed25519")]
    Ed25519,
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    #[serde(rename = "hmac-sha512")]
    HmacSha512,
}

pub const ALL_TYPES: [KeyType; 10] = [
    KeyType::Aes256Gcm,
    KeyType::XChaCha20Poly1305,
    KeyType::Ed25519,
    KeyType::EcdsaP256,
    KeyType::EcdsaP384,
    KeyType::Rsa2048,
    KeyType::Rsa3072,
    KeyType::Rsa4096,
    KeyType::HmacSha256,
    KeyType::HmacSha512,
];

impl KeyType {
    /// Native or Vault name → type. `hmac` is Vault's single HMAC type (32-byte key).
    pub fn parse(name: &str) -> Result<Self, TransitError> {
        Ok(match name {
            "aes256-gcm" | "aes256-gcm96" => Self::Aes256Gcm,
            "xchacha20-poly1305" | "chacha20-poly1305" => Self::XChaCha20Poly1305,
            "ed25519" => Self::Ed25519,
            "ecdsa-p256" => Self::EcdsaP256,
            "ecdsa-p384" => Self::EcdsaP384,
            "rsa-2048" => Self::Rsa2048,
            "rsa-3072" => Self::Rsa3072,
            "rsa-4096" => Self::Rsa4096,
            "hmac-sha256" | "hmac" => Self::HmacSha256,
            "hmac-sha512" => Self::HmacSha512,
            other => {
                return Err(TransitError::invalid(
                    "type",
                    format!("unknown key type {other:?}"),
                ));
            }
        })
    }

    pub fn native_name(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes256-gcm",
            Self::XChaCha20Poly1305 => "xchacha20-poly1305",
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha512 => "hmac-sha512",
        }
    }

    /// The name the Vault facade shows.
    pub fn vault_name(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes256-gcm96",
            Self::XChaCha20Poly1305 => "chacha20-poly1305",
            Self::HmacSha256 | Self::HmacSha512 => "hmac",
            other => other.native_name(),
        }
    }

    pub fn supports_encryption(self) -> bool {
        matches!(self, Self::Aes256Gcm | Self::XChaCha20Poly1305)
    }

    pub fn supports_signing(self) -> bool {
        matches!(
            self,
            Self::Ed25519
                | Self::EcdsaP256
                | Self::EcdsaP384
                | Self::Rsa2048
                | Self::Rsa3072
                | Self::Rsa4096
        )
    }

    /// Derivation with `context` is offered for these (as in Vault).
    pub fn supports_derivation(self) -> bool {
        matches!(
            self,
            Self::Aes256Gcm | Self::XChaCha20Poly1305 | Self::Ed25519
        )
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, Self::HmacSha256 | Self::HmacSha512)
    }

    /// The public-key types (their versions show a public key).
    pub fn is_asymmetric(self) -> bool {
        self.supports_signing()
    }
}

/// A digest named by `hash_algorithm`, `algorithm` or the URL's `{algo}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha3_256,
    Sha3_384,
    Sha3_512,
}

impl Hash {
    pub fn parse(field: &'static str, name: &str) -> Result<Self, TransitError> {
        Ok(match name {
            "sha2-224" => Self::Sha224,
            "sha2-256" => Self::Sha256,
            "sha2-384" => Self::Sha384,
            "sha2-512" => Self::Sha512,
            "sha3-256" => Self::Sha3_256,
            "sha3-384" => Self::Sha3_384,
            "sha3-512" => Self::Sha3_512,
            other => {
                return Err(TransitError::invalid(
                    field,
                    format!("unsupported hash algorithm {other:?}"),
                ));
            }
        })
    }

    pub fn digest_alg(self) -> &'static aws_lc_rs::digest::Algorithm {
        use aws_lc_rs::digest as d;
        match self {
            Self::Sha224 => &d::SHA224,
            Self::Sha256 => &d::SHA256,
            Self::Sha384 => &d::SHA384,
            Self::Sha512 => &d::SHA512,
            Self::Sha3_256 => &d::SHA3_256,
            Self::Sha3_384 => &d::SHA3_384,
            Self::Sha3_512 => &d::SHA3_512,
        }
    }

    /// HMAC over this digest; aws-lc-rs offers the SHA-2 family only.
    pub fn hmac_alg(self, field: &'static str) -> Result<aws_lc_rs::hmac::Algorithm, TransitError> {
        use aws_lc_rs::hmac as h;
        Ok(match self {
            Self::Sha224 => h::HMAC_SHA224,
            Self::Sha256 => h::HMAC_SHA256,
            Self::Sha384 => h::HMAC_SHA384,
            Self::Sha512 => h::HMAC_SHA512,
            _ => {
                return Err(TransitError::invalid(
                    field,
                    "unsupported algorithm for hmac (sha2-224, sha2-256, sha2-384, sha2-512)",
                ));
            }
        })
    }

    pub fn digest(self, data: &[u8]) -> aws_lc_rs::digest::Digest {
        aws_lc_rs::digest::digest(self.digest_alg(), data)
    }

    pub fn output_len(self) -> usize {
        self.digest_alg().output_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_by_both_names_and_through_serde() {
        for t in ALL_TYPES {
            assert_eq!(KeyType::parse(t.native_name()).unwrap(), t);
            if t != KeyType::HmacSha512 {
                assert_eq!(KeyType::parse(t.vault_name()).unwrap(), t);
            }
            let j = serde_json::to_string(&t).unwrap();
            assert_eq!(j, format!("\"{}\"", t.native_name()));
            assert_eq!(serde_json::from_str::<KeyType>(&j).unwrap(), t);
        }
        assert!(KeyType::parse("aes128-gcm96").is_err());
        assert!(KeyType::parse("ecdsa-p521").is_err());
    }

    #[test]
    fn hashes_have_their_lengths() {
        for (n, l) in [
            ("sha2-224", 28),
            ("sha2-256", 32),
            ("sha2-384", 48),
            ("sha2-512", 64),
            ("sha3-256", 32),
        ] {
            assert_eq!(Hash::parse("h", n).unwrap().output_len(), l);
        }
        assert!(Hash::parse("h", "md5").is_err());
        assert!(Hash::Sha3_256.hmac_alg("algorithm").is_err());
    }
}
