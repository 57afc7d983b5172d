//! Challenge validation (RFC 8555 §8.3, §8.4; RFC 8737; RFC 8738): http-01
//! and tls-alpn-01 connect to the identifier's address on the mount's
//! configured ports, dns-01 reads `_acme-challenge.<name>` TXT; names are
//! resolved through the configured resolver (`acme.resolver`, else the
//! node's first `nameserver`, which on a platform node is MCNS).
//!
//! Invariants: every attempt is bounded by `acme.timeout`; an http-01 body
//! is read up to 1 KiB and redirects are not followed; the tls-alpn-01
//! handshake must negotiate `acme-tls/1`, and its certificate must name
//! only the identifier and carry a critical acmeIdentifier extension with
//! the key authorization's digest. A failure is a problem document of the
//! RFC's type (`connection`, `dns`, `tls`, `incorrectResponse`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::{TcpStream, UdpSocket};

use super::AcmeConfig;
use super::flow::Job;
use super::problem::{Kind, Problem};

/// The largest http-01 body read.
const MAX_HTTP_BODY: usize = 1024;
/// The ALPN protocol of tls-alpn-01.
const ACME_TLS: &[u8] = b"acme-tls/1";
/// id-pe-acmeIdentifier (RFC 8737 §6.1).
const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";

fn problem(kind: Kind, detail: impl Into<String>) -> Problem {
    Problem::new(kind, detail)
}

/// Validates `job` under `cfg`; `Ok` when the challenge is met.
pub async fn run(job: &Job, cfg: &AcmeConfig) -> Result<(), Problem> {
    let limit = Duration::from_secs(cfg.timeout.0);
    match tokio::time::timeout(limit, attempt(job, cfg)).await {
        Ok(r) => r,
        Err(_) => Err(problem(
            Kind::Connection,
            format!("{} validation of {} timed out", job.kind, job.name),
        )),
    }
}

async fn attempt(job: &Job, cfg: &AcmeConfig) -> Result<(), Problem> {
    match job.kind.as_str() {
        "http-01" => http01(job, cfg).await,
        "tls-alpn-01" => tls_alpn01(job, cfg).await,
        "dns-01" => dns01(job, cfg).await,
        k => Err(Problem::malformed(format!("unknown challenge type {k}"))),
    }
}

/// The DNS server names are resolved through.
fn resolver(cfg: &AcmeConfig) -> SocketAddr {
    if let Some(r) = cfg.resolver {
        return r;
    }
    std::fs::read_to_string("/etc/resolv.conf")
        .ok()
        .and_then(|t| {
            t.lines()
                .filter_map(|l| l.trim().strip_prefix("nameserver"))
                .find_map(|ip| ip.trim().parse::<IpAddr>().ok())
        })
        .map_or_else(
            || SocketAddr::from(([127, 0, 0, 1], 53)),
            |ip| SocketAddr::new(ip, 53),
        )
}

/// One query over UDP; the answers' RDATA.
async fn query(server: SocketAddr, name: &str, rtype: RecordType) -> Result<Vec<RData>, Problem> {
    let dns = |d: String| problem(Kind::Dns, d);
    let qname = Name::from_ascii(format!("{name}.")).map_err(|e| dns(format!("{name}: {e}")))?;
    let mut raw = [0u8; 2];
    aws_lc_rs::rand::fill(&mut raw).map_err(|_| dns("no randomness".to_owned()))?;
    let id = u16::from_be_bytes(raw);
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.queries.push(Query::query(qname, rtype));
    let bytes = msg.to_vec().map_err(|e| dns(e.to_string()))?;
    let local = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = UdpSocket::bind(local)
        .await
        .map_err(|e| dns(e.to_string()))?;
    sock.connect(server).await.map_err(|e| dns(e.to_string()))?;
    sock.send(&bytes).await.map_err(|e| dns(e.to_string()))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).await.map_err(|e| dns(e.to_string()))?;
        let Ok(reply) = Message::from_vec(buf.get(..n).unwrap_or_default()) else {
            continue;
        };
        if reply.metadata.id != id || reply.metadata.message_type != MessageType::Response {
            continue;
        }
        return Ok(reply.answers.into_iter().map(|r| r.data).collect());
    }
}

/// The addresses to connect to for an identifier.
async fn addresses(job: &Job, cfg: &AcmeConfig) -> Result<Vec<IpAddr>, Problem> {
    // An `ip` identifier, or an IP literal sent as `dns` (lego 4.9 does):
    // connected to directly; the role has already decided on IP SANs.
    if let Ok(ip) = job.name.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    if job.identifier_type == "ip" {
        return Err(Problem::malformed("bad IP identifier"));
    }
    let server = resolver(cfg);
    let mut out = Vec::new();
    for rtype in [RecordType::A, RecordType::AAAA] {
        for rd in query(server, &job.name, rtype).await? {
            match rd {
                RData::A(a) => out.push(IpAddr::V4(a.0)),
                RData::AAAA(a) => out.push(IpAddr::V6(a.0)),
                _ => {}
            }
        }
    }
    if out.is_empty() {
        return Err(problem(
            Kind::Dns,
            format!("{} has no A or AAAA record", job.name),
        ));
    }
    Ok(out)
}

async fn connect(job: &Job, cfg: &AcmeConfig, port: u16) -> Result<TcpStream, Problem> {
    let mut last = String::new();
    for ip in addresses(job, cfg).await? {
        match TcpStream::connect((ip, port)).await {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("{ip}:{port}: {e}"),
        }
    }
    Err(problem(Kind::Connection, last))
}

async fn http01(job: &Job, cfg: &AcmeConfig) -> Result<(), Problem> {
    let conn = |e: String| problem(Kind::Connection, e);
    let stream = connect(job, cfg, cfg.http_port).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| conn(e.to_string()))?;
    let driver = tokio::spawn(connection);
    let host = if job.name.contains(':') {
        format!("[{}]", job.name)
    } else {
        job.name.clone()
    };
    let req = hyper::Request::get(format!("/.well-known/acme-challenge/{}", job.token))
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "metacrypt-acme")
        .body(Empty::<Bytes>::new())
        .map_err(|e| conn(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| conn(e.to_string()))?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MAX_HTTP_BODY)
        .collect()
        .await
        .map_err(|e| problem(Kind::IncorrectResponse, format!("body: {e}")))?
        .to_bytes();
    driver.abort();
    if status != hyper::StatusCode::OK {
        return Err(problem(
            Kind::IncorrectResponse,
            format!("http-01: {status} for the challenge URL"),
        ));
    }
    if String::from_utf8_lossy(&body).trim_end() != job.key_authorization {
        return Err(problem(
            Kind::IncorrectResponse,
            "http-01: the body is not the key authorization",
        ));
    }
    Ok(())
}

fn digest_b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        text.as_bytes(),
    ))
}

async fn dns01(job: &Job, cfg: &AcmeConfig) -> Result<(), Problem> {
    let want = digest_b64(&job.key_authorization);
    let name = format!("_acme-challenge.{}", job.name);
    let found = query(resolver(cfg), &name, RecordType::TXT).await?;
    let ok = found.iter().any(|rd| match rd {
        RData::TXT(t) => t.txt_data.concat() == want.as_bytes(),
        _ => false,
    });
    if ok {
        Ok(())
    } else {
        Err(problem(
            Kind::IncorrectResponse,
            format!("dns-01: no TXT record at {name} holds the expected digest"),
        ))
    }
}

/// Accepts any certificate: tls-alpn-01 checks the certificate itself. The
/// handshake signature is still verified against the certificate's key
/// (key possession) here, not by webpki, which refuses the critical
/// acmeIdentifier extension the challenge certificate must carry.
#[derive(Debug)]
struct ChallengeCert;

const SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ED25519,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PKCS1_SHA256,
];

fn verify_handshake(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    use aws_lc_rs::signature as sig;
    let bad = || rustls::Error::General("tls-alpn-01: bad handshake signature".to_owned());
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|_| bad())?;
    let key = c.public_key().subject_public_key.data.as_ref();
    let alg: &dyn sig::VerificationAlgorithm = match dss.scheme {
        SignatureScheme::ECDSA_NISTP256_SHA256 => &sig::ECDSA_P256_SHA256_ASN1,
        SignatureScheme::ECDSA_NISTP384_SHA384 => &sig::ECDSA_P384_SHA384_ASN1,
        SignatureScheme::ED25519 => &sig::ED25519,
        SignatureScheme::RSA_PSS_SHA256 => &sig::RSA_PSS_2048_8192_SHA256,
        SignatureScheme::RSA_PKCS1_SHA256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        _ => return Err(bad()),
    };
    sig::UnparsedPublicKey::new(alg, key)
        .verify(message, dss.signature())
        .map_err(|_| bad())?;
    Ok(HandshakeSignatureValid::assertion())
}

impl ServerCertVerifier for ChallengeCert {
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
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_handshake(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_handshake(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

/// The SNI of an identifier (RFC 8738 §6: the reverse name of an IP).
fn sni(job: &Job) -> Result<ServerName<'static>, Problem> {
    let name = match job.name.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        Ok(IpAddr::V6(v6)) => {
            let mut s = String::new();
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
        Err(_) => job.name.clone(),
    };
    ServerName::try_from(name).map_err(|e| Problem::malformed(format!("SNI: {e}")))
}

async fn tls_alpn01(job: &Job, cfg: &AcmeConfig) -> Result<(), Problem> {
    let tls = |e: String| problem(Kind::Tls, e);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChallengeCert))
        .with_no_client_auth();
    config.alpn_protocols = vec![ACME_TLS.to_vec()];
    let stream = connect(job, cfg, cfg.tls_alpn_port).await?;
    let conn = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(sni(job)?, stream)
        .await
        .map_err(|e| tls(format!("handshake: {e}")))?;
    let (_, session) = conn.get_ref();
    if session.alpn_protocol() != Some(ACME_TLS) {
        return Err(tls("the server did not negotiate acme-tls/1".to_owned()));
    }
    let cert = session
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| tls("no certificate".to_owned()))?;
    check_alpn_cert(cert.as_ref(), job)
}

/// The tls-alpn-01 certificate: its only SAN is the identifier and its
/// critical acmeIdentifier extension holds SHA-256 of the key authorization.
pub(crate) fn check_alpn_cert(der: &[u8], job: &Job) -> Result<(), Problem> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let bad = |d: &str| problem(Kind::IncorrectResponse, format!("tls-alpn-01: {d}"));
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| bad("certificate is not DER"))?;
    let mut names = Vec::new();
    let mut digest = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for n in &san.general_names {
                    names.push(match n {
                        GeneralName::DNSName(d) => d.to_ascii_lowercase(),
                        GeneralName::IPAddress(b) => match b.len() {
                            4 => <[u8; 4]>::try_from(*b)
                                .map(|o| IpAddr::from(o).to_string())
                                .unwrap_or_default(),
                            16 => <[u8; 16]>::try_from(*b)
                                .map(|o| IpAddr::from(o).to_string())
                                .unwrap_or_default(),
                            _ => String::new(),
                        },
                        _ => String::new(),
                    });
                }
            }
            _ if ext.oid.to_id_string() == ACME_IDENTIFIER_OID => {
                if !ext.critical {
                    return Err(bad("the acmeIdentifier extension is not critical"));
                }
                digest = Some(ext.value.to_vec());
            }
            _ => {}
        }
    }
    if names != [job.name.to_ascii_lowercase()] {
        return Err(bad("the certificate must name only the identifier"));
    }
    let want =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, job.key_authorization.as_bytes());
    // The extension's value is an OCTET STRING of the 32-byte digest.
    let mut expected = vec![0x04, 0x20];
    expected.extend_from_slice(want.as_ref());
    if digest.as_deref() != Some(expected.as_slice()) {
        return Err(bad(
            "the acmeIdentifier does not match the key authorization",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, CustomExtension, KeyPair};

    use super::*;

    fn job(name: &str) -> Job {
        Job {
            authz: String::new(),
            index: 0,
            kind: "tls-alpn-01".to_owned(),
            identifier_type: "dns".to_owned(),
            name: name.to_owned(),
            token: "t".to_owned(),
            key_authorization: "t.thumb".to_owned(),
        }
    }

    fn cert(names: &[&str], ext: CustomExtension) -> Vec<u8> {
        let mut p =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("params");
        p.custom_extensions = vec![ext];
        let key = KeyPair::generate().expect("key");
        p.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn the_alpn_certificate_must_name_only_the_identifier_with_the_right_digest() {
        let j = job("a.acme.test");
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"t.thumb");
        let good = CustomExtension::new_acme_identifier(digest.as_ref());
        check_alpn_cert(&cert(&["a.acme.test"], good.clone()), &j).expect("valid");
        let wrong = CustomExtension::new_acme_identifier(&[0u8; 32]);
        let e = check_alpn_cert(&cert(&["a.acme.test"], wrong), &j).expect_err("digest");
        assert_eq!(e.kind, Kind::IncorrectResponse);
        let e = check_alpn_cert(&cert(&["a.acme.test", "b.acme.test"], good), &j)
            .expect_err("two names");
        assert_eq!(e.kind, Kind::IncorrectResponse);
        let mut content = vec![0x04, 0x20];
        content.extend_from_slice(digest.as_ref());
        let lax = CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 31], content);
        let e = check_alpn_cert(&cert(&["a.acme.test"], lax), &j).expect_err("not critical");
        assert_eq!(e.kind, Kind::IncorrectResponse);
    }

    #[test]
    fn ip_identifiers_use_the_reverse_name_as_sni() {
        let mut j = job("127.0.0.1");
        j.identifier_type = "ip".to_owned();
        assert_eq!(sni(&j).expect("sni").to_str(), "1.0.0.127.in-addr.arpa");
    }
}
