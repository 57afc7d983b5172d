//! ACME (RFC 8555) as a source of managed certificates: the spec's part,
//! the account kept in the store, and the client interface the data-plane
//! host implements (`mc-dataplane`'s `acme`, on `instant-acme`: this engine
//! links no ACME client, like no certificate generator).
//!
//! Invariants: the EAB HMAC key and the account's credentials (its private
//! key) are stored only sealed by the proxy's `KeyFileSealer`; one account
//! per directory URL, created at the first order and reused after; the
//! client answers HTTP-01 challenges only through [`Http01Tokens`], which
//! the plain-HTTP listeners serve.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use mc_kit::store::json::{ReadTx, WriteTx};

use super::super::store as db;
use super::ManagedSpec;
use crate::admin::ProxyState;
use crate::http01::Http01Tokens;
use crate::model::Invalid;

/// Longest directory URL, EAB key id and EAB HMAC key accepted.
const MAX_URL: usize = 2048;
const MAX_KID: usize = 256;
const MAX_HMAC: usize = 1024;

/// Where an ACME-sourced managed certificate comes from (part of the stored spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AcmeSpec {
    /// The CA's directory URL (`https://…/directory`).
    pub(crate) directory: String,
    /// External Account Binding key id; "" without EAB.
    #[serde(default)]
    pub(crate) eab_kid: String,
    /// The EAB HMAC key as the CA gave it (base64url), sealed; "" without EAB.
    #[serde(default)]
    pub(crate) eab_hmac_sealed: String,
}

/// `[proxy.acme]`: how the ACME client reaches directories.
///
/// ```toml
/// [proxy.acme]
/// ca_cert = "/srv/mc/acme-ca.pem"   # PEM bundle trusted for directories' TLS
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeSection {
    /// Default: the system bundle (`/etc/ssl/certs/ca-certificates.crt`).
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
}

/// An account at a directory as stored (`acme_accounts`, keyed by the URL).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredAccount {
    pub(crate) directory: String,
    /// The client's account credentials (JSON holding its private key), sealed.
    pub(crate) credentials_sealed: String,
    pub(crate) created_unix: i64,
}

/// One order, as the engine hands it to the host's client.
pub struct AcmeOrder {
    pub directory: String,
    /// The PEM bundle the directory's TLS certificate must lead to.
    pub ca_file: PathBuf,
    /// DNS identifiers; the CSR names exactly these.
    pub names: Vec<String>,
    pub csr_der: Vec<u8>,
    /// The stored account's credentials, when there is one.
    pub account: Option<Zeroizing<String>>,
    /// (key id, base64url HMAC key), used only to create an account.
    pub eab: Option<(String, Zeroizing<String>)>,
    /// Where HTTP-01 answers are published (and withdrawn when the order ends).
    pub http01: Arc<Http01Tokens>,
}

/// What an order yields.
pub struct AcmeIssued {
    /// The leaf first, then its issuers, PEM; or why not.
    pub chain_pem: Result<String, String>,
    /// The credentials of an account created for this order (stored even
    /// when the order then failed).
    pub new_account: Option<Zeroizing<String>>,
}

pub type AcmeFuture = Pin<Box<dyn Future<Output = AcmeIssued> + Send>>;

/// An RFC 8555 client: account (created or restored), order, HTTP-01
/// challenges through [`AcmeOrder::http01`], finalize with the CSR, download.
pub trait AcmeClient: Send + Sync {
    fn order(&self, order: AcmeOrder) -> AcmeFuture;
}

impl AcmeSpec {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        let d = &self.directory;
        let ok = d.len() <= MAX_URL
            && d.starts_with("https://")
            && d.parse::<http::Uri>()
                .is_ok_and(|u| u.host().is_some_and(|h| !h.is_empty()));
        if !ok {
            return Err(Invalid::new(
                "acme_directory",
                format!("`{d}` is not an https:// URL of at most {MAX_URL} characters"),
            ));
        }
        if self.eab_kid.len() > MAX_KID || self.eab_kid.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(Invalid::new(
                "eab_kid",
                format!("at most {MAX_KID} printable ASCII characters"),
            ));
        }
        Ok(())
    }
}

/// Checks an EAB HMAC key as given (base64url, as CAs hand them out).
pub(super) fn check_hmac(kid: &str, hmac: &str) -> Result<(), Invalid> {
    if kid.is_empty() != hmac.is_empty() {
        return Err(Invalid::new(
            "eab_hmac",
            "an EAB key id and its HMAC key go together",
        ));
    }
    let ok = hmac.len() <= MAX_HMAC
        && hmac
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='));
    if !ok {
        return Err(Invalid::new(
            "eab_hmac",
            format!("base64url, at most {MAX_HMAC} characters"),
        ));
    }
    Ok(())
}

/// The sealing context of an account's credentials.
pub(super) fn account_seal_name(directory: &str) -> String {
    format!("acme-account:{directory}")
}

/// The sealing context of a certificate's EAB HMAC key.
pub(super) fn eab_seal_name(certificate: &str) -> String {
    format!("acme-eab:{certificate}")
}

/// The DER of a PEM CSR (as the host's `CsrMaker` makes it).
pub(super) fn csr_der(csr_pem: &str) -> Result<Vec<u8>, String> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
        .map(|d| d.as_ref().to_vec())
        .map_err(|e| format!("the CSR is not PEM: {e}"))
}

/// Splits a downloaded chain into the leaf and the rest.
pub(super) fn split_chain(chain_pem: &str) -> Result<(String, String), String> {
    const END: &str = "-----END CERTIFICATE-----";
    let Some(at) = chain_pem.find(END) else {
        return Err("the CA sent no certificate".into());
    };
    let cut = at + END.len();
    Ok((
        chain_pem.get(..cut).unwrap_or_default().to_owned(),
        chain_pem.get(cut..).unwrap_or_default().to_owned(),
    ))
}

impl ProxyState {
    /// One ACME order for `spec`'s names with the CSR; answers the chain to serve.
    pub(super) async fn acme_order(
        &self,
        spec: &ManagedSpec,
        a: &AcmeSpec,
        csr_pem: &str,
    ) -> Result<String, String> {
        let client = self
            .managed
            .client
            .get()
            .ok_or("the ACME client is not started on this host")?
            .clone();
        let account = self.acme_account(&a.directory)?;
        let eab = if account.is_none() && !a.eab_kid.is_empty() {
            let hmac = self
                .sealer
                .open_sealed(&eab_seal_name(&spec.name), &a.eab_hmac_sealed)?;
            let hmac = String::from_utf8(hmac.to_vec())
                .map_err(|_| "the stored EAB HMAC key is not text".to_owned())?;
            Some((a.eab_kid.clone(), Zeroizing::new(hmac)))
        } else {
            None
        };
        let ca_file = self
            .managed
            .acme
            .ca_cert
            .clone()
            .unwrap_or_else(|| crate::admin::config::SYSTEM_CA_BUNDLE.into());
        let issued = client
            .order(AcmeOrder {
                directory: a.directory.clone(),
                ca_file,
                names: spec.dns_names.clone(),
                csr_der: csr_der(csr_pem)?,
                account,
                eab,
                http01: self.published.http01.clone(),
            })
            .await;
        if let Some(credentials) = issued.new_account {
            self.store_acme_account(&a.directory, &credentials)?;
        }
        let (leaf, issuers) = split_chain(&issued.chain_pem?)?;
        super::issue::served_chain(&leaf, &issuers)
    }

    /// The stored account's credentials at `directory`, opened.
    fn acme_account(&self, directory: &str) -> Result<Option<Zeroizing<String>>, String> {
        let row = ReadTx::begin(&self.store)
            .and_then(|tx| tx.get(db::ACME_ACCOUNTS, directory.as_bytes()))
            .map_err(|e| format!("reading the ACME account: {e}"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let plain = self
            .sealer
            .open_sealed(&account_seal_name(directory), &row.credentials_sealed)?;
        String::from_utf8(plain.to_vec())
            .map(|s| Some(Zeroizing::new(s)))
            .map_err(|_| "the stored ACME account is not text".to_owned())
    }

    fn store_acme_account(&self, directory: &str, credentials: &str) -> Result<(), String> {
        let row = StoredAccount {
            directory: directory.to_owned(),
            credentials_sealed: self
                .sealer
                .seal(&account_seal_name(directory), credentials.as_bytes())?,
            created_unix: mc_kit::clock::unix_now(),
        };
        let tx = WriteTx::begin(&self.store).map_err(|e| e.to_string())?;
        tx.put(db::ACME_ACCOUNTS, directory.as_bytes(), &row)
            .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        tracing::info!(directory, "ACME account created and stored");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(directory: &str, kid: &str) -> AcmeSpec {
        AcmeSpec {
            directory: directory.into(),
            eab_kid: kid.into(),
            eab_hmac_sealed: String::new(),
        }
    }

    #[test]
    fn directory_and_eab_fields_are_checked() {
        assert!(
            spec("https://ca.test:8443/acme/directory", "")
                .check()
                .is_ok()
        );
        for bad in [
            "http://ca.test/dir",
            "https://",
            "ca.test/dir",
            "https://a b/",
        ] {
            let e = spec(bad, "").check().expect_err(bad);
            assert_eq!(e.field, "acme_directory", "{bad}");
        }
        let e = spec("https://ca.test/d", "kid with space")
            .check()
            .expect_err("kid");
        assert_eq!(e.field, "eab_kid");
        assert!(check_hmac("", "").is_ok());
        assert!(check_hmac("kid", "c2VjcmV0LWtleQ").is_ok());
        assert_eq!(check_hmac("kid", "").expect_err("pair").field, "eab_hmac");
        assert_eq!(check_hmac("", "abc").expect_err("pair").field, "eab_hmac");
        assert_eq!(
            check_hmac("kid", "a+b/").expect_err("b64url").field,
            "eab_hmac"
        );
    }

    #[test]
    fn chains_split_into_leaf_and_issuers() {
        let leaf = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----";
        let ca = "\n-----BEGIN CERTIFICATE-----\nBB==\n-----END CERTIFICATE-----\n";
        let (l, rest) = split_chain(&format!("{leaf}{ca}")).expect("split");
        assert_eq!((l.as_str(), rest.as_str()), (leaf, ca));
        assert!(split_chain("no pem").is_err());
    }
}
