//! mc-controlplane: the control-plane process (tokio).
//!
//! It hosts the platform's services — MCIAS, Metacrypt, MCR, MCP master and
//! the MCNS record API as they are built — behind one HTTPS REST listener,
//! one gRPC-over-TLS listener and one local admin socket. Each hosted service
//! contributes a router, gRPC services, metrics and its own redb store; this
//! crate owns the process: config, listeners, readiness, draining.

pub mod config;
pub mod node;

use std::collections::BTreeMap;
use std::sync::Arc;

use mc_kit::admin::AdminService;
use mc_kit::health::Health;
use mc_kit::metrics::{Metrics, MetricsBuilder};
use mc_kit::serve::{Limits, Listener, Surface, ops_router, run_surfaces};
use mc_kit::shutdown::Shutdown;
use mc_kit::store::Store;

pub use config::ControlplaneConfig;

/// The redb stores this process owns.
pub fn stores(config: &ControlplaneConfig) -> Vec<mc_kit::store::StoreSpec> {
    vec![mc_kit::store::StoreSpec {
        name: "controlplane",
        path: node::store_path(&config.data_dir),
        schema: &node::SCHEMA,
    }]
}

pub const COMPONENT: &str = "controlplane";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] mc_kit::store::StoreError),
    #[error(transparent)]
    Tls(#[from] mc_kit::tls::TlsError),
    #[error("cannot listen on {what} {addr}: {source}")]
    Listen {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Serve(#[from] mc_kit::serve::ServeError),
}

/// Runs the control plane until `shutdown` fires, then drains and returns.
pub async fn run(config: ControlplaneConfig, shutdown: Shutdown) -> Result<(), RunError> {
    let node_store = Arc::new(Store::open(
        &node::store_path(&config.data_dir),
        &node::SCHEMA,
    )?);
    let node_id = node::node_id(&node_store)?;
    let tls = config.tls.server_config(mc_kit::tls::ALPN_H2_H1)?;

    let (health, grpc_health) = Health::new(COMPONENT);
    let metrics = MetricsBuilder::new(COMPONENT).build();

    let limits = Limits {
        max_connections: config.server.max_connections,
        drain: config.server.drain.get(),
        ..Limits::default()
    };
    let rest_router = ops_router(COMPONENT, health.clone(), metrics.clone());
    let grpc_router = tonic::service::Routes::new(grpc_health)
        .into_axum_router()
        .layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            Metrics::track,
        ));
    let details_node = node_id.clone();
    let admin_router = tonic::service::Routes::new(AdminService::new(
        COMPONENT,
        health.clone(),
        vec![("controlplane", node_store.clone())],
        config.data_dir.join("snapshots"),
        Arc::new(move || BTreeMap::from([("node_id".to_owned(), details_node.clone())])),
    ))
    .into_axum_router();

    let listen = |what, addr: std::net::SocketAddr| async move {
        Listener::tcp(addr)
            .await
            .map_err(|source| RunError::Listen {
                what,
                addr: addr.to_string(),
                source,
            })
    };
    let rest = listen("rest", config.server.rest).await?;
    let grpc = listen("grpc", config.server.grpc).await?;
    let admin = Listener::unix(&config.server.admin_socket).map_err(|source| RunError::Listen {
        what: "admin socket",
        addr: config.server.admin_socket.display().to_string(),
        source,
    })?;

    tracing::info!(node_id = %node_id, version = mc_kit::version::VERSION, "control plane starting");
    let surfaces = vec![
        Surface {
            name: "rest",
            listener: rest,
            tls: Some(tls.clone()),
            router: rest_router,
        },
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
    tracing::info!("control plane stopped");
    Ok(())
}
