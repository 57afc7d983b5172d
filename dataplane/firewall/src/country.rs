//! ISO 3166-1 alpha-2 country codes.
//!
//! A [`CountryCode`] is always one of the officially assigned codes in
//! [`ISO_3166_1_ALPHA2`], stored upper-case. Input of any case is accepted and
//! normalized (`"fr"` and `"Fr"` become `FR`); anything that is not two ASCII
//! letters, or two letters that are not an assigned code (`"EU"`, `"XK"`,
//! `"ZZ"`), is refused with an error naming the input.

use std::fmt;
use std::str::FromStr;

use crate::error::RuleError;

#[cfg(test)]
mod tests;

/// The 249 officially assigned ISO 3166-1 alpha-2 codes, sorted, as published
/// by the ISO 3166 Maintenance Agency (same set as Debian's `iso-codes`).
///
/// Exceptionally reserved and user-assigned codes (`EU`, `UK`, `XK`, `AP`,
/// `A1`…) are deliberately absent.
pub const ISO_3166_1_ALPHA2: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// A validated ISO 3166-1 alpha-2 country code, upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Parses a code of any case; `"us"` and `"US"` both give `US`.
    ///
    /// # Errors
    /// [`RuleError::CountryFormat`] unless the input is exactly two ASCII
    /// letters; [`RuleError::CountryUnknown`] if the letters are not an
    /// assigned ISO 3166-1 alpha-2 code.
    pub fn parse(input: &str) -> Result<Self, RuleError> {
        let &[a, b] = input.as_bytes() else {
            return Err(RuleError::CountryFormat {
                input: input.to_owned(),
            });
        };
        if !a.is_ascii_alphabetic() || !b.is_ascii_alphabetic() {
            return Err(RuleError::CountryFormat {
                input: input.to_owned(),
            });
        }
        let code = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
        if ISO_3166_1_ALPHA2
            .binary_search_by(|probe| probe.as_bytes().cmp(&code[..]))
            .is_err()
        {
            return Err(RuleError::CountryUnknown {
                input: input.to_owned(),
            });
        }
        Ok(Self(code))
    }

    /// The code as an upper-case `&str` (`"FR"`).
    pub fn as_str(&self) -> &str {
        // Always two ASCII upper-case letters (checked in `parse`).
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// The two upper-case ASCII bytes.
    pub fn as_bytes(&self) -> [u8; 2] {
        self.0
    }

    /// A dense index in `0..676` (`AA` = 0, `ZZ` = 675), for bitmaps.
    pub(crate) fn index(self) -> usize {
        usize::from(self.0[0] - b'A') * 26 + usize::from(self.0[1] - b'A')
    }
}

impl FromStr for CountryCode {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for CountryCode {
    type Error = RuleError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fixed set of countries as a 676-bit bitmap (no allocation, O(1) test).
#[derive(Debug, Clone, Default)]
pub(crate) struct CountrySet([u64; 11]);

impl CountrySet {
    pub(crate) fn insert(&mut self, code: CountryCode) {
        let i = code.index();
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub(crate) fn contains(&self, code: CountryCode) -> bool {
        let i = code.index();
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
}
