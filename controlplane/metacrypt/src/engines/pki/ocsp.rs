//! The OCSP responder (RFC 6960): decodes a request, finds the mount's
//! issuer version each CertID names (by issuer name and key hash, SHA-1 or
//! SHA-2), looks each serial up in the certificate rows, and answers a
//! BasicOCSPResponse signed by that issuer's own key (no delegated
//! responder certificate), the issuer certificate attached.
//!
//! Invariants: a request over [`MAX_REQUEST`] bytes, with no CertID or
//! more than [`MAX_CERTS`] of them, or with a nonce over [`MAX_NONCE`]
//! bytes is answered `malformedRequest`; a request naming no issuer of
//! the mount is answered `unauthorized`; CertIDs of another issuer than
//! the first matched one, serials the mount never stored (including
//! `no_store` certificates) and certificates of another issuer version
//! are `unknown`. Nothing here writes.

use aws_lc_rs::digest;
use ocsp_der::asn1::{BitString, GeneralizedTime, Null, ObjectIdentifier, OctetString};
use ocsp_der::{Any, DateTime, Decode, Encode};
use ocsp_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_SHA_1, ID_SHA_256, ID_SHA_384, ID_SHA_512,
    SHA_256_WITH_RSA_ENCRYPTION,
};
use ocsp_oid::db::rfc6960::ID_PKIX_OCSP_NONCE;
use ocsp_oid::db::rfc8410::ID_ED_25519;
use ocsp_spki::AlgorithmIdentifierOwned;
use ocsp_x509::Certificate;
use ocsp_x509::ext::Extension;
use rcgen::SigningKey as _;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    ResponderId, ResponseData, RevokedInfo, SingleResponse, Version,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::model::{CertRecord, IssuerVersion, KeyType};
use super::x509;
use crate::error::CryptError;

/// Largest request body accepted (a request for [`MAX_CERTS`] CertIDs
/// with SHA-512 hashes and a nonce is well under 2 KiB).
pub const MAX_REQUEST: usize = 8 * 1024;
/// Most CertIDs answered in one request.
pub const MAX_CERTS: usize = 16;
/// Longest nonce echoed (RFC 8954 bounds it at 32 octets; some clients
/// send more).
pub const MAX_NONCE: usize = 128;
/// How long a response is valid (`nextUpdate` − `thisUpdate`).
pub(crate) const VALIDITY_SECS: i64 = 3600;

/// Why a request is answered `malformedRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("request over {MAX_REQUEST} bytes")]
    TooLarge,
    #[error("not a DER OCSPRequest: {0}")]
    Der(String),
    #[error("no CertID in the request")]
    Empty,
    #[error("more than {MAX_CERTS} CertIDs in the request")]
    TooMany,
    #[error("nonce over {MAX_NONCE} bytes")]
    Nonce,
}

/// A decoded, bounded request.
#[derive(Debug)]
pub struct Decoded {
    pub ids: Vec<CertId>,
    /// The request's nonce extension, echoed as it came.
    pub nonce: Option<Extension>,
}

/// Decodes and bounds a DER OCSPRequest (the request signature, if any, is
/// not checked: answers are public).
pub fn decode_request(body: &[u8]) -> Result<Decoded, Malformed> {
    if body.len() > MAX_REQUEST {
        return Err(Malformed::TooLarge);
    }
    let req = OcspRequest::from_der(body).map_err(|e| Malformed::Der(e.to_string()))?;
    let tbs = req.tbs_request;
    if tbs.request_list.is_empty() {
        return Err(Malformed::Empty);
    }
    if tbs.request_list.len() > MAX_CERTS {
        return Err(Malformed::TooMany);
    }
    let nonce = tbs
        .request_extensions
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.extn_id == ID_PKIX_OCSP_NONCE);
    if nonce
        .as_ref()
        .is_some_and(|n| n.extn_value.as_bytes().len() > MAX_NONCE)
    {
        return Err(Malformed::Nonce);
    }
    Ok(Decoded {
        ids: tbs.request_list.into_iter().map(|r| r.req_cert).collect(),
        nonce,
    })
}

/// The DER of a bare status answer (no response bytes).
pub(crate) fn status_only(r: OcspResponse) -> Vec<u8> {
    // Encoding a two-field SEQUENCE of an ENUMERATED cannot fail; an empty
    // body would still be refused by any client.
    r.to_der().unwrap_or_default()
}

fn digest_of(alg: &ObjectIdentifier) -> Option<&'static digest::Algorithm> {
    Some(match *alg {
        ID_SHA_1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        ID_SHA_256 => &digest::SHA256,
        ID_SHA_384 => &digest::SHA384,
        ID_SHA_512 => &digest::SHA512,
        _ => return None,
    })
}

/// An issuer version with what CertID matching needs.
struct Candidate<'a> {
    iv: &'a IssuerVersion,
    cert_der: Vec<u8>,
    name_der: Vec<u8>,
    key_bits: Vec<u8>,
}

impl<'a> Candidate<'a> {
    fn of(iv: &'a IssuerVersion) -> Result<Self, CryptError> {
        let cert_der = x509::pem_der(&iv.cert_pem, "certificate", "CERTIFICATE")?;
        let (_, c) = X509Certificate::from_der(&cert_der).map_err(CryptError::internal)?;
        let name_der = c.subject().as_raw().to_vec();
        let key_bits = c.public_key().subject_public_key.data.to_vec();
        Ok(Self {
            iv,
            cert_der,
            name_der,
            key_bits,
        })
    }

    fn matches(&self, id: &CertId) -> bool {
        let Some(alg) = digest_of(&id.hash_algorithm.oid) else {
            return false;
        };
        digest::digest(alg, &self.name_der).as_ref() == id.issuer_name_hash.as_bytes()
            && digest::digest(alg, &self.key_bits).as_ref() == id.issuer_key_hash.as_bytes()
    }
}

fn time(unix: i64) -> Result<OcspGeneralizedTime, CryptError> {
    let secs = u64::try_from(unix).map_err(CryptError::internal)?;
    let dt = DateTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map_err(CryptError::internal)?;
    Ok(OcspGeneralizedTime(GeneralizedTime::from_date_time(dt)))
}

fn signature_algorithm(kt: KeyType) -> AlgorithmIdentifierOwned {
    let (oid, parameters) = match kt {
        KeyType::EcP256 => (ECDSA_WITH_SHA_256, None),
        KeyType::EcP384 => (ECDSA_WITH_SHA_384, None),
        KeyType::Ed25519 => (ID_ED_25519, None),
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            (SHA_256_WITH_RSA_ENCRYPTION, Some(Any::from(Null)))
        }
    };
    AlgorithmIdentifierOwned { oid, parameters }
}

fn status_of(rec: Option<CertRecord>, iv: &IssuerVersion) -> Result<CertStatus, CryptError> {
    let Some(rec) = rec else {
        return Ok(CertStatus::unknown());
    };
    if rec.issuer.name != iv.name || rec.issuer.version != iv.version {
        return Ok(CertStatus::unknown());
    }
    Ok(match rec.revoked_at {
        Some(at) => CertStatus::revoked(RevokedInfo {
            revocation_time: time(at)?,
            revocation_reason: Some(rec.revocation_reason.unwrap_or_default().ocsp()),
        }),
        None => CertStatus::good(),
    })
}

fn der_err(e: ocsp_der::Error) -> CryptError {
    CryptError::internal(format!("ocsp: {e}"))
}

/// Answers a decoded request for the mount whose issuer versions are
/// `issuers`; `cert` looks a 16-byte serial up in the mount's certificate
/// rows. Returns the DER OCSPResponse.
pub(crate) fn respond(
    req: Decoded,
    issuers: &[IssuerVersion],
    now: i64,
    cert: impl Fn(&[u8; 16]) -> Result<Option<CertRecord>, CryptError>,
) -> Result<Vec<u8>, CryptError> {
    let candidates = issuers
        .iter()
        .map(Candidate::of)
        .collect::<Result<Vec<_>, _>>()?;
    let Some(signer) = req
        .ids
        .iter()
        .find_map(|id| candidates.iter().find(|c| c.matches(id)))
    else {
        return Ok(status_only(OcspResponse::unauthorized()));
    };
    let this_update = time(now)?;
    let next_update = time(now.saturating_add(VALIDITY_SECS))?;
    let mut responses = Vec::with_capacity(req.ids.len());
    for id in req.ids {
        let serial: Option<[u8; 16]> = id.serial_number.as_bytes().try_into().ok();
        let status = match serial {
            Some(s) if signer.matches(&id) => status_of(cert(&s)?, signer.iv)?,
            _ => CertStatus::unknown(),
        };
        responses.push(SingleResponse {
            cert_id: id,
            cert_status: status,
            this_update,
            next_update: Some(next_update),
            single_extensions: None,
        });
    }
    let key_hash = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &signer.key_bits);
    let tbs = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(OctetString::new(key_hash.as_ref()).map_err(der_err)?),
        produced_at: this_update,
        responses,
        response_extensions: req.nonce.map(|n| vec![n]),
    };
    let key = x509::load_key(&signer.iv.key_pem)?;
    let signature = key
        .sign(&tbs.to_der().map_err(der_err)?)
        .map_err(|e| CryptError::internal(format!("ocsp signature: {e}")))?;
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm: signature_algorithm(signer.iv.key_type),
        signature: BitString::from_bytes(&signature).map_err(der_err)?,
        certs: Some(vec![
            Certificate::from_der(&signer.cert_der).map_err(der_err)?,
        ]),
    };
    OcspResponse::successful(basic)
        .and_then(|r| r.to_der())
        .map_err(der_err)
}

#[cfg(test)]
#[path = "ocsp_tests.rs"]
mod tests;
