//! Client certificates on L7 routes: the verifier a route's TLS
//! configuration uses, and the identity header its backends get.
//!
//! Invariant: the identity a backend sees in `X-Forwarded-Client-Cert` is
//! only ever the certificate this proxy verified on the connection; the
//! header a client sends is always removed (`worker::l7::forward`). The
//! format is Envoy's (`Hash=…;Subject="…";DNS=…;URI=…`), each value
//! escaped so that it cannot end its field or the header.

use std::fmt::Write;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::CertificateDer;

use crate::model::ClientAuth;

pub(crate) static HEADER: http::HeaderName =
    http::HeaderName::from_static("x-forwarded-client-cert");

/// The verifier for a route's client certificates.
pub(crate) fn verifier(auth: &ClientAuth) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let roots = crate::tls::parse_roots(auth.ca_pem.as_bytes())?;
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crate::tls::provider());
    let builder = if auth.optional {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    builder.build().map_err(|e| e.to_string())
}

/// The header value naming a verified client certificate (the leaf).
pub(crate) fn identity(leaf: &CertificateDer<'_>) -> Option<http::HeaderValue> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(leaf).ok()?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf);
    let mut v = String::from("Hash=");
    for b in digest.as_ref() {
        let _ = write!(v, "{b:02x}");
    }
    v.push_str(";Subject=\"");
    escape_into(&mut v, &cert.subject().to_string());
    v.push('"');
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            let (key, value) = match n {
                GeneralName::DNSName(d) => ("DNS", *d),
                GeneralName::URI(u) => ("URI", *u),
                GeneralName::RFC822Name(e) => ("Email", *e),
                _ => continue,
            };
            v.push(';');
            v.push_str(key);
            v.push_str("=\"");
            escape_into(&mut v, value);
            v.push('"');
        }
    }
    http::HeaderValue::try_from(v).ok()
}

/// `"` and `\` escaped with `\`; bytes outside visible ASCII and space as
/// `%XX`, so a value stays inside its quotes and the header stays valid.
fn escape_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            b' '..=b'~' => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_names_the_hash_subject_and_sans_escaped() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p =
            rcgen::CertificateParams::new(vec!["client.example".to_owned()]).expect("params");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "tricky\";DNS=evil \u{e9}");
        p.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://test/client".try_into().expect("uri"),
        ));
        let cert = p.self_signed(&key).expect("cert");
        let v = identity(cert.der()).expect("identity");
        let s = v.to_str().expect("visible ASCII");
        assert!(s.starts_with("Hash=") && s.len() > 5 + 64, "{s}");
        assert!(
            s.contains(r#"Subject="CN=tricky\";DNS=evil %C3%A9""#),
            "{s}"
        );
        assert!(s.contains(r#";DNS="client.example""#), "{s}");
        assert!(s.contains(r#";URI="spiffe://test/client""#), "{s}");
        assert_eq!(
            s.matches(";DNS=").count(),
            2,
            "one real SAN, one escaped in the subject: {s}"
        );
    }

    #[test]
    fn verifier_requires_or_requests() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = p.self_signed(&key).expect("ca");
        let mut auth = ClientAuth {
            ca_pem: ca.pem(),
            optional: false,
        };
        assert!(verifier(&auth).expect("verifier").client_auth_mandatory());
        auth.optional = true;
        assert!(!verifier(&auth).expect("verifier").client_auth_mandatory());
        auth.ca_pem = "nope".into();
        assert!(verifier(&auth).is_err());
    }
}
