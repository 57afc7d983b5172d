//! mc-dataplane: the data-plane process.
//!
//! Hosts MC-Proxy and MCNS on a thread-per-core runtime (planned: issues 3
//! and 5). This crate owns the process shell they plug into: config, the
//! admin thread (a tokio runtime serving the 0600 admin socket and the
//! loopback metrics endpoint), readiness and draining. Architecture
//! invariant: the admin thread never runs on a worker core's event loop;
//! workers only ever read immutable snapshots the admin thread publishes.

pub mod config;

use std::collections::BTreeMap;
use std::sync::Arc;

use mc_kit::admin::AdminService;
use mc_kit::health::Health;
use mc_kit::metrics::MetricsBuilder;
use mc_kit::serve::{Limits, Listener, Surface, ops_router, run_surfaces};
use mc_kit::shutdown::Shutdown;

pub use config::DataplaneConfig;

pub const COMPONENT: &str = "dataplane";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
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

/// Runs the data plane until `shutdown` fires, then drains and returns.
pub async fn run(config: DataplaneConfig, shutdown: Shutdown) -> Result<(), RunError> {
    let (health, grpc_health) = Health::new(COMPONENT);
    let metrics = MetricsBuilder::new(COMPONENT).build();
    let limits = Limits {
        drain: config.admin.drain.get(),
        ..Limits::default()
    };
    let admin_router = tonic::service::Routes::new(AdminService::new(
        COMPONENT,
        health.clone(),
        Vec::new(),
        config.data_dir.join("snapshots"),
        Arc::new(|| BTreeMap::from([("pid".to_owned(), std::process::id().to_string())])),
    ))
    .add_service(grpc_health)
    .into_axum_router();
    let ops = ops_router(COMPONENT, health.clone(), metrics);

    let admin = Listener::unix(&config.admin.socket).map_err(|source| RunError::Listen {
        what: "admin socket",
        addr: config.admin.socket.display().to_string(),
        source,
    })?;
    let metrics_listener = Listener::tcp(config.admin.metrics)
        .await
        .map_err(|source| RunError::Listen {
            what: "metrics",
            addr: config.admin.metrics.to_string(),
            source,
        })?;
    tracing::info!(version = mc_kit::version::VERSION, "data plane starting");
    let surfaces = vec![
        Surface {
            name: "admin",
            listener: admin,
            tls: None,
            router: admin_router,
        },
        Surface {
            name: "metrics",
            listener: metrics_listener,
            tls: None,
            router: ops,
        },
    ];
    run_surfaces(surfaces, limits, &health, shutdown).await?;
    let _ = std::fs::remove_file(&config.admin.socket);
    tracing::info!("data plane stopped");
    Ok(())
}
