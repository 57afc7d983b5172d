//! `mcd dataplane --config FILE`: the data plane's TOML.
//!
//! ```toml
//! data_dir = "/srv"
//!
//! [admin]
//! socket = "/run/mc/dataplane.sock"   # mc.admin.v1 (+ mc.proxy.v1, mc.dns.v1 as they land)
//! metrics = "127.0.0.1:9100"          # plain HTTP: /healthz, /metrics
//! # upgrade_socket = "/run/mc/dataplane.upgrade.sock"   # default: beside `socket`
//! drain = "10s"
//!
//! [runtime]
//! workers = 0                         # 0 = one per CPU
//! io_uring = "auto"                   # auto | on | off
//!
//! [proxy]                             # MC-Proxy: see mc_proxy::config
//!
//! [dns]                               # MCNS: see mc_dns::config
//! listen = ["0.0.0.0:53"]
//!
//! [log]
//! level = "info"
//! ```

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
    pub runtime: RuntimeSection,
    #[serde(default)]
    pub proxy: mc_proxy::ProxySection,
    #[serde(default)]
    pub dns: mc_dns::DnsSection,
    #[serde(default)]
    pub log: LogConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// Worker threads; 0 = one per CPU this process may use.
    #[serde(default)]
    pub workers: usize,
    #[serde(default)]
    pub io_uring: mc_rt::IoMode,
}

impl RuntimeSection {
    pub fn worker_count(&self) -> usize {
        if self.workers == 0 {
            mc_rt::workers::default_count()
        } else {
            self.workers
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    pub socket: PathBuf,
    pub metrics: SocketAddr,
    /// Where a successor (`mcd dataplane --upgrade`) asks for the sockets
    /// (0600); default: `socket` with the extension `upgrade.sock`.
    #[serde(default)]
    pub upgrade_socket: Option<PathBuf>,
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
        if self
            .admin
            .upgrade_socket
            .as_ref()
            .is_some_and(|p| !p.is_absolute())
        {
            return Err(Invalid::new(
                "admin.upgrade_socket",
                "must be an absolute path",
            ));
        }
        if self.admin.drain.get() > std::time::Duration::from_secs(300) {
            return Err(Invalid::new("admin.drain", "at most 5m"));
        }
        if self.runtime.workers > 1024 {
            return Err(Invalid::new("runtime.workers", "at most 1024"));
        }
        self.proxy.bootstrap()?;
        self.dns.settings()?;
        self.log.validate("log")
    }
}
