//! Certificate verification failures as sentences an operator can act on.
//!
//! rustls and webpki print several of their errors with `Debug`
//! (`CaUsedAsEndEntity`, `Other(OtherError(…))`); nothing that reaches an
//! operator goes through those. Invariant: [`describe`] never returns Rust
//! debug text: known failures get a sentence, any other is spelled as words.

use rustls::CertificateError as E;

/// What is wrong with a chain, without the `chain_pem:` prefix.
pub(crate) fn describe(e: &E) -> String {
    #[allow(deprecated)] // still produced by older webpki paths
    match e {
        E::BadEncoding => "a certificate in the chain is not valid DER/X.509".to_owned(),
        E::Revoked => "a certificate in the chain is revoked".to_owned(),
        E::UnhandledCriticalExtension => {
            "a certificate in the chain has a critical extension this verifier does not support"
                .to_owned()
        }
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext { .. }
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "a certificate in the chain is signed with an algorithm this verifier does not support"
                .to_owned()
        }
        E::InvalidPurpose | E::InvalidPurposeContext { .. } => {
            "the leaf certificate's extended key usage does not allow TLS server authentication"
                .to_owned()
        }
        E::NotValidForName | E::NotValidForNameContext { .. } => {
            "the leaf certificate is not valid for its own DNS names".to_owned()
        }
        E::Other(other) => webpki_problem(&other.to_string()),
        other => words(&other.to_string()),
    }
}

/// webpki's errors reach rustls as `Other`; their `Display` is their `Debug`.
fn webpki_problem(text: &str) -> String {
    let name = variant(text);
    match name {
        "CaUsedAsEndEntity" => "the first certificate is a CA certificate \
            (basic constraints CA:TRUE); put the server's own (leaf) certificate first, \
            then its intermediates"
            .to_owned(),
        "EndEntityUsedAsCa" => "a certificate after the first is not a CA \
            (no basic constraints CA:TRUE), so it cannot have issued the one before it; \
            put the leaf first, then its intermediates in order"
            .to_owned(),
        "PathLenConstraintViolated" => {
            "the chain is longer than a CA's path length constraint allows".to_owned()
        }
        "NameConstraintViolation" => {
            "a CA's name constraints do not allow the leaf's names".to_owned()
        }
        "MaximumPathDepthExceeded" | "MaximumPathBuildCallsExceeded" => {
            "the chain is too long to verify".to_owned()
        }
        "UnsupportedCertVersion" => "a certificate in the chain is not X.509 v3".to_owned(),
        "MissingOrMalformedExtensions" => {
            "a certificate in the chain has missing or malformed extensions".to_owned()
        }
        "ExtensionValueInvalid" => {
            "a certificate in the chain has an invalid extension value".to_owned()
        }
        "SignatureAlgorithmMismatch" => {
            "a certificate's signature algorithm does not match its issuer's key".to_owned()
        }
        "InvalidSerialNumber" => {
            "a certificate in the chain has an invalid serial number".to_owned()
        }
        _ => words(name),
    }
}

/// The leading identifier of a Debug rendering: `Foo(…)` / `Foo { … }` → `Foo`.
fn variant(text: &str) -> &str {
    let end = text
        .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .unwrap_or(text.len());
    &text[..end]
}

/// `SomeFailureName(…)` → `some failure name`: the last resort, still a phrase.
fn words(text: &str) -> String {
    let name = variant(text);
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() && !out.is_empty() {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    if out.is_empty() {
        "the chain does not verify".to_owned()
    } else {
        format!("the chain does not verify ({out})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum Fake {
        CaUsedAsEndEntity,
        SomeNewFailure(#[allow(dead_code)] u8),
    }
    impl std::fmt::Display for Fake {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }
    impl std::error::Error for Fake {}

    fn other(f: Fake) -> E {
        E::Other(rustls::OtherError(std::sync::Arc::new(f)))
    }

    #[test]
    fn no_debug_text_reaches_the_operator() {
        let ca = describe(&other(Fake::CaUsedAsEndEntity));
        assert!(ca.contains("is a CA certificate"), "{ca}");
        let new = describe(&other(Fake::SomeNewFailure(3)));
        assert_eq!(new, "the chain does not verify (some new failure)");
        for e in [
            E::BadEncoding,
            E::Revoked,
            E::UnknownRevocationStatus,
            E::ApplicationVerificationFailure,
            other(Fake::CaUsedAsEndEntity),
        ] {
            let s = describe(&e);
            // Debug text: braces, quotes, or a CamelCase identifier.
            let camel = s.split(|c: char| !c.is_ascii_alphabetic()).any(|w| {
                w.as_bytes()
                    .windows(2)
                    .any(|p| p[0].is_ascii_lowercase() && p[1].is_ascii_uppercase())
            });
            assert!(!camel && !s.contains(['{', '"']), "{s}");
            assert!(s.chars().next().is_some_and(|c| c.is_lowercase()), "{s}");
        }
    }
}
