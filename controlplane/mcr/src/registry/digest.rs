//! Digests (`sha256:<64 hex>` | `sha512:<128 hex>`) and the streaming hasher
//! behind upload verification.
//!
//! Invariant: a [`Digest`] is always canonical (known algorithm, lowercase
//! hex of the algorithm's exact length), so its string form is a safe file
//! name component and table key. Parsing is pure and fuzzed.

use std::fmt;

/// A supported digest algorithm.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }

    fn ring(self) -> &'static aws_lc_rs::digest::Algorithm {
        match self {
            Self::Sha256 => &aws_lc_rs::digest::SHA256,
            Self::Sha512 => &aws_lc_rs::digest::SHA512,
        }
    }
}

/// A validated digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    alg: Algorithm,
    hex: String,
}

/// Why a string is not a digest we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("not of the form <algorithm>:<hex>")]
    Malformed,
    #[error("unsupported digest algorithm (sha256 and sha512 are)")]
    Unsupported,
    #[error("the hex part must be {0} lowercase hex characters")]
    BadHex(usize),
}

impl Digest {
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let (alg, hex) = s.split_once(':').ok_or(DigestError::Malformed)?;
        // The spec's grammar: algorithm-component [+._-] ...; anything that
        // fits it but is not ours is "unsupported", the rest "malformed".
        if alg.is_empty()
            || !alg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
        {
            return Err(DigestError::Malformed);
        }
        let alg = Algorithm::parse(alg).ok_or(DigestError::Unsupported)?;
        if hex.len() != alg.hex_len()
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::BadHex(alg.hex_len()));
        }
        Ok(Self {
            alg,
            hex: hex.to_owned(),
        })
    }

    /// The digest of `bytes` with `alg`.
    pub fn of(alg: Algorithm, bytes: &[u8]) -> Self {
        let mut h = Hasher::new(alg);
        h.update(bytes);
        h.finish()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.alg.name(), self.hex)
    }
}

/// An incremental hasher; cloning it snapshots the state (a chunk is hashed
/// into a clone that replaces the original only when the chunk is kept).
#[derive(Clone)]
pub struct Hasher {
    alg: Algorithm,
    ctx: aws_lc_rs::digest::Context,
}

impl Hasher {
    pub fn new(alg: Algorithm) -> Self {
        Self {
            alg,
            ctx: aws_lc_rs::digest::Context::new(alg.ring()),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.ctx.update(bytes);
    }

    pub fn finish(self) -> Digest {
        let d = self.ctx.finish();
        let mut hex = String::with_capacity(d.as_ref().len() * 2);
        for b in d.as_ref() {
            hex.push_str(&format!("{b:02x}"));
        }
        Digest { alg: self.alg, hex }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_canonical_digests_only() {
        let d = Digest::of(Algorithm::Sha256, b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()), Ok(d));
        let d512 = Digest::of(Algorithm::Sha512, b"abc");
        assert!(d512.to_string().starts_with("sha512:ddaf35a193617aba"));
        assert_eq!(Digest::parse(&d512.to_string()), Ok(d512));
        assert_eq!(Digest::parse("sha256"), Err(DigestError::Malformed));
        assert_eq!(Digest::parse(":abc"), Err(DigestError::Malformed));
        assert_eq!(Digest::parse("md5:abc"), Err(DigestError::Unsupported));
        assert_eq!(Digest::parse("SHA256:00"), Err(DigestError::Malformed));
        assert_eq!(Digest::parse("sha256:00"), Err(DigestError::BadHex(64)));
        let upper = format!("sha256:{}", "A".repeat(64));
        assert_eq!(Digest::parse(&upper), Err(DigestError::BadHex(64)));
        let sha512_short = format!("sha512:{}", "a".repeat(64));
        assert_eq!(Digest::parse(&sha512_short), Err(DigestError::BadHex(128)));
    }

    #[test]
    fn a_cloned_hasher_is_a_snapshot() {
        let mut a = Hasher::new(Algorithm::Sha256);
        a.update(b"ab");
        let mut b = a.clone();
        b.update(b"c");
        a.update(b"c");
        assert_eq!(a.finish(), Digest::of(Algorithm::Sha256, b"abc"));
        assert_eq!(b.finish(), Digest::of(Algorithm::Sha256, b"abc"));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in "\\PC{0,140}") {
            if let Ok(d) = Digest::parse(&s) {
                proptest::prop_assert_eq!(d.to_string(), s);
            }
        }
    }
}
