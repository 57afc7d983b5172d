//! mc-agent: the MCP agent process (`mcd agent --config FILE`).
//!
//! Today it is the service shell every process has — config, gRPC over TLS
//! with the standard health service, the admin socket, draining — so that
//! nodes can be provisioned and monitored. The `mc.deploy.v1.Agent` service
//! (Podman-driven deploy, undeploy, snapshots) is planned with MCP.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mc_kit::config::{Duration, Invalid, Validate};
use mc_kit::shutdown::Shutdown;
use mc_kit::telemetry::LogConfig;
use mc_service::tls::TlsFiles;
use mc_shell::admin::AdminService;
use mc_shell::health::Health;
use mc_shell::serve::{Limits, Listener, Surface, run_surfaces};
use serde::Deserialize;

pub const COMPONENT: &str = "agent";

/// ```toml
/// data_dir = "/srv"
/// [server]
/// grpc = "0.0.0.0:9444"
/// admin_socket = "/run/mc/agent.sock"
/// [tls]
/// cert = "/srv/mcp-agent/tls.pem"
/// key = "/srv/mcp-agent/tls-key.pem"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub data_dir: PathBuf,
    pub server: ServerSection,
    pub tls: TlsFiles,
    #[serde(default)]
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub grpc: SocketAddr,
    pub admin_socket: PathBuf,
    #[serde(default = "default_drain")]
    pub drain: Duration,
}

fn default_drain() -> Duration {
    Duration::from_secs(10)
}

impl Validate for AgentConfig {
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
        self.tls.validate("tls")?;
        self.log.validate("log")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Tls(#[from] mc_service::tls::TlsError),
    #[error(transparent)]
    Listen(#[from] mc_shell::serve::ListenError),
    #[error(transparent)]
    Serve(#[from] mc_shell::serve::ServeError),
}

/// Runs the agent until `shutdown` fires, then drains and returns.
pub async fn run(config: AgentConfig, shutdown: Shutdown) -> Result<(), RunError> {
    let tls = config.tls.server_config(mc_service::tls::ALPN_H2_H1)?;
    let (health, grpc_health) = Health::new(COMPONENT);
    let grpc_router = tonic::service::Routes::new(grpc_health).into_axum_router();
    let admin_router = tonic::service::Routes::new(AdminService::new(
        COMPONENT,
        health.clone(),
        Vec::new(),
        config.data_dir.join("snapshots"),
        Arc::new(BTreeMap::new),
    ))
    .into_axum_router();
    let grpc = Listener::tcp("grpc", config.server.grpc).await?;
    let admin = Listener::unix("admin socket", &config.server.admin_socket)?;
    tracing::warn!(
        "the MCP agent API (mc.deploy.v1.Agent) is not built yet; serving health and admin only"
    );
    let limits = Limits {
        drain: config.server.drain.get(),
        ..Limits::default()
    };
    let surfaces = vec![
        Surface {
            name: "grpc",
            listener: grpc,
            tls: Some(tls),
            router: grpc_router,
        },
        Surface {
            name: "admin",
            listener: admin,
            tls: None,
            router: admin_router,
        },
    ];
    run_surfaces(surfaces, limits, &health, shutdown).await?;
    let _ = std::fs::remove_file(&config.server.admin_socket);
    Ok(())
}
