//! Unit tests of the OCSP responder against a temporary store: good, then
//! revoked after revocation, unknown serials, the nonce echoed, the
//! signature checked with the issuer's key, the bounds, and the non-success
//! statuses (malformed, unauthorized, sealed → tryLater).

use aws_lc_rs::{digest, signature};
use ocsp_der::asn1::OctetString;
use ocsp_der::{Decode, Encode};
use ocsp_oid::db::rfc5912::ID_SHA_1;
use ocsp_spki::AlgorithmIdentifierOwned;
use ocsp_x509::ext::Extension;
use ocsp_x509::ext::pkix::CrlReason;
use ocsp_x509::serial_number::SerialNumber;
use proptest::prelude::*;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request,
    TbsRequest, Version,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;
use crate::core::MountInput;
use crate::engines::pki::model::{CaRequest, IssueRequest, KeyType, Role, Ttl};

fn cert_id(issuer_pem: &str, serial: &[u8]) -> CertId {
    let der = x509::pem_der(issuer_pem, "c", "CERTIFICATE").expect("pem");
    let (_, c) = X509Certificate::from_der(&der).expect("issuer");
    let h = |b: &[u8]| {
        OctetString::new(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, b).as_ref()).expect("os")
    };
    CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: ID_SHA_1,
            parameters: None,
        },
        issuer_name_hash: h(c.subject().as_raw()),
        issuer_key_hash: h(&c.public_key().subject_public_key.data),
        serial_number: SerialNumber::new(serial).expect("serial"),
    }
}

fn request(ids: Vec<CertId>, nonce: Option<&[u8]>) -> Vec<u8> {
    let ext = nonce.map(|n| {
        vec![Extension {
            extn_id: ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(OctetString::new(n).expect("n").to_der().expect("der"))
                .expect("os"),
        }]
    });
    OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: ids
                .into_iter()
                .map(|req_cert| Request {
                    req_cert,
                    single_request_extensions: None,
                })
                .collect(),
            request_extensions: ext,
        },
        optional_signature: None,
    }
    .to_der()
    .expect("request")
}

fn status(der: &[u8]) -> OcspResponseStatus {
    OcspResponse::from_der(der)
        .expect("response")
        .response_status
}

/// The basic response, its signature checked against `issuer_pem`'s key.
fn basic(der: &[u8], issuer_pem: &str) -> BasicOcspResponse {
    let r = OcspResponse::from_der(der).expect("response");
    assert_eq!(r.response_status, OcspResponseStatus::Successful);
    let bytes = r.response_bytes.expect("bytes");
    let b = BasicOcspResponse::from_der(bytes.response.as_bytes()).expect("basic");
    let cert = x509::pem_der(issuer_pem, "c", "CERTIFICATE").expect("pem");
    let (_, c) = X509Certificate::from_der(&cert).expect("issuer");
    let key = signature::UnparsedPublicKey::new(
        &signature::ECDSA_P256_SHA256_ASN1,
        c.public_key().subject_public_key.data.to_vec(),
    );
    let tbs = b.tbs_response_data.to_der().expect("tbs");
    key.verify(&tbs, b.signature.raw_bytes())
        .expect("signed by the issuer");
    b
}

fn serial_bytes(hex: &str) -> Vec<u8> {
    x509::parse_serial(hex).expect("serial").to_vec()
}

#[tokio::test]
async fn good_then_revoked_unknown_nonce_and_statuses() {
    let (_d, m, admin) = crate::testing::unsealed().await;
    m.create_mount(
        &admin,
        MountInput {
            name: "pki".to_owned(),
            kind: "pki".to_owned(),
            description: String::new(),
            config: None,
        },
    )
    .expect("mount");
    let root = m
        .pki_root_generate(&admin, "pki", || {
            Ok(CaRequest {
                common_name: "OCSP Root".to_owned(),
                key_type: KeyType::EcP256,
                ttl: Ttl(365 * 86_400),
            })
        })
        .expect("root");
    let role: Role = serde_json::from_value(serde_json::json!({
        "issuer": "root", "allowed_domains": ["example.test"], "allow_subdomains": true,
        "max_ttl": "48h", "ttl": "1h"}))
    .expect("role");
    m.pki_put_role(&admin, "pki", "web", || Ok(role))
        .expect("put role");
    let issue = || {
        m.pki_issue(&admin, "pki", "web", || {
            Ok(IssueRequest {
                common_name: "www.example.test".to_owned(),
                ..IssueRequest::default()
            })
        })
        .expect("issue")
    };
    let (a, b) = (issue(), issue());
    let id_a = cert_id(&root.certificate, &serial_bytes(&a.serial));
    let id_b = cert_id(&root.certificate, &serial_bytes(&b.serial));
    let id_unknown = cert_id(&root.certificate, &[0x41; 16]);
    let nonce = b"0123456789abcdef";

    let resp = basic(
        &m.pki_ocsp(
            "pki",
            &request(vec![id_a.clone(), id_unknown.clone()], Some(nonce)),
        ),
        &root.certificate,
    );
    let rd = &resp.tbs_response_data;
    assert_eq!(rd.responses.len(), 2);
    assert_eq!(rd.responses[0].cert_id, id_a);
    assert_eq!(rd.responses[0].cert_status, CertStatus::good());
    assert_eq!(rd.responses[1].cert_status, CertStatus::unknown());
    assert!(rd.responses[0].next_update.is_some());
    let echoed = rd.response_extensions.as_ref().expect("nonce echoed");
    assert_eq!(echoed[0].extn_id, ID_PKIX_OCSP_NONCE);
    assert!(echoed[0].extn_value.as_bytes().ends_with(nonce));
    assert_eq!(resp.certs.as_ref().map(Vec::len), Some(1));

    m.pki_revoke(&admin, "pki", || {
        let mut r = crate::engines::pki::tests::revoke_req(&a.serial);
        r.reason = crate::engines::pki::reason::Reason::KeyCompromise;
        Ok(r)
    })
    .expect("revoke");
    let resp = basic(
        &m.pki_ocsp("pki", &request(vec![id_a.clone(), id_b.clone()], None)),
        &root.certificate,
    );
    let rd = &resp.tbs_response_data;
    assert!(rd.response_extensions.is_none());
    match rd.responses[0].cert_status {
        CertStatus::Revoked(info) => {
            assert_eq!(info.revocation_reason, Some(CrlReason::KeyCompromise));
        }
        other => panic!("expected revoked, got {other:?}"),
    }
    assert_eq!(rd.responses[1].cert_status, CertStatus::good());

    // A serial of the wrong length cannot be ours: unknown.
    let short = cert_id(&root.certificate, &[0x01, 0x02]);
    let resp = basic(
        &m.pki_ocsp("pki", &request(vec![short], None)),
        &root.certificate,
    );
    assert_eq!(
        resp.tbs_response_data.responses[0].cert_status,
        CertStatus::unknown()
    );

    // Not our issuer, not a pki mount, not DER: unauthorized, malformed.
    let mut foreign = id_a.clone();
    foreign.issuer_key_hash = OctetString::new([0u8; 20]).expect("os");
    let req_a = request(vec![id_a], None);
    assert_eq!(
        status(&m.pki_ocsp("pki", &request(vec![foreign], None))),
        OcspResponseStatus::Unauthorized
    );
    assert_eq!(
        status(&m.pki_ocsp("nope", &req_a)),
        OcspResponseStatus::Unauthorized
    );
    assert_eq!(
        status(&m.pki_ocsp("pki", b"\x30\x03garbage")),
        OcspResponseStatus::MalformedRequest
    );
    // Sealed: the keys are out of reach, so tryLater.
    m.seal(&admin).await.expect("seal");
    assert_eq!(
        status(&m.pki_ocsp("pki", &req_a)),
        OcspResponseStatus::TryLater
    );
}

#[test]
fn bounds_are_malformed() {
    let id = || CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: ID_SHA_1,
            parameters: None,
        },
        issuer_name_hash: OctetString::new([1u8; 20]).expect("os"),
        issuer_key_hash: OctetString::new([2u8; 20]).expect("os"),
        serial_number: SerialNumber::new(&[0x41; 16]).expect("serial"),
    };
    assert!(decode_request(&request(vec![id(); MAX_CERTS], None)).is_ok());
    assert_eq!(
        decode_request(&request(vec![id(); MAX_CERTS + 1], None)).err(),
        Some(Malformed::TooMany)
    );
    assert_eq!(
        decode_request(&request(vec![], None)).err(),
        Some(Malformed::Empty)
    );
    assert_eq!(
        decode_request(&request(vec![id()], Some(&[7u8; MAX_NONCE + 1]))).err(),
        Some(Malformed::Nonce)
    );
    assert_eq!(
        decode_request(&vec![0u8; MAX_REQUEST + 1]).err(),
        Some(Malformed::TooLarge)
    );
}

proptest! {
    /// Arbitrary bytes never panic the decoder, and whatever it accepts is
    /// within the bounds.
    #[test]
    fn decode_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(d) = decode_request(&body) {
            prop_assert!(!d.ids.is_empty() && d.ids.len() <= MAX_CERTS);
        }
    }

    /// A valid request truncated anywhere is refused, not half-read.
    #[test]
    fn truncated_requests_are_refused(cut in 1usize..60) {
        let id = CertId {
            hash_algorithm: AlgorithmIdentifierOwned { oid: ID_SHA_1, parameters: None },
            issuer_name_hash: OctetString::new([1u8; 20]).expect("os"),
            issuer_key_hash: OctetString::new([2u8; 20]).expect("os"),
            serial_number: SerialNumber::new(&[0x41; 16]).expect("serial"),
        };
        let full = request(vec![id], Some(b"nonce"));
        let cut = cut.min(full.len() - 1);
        prop_assert!(decode_request(&full[..full.len() - cut]).is_err());
    }
}
