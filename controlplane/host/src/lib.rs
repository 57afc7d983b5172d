//! mc-controlplane: the control-plane process (tokio).
//!
//! It hosts the services listed in [`services`] (today MCIAS) behind one
//! HTTPS REST listener, one gRPC-over-TLS listener and one local admin
//! socket. Each hosted service implements
//! [`mc_service::hosted::HostedService`]; this crate owns the process:
//! config, listeners, the one auth layer over every service's routes and
//! methods (their merged method maps), readiness, draining.

pub mod config;
pub mod node;
mod services;

use std::collections::BTreeMap;
use std::sync::Arc;

use mc_kit::shutdown::Shutdown;
use mc_kit::store::Store;
use mc_shell::admin::{AdminService, AdminStore};
use mc_shell::health::Health;
use mc_shell::metrics::{Metrics, MetricsBuilder};
use mc_shell::serve::{
    Limits, Listener, Surface, TrustedProxies, ops_router, ops_router_with, run_surfaces,
};

pub use config::ControlplaneConfig;
pub use services::service_endpoints;

/// The redb stores this process owns: its own, then each service's.
pub fn stores(config: &ControlplaneConfig) -> Vec<mc_kit::store::StoreSpec> {
    let mut stores = vec![mc_kit::store::StoreSpec {
        name: "controlplane",
        path: node::store_path(&config.data_dir),
        schema: &node::SCHEMA,
        key_files: Vec::new(),
    }];
    stores.extend(services::service_stores(config));
    stores
}

/// Where the first admin's credentials are written (0600) when MCIAS creates them.
pub fn bootstrap_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    mc_mcias::hosted::bootstrap_path(data_dir)
}

/// Where `mcd dev` keeps Metacrypt's dev passphrase (dev only).
pub fn metacrypt_dev_passphrase_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    mc_metacrypt::dev_passphrase_path(data_dir)
}

pub const COMPONENT: &str = "controlplane";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] mc_kit::store::StoreError),
    #[error(transparent)]
    Tls(#[from] mc_service::tls::TlsError),
    #[error(transparent)]
    Listen(#[from] mc_shell::serve::ListenError),
    #[error(transparent)]
    Serve(#[from] mc_shell::serve::ServeError),
    #[error(transparent)]
    Mount(#[from] mc_service::hosted::MountError),
    #[error("no hosted service verifies tokens (MCIAS must be mounted first)")]
    NoVerifier,
}

/// Every answer of the (HTTPS-only) REST surface tells browsers to use
/// HTTPS for `max_age` (`server.hsts_max_age`; zero: no header).
fn hsts(router: axum::Router, max_age: std::time::Duration) -> axum::Router {
    let value = format!("max-age={}", max_age.as_secs());
    let Ok(value) = axum::http::HeaderValue::from_str(&value) else {
        return router;
    };
    if max_age.is_zero() {
        return router;
    }
    router.layer(axum::middleware::map_response(
        move |mut r: axum::response::Response| {
            let value = value.clone();
            async move {
                r.headers_mut()
                    .insert(axum::http::header::STRICT_TRANSPORT_SECURITY, value);
                r
            }
        },
    ))
}

/// Reloads the served certificate at each SIGHUP; a failed reload is
/// logged and the previous certificate stays.
async fn reload_on_hangup(cert: Arc<mc_service::tls::ReloadableCert>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("control plane: no SIGHUP handler; [tls] is read once");
        return;
    };
    while hangup.recv().await.is_some() {
        match cert.reload() {
            Ok(()) => tracing::info!("control plane: [tls] certificate reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "control plane: [tls] reload failed; serving the previous certificate")
            }
        }
    }
}

/// Runs the control plane until `shutdown` fires, then drains and returns.
pub async fn run(config: ControlplaneConfig, shutdown: Shutdown) -> Result<(), RunError> {
    let node_store = Arc::new(Store::open(
        &node::store_path(&config.data_dir),
        &node::SCHEMA,
    )?);
    let node_id = node::node_id(&node_store)?;
    // SIGHUP re-reads `[tls]` (a renewed certificate; `mcd dev` swaps in one
    // Metacrypt issued): new handshakes get it, open connections keep theirs.
    let (tls, cert) = config
        .tls
        .reloadable_server_config(mc_service::tls::ALPN_H2_H1)?;
    let reloader = tokio::spawn(reload_on_hangup(cert));

    let (health, grpc_health) = Health::new(COMPONENT);
    // Every hosted service, behind the one auth layer for all their REST
    // routes and gRPC methods.
    let mut mounted = services::mount_all(&config, &services::context(&config))?;
    let mut metrics = MetricsBuilder::new(COMPONENT);
    for collector in std::mem::take(&mut mounted.collectors) {
        metrics.registry().register_collector(collector);
    }
    let metrics = metrics.build();

    let limits = Limits {
        max_connections: config.server.max_connections,
        drain: config.server.drain.get(),
        ..Limits::default()
    };
    let Some(verifier) = mounted.verifier.clone() else {
        return Err(RunError::NoVerifier);
    };
    // `/metrics` on the public REST port is for admins (anonymous only on
    // the optional `server.metrics` address).
    let methods = mounted.methods.clone().with_grpc_health().rest(
        "GET",
        "/metrics",
        mc_service::auth::Requirement::Admin,
    );
    let auth = mc_service::auth::AuthLayer {
        map: Arc::new(methods),
        verifier,
    };
    let guard = axum::middleware::from_fn_with_state(auth, mc_service::auth::AuthLayer::enforce);
    let services = std::mem::take(&mut mounted.rest).route(
        "/metrics",
        axum::routing::get(Metrics::handler).with_state(metrics.clone()),
    );
    let rest_router = hsts(
        ops_router_with(
            COMPONENT,
            health.clone(),
            metrics.clone(),
            services.route_layer(guard.clone()),
            false,
        ),
        config.server.hsts_max_age.get(),
    );
    // Vault's `LIST` verb becomes `GET ?list=true` and small bodies are read
    // before routing (the outer router's only route is its fallback: the
    // whole REST surface).
    let rest_router = axum::Router::new()
        .fallback_service(rest_router)
        .layer(axum::middleware::from_fn(
            mc_service::auth::vault_list_as_get,
        ))
        // No answer leaves while a small body is still arriving (see the fn).
        .layer(axum::middleware::from_fn(
            mc_service::body::read_small_bodies,
        ));
    mounted.grpc.add_service(grpc_health);
    let grpc_router = std::mem::take(&mut mounted.grpc)
        .routes()
        .into_axum_router()
        .route_layer(guard)
        .layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            Metrics::track,
        ));
    let mut admin_stores = vec![AdminStore::new(
        "controlplane",
        node_store.clone(),
        Vec::new(),
    )];
    admin_stores.extend(mounted.stores.iter().cloned());
    let details_node = node_id.clone();
    let admin_router = tonic::service::Routes::new(AdminService::new(
        COMPONENT,
        health.clone(),
        admin_stores,
        config.data_dir.join("snapshots"),
        Arc::new(move || BTreeMap::from([("node_id".to_owned(), details_node.clone())])),
    ))
    .into_axum_router();

    let metrics_surface = match config.server.metrics {
        Some(addr) => Some(Surface {
            name: "metrics",
            listener: Listener::tcp("metrics", addr).await?,
            tls: None,
            router: ops_router(
                COMPONENT,
                health.clone(),
                metrics.clone(),
                axum::Router::new(),
            ),
        }),
        None => None,
    };
    // Validated with the config; an invalid list here trusts nobody.
    let proxies = TrustedProxies::parse(&config.server.trusted_proxies).unwrap_or_default();
    let rest = Listener::tcp("rest", config.server.rest)
        .await?
        .behind(proxies.clone());
    let grpc = Listener::tcp("grpc", config.server.grpc)
        .await?
        .behind(proxies);
    let admin = Listener::unix("admin socket", &config.server.admin_socket)?;

    tracing::info!(node_id = %node_id, version = mc_kit::version::VERSION, "control plane starting");
    let mut surfaces = vec![
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
    surfaces.extend(metrics_surface);
    let served = run_surfaces(surfaces, limits, &health, shutdown).await;
    reloader.abort();
    served?;
    let _ = std::fs::remove_file(&config.server.admin_socket);
    tracing::info!("control plane stopped");
    Ok(())
}
