//! The OCSP responder as a core call: public (no caller, no policy) like
//! the CA and CRL routes, but it reads sealed rows (issuer keys, certificate
//! records), so it needs the barrier unsealed; sealed, it answers
//! `tryLater`. The protocol is in `engines::pki::ocsp`.
//!
//! Invariant: every answer is a DER OCSPResponse; bad input is a
//! `malformedRequest` answer, never an HTTP error, and nothing is written.

use mc_kit::clock::unix_now;
use x509_ocsp::OcspResponse;

use super::Metacrypt;
use crate::barrier::sealer::Snapshot;
use crate::engines::Engine;
use crate::engines::pki::Pki;
use crate::engines::pki::model::{CertRecord, IssuerVersion};
use crate::engines::pki::ocsp::{decode_request, respond, status_only};
use crate::engines::pki::tables::{PKI_CERTS, PKI_ISSUERS};
use crate::store::mount_key;

impl Metacrypt {
    /// Public: answers the DER OCSP request `body` for the pki mount
    /// `mount`. Returns the DER OCSPResponse.
    pub fn pki_ocsp(&self, mount: &str, body: &[u8]) -> Vec<u8> {
        let req = match decode_request(body) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(mount, error = %e, "ocsp: malformed request");
                return status_only(OcspResponse::malformed_request());
            }
        };
        let Ok(keys) = self.barrier.unsealed() else {
            return status_only(OcspResponse::try_later());
        };
        let answer = (|| {
            let view = self.view(&keys)?;
            let Some(m) = view.mounts.get(mount).filter(|m| m.kind == Pki::TYPE) else {
                return Ok(status_only(OcspResponse::unauthorized()));
            };
            let id = m.id;
            let rx = Snapshot::begin(&self.store)?;
            let issuers: Vec<IssuerVersion> = rx
                .scan(&keys, id, PKI_ISSUERS, &mount_key(id, b""))?
                .into_iter()
                .map(|(_, iv)| iv)
                .collect();
            respond(req, &issuers, unix_now(), |serial| {
                rx.get::<CertRecord>(&keys, id, PKI_CERTS, &mount_key(id, serial))
            })
        })();
        answer.unwrap_or_else(|e| {
            tracing::warn!(mount, error = %e, "ocsp: internal error");
            status_only(OcspResponse::internal_error())
        })
    }
}
