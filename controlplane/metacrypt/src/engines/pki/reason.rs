//! RFC 5280 revocation reasons (CRLReason, §5.3.1) as the engine takes them:
//! a code or a name in, the name out (docs/design/pki.md §Revocation).
//!
//! Invariant: only the reasons a final, full-CRL revocation can mean exist
//! as values: `certificateHold` (6, nothing is ever released),
//! `removeFromCRL` (8, delta CRLs only), 7 (unassigned) and codes above 10
//! are refused when decoded, so no stored row, CRL entry or OCSP answer can
//! carry them.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::model::NumOrText;

/// A revocation reason the engine accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reason {
    #[default]
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    PrivilegeWithdrawn,
    AaCompromise,
}

const ALL: [Reason; 8] = [
    Reason::Unspecified,
    Reason::KeyCompromise,
    Reason::CaCompromise,
    Reason::AffiliationChanged,
    Reason::Superseded,
    Reason::CessationOfOperation,
    Reason::PrivilegeWithdrawn,
    Reason::AaCompromise,
];

/// What the refusals say: the accepted codes and names.
const ACCEPTED: &str = "0 unspecified, 1 keyCompromise, 2 cACompromise, 3 affiliationChanged, \
                        4 superseded, 5 cessationOfOperation, 9 privilegeWithdrawn, 10 aACompromise";

impl Reason {
    /// The RFC 5280 code.
    pub fn code(self) -> u8 {
        match self {
            Reason::Unspecified => 0,
            Reason::KeyCompromise => 1,
            Reason::CaCompromise => 2,
            Reason::AffiliationChanged => 3,
            Reason::Superseded => 4,
            Reason::CessationOfOperation => 5,
            Reason::PrivilegeWithdrawn => 9,
            Reason::AaCompromise => 10,
        }
    }

    /// The RFC 5280 name.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Unspecified => "unspecified",
            Reason::KeyCompromise => "keyCompromise",
            Reason::CaCompromise => "cACompromise",
            Reason::AffiliationChanged => "affiliationChanged",
            Reason::Superseded => "superseded",
            Reason::CessationOfOperation => "cessationOfOperation",
            Reason::PrivilegeWithdrawn => "privilegeWithdrawn",
            Reason::AaCompromise => "aACompromise",
        }
    }

    /// A code; the refusal says why and what is accepted.
    pub fn from_code(code: u64) -> Result<Reason, String> {
        if let Some(r) = ALL.iter().find(|r| u64::from(r.code()) == code) {
            return Ok(*r);
        }
        Err(match code {
            6 => format!(
                "reason 6 (certificateHold) is not supported: a revocation is final; use one of {ACCEPTED}"
            ),
            8 => format!(
                "reason 8 (removeFromCRL) belongs to delta CRLs, which are not served; use one of {ACCEPTED}"
            ),
            n => format!("reason {n} is not an RFC 5280 revocation reason; use one of {ACCEPTED}"),
        })
    }

    /// A name (case-insensitive) or a code in decimal.
    pub fn from_text(text: &str) -> Result<Reason, String> {
        if let Ok(n) = text.parse::<u64>() {
            return Self::from_code(n);
        }
        if let Some(r) = ALL.iter().find(|r| r.name().eq_ignore_ascii_case(text)) {
            return Ok(*r);
        }
        match text.to_ascii_lowercase().as_str() {
            "certificatehold" => Self::from_code(6),
            "removefromcrl" => Self::from_code(8),
            _ => Err(format!(
                "reason {text:?} is not an RFC 5280 revocation reason; use one of {ACCEPTED}"
            )),
        }
    }

    /// The CRL entry's reasonCode; absent for `unspecified` (RFC 5280 §5.3.1).
    pub(crate) fn crl_code(self) -> Option<rcgen::RevocationReason> {
        use rcgen::RevocationReason as R;
        match self {
            Reason::Unspecified => None,
            Reason::KeyCompromise => Some(R::KeyCompromise),
            Reason::CaCompromise => Some(R::CaCompromise),
            Reason::AffiliationChanged => Some(R::AffiliationChanged),
            Reason::Superseded => Some(R::Superseded),
            Reason::CessationOfOperation => Some(R::CessationOfOperation),
            Reason::PrivilegeWithdrawn => Some(R::PrivilegeWithdrawn),
            Reason::AaCompromise => Some(R::AaCompromise),
        }
    }

    /// OCSP's revocationReason.
    pub(crate) fn ocsp(self) -> ocsp_x509::ext::pkix::CrlReason {
        use ocsp_x509::ext::pkix::CrlReason as R;
        match self {
            Reason::Unspecified => R::Unspecified,
            Reason::KeyCompromise => R::KeyCompromise,
            Reason::CaCompromise => R::CaCompromise,
            Reason::AffiliationChanged => R::AffiliationChanged,
            Reason::Superseded => R::Superseded,
            Reason::CessationOfOperation => R::CessationOfOperation,
            Reason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
            Reason::AaCompromise => R::AaCompromise,
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Reason, D::Error> {
        match NumOrText::deserialize(d)? {
            NumOrText::N(n) => Reason::from_code(n),
            NumOrText::S(s) => Reason::from_text(&s),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for r in ALL {
            assert_eq!(Reason::from_code(u64::from(r.code())), Ok(r));
            assert_eq!(Reason::from_text(r.name()), Ok(r));
            assert_eq!(Reason::from_text(&r.name().to_uppercase()), Ok(r));
            let json = serde_json::to_string(&r).expect("json");
            assert_eq!(serde_json::from_str::<Reason>(&json).expect("back"), r);
            assert_eq!(
                serde_json::from_str::<Reason>(&r.code().to_string()).expect("code"),
                r
            );
        }
    }

    #[test]
    fn hold_remove_unassigned_and_large_codes_are_refused_with_why() {
        let e = Reason::from_code(6).expect_err("hold");
        assert!(e.contains("certificateHold") && e.contains("final"), "{e}");
        let e = Reason::from_text("certificateHold").expect_err("hold");
        assert!(e.contains("not supported"), "{e}");
        let e = Reason::from_code(8).expect_err("remove");
        assert!(e.contains("delta"), "{e}");
        for n in [7, 11, 255, u64::MAX] {
            let e = Reason::from_code(n).expect_err("refused");
            assert!(e.contains("not an RFC 5280"), "{e}");
        }
        assert!(Reason::from_text("compromised").is_err());
        assert!(serde_json::from_str::<Reason>("7").is_err());
        assert!(serde_json::from_str::<Reason>("-1").is_err());
    }

    #[test]
    fn unspecified_has_no_crl_reason_code() {
        assert_eq!(Reason::Unspecified.crl_code(), None);
        assert_eq!(
            Reason::KeyCompromise.crl_code(),
            Some(rcgen::RevocationReason::KeyCompromise)
        );
    }
}
