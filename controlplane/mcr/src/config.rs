//! The `[mcr]` section of the control plane's TOML.
//!
//! ```toml
//! [mcr]
//! realm = ""                    # token endpoint URL; "" = <public URL>/v2/token
//! service = ""                  # token service name; "" = the REST host:port
//! max_blob_size = 17179869184   # bytes per blob (16 GiB); an upload past it is 413
//! token_ttl = "5m"              # registry tokens' lifetime
//! max_sessions = 4096           # open upload sessions in all
//! max_sessions_per_account = 64
//! upload_ttl = "1h"             # an upload session idle this long is removed
//! login_tags = []               # tags MCIAS's login policy sees for registry logins
//! gc_grace = "1h"               # GC spares links/blobs unreferenced for less (>= 1s)
//! gc_interval = "1h"            # a GC run starts this often ("0s": only on demand)
//! retention_interval = "24h"    # the retention rules run this often ("0s": only on demand)
//! ```
//!
//! Invariant: every limit is bounded and non-zero.

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
}

fn d_retention() -> Duration {
    Duration::from_secs(86_400)
}

fn d_blob() -> u64 {
    16 << 30
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
            token_ttl: d_ttl(),
            max_sessions: d_sessions(),
            max_sessions_per_account: d_per_account(),
            upload_ttl: d_upload_ttl(),
            login_tags: Vec::new(),
            gc_grace: d_gc(),
            gc_interval: d_gc(),
            retention_interval: d_retention(),
        }
    }
}

impl Validate for McrConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if !(1..=(1 << 40)).contains(&self.max_blob_size) {
            return Err(Invalid::new("max_blob_size", "between 1 byte and 1 TiB"));
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
        Ok(())
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
}
