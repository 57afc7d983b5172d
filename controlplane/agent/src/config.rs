//! The agent's TOML config (`mcd agent --config FILE`), every key
//! overridable as `MC_<SECTION>_<KEY>`; validation names the key.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use mc_kit::config::{Duration, Invalid, Validate};
use mc_kit::telemetry::LogConfig;
use mc_service::tls::TlsFiles;
use serde::Deserialize;

/// ```toml
/// data_dir = "/srv/mcp-agent"
/// node = "rift"
/// [server]
/// grpc = "0.0.0.0:9444"
/// admin_socket = "/run/mc/agent.sock"
/// [tls]
/// cert = "/srv/mcp-agent/tls.pem"
/// key = "/srv/mcp-agent/tls-key.pem"
/// [mcias]
/// grpc = "https://mcias.example.net:9443"
/// ca_cert = "/srv/mcp-agent/ca.pem"
/// issuer = "https://mcias.example.net:8443"
/// token_file = "/srv/mcp-agent/token"
/// [proxy]
/// admin_socket = "/run/mc/dataplane.sock"
/// [master]
/// grpc = "https://mcp.example.net:9443"
/// ca_cert = "/srv/mcp-agent/ca.pem"
/// address = "10.0.0.5:9444"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub data_dir: PathBuf,
    /// This node's name (reported by `HealthCheck`).
    #[serde(default = "default_node")]
    pub node: String,
    pub server: ServerSection,
    pub tls: TlsFiles,
    pub mcias: McIasSection,
    #[serde(default)]
    pub podman: PodmanSection,
    #[serde(default)]
    pub ports: PortsSection,
    #[serde(default)]
    pub proxy: ProxySection,
    #[serde(default)]
    pub services: ServicesSection,
    /// The MCP master to register with; absent = no registration.
    #[serde(default)]
    pub master: Option<MasterSection>,
    #[serde(default)]
    pub log: LogConfig,
}

/// Where the agent registers and sends heartbeats (with its own token).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterSection {
    /// The control plane's gRPC URL, `https://host:port`.
    pub grpc: String,
    /// PEM CA that signed the control plane's certificate.
    pub ca_cert: PathBuf,
    /// TLS server name to verify; empty = the URL's host.
    #[serde(default)]
    pub server_name: String,
    /// The `host:port` the master dials for this agent; empty = `server.grpc`.
    #[serde(default)]
    pub address: String,
}

fn default_node() -> String {
    "local".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub grpc: SocketAddr,
    pub admin_socket: PathBuf,
    /// Plain HTTP `/healthz` and `/metrics` (anonymous): keep it on a
    /// private address. Absent: not served.
    #[serde(default)]
    pub metrics: Option<SocketAddr>,
    #[serde(default = "default_drain")]
    pub drain: Duration,
}

fn default_drain() -> Duration {
    Duration::from_secs(10)
}

/// Where tokens are verified, and the agent's own token (for revocation
/// checks and registry pulls).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McIasSection {
    /// MCIAS gRPC URL, `https://host:port`.
    pub grpc: String,
    /// PEM CA that signed MCIAS's certificate.
    pub ca_cert: PathBuf,
    /// The token issuer (MCIAS's public REST URL).
    pub issuer: String,
    #[serde(default = "default_audience")]
    pub audience: String,
    /// The agent's system-account token, one line.
    pub token_file: PathBuf,
    /// TLS server name to verify; empty = the URL's host.
    #[serde(default)]
    pub server_name: String,
}

fn default_audience() -> String {
    "metacircular".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PodmanSection {
    pub binary: PathBuf,
    /// Image and container storage (`--root`); empty = Podman's default.
    pub root: Option<PathBuf>,
    /// State directory (`--runroot`); empty = Podman's default.
    pub runroot: Option<PathBuf>,
    /// libpod's temporary state (`--tmpdir`); empty = Podman's default.
    pub tmpdir: Option<PathBuf>,
    /// Explicit rlimits for every container (soft = hard).
    pub nofile: u32,
    pub nproc: u32,
    /// Refuse registries without verified TLS (off only for a test registry).
    pub registry_tls_verify: bool,
    /// Extra CA certificates for registries (`--cert-dir`: `*.crt` files).
    pub registry_cert_dir: Option<PathBuf>,
    /// Longest any one podman command may take (pull, stop…).
    pub command_timeout: Duration,
    /// Every container's restart policy (`--restart`): `unless-stopped`,
    /// `always`, `on-failure[:N]` or `no`.
    pub restart: String,
}

impl Default for PodmanSection {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("podman"),
            root: None,
            runroot: None,
            tmpdir: None,
            nofile: 1024,
            nproc: 1024,
            registry_tls_verify: true,
            registry_cert_dir: None,
            command_timeout: Duration::from_secs(300),
            restart: "unless-stopped".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortsSection {
    pub first: u16,
    pub last: u16,
    /// The address published ports bind to, and the proxy's backend address.
    pub publish: IpAddr,
}

impl Default for PortsSection {
    fn default() -> Self {
        Self {
            first: 20000,
            last: 29999,
            publish: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySection {
    /// The node's data-plane admin socket (routes of deploys, and the calls
    /// the master relays with `RelayDataPlane`); absent = neither.
    pub admin_socket: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServicesSection {
    /// Volumes live under `<root>/<service>`.
    pub root: PathBuf,
    /// Health-check deadline when the spec gives none.
    pub health_timeout: Duration,
    /// Between switching the route and stopping the old container.
    pub drain_delay: Duration,
    /// Grace before podman kills a stopping container.
    pub stop_timeout: Duration,
    /// Largest archive `ImportServiceData` accepts (bytes on the wire).
    pub max_archive: u64,
    /// Most bytes of file content an import may unpack.
    pub max_unpacked: u64,
    /// Most entries an import may unpack.
    pub max_entries: u64,
    /// How often the watcher reads every service's state (flapping, drift).
    pub watch_interval: Duration,
    /// A container restarted `flap_restarts` times within `flap_window`
    /// is flapping.
    pub flap_window: Duration,
    pub flap_restarts: u32,
}

impl Default for ServicesSection {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/srv"),
            health_timeout: Duration::from_secs(30),
            drain_delay: Duration::from_secs(2),
            stop_timeout: Duration::from_secs(10),
            max_archive: 4 << 30,
            max_unpacked: 16 << 30,
            max_entries: 100_000,
            watch_interval: Duration::from_secs(10),
            flap_window: Duration::from_secs(300),
            flap_restarts: 3,
        }
    }
}

fn absolute(key: &str, path: &std::path::Path) -> Result<(), Invalid> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(Invalid::new(key, "must be an absolute path"))
    }
}

impl Validate for AgentConfig {
    fn validate(&self) -> Result<(), Invalid> {
        absolute("data_dir", &self.data_dir)?;
        absolute("server.admin_socket", &self.server.admin_socket)?;
        absolute("services.root", &self.services.root)?;
        absolute("mcias.token_file", &self.mcias.token_file)?;
        if !crate::model::is_label(&self.node) {
            return Err(Invalid::new("node", "must match [a-z0-9-]{1,63}"));
        }
        if !self.mcias.grpc.starts_with("https://") {
            return Err(Invalid::new("mcias.grpc", "must be an https:// URL"));
        }
        if !self.mcias.ca_cert.is_file() {
            return Err(Invalid::new(
                "mcias.ca_cert",
                format!("{} is not a file", self.mcias.ca_cert.display()),
            ));
        }
        if self.ports.first == 0 || self.ports.first > self.ports.last {
            return Err(Invalid::new(
                "ports.first",
                "must be non-zero and at most ports.last",
            ));
        }
        if self.services.max_archive == 0
            || self.services.max_unpacked == 0
            || self.services.max_entries == 0
        {
            return Err(Invalid::new(
                "services.max_archive",
                "import limits (max_archive, max_unpacked, max_entries) must be non-zero",
            ));
        }
        let r = self.podman.restart.as_str();
        let on_failure = r
            .strip_prefix("on-failure:")
            .is_some_and(|n| n.parse::<u32>().is_ok());
        if !["no", "always", "unless-stopped", "on-failure"].contains(&r) && !on_failure {
            return Err(Invalid::new(
                "podman.restart",
                "no, always, unless-stopped, on-failure or on-failure:N",
            ));
        }
        let watch = self.services.watch_interval.get().as_secs_f64();
        if !(0.1..=3600.0).contains(&watch) {
            return Err(Invalid::new(
                "services.watch_interval",
                "between 100ms and 1h",
            ));
        }
        if self.services.flap_window.get() < self.services.watch_interval.get()
            || self.services.flap_window.get().as_secs() > 86_400
        {
            return Err(Invalid::new(
                "services.flap_window",
                "at least watch_interval, at most 1d",
            ));
        }
        if !(1..=1000).contains(&self.services.flap_restarts) {
            return Err(Invalid::new("services.flap_restarts", "between 1 and 1000"));
        }
        if self.podman.nofile == 0 || self.podman.nproc == 0 {
            return Err(Invalid::new("podman.nofile", "rlimits must be non-zero"));
        }
        for (key, p) in [
            ("podman.root", &self.podman.root),
            ("podman.runroot", &self.podman.runroot),
            ("podman.tmpdir", &self.podman.tmpdir),
            ("podman.registry_cert_dir", &self.podman.registry_cert_dir),
            ("proxy.admin_socket", &self.proxy.admin_socket),
        ] {
            if let Some(p) = p {
                absolute(key, p)?;
            }
        }
        if let Some(m) = &self.master {
            if !m.grpc.starts_with("https://") {
                return Err(Invalid::new("master.grpc", "must be an https:// URL"));
            }
            if !m.ca_cert.is_file() {
                return Err(Invalid::new(
                    "master.ca_cert",
                    format!("{} is not a file", m.ca_cert.display()),
                ));
            }
        }
        self.tls.validate("tls")?;
        self.log.validate("log")
    }
}
