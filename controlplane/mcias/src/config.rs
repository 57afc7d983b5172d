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
//! totp_lockout_after = 5       # wrong second factors before the second step locks
//! totp_lockout = "1m"          # first second-step lock; doubles, at most 15m
//! max_session_age = "7d"       # renewals never outlive the sign-in by more than this
//! ipv6_prefix_len = 64         # per-address limits key IPv6 by this prefix (IPv4: /32)
//! audit_max_events = 1000000   # audit retention by count (oldest pruned first)
//! audit_max_age = "365d"       # audit retention by age
//! ```
//!
//! Expired token records and audit rows past retention are pruned at most
//! once a minute, in bounded batches, on the request path (the pruning is
//! itself one audit event).

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
    /// Wrong second factors (TOTP codes, bad two-step nonces) in a row
    /// before the second step of a login locks (counted apart from wrong
    /// passwords, so a guessed code never inflates the password lockout).
    #[serde(default = "d_lockout_after")]
    pub totp_lockout_after: u32,
    /// The first second-step lock; doubles per further failure, at most
    /// [`TOTP_LOCKOUT_MAX`].
    #[serde(default = "d_lockout")]
    pub totp_lockout: Duration,
    /// The longest a sign-in lasts through renewals: tokens carry the time
    /// of the original authentication (`auth_time`) and expire at the
    /// latest this long after it; renewing past it needs a new login.
    #[serde(default = "d_max_session_age")]
    pub max_session_age: Duration,
    /// Per-address limits key IPv6 sources by this prefix length (one /64
    /// is usually one host or site); IPv4 sources by their address.
    #[serde(default = "d_ipv6_prefix")]
    pub ipv6_prefix_len: u8,
    /// Audit retention by count: beyond it the oldest rows are pruned.
    #[serde(default = "d_audit_max_events")]
    pub audit_max_events: u64,
    /// Audit retention by age.
    #[serde(default = "d_audit_max_age")]
    pub audit_max_age: Duration,
}

/// The longest the second step of a login stays locked.
pub const TOTP_LOCKOUT_MAX: std::time::Duration = std::time::Duration::from_secs(15 * 60);

fn d_max_session_age() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn d_ipv6_prefix() -> u8 {
    64
}
fn d_audit_max_events() -> u64 {
    1_000_000
}
fn d_audit_max_age() -> Duration {
    Duration::from_secs(365 * 86_400)
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
            totp_lockout_after: d_lockout_after(),
            totp_lockout: d_lockout(),
            max_session_age: d_max_session_age(),
            ipv6_prefix_len: d_ipv6_prefix(),
            audit_max_events: d_audit_max_events(),
            audit_max_age: d_audit_max_age(),
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
        if self.totp_lockout_after == 0 {
            return Err(Invalid::new("totp_lockout_after", "at least 1"));
        }
        let t = self.totp_lockout.get();
        if t < std::time::Duration::from_secs(1) || t > TOTP_LOCKOUT_MAX {
            return Err(Invalid::new("totp_lockout", "between 1s and 15m"));
        }
        if self.max_session_age.get() < std::time::Duration::from_secs(1) {
            return Err(Invalid::new("max_session_age", "at least 1s"));
        }
        if !(32..=128).contains(&self.ipv6_prefix_len) {
            return Err(Invalid::new("ipv6_prefix_len", "between 32 and 128"));
        }
        if self.audit_max_events < 1000 {
            return Err(Invalid::new("audit_max_events", "at least 1000"));
        }
        if self.audit_max_age.get() < std::time::Duration::from_secs(86_400) {
            return Err(Invalid::new("audit_max_age", "at least 1d"));
        }
        if self.audience.is_empty() {
            return Err(Invalid::new("audience", "must not be empty"));
        }
        Ok(())
    }
}
