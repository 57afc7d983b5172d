//! `mcd controlplane --config FILE`: the control plane's TOML.
//!
//! ```toml
//! data_dir = "/srv"                 # each service keeps /srv/<service>/<service>.redb
//!
//! [server]
//! rest = "0.0.0.0:8443"             # HTTPS: REST, /healthz, /metrics
//! grpc = "0.0.0.0:9443"             # gRPC over TLS
//! admin_socket = "/run/mc/controlplane.sock"
//! drain = "10s"
//! max_connections = 4096
//!
//! [tls]
//! cert = "/srv/controlplane/tls.pem"
//! key = "/srv/controlplane/tls-key.pem"
//!
//! [log]
//! level = "info"
//! format = "json"
//!
//! [mcias]                          # one section per hosted service (see services.rs)
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use mc_kit::config::{Duration, Invalid, Validate};
use serde::Deserialize;

pub use crate::services::ControlplaneConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub rest: SocketAddr,
    pub grpc: SocketAddr,
    pub admin_socket: PathBuf,
    #[serde(default = "default_drain")]
    pub drain: Duration,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_drain() -> Duration {
    Duration::from_secs(10)
}

fn default_max_connections() -> usize {
    4096
}

impl Validate for ControlplaneConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if !self.data_dir.is_absolute() {
            return Err(Invalid::new("data_dir", "must be an absolute path"));
        }
        if !self.server.admin_socket.is_absolute() {
            return Err(Invalid::new(
                "server.admin_socket",
                "must be an absolute path",
            ));
        }
        if self.server.rest == self.server.grpc {
            return Err(Invalid::new("server.grpc", "must differ from server.rest"));
        }
        if self.server.drain.get() > std::time::Duration::from_secs(300) {
            return Err(Invalid::new("server.drain", "at most 5m"));
        }
        if !(1..=1_000_000).contains(&self.server.max_connections) {
            return Err(Invalid::new(
                "server.max_connections",
                "between 1 and 1000000",
            ));
        }
        self.tls.validate("tls")?;
        self.validate_services()?;
        self.log.validate("log")
    }
}
