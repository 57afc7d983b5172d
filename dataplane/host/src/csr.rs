//! Keys and CSRs for MC-Proxy's managed certificates, made on this host
//! (the proxy engine links no certificate generator; it gets this function
//! as its [`mc_proxy::admin::CsrMaker`]).
//!
//! Invariant: the private key leaves only as the zeroizing PEM handed to
//! the proxy, which seals it into its store.

use zeroize::Zeroizing;

/// A fresh ECDSA P-256 key (PKCS#8 PEM) and a CSR for `names` (the first is
/// the common name), signed by it.
pub(crate) fn key_and_csr(names: &[String]) -> Result<(Zeroizing<String>, String), String> {
    let key = rcgen::KeyPair::generate().map_err(|e| format!("generating a key: {e}"))?;
    let mut params =
        rcgen::CertificateParams::new(names.to_vec()).map_err(|e| format!("CSR names: {e}"))?;
    if let Some(cn) = names.first() {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn.as_str());
    }
    let csr = params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(|e| format!("signing the CSR: {e}"))?;
    Ok((Zeroizing::new(key.serialize_pem()), csr))
}

#[cfg(test)]
mod tests {
    use super::key_and_csr;

    #[test]
    fn a_new_p256_key_and_a_csr_each_time() {
        let names = vec!["app.test".to_owned(), "*.app.test".to_owned()];
        let (key, csr) = key_and_csr(&names).expect("csr");
        assert!(
            csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
            "{csr}"
        );
        let pair = rcgen::KeyPair::from_pem(&key).expect("the key parses");
        assert!(pair.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256));
        let (key2, csr2) = key_and_csr(&names).expect("csr");
        assert_ne!(*key, *key2);
        assert_ne!(csr, csr2);
    }
}
