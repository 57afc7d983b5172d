//! mc-agent: the MCP node agent (`mcd agent --config FILE`).
//!
//! Serves `mc.deploy.v1.Agent` (Podman-driven deploys with a health-gated
//! cutover through the node's MC-Proxy, stop/start/restart/remove, status,
//! logs, reconcile, export/import of `/srv/<service>` as a confined tar)
//! and `grpc.health.v1` on its gRPC TLS listener, behind the one auth
//! layer (every Agent RPC: the `mcp-master` system account);
//! `mc.admin.v1` on its 0600 admin socket; `/healthz` and `/metrics` on the
//! optional `server.metrics` address. Desired and observed state live
//! in its redb store. Design: docs/design/mcp.md.

use std::sync::Arc;
use std::time::Duration;

use mc_kit::shutdown::Shutdown;
use mc_kit::store::Store;
use mc_shell::admin::{AdminService, AdminStore};
use mc_shell::health::Health;
use mc_shell::metrics::{Metrics, MetricsBuilder};
use mc_shell::serve::{Limits, Listener, Surface, ops_router, run_surfaces};

mod agent;
mod apply;
pub mod archive;
mod config;
mod data;
mod flaps;
mod grpc;
mod master;
mod methods;
mod model;
mod ops;
mod podman;
mod ports;
mod probe;
mod relay;
mod routes;
mod store;

pub use config::{
    AgentConfig, MasterSection, McIasSection, PodmanSection, PortsSection, ProxySection,
    ServerSection, ServicesSection,
};

pub const COMPONENT: &str = "agent";

/// How long a verified token's answer is reused (revocations reach the
/// agent within this).
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
const TOKEN_CACHE_ENTRIES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Tls(#[from] mc_service::tls::TlsError),
    #[error(transparent)]
    Listen(#[from] mc_shell::serve::ListenError),
    #[error(transparent)]
    Serve(#[from] mc_shell::serve::ServeError),
    #[error(transparent)]
    Store(#[from] mc_kit::store::StoreError),
    #[error("mcias.{key}: {message}")]
    Mcias { key: &'static str, message: String },
}

fn mcias_error(key: &'static str, e: impl std::fmt::Display) -> RunError {
    RunError::Mcias {
        key,
        message: e.to_string(),
    }
}

/// The token verifier: MCIAS's JWKS offline plus its revocation check,
/// cached. The channel connects lazily, so the agent starts while MCIAS is
/// down (calls then fail with UNAVAILABLE).
fn verifier(
    cfg: &config::McIasSection,
    token: &str,
) -> Result<Arc<dyn mc_service::auth::TokenVerifier>, RunError> {
    let ca = std::fs::read(&cfg.ca_cert).map_err(|e| mcias_error("ca_cert", e))?;
    let mut tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca));
    if !cfg.server_name.is_empty() {
        tls = tls.domain_name(cfg.server_name.clone());
    }
    let channel = tonic::transport::Endpoint::from_shared(cfg.grpc.clone())
        .map_err(|e| mcias_error("grpc", e))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .tls_config(tls)
        .map_err(|e| mcias_error("ca_cert", e))?
        .connect_lazy();
    let remote = mc_service::auth::remote::RemoteVerifier::new(
        channel,
        token.to_owned(),
        cfg.issuer.clone(),
        cfg.audience.clone(),
    );
    Ok(Arc::new(mc_service::auth::CachedVerifier::new(
        remote,
        TOKEN_CACHE_TTL,
        TOKEN_CACHE_ENTRIES,
    )))
}

/// Runs the agent until `shutdown` fires, then drains and returns.
pub async fn run(config: AgentConfig, shutdown: Shutdown) -> Result<(), RunError> {
    let tls = config.tls.server_config(mc_service::tls::ALPN_H2_H1)?;
    let token = std::fs::read_to_string(&config.mcias.token_file)
        .map_err(|e| mcias_error("token_file", e))?
        .trim()
        .to_owned();
    let verifier = verifier(&config.mcias, &token)?;
    let store = Arc::new(Store::open(&store::path(&config.data_dir), &store::SCHEMA)?);
    let agent = Arc::new(agent::Agent {
        store: store.clone(),
        podman: podman::Podman::new(&config.podman),
        routes: routes::Routes::new(config.proxy.admin_socket.clone()),
        cfg: config.clone(),
        lock: tokio::sync::Mutex::new(()),
        token,
        flaps: flaps::Flaps::default(),
    });
    if !agent.routes.configured() {
        tracing::warn!("proxy.admin_socket is not set: deploys will not manage MC-Proxy routes");
    }

    let (health, grpc_health) = Health::new(COMPONENT);
    let mut metrics = MetricsBuilder::new(COMPONENT);
    metrics
        .registry()
        .register_collector(Box::new(flaps::FlapCollector(Arc::downgrade(&agent))));
    let metrics = metrics.build();
    flaps::spawn_watcher(&agent, shutdown.clone());
    let auth = mc_service::auth::AuthLayer {
        map: Arc::new(methods::map()),
        verifier,
    };
    let guard = axum::middleware::from_fn_with_state(auth, mc_service::auth::AuthLayer::enforce);
    let grpc_router = tonic::service::Routes::new(grpc_health)
        .add_service(
            mc_proto::deploy::v1::agent_server::AgentServer::new(grpc::AgentGrpc(agent.clone()))
                // Relayed data-plane messages (a whole route table) are large.
                .max_decoding_message_size(mc_master::dataplane::MAX_MESSAGE)
                .max_encoding_message_size(mc_master::dataplane::MAX_MESSAGE),
        )
        .into_axum_router()
        .route_layer(guard)
        .layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            Metrics::track,
        ));
    let admin_router = tonic::service::Routes::new(AdminService::new(
        COMPONENT,
        health.clone(),
        vec![AdminStore::new("agent", store, Vec::new())],
        config.data_dir.join("snapshots"),
        Arc::new(std::collections::BTreeMap::new),
    ))
    .into_axum_router();
    let grpc = Listener::tcp("grpc", config.server.grpc).await?;
    if let Some(mut m) = config.master.clone() {
        if m.address.is_empty() {
            m.address = config.server.grpc.to_string();
        }
        master::spawn(agent.clone(), m, shutdown.clone());
    }
    let admin = Listener::unix("admin socket", &config.server.admin_socket)?;
    let limits = Limits {
        drain: config.server.drain.get(),
        ..Limits::default()
    };
    let mut surfaces = vec![
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
    if let Some(addr) = config.server.metrics {
        surfaces.push(Surface {
            name: "metrics",
            listener: Listener::tcp("metrics", addr).await?,
            tls: None,
            router: ops_router(COMPONENT, health.clone(), metrics, axum::Router::new()),
        });
    }
    run_surfaces(surfaces, limits, &health, shutdown).await?;
    let _ = std::fs::remove_file(&config.server.admin_socket);
    Ok(())
}
