//! `mcd dataplane --config FILE`: the data plane's TOML.
//!
//! ```toml
//! data_dir = "/srv"
//!
//! [admin]
//! socket = "/run/mc/dataplane.sock"   # mc.admin.v1 (+ mc.proxy.v1, mc.dns.v1 as they land)
//! metrics = "127.0.0.1:9100"          # plain HTTP: /healthz, /metrics
//! drain = "10s"
//!
//! [log]
//! level = "info"
//! ```
//!
//! Listener, route, zone and runtime sections arrive with MC-Proxy and MCNS.

use std::net::SocketAddr;
use std::path::PathBuf;

use mc_kit::config::{Duration, Invalid, Validate};
use mc_kit::telemetry::LogConfig;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataplaneConfig {
    pub data_dir: PathBuf,
    pub admin: AdminSection,
    #[serde(default)]
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    pub socket: PathBuf,
    pub metrics: SocketAddr,
    #[serde(default = "default_drain")]
    pub drain: Duration,
}

fn default_drain() -> Duration {
    Duration::from_secs(10)
}

impl Validate for DataplaneConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if !self.data_dir.is_absolute() {
            return Err(Invalid::new("data_dir", "must be an absolute path"));
        }
        if !self.admin.socket.is_absolute() {
            return Err(Invalid::new("admin.socket", "must be an absolute path"));
        }
        if self.admin.drain.get() > std::time::Duration::from_secs(300) {
            return Err(Invalid::new("admin.drain", "at most 5m"));
        }
        self.log.validate("log")
    }
}
