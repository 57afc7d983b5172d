//! CSR decoding: a size bound, PEM or DER, the self-signature checked, the
//! key type identified, the requested names read. Pure (fuzzed by
//! `fuzz/fuzz_targets/pki_csr.rs`).
//!
//! Invariant: a [`Csr`] exists only for a well-formed request whose
//! signature verifies under its own public key; its requested extensions
//! are read for names only, never copied into a certificate.

use std::net::IpAddr;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::model::KeyType;
use crate::error::CryptError;

/// A CSR, PEM or DER, is at most this long.
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// A verified CSR.
#[derive(Debug, Clone)]
pub struct Csr {
    pub spki_der: Vec<u8>,
    pub key_type: KeyType,
    pub common_name: String,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
}

fn bad(m: impl Into<String>) -> CryptError {
    CryptError::invalid("csr", m)
}

/// Decodes and verifies a CSR given as PEM text or DER bytes.
pub fn parse(input: &[u8]) -> Result<Csr, CryptError> {
    if input.is_empty() || input.len() > MAX_CSR_BYTES {
        return Err(bad("1 byte to 16 KiB"));
    }
    let der = if input.first() == Some(&0x30) {
        input.to_vec()
    } else {
        let (_, pem) = x509_parser::pem::parse_x509_pem(input)
            .map_err(|_| bad("not a PEM CERTIFICATE REQUEST"))?;
        if pem.label != "CERTIFICATE REQUEST" && pem.label != "NEW CERTIFICATE REQUEST" {
            return Err(bad("not a PEM CERTIFICATE REQUEST"));
        }
        pem.contents
    };
    let (rest, csr) = X509CertificationRequest::from_der(&der).map_err(|_| bad("not a DER CSR"))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the CSR"));
    }
    csr.verify_signature()
        .map_err(|_| bad("the CSR's signature does not verify"))?;
    let info = &csr.certification_request_info;
    let key_type = super::x509::spki_key_type(&info.subject_pki)
        .ok_or_else(|| bad(format!("unsupported key type (one of {})", KeyType::ALL)))?;
    let common_name = info
        .subject
        .iter_common_name()
        .next()
        .map(|cn| cn.as_str().map(str::to_owned))
        .transpose()
        .map_err(|_| bad("the common name is not a string"))?
        .unwrap_or_default();
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Some(exts) = csr.requested_extensions() {
        for e in exts {
            if let ParsedExtension::SubjectAlternativeName(san) = e {
                for n in &san.general_names {
                    match n {
                        GeneralName::DNSName(d) => dns.push((*d).to_owned()),
                        GeneralName::IPAddress(b) => match b.len() {
                            4 => ips.push(IpAddr::from(
                                <[u8; 4]>::try_from(*b).map_err(|_| bad("bad IP SAN"))?,
                            )),
                            16 => ips.push(IpAddr::from(
                                <[u8; 16]>::try_from(*b).map_err(|_| bad("bad IP SAN"))?,
                            )),
                            _ => return Err(bad("bad IP SAN")),
                        },
                        _ => return Err(bad("only DNS and IP SANs are supported")),
                    }
                    if dns.len() + ips.len() > super::names::MAX_NAMES {
                        return Err(bad("at most 100 names"));
                    }
                }
            }
        }
    }
    Ok(Csr {
        spki_der: info.subject_pki.raw.to_vec(),
        key_type,
        common_name,
        dns,
        ips,
    })
}
