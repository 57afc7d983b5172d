//! Certificates and TLS configurations for L7 routes.
//!
//! A certificate is checked once, when it is stored (admin API or config
//! file): the chain parses, the key matches the leaf, and the chain verifies
//! up to a trusted CA — so a leaf uploaded without its intermediate is
//! refused then, not discovered by clients later. Keys are kept sealed
//! (AES-256-GCM under a per-node key file) in redb and held parsed in memory
//! as rustls `CertifiedKey`s; a snapshot only clones `Arc`s.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mc_kit::seal::{KeyFileSealer, Sealer as _};
use rustls::RootCertStore;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::model::{ClientAuth, MinTls, Origin};

pub(crate) const MAX_CHAIN_PEM: usize = 64 * 1024;
pub(crate) const MAX_KEY_PEM: usize = 16 * 1024;
const MAX_CHAIN_LEN: usize = 8;

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// What the admin API shows of a certificate (parsed from the leaf).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CertificateInfo {
    pub(crate) dns_names: Vec<String>,
    pub(crate) not_before_unix: i64,
    pub(crate) not_after_unix: i64,
    pub(crate) key_algorithm: String,
    pub(crate) sha256_fingerprint: String,
}

/// A certificate as stored in redb: the key only sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredCertificate {
    pub(crate) name: String,
    pub(crate) chain_pem: String,
    /// The key PEM sealed by [`Sealer`] (bound to this name), as hex.
    pub(crate) key_sealed: String,
    pub(crate) info: CertificateInfo,
    pub(crate) origin: Origin,
}

/// A checked certificate, ready to serve.
#[derive(Debug, Clone)]
pub(crate) struct LoadedCertificate {
    pub(crate) stored: StoredCertificate,
    pub(crate) key: Arc<CertifiedKey>,
}

/// PEM bundle → trust anchors.
pub(crate) fn parse_roots(pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("unusable CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no certificate in the PEM bundle".to_owned());
    }
    Ok(roots)
}

/// Trust anchors from PEM files; missing files are an error.
pub(crate) fn load_roots(files: &[PathBuf]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for f in files {
        let pem = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let more = parse_roots(&pem).map_err(|e| format!("{}: {e}", f.display()))?;
        roots.roots.extend(more.roots);
    }
    Ok(roots)
}

/// Checks a chain and key for upload; `anchors` are the CAs a chain may end at.
pub(crate) fn check(
    name: &str,
    chain_pem: &str,
    key_pem: &str,
    anchors: &RootCertStore,
    now: UnixTime,
) -> Result<(Arc<CertifiedKey>, CertificateInfo), String> {
    let (certified, info) = parse_pair(chain_pem, key_pem)?;
    verify_chain(name, &certified.cert, &info, anchors, &provider(), now)?;
    Ok((certified, info))
}

/// Parses a stored pair again at start (no chain verification: a certificate
/// that expired while stored must not stop the node; clients will say so).
pub(crate) fn load_stored(
    stored: StoredCertificate,
    sealer: &Sealer,
) -> Result<LoadedCertificate, String> {
    let key_pem = sealer.open_sealed(&stored.name, &stored.key_sealed)?;
    let key_pem = std::str::from_utf8(&key_pem).map_err(|_| "sealed key is not PEM".to_owned())?;
    let (key, _) = parse_pair(&stored.chain_pem, key_pem)
        .map_err(|e| format!("certificate `{}`: {e}", stored.name))?;
    Ok(LoadedCertificate { stored, key })
}

/// Parses a chain and its key and checks that they belong together.
fn parse_pair(
    chain_pem: &str,
    key_pem: &str,
) -> Result<(Arc<CertifiedKey>, CertificateInfo), String> {
    if chain_pem.len() > MAX_CHAIN_PEM {
        return Err(format!("chain_pem: at most {MAX_CHAIN_PEM} bytes"));
    }
    if key_pem.len() > MAX_KEY_PEM {
        return Err(format!("key_pem: at most {MAX_KEY_PEM} bytes"));
    }
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("chain_pem: not PEM certificates: {e}"))?;
    if chain.is_empty() {
        return Err(
            "chain_pem: no certificate found (expected the leaf first, then intermediates)"
                .to_owned(),
        );
    }
    if chain.len() > MAX_CHAIN_LEN {
        return Err(format!("chain_pem: at most {MAX_CHAIN_LEN} certificates"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("key_pem: not a PKCS#8, SEC1 or PKCS#1 PEM private key: {e}"))?;
    let provider = provider();
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("key_pem: unsupported key: {e}"))?;
    let certified = CertifiedKey::new(chain.clone(), signer);
    certified.keys_match().map_err(|_| {
        "key_pem: the private key does not match the leaf certificate (the first in chain_pem)"
            .to_owned()
    })?;
    let info = describe(&chain)?;
    Ok((Arc::new(certified), info))
}

fn describe(chain: &[CertificateDer<'_>]) -> Result<CertificateInfo, String> {
    use x509_parser::prelude::*;
    let leaf = chain.first().ok_or("chain_pem: empty")?;
    let (_, cert) = X509Certificate::from_der(leaf)
        .map_err(|e| format!("chain_pem: the leaf does not parse as X.509: {e}"))?;
    let mut dns_names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => dns_names.push(d.to_ascii_lowercase()),
                GeneralName::IPAddress(b) => {
                    if let Ok(a) = <[u8; 4]>::try_from(*b) {
                        dns_names.push(std::net::IpAddr::from(a).to_string());
                    } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                        dns_names.push(std::net::IpAddr::from(a).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let spki = cert.public_key();
    let key_algorithm = match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(k)) => format!("rsa-{}", k.key_size()),
        Ok(x509_parser::public_key::PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ecdsa-p256".to_owned(),
                Some("1.3.132.0.34") => "ecdsa-p384".to_owned(),
                Some("1.3.132.0.35") => "ecdsa-p521".to_owned(),
                _ => "ecdsa".to_owned(),
            }
        }
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => "ed25519".to_owned(),
        _ => spki.algorithm.algorithm.to_id_string(),
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf);
    let mut fp = String::with_capacity(64);
    for b in digest.as_ref() {
        let _ = write!(fp, "{b:02x}");
    }
    Ok(CertificateInfo {
        dns_names,
        not_before_unix: cert.validity().not_before.timestamp(),
        not_after_unix: cert.validity().not_after.timestamp(),
        key_algorithm,
        sha256_fingerprint: fp,
    })
}

/// Verifies that the chain leads to a trusted CA, the way a client will.
fn verify_chain(
    name: &str,
    chain: &[CertificateDer<'static>],
    info: &CertificateInfo,
    anchors: &RootCertStore,
    provider: &Arc<CryptoProvider>,
    now: UnixTime,
) -> Result<(), String> {
    use x509_parser::prelude::*;
    let (leaf, intermediates) = chain.split_first().ok_or("chain_pem: empty")?;
    // Only the configured CAs are anchors: a self-signed certificate at the
    // end of the supplied chain is anyone's to make, so it proves nothing.
    let roots = anchors.clone();
    let mut last_issuer = String::new();
    let mut last_self_signed = false;
    // A configured CA carries the name the chain's last certificate names as
    // its issuer, yet did not sign it: another key under the same name.
    let mut issuer_name_trusted = false;
    if let Some(last) = chain.last()
        && let Ok((_, c)) = X509Certificate::from_der(last)
    {
        last_issuer = c.issuer().to_string();
        last_self_signed = c.issuer() == c.subject();
        let issuer = der_contents(c.issuer().as_raw());
        issuer_name_trusted = roots.roots.iter().any(|a| a.subject.as_ref() == issuer);
    }
    if roots.is_empty() {
        return Err("no certificate authorities are configured to verify chains against (proxy.certificate_authorities)".to_owned());
    }
    let probe = info
        .dns_names
        .first()
        .map(|d| d.replacen("*.", "wildcard-probe.", 1))
        .ok_or("chain_pem: the leaf has no DNS names (subjectAltName)")?;
    let server_name = ServerName::try_from(probe.clone())
        .map_err(|_| format!("chain_pem: `{probe}` is not a usable name"))?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("cannot build a verifier: {e}"))?;
    match verifier.verify_server_cert(leaf, intermediates, &server_name, &[], now) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InvalidCertificate(e)) => Err(match e {
            rustls::CertificateError::UnknownIssuer if last_self_signed => format!(
                "chain_pem for `{name}` ends in the self-signed certificate `{last_issuer}`, which is not one of the configured certificate authorities (proxy.certificate_authorities); add that CA there to trust it"
            ),
            rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature
                if issuer_name_trusted =>
            {
                format!(
                "chain_pem for `{name}` names `{last_issuer}` as its issuer, and a configured certificate authority has that name but did not sign it (a CA re-created with a new key? reissue the certificate from the CA in proxy.certificate_authorities)"
                )
            }
            // Nothing here tells an intermediate from a root: say both.
            rustls::CertificateError::UnknownIssuer => format!(
                "chain_pem for `{name}` does not lead to a trusted CA: its last certificate was issued by `{last_issuer}`, which is neither in the chain nor one of the configured certificate authorities (proxy.certificate_authorities). If `{last_issuer}` is an intermediate CA, append its certificate to the chain (leaf first); if it is a root CA, add it to proxy.certificate_authorities"
            ),
            rustls::CertificateError::BadSignature => {
                "chain_pem: a certificate is not signed by the one after it (wrong order or mixed chains?)".to_owned()
            }
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. } => {
                "chain_pem: a certificate in the chain has expired".to_owned()
            }
            rustls::CertificateError::NotValidYet
            | rustls::CertificateError::NotValidYetContext { .. } => {
                "chain_pem: a certificate in the chain is not valid yet".to_owned()
            }
            other => format!("chain_pem: {}", crate::cert_problem::describe(&other)),
        }),
        Err(e) => Err(format!("chain_pem: the chain does not verify: {e}")),
    }
}

/// The contents of a DER SEQUENCE (what a trust anchor keeps of its
/// subject); the whole input when it is not a well-formed SEQUENCE header.
fn der_contents(der: &[u8]) -> &[u8] {
    let header = match der.get(1) {
        Some(&l) if l < 0x80 => 2,
        Some(&l) => 2 + usize::from(l & 0x7f),
        None => return der,
    };
    match der.first() {
        Some(0x30) => der.get(header..).unwrap_or(der),
        _ => der,
    }
}

/// The key file beside the store; `mcd snapshot` carries it with the store.
pub(crate) const SEAL_KEY_FILE: &str = "cert-seal.key";

/// The table sealed private keys live in: with the certificate's name, the
/// location a sealed key is bound to.
const SEALED_IN: &str = "certificates";

/// Seals private keys at rest with the node's key in `<dir>/cert-seal.key`
/// (0600), through the kit's [`KeyFileSealer`]: a sealed key opens only in
/// its own row. Keys sealed before that format (AAD = the certificate name)
/// still open.
pub(crate) struct Sealer(KeyFileSealer);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    pub(crate) fn open(dir: &Path) -> Result<Self, String> {
        KeyFileSealer::load_or_create(&dir.join(SEAL_KEY_FILE))
            .map(Self)
            .map_err(|e| e.to_string())
    }

    /// The sealed key, as hex (the stored form).
    pub(crate) fn seal(&self, name: &str, plain: &[u8]) -> Result<String, String> {
        let sealed = self
            .0
            .seal(SEALED_IN, name.as_bytes(), plain)
            .map_err(|e| e.to_string())?;
        let mut out = String::with_capacity(sealed.len() * 2);
        for b in &sealed {
            let _ = write!(out, "{b:02x}");
        }
        Ok(out)
    }

    pub(crate) fn open_sealed(
        &self,
        name: &str,
        sealed: &str,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        let bytes = (0..sealed.len())
            .step_by(2)
            .map(|i| {
                sealed
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or("sealed key is not hex")?;
        self.0
            .open_legacy(SEALED_IN, name.as_bytes(), name.as_bytes(), &bytes)
            .map_err(|_| {
                format!(
                    "certificate `{name}`: the key does not unseal (was cert-seal.key replaced?)"
                )
            })
    }
}

/// Serves one certificate whatever the SNI (the route was chosen by SNI already).
#[derive(Debug)]
struct OneCert(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Builds (and shares between routes) the server configurations of one snapshot.
pub(crate) struct ServerConfigs<'a> {
    pub(crate) ticketer: Arc<dyn rustls::server::ProducesTickets>,
    pub(crate) certificates: &'a HashMap<String, LoadedCertificate>,
    built: HashMap<(String, MinTls, Option<ClientAuth>), Arc<rustls::ServerConfig>>,
}

impl<'a> ServerConfigs<'a> {
    pub(crate) fn new(
        ticketer: Arc<dyn rustls::server::ProducesTickets>,
        certificates: &'a HashMap<String, LoadedCertificate>,
    ) -> Self {
        Self {
            ticketer,
            certificates,
            built: HashMap::new(),
        }
    }

    /// The configuration serving `certificate` from TLS `min` on, verifying
    /// client certificates when `client_auth` is set. Those configurations
    /// resume no session (no tickets, no cache): a session is only ever
    /// resumed where its client certificate was checked.
    pub(crate) fn get(
        &mut self,
        certificate: &str,
        min: MinTls,
        client_auth: Option<&ClientAuth>,
    ) -> Option<Arc<rustls::ServerConfig>> {
        let key = (certificate.to_owned(), min, client_auth.cloned());
        if let Some(c) = self.built.get(&key) {
            return Some(c.clone());
        }
        let cert = self.certificates.get(certificate)?;
        let versions: &[&rustls::SupportedProtocolVersion] = match min {
            MinTls::V12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            MinTls::V13 => &[&rustls::version::TLS13],
        };
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(|e| tracing::error!(error = %e, "TLS versions refused"))
            .ok()?;
        let builder = match client_auth {
            None => builder.with_no_client_auth(),
            Some(auth) => match crate::client_cert::verifier(auth) {
                Ok(v) => builder.with_client_cert_verifier(v),
                Err(e) => {
                    tracing::error!(certificate, error = %e, "client CA refused");
                    return None;
                }
            },
        };
        let mut config = builder.with_cert_resolver(Arc::new(OneCert(cert.key.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        if client_auth.is_none() {
            config.ticketer = self.ticketer.clone();
        } else {
            config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        }
        let config = Arc::new(config);
        self.built.insert(key, config.clone());
        Some(config)
    }
}

/// The client configuration for a route's TLS backends.
pub(crate) fn backend_client_config(
    ca_pem: Option<&str>,
    default_roots: &Arc<RootCertStore>,
    insecure: bool,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
            .with_no_client_auth()
    } else {
        let roots = match ca_pem {
            Some(pem) => Arc::new(parse_roots(pem.as_bytes())?),
            None => default_roots.clone(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `backend_tls_insecure_skip_verify`: an explicit, logged operator choice.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Issuer = rcgen::Issuer<'static, rcgen::KeyPair>;

    fn ca_params(cn: &str) -> rcgen::CertificateParams {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p
    }

    fn ca() -> (rcgen::Certificate, Issuer) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = ca_params("test root").self_signed(&key).expect("ca");
        (cert, rcgen::Issuer::new(ca_params("test root"), key))
    }

    fn intermediate(issuer: &Issuer) -> (rcgen::Certificate, Issuer) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = ca_params("test intermediate")
            .signed_by(&key, issuer)
            .expect("sign");
        (
            cert,
            rcgen::Issuer::new(ca_params("test intermediate"), key),
        )
    }

    fn leaf(names: &[&str], issuer: &Issuer) -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().expect("key");
        let p = rcgen::CertificateParams::new(
            names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
        )
        .expect("params");
        (p.signed_by(&key, issuer).expect("sign"), key)
    }

    fn roots(ca: &rcgen::Certificate) -> RootCertStore {
        parse_roots(ca.pem().as_bytes()).expect("roots")
    }

    #[test]
    fn full_chain_is_accepted_and_described() {
        let (root, root_issuer) = ca();
        let (inter, inter_issuer) = intermediate(&root_issuer);
        let (leaf, leaf_key) = leaf(&["app.example.test"], &inter_issuer);
        let chain = format!("{}{}", leaf.pem(), inter.pem());
        let (_, info) = check(
            "app",
            &chain,
            &leaf_key.serialize_pem(),
            &roots(&root),
            UnixTime::now(),
        )
        .expect("valid chain");
        assert_eq!(info.dns_names, vec!["app.example.test"]);
        assert_eq!(info.key_algorithm, "ecdsa-p256");
        assert_eq!(info.sha256_fingerprint.len(), 64);
    }

    /// A chain ending in a self-signed root nobody configured is refused,
    /// however well its links verify; the same chain with the root
    /// configured, or with the configured root appended, is accepted.
    #[test]
    fn a_self_signed_root_in_the_chain_is_not_an_anchor() {
        let (configured, _) = ca();
        let rogue_key = rcgen::KeyPair::generate().expect("key");
        let rogue = ca_params("rogue root")
            .self_signed(&rogue_key)
            .expect("rogue");
        let rogue_issuer = rcgen::Issuer::new(ca_params("rogue root"), rogue_key);
        let (leaf, leaf_key) = leaf(&["app.example.test"], &rogue_issuer);
        let chain = format!("{}{}", leaf.pem(), rogue.pem());
        let key = leaf_key.serialize_pem();
        let err = check("app", &chain, &key, &roots(&configured), UnixTime::now())
            .expect_err("rogue root");
        assert!(
            err.contains("self-signed") && err.contains("certificate_authorities"),
            "{err}"
        );
        let empty = RootCertStore::empty();
        assert!(check("app", &chain, &key, &empty, UnixTime::now()).is_err());
        check("app", &chain, &key, &roots(&rogue), UnixTime::now()).expect("configured root");
    }

    /// A leaf alone, issued by a root nobody configured (what `mcd dev` once
    /// refused for its own dev CA): the message says the issuer is untrusted
    /// and offers both remedies instead of guessing "intermediate missing";
    /// a configured CA of the same name but another key is named as such.
    #[test]
    fn an_untrusted_issuer_is_described_without_guessing() {
        let (configured, _) = ca();
        let (_, other_issuer) = ca();
        let other_key = rcgen::KeyPair::generate().expect("key");
        let unknown = rcgen::Issuer::new(ca_params("dev root"), other_key);
        let (leaf_cert, leaf_key) = leaf(&["app.example.test"], &unknown);
        let key = leaf_key.serialize_pem();
        let err = check(
            "app",
            &leaf_cert.pem(),
            &key,
            &roots(&configured),
            UnixTime::now(),
        )
        .expect_err("untrusted issuer");
        assert!(
            err.contains("`CN=dev root`, which is neither in the chain nor one of the configured certificate authorities")
                && err.contains("add it to proxy.certificate_authorities")
                && !err.contains("probably"),
            "{err}"
        );
        // Same name ("test root") as the configured CA, another key.
        let (leaf_cert, leaf_key) = leaf(&["app.example.test"], &other_issuer);
        let err = check(
            "app",
            &leaf_cert.pem(),
            &leaf_key.serialize_pem(),
            &roots(&configured),
            UnixTime::now(),
        )
        .expect_err("same name, other key");
        assert!(err.contains("has that name but did not sign it"), "{err}");
    }

    #[test]
    fn ed25519_and_rsa_leaves_are_accepted() {
        let (root, root_issuer) = ca();
        for (alg, name) in [
            (&rcgen::PKCS_ED25519, "ed25519"),
            (&rcgen::PKCS_RSA_SHA256, "rsa-2048"),
            (&rcgen::PKCS_ECDSA_P384_SHA384, "ecdsa-p384"),
        ] {
            let key = rcgen::KeyPair::generate_for(alg).expect("key");
            let cert = rcgen::CertificateParams::new(vec!["k.example.test".to_owned()])
                .expect("params")
                .signed_by(&key, &root_issuer)
                .expect("sign");
            let (_, info) = check(
                "k",
                &cert.pem(),
                &key.serialize_pem(),
                &roots(&root),
                UnixTime::now(),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(info.key_algorithm, name);
        }
    }

    #[test]
    fn missing_intermediate_and_wrong_key_are_refused() {
        let (root, root_issuer) = ca();
        let (inter, inter_issuer) = intermediate(&root_issuer);
        let (leaf, leaf_key) = leaf(&["app.example.test"], &inter_issuer);
        let err = check(
            "app",
            &leaf.pem(),
            &leaf_key.serialize_pem(),
            &roots(&root),
            UnixTime::now(),
        )
        .expect_err("no intermediate");
        assert!(err.contains("intermediate"), "{err}");
        let other = rcgen::KeyPair::generate().expect("key");
        let chain = format!("{}{}", leaf.pem(), inter.pem());
        let err = check(
            "app",
            &chain,
            &other.serialize_pem(),
            &roots(&root),
            UnixTime::now(),
        )
        .expect_err("wrong key");
        assert!(err.contains("does not match"), "{err}");
        for (chain, key) in [
            ("", leaf_key.serialize_pem()),
            (chain.as_str(), String::new()),
        ] {
            assert!(check("app", chain, &key, &roots(&root), UnixTime::now()).is_err());
        }
    }

    #[test]
    fn sealed_keys_round_trip_and_bind_the_name() {
        let dir = tempfile::tempdir().expect("dir");
        let s = Sealer::open(dir.path()).expect("sealer");
        let sealed = s.seal("a", b"secret").expect("seal");
        assert_eq!(
            s.open_sealed("a", &sealed).expect("open").as_slice(),
            b"secret"
        );
        assert!(s.open_sealed("b", &sealed).is_err());
        let again = Sealer::open(dir.path()).expect("reopen");
        assert_eq!(
            again.open_sealed("a", &sealed).expect("open").as_slice(),
            b"secret"
        );
    }

    /// Keys sealed before the kit's sealer (hex of nonce ‖ AES-256-GCM, AAD =
    /// the certificate name, same `cert-seal.key`) still open.
    #[test]
    fn keys_sealed_in_the_old_format_still_open() {
        use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
        let dir = tempfile::tempdir().expect("dir");
        let s = Sealer::open(dir.path()).expect("sealer");
        let key = std::fs::read(dir.path().join(SEAL_KEY_FILE)).expect("key file");
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("key"));
        let nonce = [7_u8; NONCE_LEN];
        let mut buf = b"old secret".to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(b"app"),
            &mut buf,
        )
        .expect("seal");
        let legacy: String = nonce
            .iter()
            .chain(buf.iter())
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            s.open_sealed("app", &legacy).expect("open").as_slice(),
            b"old secret"
        );
        assert!(
            s.open_sealed("other", &legacy).is_err(),
            "bound to its name"
        );
    }
}
