//! Request field types with Vault's leniency: base64 inputs decoded per item
//! (so one bad item in a batch fails alone, naming its field), numbers and
//! booleans also accepted as strings (Vault's form decoding does), periods
//! as seconds or `90s`/`15m`/`24h`/`7d`.
//!
//! Invariant: deserializing never decodes key material and never fails on a
//! malformed base64 value; the operation reports it as a 400 for that field.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use super::error::TransitError;

/// A bytes field: base64 text from JSON, raw bytes from gRPC.
#[derive(Clone, PartialEq, Eq)]
pub enum Input {
    Text(Zeroizing<String>),
    Bytes(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Input(..)")
    }
}

impl Input {
    pub fn text(s: impl Into<String>) -> Self {
        Self::Text(Zeroizing::new(s.into()))
    }

    pub fn bytes(b: impl Into<Vec<u8>>) -> Self {
        Self::Bytes(Zeroizing::new(b.into()))
    }

    /// The bytes, or a 400 naming `field`.
    pub fn decode(&self, field: &'static str) -> Result<Cow<'_, [u8]>, TransitError> {
        match self {
            Self::Bytes(b) => Ok(Cow::Borrowed(b.as_slice())),
            Self::Text(t) => STANDARD
                .decode(t.as_bytes())
                .map(Cow::Owned)
                .map_err(|_| TransitError::invalid(field, "not base64")),
        }
    }
}

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::Text(Zeroizing::new(String::deserialize(d)?)))
    }
}

/// An optional field: its bytes when present, `None` when absent or empty
/// (Vault treats an empty `context` or `associated_data` as absent).
pub(crate) fn opt_bytes<'a>(
    v: &'a Option<Input>,
    field: &'static str,
) -> Result<Option<Cow<'a, [u8]>>, TransitError> {
    match v {
        None => Ok(None),
        Some(i) => {
            let b = i.decode(field)?;
            Ok(if b.is_empty() { None } else { Some(b) })
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Num(u64),
    Bool(bool),
    Text(String),
}

/// `Option<u32>` from a number or a numeric string.
pub fn flexible_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error;
    match Option::<NumOrText>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrText::Num(n)) => u32::try_from(n)
            .map(Some)
            .map_err(|_| D::Error::custom("number too large")),
        Some(NumOrText::Text(t)) if t.is_empty() => Ok(None),
        Some(NumOrText::Text(t)) => t
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom("not a number")),
        Some(NumOrText::Bool(_)) => Err(D::Error::custom("not a number")),
    }
}

/// `Option<bool>` from a boolean or `"true"`/`"false"`.
pub fn flexible_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    use serde::de::Error;
    match Option::<NumOrText>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrText::Bool(b)) => Ok(Some(b)),
        Some(NumOrText::Text(t)) => match t.as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" | "" => Ok(Some(false)),
            _ => Err(D::Error::custom("not a boolean")),
        },
        Some(NumOrText::Num(n)) => Ok(Some(n != 0)),
    }
}

/// A duration as Vault takes it: seconds, or a number with `s`, `m`, `h` or `d`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Period {
    Seconds(u64),
    Text(String),
}

impl Period {
    pub fn seconds(&self, field: &'static str) -> Result<u64, TransitError> {
        let t = match self {
            Self::Seconds(s) => return Ok(*s),
            Self::Text(t) => t.trim(),
        };
        let bad =
            || TransitError::invalid(field, "not a duration (seconds, or e.g. 90s, 15m, 24h, 7d)");
        if t.is_empty() {
            return Ok(0);
        }
        let (num, mult) = match t.as_bytes()[t.len() - 1] {
            b's' => (&t[..t.len() - 1], 1),
            b'm' => (&t[..t.len() - 1], 60),
            b'h' => (&t[..t.len() - 1], 3600),
            b'd' => (&t[..t.len() - 1], 86_400),
            _ => (t, 1),
        };
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        num.parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "flexible_u32")]
        n: Option<u32>,
        #[serde(default, deserialize_with = "flexible_bool")]
        b: Option<bool>,
        #[serde(default)]
        p: Option<Period>,
        #[serde(default)]
        i: Option<Input>,
    }

    #[test]
    fn lenient_fields() {
        let t: T = serde_json::from_str(r#"{"n":"7","b":"true","p":"24h","i":"!!"}"#).unwrap();
        assert_eq!(t.n, Some(7));
        assert_eq!(t.b, Some(true));
        assert_eq!(t.p.unwrap().seconds("p").unwrap(), 86_400);
        assert_eq!(
            t.i.unwrap().decode("plaintext").unwrap_err().to_string(),
            "plaintext: not base64"
        );
        let t: T = serde_json::from_str(r#"{"n":3,"b":false,"p":3600}"#).unwrap();
        assert_eq!((t.n, t.b), (Some(3), Some(false)));
        assert_eq!(t.p.unwrap().seconds("p").unwrap(), 3600);
        assert!(serde_json::from_str::<T>(r#"{"n":"x"}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"n":4294967296}"#).is_err());
        for bad in ["h", "1x", "-1h", "99999999999999999999d"] {
            assert!(Period::Text(bad.into()).seconds("p").is_err(), "{bad}");
        }
        assert_eq!(Period::Text("15m".into()).seconds("p").unwrap(), 900);
    }
}
