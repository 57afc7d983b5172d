//! The `[metacrypt]` section of the control plane's TOML.
//!
//! ```toml
//! [metacrypt]
//! argon2_memory_kib = 65536    # passphrase slots; OWASP floor 19 MiB, t=2
//! argon2_iterations = 3
//! argon2_parallelism = 1
//! unseal_backoff_after = 5     # failed unseal attempts before back-off
//! unseal_backoff = "1s"        # first wait; doubles per further failure
//! unseal_backoff_max = "15m"
//! unseal_wait = "5s"           # how long an attempt waits for the one derivation slot
//! dev_passphrase_file = ""     # dev only (`mcd dev`): init and unseal from this file
//! auto_unseal_key_file = ""    # opt-in: unseal at start from this key file (separate storage)
//! rewrap_batch_rows = 256      # rows per transaction of a DEK rewrap job
//! rewrap_pause = "10ms"        # between a rewrap job's batches (lets other writers in)
//! transit_rotation_check = "1h" # how often transit's auto_rotate_period is checked
//! count_flush = "10s"          # how often AES-GCM encryption counts are saved
//! kv_expiry_check = "1m"       # how often kv versions past delete_version_after are destroyed
//! crl_refresh_check = "5s"     # how often pki CRLs near next_update are re-signed
//! acme_tidy_check = "1h"       # how often expired ACME orders, authorizations, EAB keys go
//! ```
//!
//! Invariant: the Argon2id cost is never below the OWASP floor, and the
//! parameters are stored in each slot, so changing them affects only slots
//! created later.

use std::path::PathBuf;

use mc_kit::config::{Duration, Invalid, Validate};
use serde::Deserialize;

/// OWASP's Argon2id floor: 19 MiB, t = 2.
pub const ARGON2_MIN_MEMORY_KIB: u32 = 19 * 1024;
pub const ARGON2_MIN_ITERATIONS: u32 = 2;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetacryptConfig {
    #[serde(default = "d_mem")]
    pub argon2_memory_kib: u32,
    #[serde(default = "d_iter")]
    pub argon2_iterations: u32,
    #[serde(default = "d_par")]
    pub argon2_parallelism: u32,
    #[serde(default = "d_after")]
    pub unseal_backoff_after: u32,
    #[serde(default = "d_backoff")]
    pub unseal_backoff: Duration,
    #[serde(default = "d_backoff_max")]
    pub unseal_backoff_max: Duration,
    #[serde(default = "d_wait")]
    pub unseal_wait: Duration,
    /// Dev only: a passphrase file beside the store; the first start
    /// initialises with a random passphrase written there (0600), every
    /// start unseals from it. Whoever reads the data dir reads everything.
    #[serde(default)]
    pub dev_passphrase_file: Option<PathBuf>,
    /// Opt-in auto-unseal: `mcctl crypt slots add-keyfile` writes a key file
    /// here (0600) and every start unseals from it. Absolute, and not under
    /// the data dir: whoever holds the store and this file reads every
    /// secret, so it belongs on separate storage (a USB stick, another disk).
    #[serde(default)]
    pub auto_unseal_key_file: Option<PathBuf>,
    /// Rows per write transaction of a rewrap job (1 to 10,000).
    #[serde(default = "d_batch")]
    pub rewrap_batch_rows: usize,
    /// The pause between a rewrap job's batches.
    #[serde(default = "d_pause")]
    pub rewrap_pause: Duration,
    /// The periodic jobs' intervals (while unsealed).
    #[serde(default = "d_rotation_check")]
    pub transit_rotation_check: Duration,
    #[serde(default = "d_count_flush")]
    pub count_flush: Duration,
    #[serde(default = "d_kv_expiry")]
    pub kv_expiry_check: Duration,
    #[serde(default = "d_crl_refresh")]
    pub crl_refresh_check: Duration,
    #[serde(default = "d_acme_tidy")]
    pub acme_tidy_check: Duration,
}

fn d_mem() -> u32 {
    64 * 1024
}
fn d_iter() -> u32 {
    3
}
fn d_par() -> u32 {
    1
}
fn d_after() -> u32 {
    5
}
fn d_backoff() -> Duration {
    Duration::from_secs(1)
}
fn d_backoff_max() -> Duration {
    Duration::from_secs(15 * 60)
}
fn d_wait() -> Duration {
    Duration::from_secs(5)
}
fn d_batch() -> usize {
    256
}
fn d_pause() -> Duration {
    Duration::from_millis(10)
}
fn d_rotation_check() -> Duration {
    Duration::from_secs(3600)
}
fn d_count_flush() -> Duration {
    Duration::from_secs(10)
}
fn d_kv_expiry() -> Duration {
    Duration::from_secs(60)
}
fn d_acme_tidy() -> Duration {
    Duration::from_secs(3600)
}

fn d_crl_refresh() -> Duration {
    Duration::from_secs(5)
}

impl Default for MetacryptConfig {
    fn default() -> Self {
        Self {
            argon2_memory_kib: d_mem(),
            argon2_iterations: d_iter(),
            argon2_parallelism: d_par(),
            unseal_backoff_after: d_after(),
            unseal_backoff: d_backoff(),
            unseal_backoff_max: d_backoff_max(),
            unseal_wait: d_wait(),
            dev_passphrase_file: None,
            auto_unseal_key_file: None,
            rewrap_batch_rows: d_batch(),
            rewrap_pause: d_pause(),
            transit_rotation_check: d_rotation_check(),
            count_flush: d_count_flush(),
            kv_expiry_check: d_kv_expiry(),
            crl_refresh_check: d_crl_refresh(),
            acme_tidy_check: d_acme_tidy(),
        }
    }
}

impl Validate for MetacryptConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.argon2_memory_kib < ARGON2_MIN_MEMORY_KIB {
            return Err(Invalid::new(
                "argon2_memory_kib",
                format!("at least {ARGON2_MIN_MEMORY_KIB} (OWASP floor, 19 MiB)"),
            ));
        }
        if self.argon2_memory_kib > 4 * 1024 * 1024 {
            return Err(Invalid::new("argon2_memory_kib", "at most 4194304 (4 GiB)"));
        }
        if !(ARGON2_MIN_ITERATIONS..=64).contains(&self.argon2_iterations) {
            return Err(Invalid::new(
                "argon2_iterations",
                "between 2 (OWASP floor) and 64",
            ));
        }
        if !(1..=16).contains(&self.argon2_parallelism) {
            return Err(Invalid::new("argon2_parallelism", "between 1 and 16"));
        }
        if self.unseal_backoff_after == 0 || self.unseal_backoff_after > 100 {
            return Err(Invalid::new("unseal_backoff_after", "between 1 and 100"));
        }
        if self.unseal_backoff.get().is_zero() {
            return Err(Invalid::new("unseal_backoff", "must be positive"));
        }
        if self.unseal_backoff_max.get() < self.unseal_backoff.get() {
            return Err(Invalid::new(
                "unseal_backoff_max",
                "must be at least unseal_backoff",
            ));
        }
        if self.unseal_wait.get().is_zero() || self.unseal_wait.get().as_secs() > 60 {
            return Err(Invalid::new("unseal_wait", "between 1ms and 60s"));
        }
        if !(1..=10_000).contains(&self.rewrap_batch_rows) {
            return Err(Invalid::new("rewrap_batch_rows", "between 1 and 10000"));
        }
        if self.rewrap_pause.get().as_secs() > 60 {
            return Err(Invalid::new("rewrap_pause", "at most 60s"));
        }
        for (field, d) in [
            ("transit_rotation_check", self.transit_rotation_check),
            ("count_flush", self.count_flush),
            ("kv_expiry_check", self.kv_expiry_check),
            ("crl_refresh_check", self.crl_refresh_check),
            ("acme_tidy_check", self.acme_tidy_check),
        ] {
            if d.get() < std::time::Duration::from_millis(100) || d.get().as_secs() > 86_400 {
                return Err(Invalid::new(field, "between 100ms and 24h"));
            }
        }
        if let Some(p) = &self.dev_passphrase_file
            && (p.as_os_str().is_empty() || !p.is_absolute())
        {
            return Err(Invalid::new(
                "dev_passphrase_file",
                "must be an absolute path",
            ));
        }
        if let Some(p) = &self.auto_unseal_key_file
            && (!p.is_absolute() || p.file_name().is_none())
        {
            return Err(Invalid::new(
                "auto_unseal_key_file",
                "must be an absolute path to a file",
            ));
        }
        Ok(())
    }
}

impl MetacryptConfig {
    /// The key file must not live in the data dir it protects.
    pub fn check_key_file_outside(&self, data_dir: &std::path::Path) -> Result<(), Invalid> {
        match &self.auto_unseal_key_file {
            Some(p) if p.starts_with(data_dir) => Err(Invalid::new(
                "auto_unseal_key_file",
                "must not be under the data dir (keep it on separate storage)",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_the_owasp_floor_is_enforced() {
        assert!(MetacryptConfig::default().validate().is_ok());
        let low = MetacryptConfig {
            argon2_memory_kib: 8 * 1024,
            ..MetacryptConfig::default()
        };
        assert_eq!(
            low.validate().map_err(|e| e.field),
            Err("argon2_memory_kib".to_owned())
        );
        let t1 = MetacryptConfig {
            argon2_iterations: 1,
            ..MetacryptConfig::default()
        };
        assert_eq!(
            t1.validate().map_err(|e| e.field),
            Err("argon2_iterations".to_owned())
        );
        let backoff = MetacryptConfig {
            unseal_backoff_max: Duration::from_millis(10),
            ..MetacryptConfig::default()
        };
        assert_eq!(
            backoff.validate().map_err(|e| e.field),
            Err("unseal_backoff_max".to_owned())
        );
    }

    #[test]
    fn key_file_is_absolute_and_outside_the_data_dir() {
        let rel = MetacryptConfig {
            auto_unseal_key_file: Some("metacrypt.key".into()),
            ..MetacryptConfig::default()
        };
        assert_eq!(
            rel.validate().map_err(|e| e.field),
            Err("auto_unseal_key_file".to_owned())
        );
        let inside = MetacryptConfig {
            auto_unseal_key_file: Some("/var/lib/mc/metacrypt/mc.key".into()),
            ..MetacryptConfig::default()
        };
        assert!(inside.validate().is_ok());
        assert!(
            inside
                .check_key_file_outside("/var/lib/mc".as_ref())
                .is_err()
        );
        assert!(inside.check_key_file_outside("/srv/other".as_ref()).is_ok());
    }
}
