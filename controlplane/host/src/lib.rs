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

use mc_kit::shutdown::Shutdown;
use mc_kit::store::Store;
use mc_shell::admin::AdminService;
use mc_shell::health::Health;
use mc_shell::metrics::{Metrics, MetricsBuilder};
use mc_shell::serve::{Limits, Listener, Surface, ops_router, run_surfaces};

pub use config::ControlplaneConfig;

/// The redb stores this process owns.
pub fn stores(config: &ControlplaneConfig) -> Vec<mc_kit::store::StoreSpec> {
    vec![
        mc_kit::store::StoreSpec {
            name: "controlplane",
            path: node::store_path(&config.data_dir),
            schema: &node::SCHEMA,
        },
        mc_kit::store::StoreSpec {
            name: "mcias",
            path: mc_mcias::store::path(&config.data_dir),
            schema: &mc_mcias::store::SCHEMA,
        },
    ]
}

/// Where the first admin's credentials are written (0600) when MCIAS creates them.
pub fn bootstrap_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("mcias").join("bootstrap.json")
}

fn write_bootstrap(
    data_dir: &std::path::Path,
    creds: &mc_mcias::Bootstrap,
) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = bootstrap_path(data_dir);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    f.write_all(
        serde_json::to_string_pretty(creds)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    f.sync_all()?;
    Ok(path)
}

pub const COMPONENT: &str = "controlplane";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] mc_kit::store::StoreError),
    #[error(transparent)]
    Tls(#[from] mc_service::tls::TlsError),
    #[error("cannot listen on {what} {addr}: {source}")]
    Listen {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Serve(#[from] mc_shell::serve::ServeError),
    #[error("mcias: {0}")]
    Iam(#[from] mc_mcias::error::IamError),
    #[error("writing the bootstrap credentials: {0}")]
    Bootstrap(std::io::Error),
}

/// Runs the control plane until `shutdown` fires, then drains and returns.
pub async fn run(config: ControlplaneConfig, shutdown: Shutdown) -> Result<(), RunError> {
    let node_store = Arc::new(Store::open(
        &node::store_path(&config.data_dir),
        &node::SCHEMA,
    )?);
    let node_id = node::node_id(&node_store)?;
    let tls = config.tls.server_config(mc_service::tls::ALPN_H2_H1)?;

    let (health, grpc_health) = Health::new(COMPONENT);
    let metrics = MetricsBuilder::new(COMPONENT).build();

    let limits = Limits {
        max_connections: config.server.max_connections,
        drain: config.server.drain.get(),
        ..Limits::default()
    };
    // MCIAS, behind the one auth layer for its REST routes and gRPC methods.
    let mut mcias_config = config.mcias.clone();
    if mcias_config.issuer.is_empty() {
        mcias_config.issuer = format!("https://{}", config.server.rest);
    }
    if mcias_config.webauthn_origin.is_empty() {
        mcias_config.webauthn_origin = format!(
            "https://{}:{}",
            mcias_config.webauthn_rp_id,
            config.server.rest.port()
        );
    }
    let (iam, bootstrap) = mc_mcias::Iam::open(&config.data_dir, mcias_config)?;
    let iam = Arc::new(iam);
    if let Some(creds) = bootstrap {
        let path = write_bootstrap(&config.data_dir, &creds).map_err(RunError::Bootstrap)?;
        tracing::warn!(path = %path.display(), "bootstrap admin created; its credentials are in this file (0600): change the password and delete it");
    }
    let auth = mc_service::auth::AuthLayer {
        map: Arc::new(mc_mcias::methods::map().with_grpc_health()),
        verifier: Arc::new(mc_mcias::LocalVerifier(iam.clone())),
    };
    let guard = axum::middleware::from_fn_with_state(auth, mc_service::auth::AuthLayer::enforce);
    let rest_router = ops_router(
        COMPONENT,
        health.clone(),
        metrics.clone(),
        mc_mcias::rest::router(iam.clone()).route_layer(guard.clone()),
    );
    let grpc_router = mc_mcias::grpc::Services::routes(iam.clone())
        .add_service(grpc_health)
        .into_axum_router()
        .route_layer(guard)
        .layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            Metrics::track,
        ));
    let details_node = node_id.clone();
    let admin_router = tonic::service::Routes::new(AdminService::new(
        COMPONENT,
        health.clone(),
        vec![("controlplane", node_store.clone()), ("mcias", iam.store())],
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
