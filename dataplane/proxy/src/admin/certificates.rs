//! L7 certificates: list, put (checked against the roots, key sealed) and remove.
//!
//! Invariant: a stored private key is sealed, and a certificate a route
//! still names cannot be removed.

use mc_kit::api::ApiError;
use mc_kit::store::json::WriteTx;

use super::state::ProxyState;
use super::store as db;
use crate::model::{Invalid, Origin};
use crate::tls::{LoadedCertificate, StoredCertificate};

impl ProxyState {
    pub(crate) fn certificates(&self) -> Vec<StoredCertificate> {
        let mut v: Vec<_> = self
            .lock()
            .certificates
            .values()
            .map(|c| c.stored.clone())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Checks and stores a certificate; routes using it serve it from the next handshake.
    pub(crate) fn put_certificate(
        &self,
        name: &str,
        chain_pem: &str,
        key_pem: &str,
    ) -> Result<StoredCertificate, ApiError> {
        crate::model::check_certificate_name("name", name)?;
        super::managed::refuse_managed(self, name)?;
        self.install_certificate(name, chain_pem, key_pem)
    }

    /// The one way a certificate is installed (uploads and managed
    /// renewals): checked against the roots, the key sealed, then published.
    pub(super) fn install_certificate(
        &self,
        name: &str,
        chain_pem: &str,
        key_pem: &str,
    ) -> Result<StoredCertificate, ApiError> {
        let (key, info) = crate::tls::check(
            name,
            chain_pem,
            key_pem,
            &self.roots,
            rustls_pki_types::UnixTime::now(),
        )
        .map_err(|m| {
            let (field, msg) = m.split_once(": ").unwrap_or(("certificate", m.as_str()));
            match field {
                "chain_pem" | "key_pem" => Invalid::new(field, msg),
                _ => Invalid::new("certificate", m.clone()),
            }
        })?;
        let mut inner = self.lock();
        if let Some(existing) = inner.certificates.get(name) {
            self.refuse_config_owned(&format!("certificate `{name}`"), existing.stored.origin)?;
        }
        let stored = StoredCertificate {
            name: name.to_owned(),
            chain_pem: chain_pem.to_owned(),
            key_sealed: self
                .sealer
                .seal(name, key_pem.as_bytes())
                .map_err(ApiError::Internal)?,
            info,
            origin: Origin::AdminApi,
        };
        let tx = WriteTx::begin(&self.store)?;
        tx.put(db::CERTIFICATES, name.as_bytes(), &stored)?;
        tx.commit()?;
        inner.certificates.insert(
            name.to_owned(),
            LoadedCertificate {
                stored: stored.clone(),
                key,
            },
        );
        self.publish(&mut inner, false);
        Ok(stored)
    }

    pub(crate) fn remove_certificate(&self, name: &str) -> Result<bool, ApiError> {
        super::managed::refuse_managed(self, name)?;
        let mut inner = self.lock();
        let Some(existing) = inner.certificates.get(name) else {
            return Ok(false);
        };
        self.refuse_config_owned(&format!("certificate `{name}`"), existing.stored.origin)?;
        if let Some(r) = inner
            .routes
            .values()
            .find(|r| r.l7.as_ref().is_some_and(|l| l.certificate == name))
        {
            return Err(ApiError::FailedPrecondition(format!(
                "certificate `{name}` is used by route `{}` on listener `{}`",
                r.hostname, r.listener
            )));
        }
        let tx = WriteTx::begin(&self.store)?;
        tx.delete(db::CERTIFICATES.def(), name.as_bytes())?;
        tx.commit()?;
        inner.certificates.remove(name);
        self.publish(&mut inner, false);
        Ok(true)
    }
}
