//! The `[mcr]` section of the control plane's TOML.
//!
//! ```toml
//! [mcr]
//! realm = ""                    # token endpoint URL; "" = <public URL>/v2/token
//! service = ""                  # token service name; "" = the REST host:port
//! max_blob_size = 17179869184   # bytes per blob (16 GiB); an upload past it is 413
//! min_free = 1073741824         # bytes the data dir keeps free (1 GiB): an upload that
//!                               # would leave less is refused (507); 0 = no check
//! token_ttl = "5m"              # registry tokens' lifetime
//! max_sessions = 4096           # open upload sessions in all
//! max_sessions_per_account = 64
//! upload_ttl = "1h"             # an upload session idle this long is removed
//! login_tags = []               # tags MCIAS's login policy sees for registry logins
//! gc_grace = "1h"               # GC spares links/blobs unreferenced for less (>= 1s)
//! gc_interval = "1h"            # a GC run starts this often ("0s": only on demand)
//! retention_interval = "24h"    # the retention rules run this often ("0s": only on demand)
//! storage = "filesystem"        # blobs under <data_dir>/mcr/blobs, or "s3":
//! s3_endpoint = ""              # https://…, or http:// on loopback; "" = AWS for the region
//! s3_bucket = ""
//! s3_region = "us-east-1"
//! s3_prefix = ""                # key prefix in the bucket ("" or ending in "/")
//! s3_path_style = true          # endpoint/bucket/key, as self-hosted stores want
//! s3_access_key_id = ""
//! s3_secret_access_key_file = "" # or the variable MC_MCR_S3_SECRET_ACCESS_KEY
//! s3_ca_cert = ""               # PEM file of CAs trusted for s3_endpoint (a self-hosted
//!                               # store's own CA), besides the platform's roots
//! ```
//!
//! Invariant: every limit is bounded and non-zero. The S3 secret is read
//! from a file or the environment, never from this file, and never printed.

use mc_kit::config::{Duration, Invalid, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McrConfig {
    /// The token endpoint advertised in `WWW-Authenticate` (empty: `<public URL>/v2/token`).
    #[serde(default)]
    pub realm: String,
    /// The `service` of the challenge and of token requests (empty: the REST `host:port`).
    #[serde(default)]
    pub service: String,
    /// Largest blob accepted, in bytes.
    #[serde(default = "d_blob")]
    pub max_blob_size: u64,
    /// Bytes the data directory's filesystem keeps free: uploads (staged
    /// there on every backend) that would leave less are refused. 0: no check.
    #[serde(default = "d_min_free")]
    pub min_free: u64,
    /// How long a registry token is valid (30 s to 1 h).
    #[serde(default = "d_ttl")]
    pub token_ttl: Duration,
    /// Open upload sessions, in all.
    #[serde(default = "d_sessions")]
    pub max_sessions: usize,
    /// Open upload sessions per account.
    #[serde(default = "d_per_account")]
    pub max_sessions_per_account: usize,
    /// An upload session idle this long is removed (1 min to 7 days).
    #[serde(default = "d_upload_ttl")]
    pub upload_ttl: Duration,
    /// Tags sent with registry logins to MCIAS's login policy (`service_name = "mcr"`).
    #[serde(default)]
    pub login_tags: Vec<String>,
    /// GC removes a link or blob only this long after it was last
    /// referenced or linked (1 s to 30 days; below 10 min only for tests).
    #[serde(default = "d_gc")]
    pub gc_grace: Duration,
    /// How often a GC run starts on its own (0 s: never, only on demand;
    /// else 1 s to 7 days).
    #[serde(default = "d_gc")]
    pub gc_interval: Duration,
    /// How often the enabled retention rules run on their own (0 s: never,
    /// only on demand; else 1 s to 7 days).
    #[serde(default = "d_retention")]
    pub retention_interval: Duration,
    /// Where blobs live: `filesystem` or `s3`.
    #[serde(default = "d_storage")]
    pub storage: String,
    /// The S3-compatible store (`storage = "s3"`).
    #[serde(default)]
    pub s3_endpoint: String,
    #[serde(default)]
    pub s3_bucket: String,
    #[serde(default = "d_region")]
    pub s3_region: String,
    #[serde(default)]
    pub s3_prefix: String,
    #[serde(default = "d_true")]
    pub s3_path_style: bool,
    #[serde(default)]
    pub s3_access_key_id: String,
    /// A file holding the secret access key (one line).
    #[serde(default)]
    pub s3_secret_access_key_file: String,
    /// The secret itself, only from `MC_MCR_S3_SECRET_ACCESS_KEY`.
    #[serde(default)]
    pub s3_secret_access_key: Redacted,
    /// A PEM file of CA certificates trusted for `s3_endpoint` besides the
    /// platform's roots (a self-hosted store with its own CA).
    #[serde(default)]
    pub s3_ca_cert: String,
}

/// A secret string whose `Debug` never shows it.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "[redacted]"
        })
    }
}

fn d_storage() -> String {
    "filesystem".into()
}
fn d_region() -> String {
    "us-east-1".into()
}
fn d_true() -> bool {
    true
}

/// Whether an `http://` URL's host is a loopback address.
fn loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl McrConfig {
    /// The blob backend, reading the S3 secret from its file or variable.
    pub(crate) fn backend(&self) -> Result<crate::storage::Backend, String> {
        if self.storage != "s3" {
            return Ok(crate::storage::Backend::Filesystem);
        }
        let secret = if self.s3_secret_access_key_file.is_empty() {
            self.s3_secret_access_key.0.clone()
        } else {
            let path = &self.s3_secret_access_key_file;
            std::fs::read_to_string(path)
                .map_err(|e| format!("mcr.s3_secret_access_key_file {path}: {e}"))?
                .trim_end_matches(['\r', '\n'])
                .to_owned()
        };
        if secret.is_empty() {
            return Err(
                "mcr.s3_secret_access_key_file (or MC_MCR_S3_SECRET_ACCESS_KEY) is empty".into(),
            );
        }
        let ca_cert = if self.s3_ca_cert.is_empty() {
            Vec::new()
        } else {
            let path = &self.s3_ca_cert;
            let pem = std::fs::read(path).map_err(|e| format!("mcr.s3_ca_cert {path}: {e}"))?;
            if !pem
                .windows(b"-----BEGIN CERTIFICATE-----".len())
                .any(|w| w == b"-----BEGIN CERTIFICATE-----")
            {
                return Err(format!("mcr.s3_ca_cert {path}: no PEM certificate in it"));
            }
            pem
        };
        Ok(crate::storage::Backend::S3(crate::storage::S3Config {
            endpoint: self.s3_endpoint.clone(),
            bucket: self.s3_bucket.clone(),
            region: self.s3_region.clone(),
            prefix: self.s3_prefix.clone(),
            path_style: self.s3_path_style,
            access_key_id: self.s3_access_key_id.clone(),
            secret_access_key: zeroize::Zeroizing::new(secret),
            ca_cert,
        }))
    }

    fn validate_storage(&self) -> Result<(), Invalid> {
        match self.storage.as_str() {
            "filesystem" => return Ok(()),
            "s3" => {}
            _ => return Err(Invalid::new("storage", "\"filesystem\" or \"s3\"")),
        }
        let e = &self.s3_endpoint;
        if !(e.is_empty() || e.starts_with("https://") || loopback_http(e)) {
            return Err(Invalid::new(
                "s3_endpoint",
                "an https:// URL (http:// only to a loopback address)",
            ));
        }
        let bucket_ok = (3..=63).contains(&self.s3_bucket.len())
            && self
                .s3_bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(Invalid::new(
                "s3_bucket",
                "a bucket name (3-63 of a-z 0-9 . -)",
            ));
        }
        let p = &self.s3_prefix;
        let prefix_ok = p.is_empty()
            || (p.len() <= 256
                && p.ends_with('/')
                && !p.starts_with('/')
                && !p.contains("..")
                && !p.contains("//")
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b)));
        if !prefix_ok {
            return Err(Invalid::new(
                "s3_prefix",
                "empty, or up to 256 of a-z A-Z 0-9 / . _ - ending in /",
            ));
        }
        if self.s3_region.is_empty() || self.s3_access_key_id.is_empty() {
            return Err(Invalid::new(
                "s3_access_key_id",
                "s3_region and s3_access_key_id are required with storage = \"s3\"",
            ));
        }
        if !self.s3_ca_cert.is_empty() && !self.s3_endpoint.starts_with("https://") {
            return Err(Invalid::new(
                "s3_ca_cert",
                "only with an https:// s3_endpoint",
            ));
        }
        if self.s3_secret_access_key_file.is_empty() && self.s3_secret_access_key.0.is_empty() {
            return Err(Invalid::new(
                "s3_secret_access_key_file",
                "a file holding the secret key (or MC_MCR_S3_SECRET_ACCESS_KEY)",
            ));
        }
        Ok(())
    }
}

fn d_retention() -> Duration {
    Duration::from_secs(86_400)
}

fn d_blob() -> u64 {
    16 << 30
}
fn d_min_free() -> u64 {
    1 << 30
}
fn d_ttl() -> Duration {
    Duration::from_secs(300)
}
fn d_upload_ttl() -> Duration {
    Duration::from_secs(3600)
}
fn d_gc() -> Duration {
    Duration::from_secs(3600)
}
fn d_sessions() -> usize {
    4096
}
fn d_per_account() -> usize {
    64
}

impl Default for McrConfig {
    fn default() -> Self {
        Self {
            realm: String::new(),
            service: String::new(),
            max_blob_size: d_blob(),
            min_free: d_min_free(),
            token_ttl: d_ttl(),
            max_sessions: d_sessions(),
            max_sessions_per_account: d_per_account(),
            upload_ttl: d_upload_ttl(),
            login_tags: Vec::new(),
            gc_grace: d_gc(),
            gc_interval: d_gc(),
            retention_interval: d_retention(),
            storage: d_storage(),
            s3_endpoint: String::new(),
            s3_bucket: String::new(),
            s3_region: d_region(),
            s3_prefix: String::new(),
            s3_path_style: true,
            s3_access_key_id: String::new(),
            s3_secret_access_key_file: String::new(),
            s3_secret_access_key: Redacted::default(),
            s3_ca_cert: String::new(),
        }
    }
}

impl Validate for McrConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if !(1..=(1 << 40)).contains(&self.max_blob_size) {
            return Err(Invalid::new("max_blob_size", "between 1 byte and 1 TiB"));
        }
        if self.min_free > 1 << 60 {
            return Err(Invalid::new("min_free", "at most 1 EiB (0: no check)"));
        }
        let ttl = self.token_ttl.get().as_secs();
        if !(30..=3600).contains(&ttl) {
            return Err(Invalid::new("token_ttl", "between 30s and 1h"));
        }
        if !(1..=100_000).contains(&self.max_sessions) {
            return Err(Invalid::new("max_sessions", "between 1 and 100000"));
        }
        if !(1..=self.max_sessions).contains(&self.max_sessions_per_account) {
            return Err(Invalid::new(
                "max_sessions_per_account",
                "between 1 and max_sessions",
            ));
        }
        let url = self.realm.starts_with("https://") || self.realm.starts_with("http://");
        if !(self.realm.is_empty() || url) {
            return Err(Invalid::new("realm", "an http(s) URL"));
        }
        if self.service.chars().any(|c| c == '"' || c.is_control()) {
            return Err(Invalid::new("service", "no quotes or control characters"));
        }
        if !(60..=7 * 86_400).contains(&self.upload_ttl.get().as_secs()) {
            return Err(Invalid::new("upload_ttl", "between 1m and 7d"));
        }
        if !(1..=30 * 86_400).contains(&self.gc_grace.get().as_secs()) {
            return Err(Invalid::new("gc_grace", "between 1s and 30d"));
        }
        let every = self.gc_interval.get().as_secs();
        if every > 7 * 86_400 {
            return Err(Invalid::new("gc_interval", "0s (off) or up to 7d"));
        }
        if self.retention_interval.get().as_secs() > 7 * 86_400 {
            return Err(Invalid::new("retention_interval", "0s (off) or up to 7d"));
        }
        if self.login_tags.len() > 32 {
            return Err(Invalid::new("login_tags", "at most 32"));
        }
        self.validate_storage()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_their_key() {
        assert!(McrConfig::default().validate().is_ok());
        let c = McrConfig {
            token_ttl: Duration::from_secs(5),
            ..McrConfig::default()
        };
        assert!(c.validate().is_err());
        let c = McrConfig {
            realm: "ftp://x".into(),
            ..McrConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn s3_settings_are_checked_and_the_secret_never_printed() {
        let s3 = McrConfig {
            storage: "s3".into(),
            s3_endpoint: "http://127.0.0.1:9000".into(),
            s3_bucket: "mcr-blobs".into(),
            s3_access_key_id: "AKID".into(),
            s3_secret_access_key: Redacted("very-secret".into()),
            ..McrConfig::default()
        };
        assert!(s3.validate().is_ok());
        assert!(!format!("{s3:?}").contains("very-secret"));
        let Ok(crate::storage::Backend::S3(b)) = s3.backend() else {
            panic!("an S3 backend");
        };
        assert!(!format!("{b:?}").contains("very-secret"));
        for (bad, key) in [
            (
                McrConfig {
                    storage: "tape".into(),
                    ..s3.clone()
                },
                "storage",
            ),
            (
                McrConfig {
                    s3_endpoint: "http://s3.example.com".into(),
                    ..s3.clone()
                },
                "s3_endpoint",
            ),
            (
                McrConfig {
                    s3_endpoint: "http://127.0.0.1.example.com:80".into(),
                    ..s3.clone()
                },
                "s3_endpoint",
            ),
            (
                McrConfig {
                    s3_bucket: "A_B".into(),
                    ..s3.clone()
                },
                "s3_bucket",
            ),
            (
                McrConfig {
                    s3_prefix: "../x/".into(),
                    ..s3.clone()
                },
                "s3_prefix",
            ),
            (
                McrConfig {
                    s3_prefix: "nolastslash".into(),
                    ..s3.clone()
                },
                "s3_prefix",
            ),
            (
                McrConfig {
                    s3_secret_access_key: Redacted::default(),
                    ..s3.clone()
                },
                "s3_secret_access_key_file",
            ),
        ] {
            let e = bad.validate().expect_err(key);
            assert_eq!(e.field, key, "{}", e.message);
        }
        let https = McrConfig {
            s3_endpoint: "https://s3.example.com".into(),
            ..s3.clone()
        };
        assert!(https.validate().is_ok());
        // A CA file: only for https, read and checked when the backend opens.
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        let with_ca = |path: &std::path::Path, endpoint: &McrConfig| McrConfig {
            s3_ca_cert: path.display().to_string(),
            ..endpoint.clone()
        };
        let e = with_ca(&ca, &s3).validate().expect_err("http");
        assert_eq!(e.field, "s3_ca_cert");
        assert!(with_ca(&ca, &https).validate().is_ok());
        let missing = with_ca(&ca, &https).backend().err().unwrap_or_default();
        assert!(missing.contains("mcr.s3_ca_cert"), "{missing}");
        std::fs::write(&ca, "not a certificate").expect("write");
        let junk = with_ca(&ca, &https).backend().err().unwrap_or_default();
        assert!(junk.contains("no PEM certificate"), "{junk}");
        std::fs::create_dir_all(dir.path().join("ca")).expect("mkdir");
        let dev = mc_service::tls::DevCa::load_or_create(&dir.path().join("ca")).expect("ca");
        let ca = dev.cert_path.clone();
        let backend = with_ca(&ca, &https)
            .backend()
            .expect("an S3 backend with a CA");
        let crate::storage::Backend::S3(b) = &backend else {
            panic!("an S3 backend");
        };
        assert!(!b.ca_cert.is_empty());
        assert!(
            crate::storage::Storage::open(dir.path(), &backend).is_ok(),
            "object_store takes the CA"
        );
        let too_much = McrConfig {
            min_free: u64::MAX,
            ..McrConfig::default()
        };
        assert_eq!(
            too_much.validate().map_err(|e| e.field),
            Err("min_free".to_owned())
        );
        let missing = McrConfig {
            s3_secret_access_key_file: "/nonexistent/secret".into(),
            ..s3
        };
        assert!(missing.backend().is_err());
    }
}
