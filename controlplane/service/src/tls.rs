//! TLS: rustls server configs from PEM files (TLS 1.3 only), and the dev CA.

use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use mc_kit::config::Invalid;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no usable PEM private key found (PKCS#8, SEC1 or PKCS#1)")]
    NoKey { path: PathBuf },
    #[error("certificate and key rejected: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("`{0}` is not a DNS name (a leading `*.` for a wildcard) or an IP address")]
    Name(String),
}

/// Refuses a subjectAltName a TLS client could never match: anything but an
/// IP address, a DNS name, or `*.` followed by a DNS name.
pub fn check_san(name: &str) -> Result<(), TlsError> {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let bare = name.strip_prefix("*.").unwrap_or(name);
    let valid = !bare.contains('*')
        && bare.contains(|c: char| c.is_ascii_alphabetic())
        && rustls_pki_types::DnsName::try_from(bare).is_ok();
    if valid {
        Ok(())
    } else {
        Err(TlsError::Name(name.to_owned()))
    }
}

/// A `[tls]`-style section: where a server's certificate chain and key live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (ECDSA, Ed25519 or RSA).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Refuses missing files at config time, by key.
    pub fn validate(&self, key_prefix: &str) -> Result<(), Invalid> {
        for (name, path) in [("cert", &self.cert), ("key", &self.key)] {
            if !path.is_file() {
                return Err(Invalid::new(
                    format!("{key_prefix}.{name}"),
                    format!("{} does not exist or is not a file", path.display()),
                ));
            }
        }
        Ok(())
    }

    /// A TLS 1.3 server config from these files, offering `alpn` in order.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
        let certs = read_certs(&self.cert)?;
        let key = read_key(&self.key)?;
        server_config(certs, key, alpn)
    }
}

/// A server certificate that can be replaced while serving: the rustls
/// config resolves every handshake through it, so a reload reaches each new
/// connection (open ones keep theirs). A reload that fails (missing file,
/// no key, key not the leaf's) changes nothing.
#[derive(Debug)]
pub struct ReloadableCert {
    files: TlsFiles,
    current: arc_swap::ArcSwap<CertifiedKey>,
}

impl ReloadableCert {
    fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
        let certs = read_certs(&files.cert)?;
        let key = read_key(&files.key)?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        Ok(Arc::new(CertifiedKey::from_der(certs, key, &provider)?))
    }

    /// Re-reads the chain and key from their files and serves them from the
    /// next handshake on; on any error the current pair stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.current.store(Self::load(&self.files)?);
        Ok(())
    }

    /// The leaf certificate served now (DER).
    pub fn leaf(&self) -> Option<CertificateDer<'static>> {
        self.current.load().cert.first().cloned()
    }
}

impl rustls::server::ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl TlsFiles {
    /// As [`TlsFiles::server_config`], with the certificate behind a
    /// [`ReloadableCert`] the caller reloads (on SIGHUP, say).
    pub fn reloadable_server_config(
        &self,
        alpn: &[&[u8]],
    ) -> Result<(Arc<ServerConfig>, Arc<ReloadableCert>), TlsError> {
        let cert = Arc::new(ReloadableCert {
            files: self.clone(),
            current: arc_swap::ArcSwap::new(ReloadableCert::load(self)?),
        });
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_cert_resolver(cert.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok((Arc::new(config), cert))
    }
}

/// Every certificate in a PEM file, in order.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsError::NoKey {
        path: path.to_owned(),
    })
}

/// TLS 1.3 only, the given ALPN protocols, key checked against the leaf.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// ALPN for a server that speaks both HTTP/2 (gRPC) and HTTP/1.1.
pub const ALPN_H2_H1: &[&[u8]] = &[b"h2", b"http/1.1"];

/// The development CA: created once under the dev data dir, it signs the
/// loopback certificates of every dev service so clients can verify them
/// with `ca.pem` instead of turning verification off.
pub struct DevCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub cert_path: PathBuf,
}

const DEV_CA_NAME: &str = "Metacircular development CA";

fn dev_ca_params() -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, DEV_CA_NAME);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    params
}

impl DevCa {
    /// Loads an existing `dir/ca.pem` + `dir/ca-key.pem`; never creates one
    /// (`None` when either file is missing).
    pub fn load(dir: &Path) -> Result<Option<Self>, TlsError> {
        if dir.join("ca.pem").is_file() && dir.join("ca-key.pem").is_file() {
            Self::load_or_create(dir).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Loads `dir/ca.pem` + `dir/ca-key.pem`, creating them (key 0600) on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self, TlsError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca-key.pem");
        let key = if cert_path.is_file() && key_path.is_file() {
            let pem = fs::read_to_string(&key_path).map_err(|source| TlsError::Io {
                path: key_path.clone(),
                source,
            })?;
            rcgen::KeyPair::from_pem(&pem)?
        } else {
            let key = rcgen::KeyPair::generate()?;
            let cert = dev_ca_params().self_signed(&key)?;
            write_private(&key_path, key.serialize_pem().as_bytes())?;
            write_public(&cert_path, cert.pem().as_bytes())?;
            key
        };
        Ok(Self {
            issuer: rcgen::Issuer::new(dev_ca_params(), key),
            cert_path,
        })
    }

    /// Issues a server certificate for `names` (DNS names or IPs), writing
    /// `<stem>.pem` (leaf + CA) and `<stem>-key.pem` (0600) into `dir`.
    /// Names are checked first ([`check_san`]). Valid 2025–2035: the
    /// platform's own loopback certificates.
    pub fn issue(&self, dir: &Path, stem: &str, names: &[&str]) -> Result<TlsFiles, TlsError> {
        self.issue_valid(dir, stem, names, ((2025, 1, 1), (2035, 1, 1)))
    }

    /// Like [`issue`](Self::issue), valid from yesterday (clock skew) for
    /// `days` days from today: what clients that cap a server certificate's
    /// lifetime (398 days in browsers, 825 on Apple's systems) accept.
    pub fn issue_for_days(
        &self,
        dir: &Path,
        stem: &str,
        names: &[&str],
        days: u32,
    ) -> Result<TlsFiles, TlsError> {
        let today = mc_kit::clock::unix_now().div_euclid(86_400);
        let validity = (
            civil_from_days(today - 1),
            civil_from_days(today + i64::from(days)),
        );
        self.issue_valid(dir, stem, names, validity)
    }

    fn issue_valid(
        &self,
        dir: &Path,
        stem: &str,
        names: &[&str],
        (from, until): (Ymd, Ymd),
    ) -> Result<TlsFiles, TlsError> {
        for n in names {
            check_san(n)?;
        }
        let key = rcgen::KeyPair::generate()?;
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            names.first().copied().unwrap_or(stem),
        );
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
        let cert = params.signed_by(&key, &self.issuer)?;
        let ca_pem = fs::read_to_string(&self.cert_path).map_err(|source| TlsError::Io {
            path: self.cert_path.clone(),
            source,
        })?;
        let files = TlsFiles {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}-key.pem")),
        };
        write_public(&files.cert, format!("{}{}", cert.pem(), ca_pem).as_bytes())?;
        write_private(&files.key, key.serialize_pem().as_bytes())?;
        Ok(files)
    }
}

/// A calendar date: year, month, day.
type Ymd = (i32, u8, u8);

/// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> Ymd {
    let (year, month, day) = mc_kit::clock::civil_from_days(days);
    (
        i32::try_from(year).unwrap_or(i32::MAX),
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let io_err = |source| TlsError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io_err)?;
    f.write_all(bytes).map_err(io_err)?;
    f.sync_all().map_err(io_err)
}

fn write_public(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    fs::write(path, bytes).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_from_day_counts() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn subject_alt_names_are_checked() {
        for ok in [
            "app.example.test",
            "*.example.test",
            "localhost",
            "127.0.0.1",
            "::1",
        ] {
            check_san(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "a b",
            "*",
            "*.*.example.test",
            "app.*.test",
            "1.2.3.4.5",
            "-x.test/",
        ] {
            assert!(check_san(bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(DevCa::load(dir.path()).expect("load").is_none());
        assert!(
            !dir.path().join("ca.pem").exists(),
            "load never creates a CA"
        );
        let ca = DevCa::load_or_create(dir.path()).expect("ca");
        assert!(matches!(
            ca.issue(dir.path(), "x", &["a b"]),
            Err(TlsError::Name(_))
        ));
        assert!(DevCa::load(dir.path()).expect("load").is_some());
    }

    #[test]
    fn dev_ca_issues_certs_rustls_accepts_and_persists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = DevCa::load_or_create(dir.path()).expect("ca");
        let files = ca
            .issue(dir.path(), "svc", &["localhost", "127.0.0.1"])
            .expect("issue");
        let mode = fs::metadata(&files.key).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let cfg = files.server_config(ALPN_H2_H1).expect("server config");
        assert_eq!(cfg.alpn_protocols[0], b"h2");

        // A reloaded CA signs with the same key: the first CA cert still verifies.
        let ca_pem_before = fs::read(&ca.cert_path).expect("read");
        let again = DevCa::load_or_create(dir.path()).expect("reload");
        assert_eq!(fs::read(&again.cert_path).expect("read"), ca_pem_before);
        let files2 = again
            .issue(dir.path(), "svc2", &["localhost"])
            .expect("issue");
        let roots = {
            let mut r = rustls::RootCertStore::empty();
            for c in read_certs(&again.cert_path).expect("ca") {
                r.add(c).expect("add root");
            }
            Arc::new(r)
        };
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            roots,
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
        .build()
        .expect("verifier");
        let chain = read_certs(&files2.cert).expect("chain");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let now = rustls_pki_types::UnixTime::now();
        rustls::client::danger::ServerCertVerifier::verify_server_cert(
            verifier.as_ref(),
            &chain[0],
            &chain[1..],
            &name,
            &[],
            now,
        )
        .expect("leaf issued by the reloaded CA verifies against ca.pem");
    }

    #[test]
    fn mismatched_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = DevCa::load_or_create(dir.path()).expect("ca");
        let a = ca.issue(dir.path(), "a", &["a.test"]).expect("a");
        let b = ca.issue(dir.path(), "b", &["b.test"]).expect("b");
        let crossed = TlsFiles {
            cert: a.cert,
            key: b.key,
        };
        assert!(crossed.server_config(ALPN_H2_H1).is_err());
    }

    #[test]
    fn a_reload_serves_the_new_pair_and_a_bad_one_keeps_the_old() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = DevCa::load_or_create(dir.path()).expect("ca");
        let first = ca.issue(dir.path(), "svc", &["localhost"]).expect("issue");
        let (_cfg, cert) = first.reloadable_server_config(ALPN_H2_H1).expect("config");
        let before = cert.leaf().expect("leaf");
        let other = ca
            .issue(dir.path(), "other", &["localhost"])
            .expect("issue");
        // A key that is not the new leaf's: refused, the old pair stays.
        fs::copy(&other.cert, &first.cert).expect("copy");
        assert!(cert.reload().is_err());
        assert_eq!(cert.leaf(), Some(before.clone()));
        fs::copy(&other.key, &first.key).expect("copy");
        cert.reload().expect("reload");
        let after = cert.leaf().expect("leaf");
        assert_ne!(after, before);
        assert_eq!(read_certs(&other.cert).expect("certs")[0], after);
        fs::remove_file(&first.key).expect("rm");
        assert!(cert.reload().is_err());
        assert_eq!(cert.leaf(), Some(after));
    }

    #[test]
    fn missing_files_are_refused_by_key() {
        let files = TlsFiles {
            cert: "/nonexistent/c.pem".into(),
            key: "/nonexistent/k.pem".into(),
        };
        let err = files.validate("server.tls").unwrap_err();
        assert_eq!(err.field, "server.tls.cert");
    }
}
