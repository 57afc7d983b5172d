//! The `[mcias]` section of the control plane's TOML.
//!
//! ```toml
//! [mcias]
//! issuer = "https://iam.example.net:8443"   # `iss` of every token; default: the REST URL
//! audience = "metacircular"
//! token_ttl = "12h"            # human sessions
//! admin_token_ttl = "1h"       # sessions of admins
//! system_token_ttl = "90d"     # default for admin-issued system tokens
//! system_token_max_ttl = "365d"
//! argon2_memory_kib = 19456    # OWASP floor: 19 MiB, t=2, p=1
//! argon2_iterations = 2
//! argon2_parallelism = 1
//! lockout_after = 5            # failed logins before the account locks
//! lockout = "1m"               # first lock; doubles per further failure, at most 1 day
//! requests_per_minute_per_ip = 120   # login + validate
//! failures_per_minute_per_ip = 20
//! sso_code_ttl = "60s"         # OAuth authorization codes (1s to 10m)
//! webauthn_rp_id = "localhost" # passkeys: the host name the UI is served under (not an IP)
//! webauthn_origin = ""         # default: https://<webauthn_rp_id>:<REST port>
//! ```

use mc_kit::config::{Duration, Invalid, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McAuthConfig {
    #[serde(default)]
    pub issuer: String,
    #[serde(default = "d_audience")]
    pub audience: String,
    #[serde(default = "d_token_ttl")]
    pub token_ttl: Duration,
    #[serde(default = "d_admin_ttl")]
    pub admin_token_ttl: Duration,
    #[serde(default = "d_system_ttl")]
    pub system_token_ttl: Duration,
    #[serde(default = "d_system_max")]
    pub system_token_max_ttl: Duration,
    #[serde(default = "d_mem")]
    pub argon2_memory_kib: u32,
    #[serde(default = "d_iter")]
    pub argon2_iterations: u32,
    #[serde(default = "d_par")]
    pub argon2_parallelism: u32,
    #[serde(default = "d_lockout_after")]
    pub lockout_after: u32,
    #[serde(default = "d_lockout")]
    pub lockout: Duration,
    #[serde(default = "d_rpm")]
    pub requests_per_minute_per_ip: u32,
    #[serde(default = "d_fpm")]
    pub failures_per_minute_per_ip: u32,
    #[serde(default = "d_code_ttl")]
    pub sso_code_ttl: Duration,
    #[serde(default = "d_rp_id")]
    pub webauthn_rp_id: String,
    #[serde(default)]
    pub webauthn_origin: String,
}

fn d_rp_id() -> String {
    "localhost".to_owned()
}

fn d_code_ttl() -> Duration {
    Duration::from_secs(60)
}

fn d_audience() -> String {
    "metacircular".to_owned()
}
fn d_token_ttl() -> Duration {
    Duration::from_secs(12 * 3600)
}
fn d_admin_ttl() -> Duration {
    Duration::from_secs(3600)
}
fn d_system_ttl() -> Duration {
    Duration::from_secs(90 * 86_400)
}
fn d_system_max() -> Duration {
    Duration::from_secs(365 * 86_400)
}
fn d_mem() -> u32 {
    19_456
}
fn d_iter() -> u32 {
    2
}
fn d_par() -> u32 {
    1
}
fn d_lockout_after() -> u32 {
    5
}
fn d_lockout() -> Duration {
    Duration::from_secs(60)
}
fn d_rpm() -> u32 {
    120
}
fn d_fpm() -> u32 {
    20
}

impl Default for McAuthConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audience: d_audience(),
            token_ttl: d_token_ttl(),
            admin_token_ttl: d_admin_ttl(),
            system_token_ttl: d_system_ttl(),
            system_token_max_ttl: d_system_max(),
            argon2_memory_kib: d_mem(),
            argon2_iterations: d_iter(),
            argon2_parallelism: d_par(),
            lockout_after: d_lockout_after(),
            lockout: d_lockout(),
            requests_per_minute_per_ip: d_rpm(),
            failures_per_minute_per_ip: d_fpm(),
            sso_code_ttl: d_code_ttl(),
            webauthn_rp_id: d_rp_id(),
            webauthn_origin: String::new(),
        }
    }
}

/// Field names are relative to the `[mcias]` section (the host prefixes it).
impl Validate for McAuthConfig {
    fn validate(&self) -> Result<(), Invalid> {
        // OWASP's Argon2id floor (m=19 MiB, t=2, p=1) or an equivalent trade.
        if self.argon2_memory_kib < 19_456
            || self.argon2_iterations < 2
            || self.argon2_parallelism == 0
        {
            return Err(Invalid::new(
                "argon2_memory_kib",
                "Argon2id parameters below the OWASP floor (19456 KiB, 2 iterations, parallelism ≥ 1)",
            ));
        }
        for (k, d) in [
            ("token_ttl", self.token_ttl),
            ("admin_token_ttl", self.admin_token_ttl),
            ("system_token_ttl", self.system_token_ttl),
            ("system_token_max_ttl", self.system_token_max_ttl),
        ] {
            if d.get().as_secs() < 60 {
                return Err(Invalid::new(k, "at least 1m"));
            }
        }
        if self.system_token_ttl > self.system_token_max_ttl {
            return Err(Invalid::new(
                "system_token_ttl",
                "must not exceed system_token_max_ttl",
            ));
        }
        let code = self.sso_code_ttl.get();
        if code < std::time::Duration::from_secs(1) || code > std::time::Duration::from_secs(600) {
            return Err(Invalid::new("sso_code_ttl", "between 1s and 10m"));
        }
        if self.lockout_after == 0 {
            return Err(Invalid::new("lockout_after", "at least 1"));
        }
        if self.audience.is_empty() {
            return Err(Invalid::new("audience", "must not be empty"));
        }
        Ok(())
    }
}
