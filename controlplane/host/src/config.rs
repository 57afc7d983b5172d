//! `mcd controlplane --config FILE`: the control plane's TOML.
//!
//! ```toml
//! data_dir = "/srv"                 # each service keeps /srv/<service>/<service>.redb
//!
//! [server]
//! rest = "0.0.0.0:8443"             # HTTPS: REST, /healthz, /metrics (admin token)
//! grpc = "0.0.0.0:9443"             # gRPC over TLS
//! metrics = "127.0.0.1:9100"        # optional: plain-HTTP /metrics, /healthz, no token
//! hsts_max_age = "730d"             # Strict-Transport-Security on REST ("0s": none)
//! trusted_proxies = ["10.0.0.5"]    # optional: PROXY protocol from these (REST and gRPC)
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
    /// Where to serve `/metrics` (and `/healthz`) anonymously, over plain
    /// HTTP, for a scraper: keep it on loopback or a private network.
    /// Unset (the default): none. `/metrics` on the public REST port always
    /// needs an admin token.
    #[serde(default)]
    pub metrics: Option<SocketAddr>,
    /// `Strict-Transport-Security: max-age=…` on every REST answer (the
    /// REST surface is HTTPS only). Default two years; `0s` sends none.
    #[serde(default = "default_hsts")]
    pub hsts_max_age: Duration,
    /// Proxies in front of the REST and gRPC listeners (MC-Proxy with
    /// `proxy_protocol` towards the control plane): addresses or CIDR
    /// prefixes, at most 64. A connection from one of them must start with
    /// a PROXY protocol header (v1 or v2), and its source is the client
    /// MCIAS sees (audit, rate limits, lockout); from anyone else a PROXY
    /// header is never read. Default: none.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

fn default_hsts() -> Duration {
    Duration::from_secs(63_072_000)
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
        if let Some(m) = self.server.metrics
            && (m == self.server.rest || m == self.server.grpc)
        {
            return Err(Invalid::new(
                "server.metrics",
                "must differ from server.rest and server.grpc",
            ));
        }
        mc_shell::serve::TrustedProxies::parse(&self.server.trusted_proxies)
            .map_err(|e| Invalid::new("server.trusted_proxies", e))?;
        if self.server.hsts_max_age.get() > std::time::Duration::from_secs(2 * 63_072_000) {
            return Err(Invalid::new("server.hsts_max_age", "at most 4 years"));
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
