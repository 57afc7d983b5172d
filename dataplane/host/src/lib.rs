//! mc-dataplane: the data-plane process.
//!
//! Hosts MC-Proxy and MCNS on the thread-per-core runtime (`mc-rt`); each
//! has its own set of worker threads of the same count and driver. This
//! crate owns the process: config, the I/O driver decision (made once,
//! before any worker starts), the admin thread — this tokio runtime, serving
//! the 0600 admin socket (`mc.admin.v1`, `mc.proxy.v1`, `mc.dns.v1`, gRPC
//! health) and the loopback metrics endpoint — readiness and draining.
//!
//! Architecture invariant: admin work (validation, redb writes, snapshot
//! building) never runs on a worker; workers only read the immutable
//! snapshots the admin side publishes.

mod acme;
pub mod config;
mod csr;
mod reload;
mod upgrade;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use mc_kit::shutdown::Shutdown;
use mc_shell::admin::{AdminService, AdminStore};
use mc_shell::health::Health;
use mc_shell::metrics::MetricsBuilder;
use mc_shell::serve::{Limits, Listener, Surface, ops_router, run_surfaces};

pub use config::DataplaneConfig;

pub const COMPONENT: &str = "dataplane";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Driver(#[from] mc_rt::driver::UringRefused),
    #[error("proxy: {0}")]
    Proxy(#[from] mc_proxy::AdminError),
    #[error("dns: {0}")]
    Dns(#[source] mc_kit::api::ApiError),
    #[error(transparent)]
    Listen(#[from] mc_shell::serve::ListenError),
    #[error(transparent)]
    Serve(#[from] mc_shell::serve::ServeError),
    #[error("upgrade: {0}")]
    Upgrade(String),
}

/// How the process starts.
#[derive(Debug, Clone, Default)]
pub struct Start {
    /// `mcd dataplane --upgrade`: take over from the running data plane.
    pub upgrade: bool,
    /// What SIGUSR2 runs to start a successor: the executable (resolved at
    /// start) and this process's arguments. `None`: SIGUSR2 is not watched.
    pub reexec: Option<(PathBuf, Vec<OsString>)>,
}

/// The descriptor under a surface's listener, kept to hand it over.
fn listener_fd(l: &Listener) -> std::io::Result<OwnedFd> {
    match l {
        Listener::Tcp(t) | Listener::TcpBehind(t, _) => t.as_fd().try_clone_to_owned(),
        Listener::Unix(u, _) => u.as_fd().try_clone_to_owned(),
    }
}

fn listen_error(what: &'static str, addr: String, source: std::io::Error) -> RunError {
    RunError::Listen(mc_shell::serve::ListenError { what, addr, source })
}

/// Blocking upgrade steps, off the runtime's reactor.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// The stores this process owns, for `mcd snapshot` / `mcd restore`.
pub fn stores(config: &DataplaneConfig) -> Vec<mc_kit::store::StoreSpec> {
    vec![
        mc_kit::store::StoreSpec {
            name: "mc-proxy",
            path: mc_proxy::store::path(&config.data_dir),
            schema: &mc_proxy::store::SCHEMA,
            key_files: vec![mc_proxy::store::seal_key_path(&config.data_dir)],
        },
        mc_kit::store::StoreSpec {
            name: "mcns",
            path: mc_dns::store::path(&config.data_dir),
            schema: &mc_dns::store::SCHEMA,
            key_files: vec![mc_dns::store::seal_key_path(&config.data_dir)],
        },
    ]
}

/// Runs the data plane until `shutdown` fires (then drains and returns) or
/// until a successor takes over (then stops accepting, drains and returns).
pub async fn run(
    config: DataplaneConfig,
    config_file: &Path,
    shutdown: Shutdown,
    start: Start,
) -> Result<(), RunError> {
    let driver = mc_rt::driver::choose(config.runtime.io_uring)?;
    let workers = config.runtime.worker_count();
    let upgrade_path = upgrade::socket_path(&config.admin);
    let (successor, inherited) = if start.upgrade {
        let (s, got) =
            blocking(|| upgrade::Successor::connect(&upgrade_path)).map_err(RunError::Upgrade)?;
        tracing::info!(
            sockets = got.count,
            "upgrade: received the running data plane's sockets"
        );
        blocking(|| s.release()).map_err(RunError::Upgrade)?;
        (Some(s), got)
    } else {
        (None, upgrade::Inherited::default())
    };
    let abandon = |e: &dyn std::fmt::Display| {
        if let Some(s) = &successor {
            s.fail(&e.to_string());
        }
    };
    let proxy = mc_proxy::Proxy::start(
        &config.data_dir,
        &config.proxy,
        config_file,
        workers,
        driver.driver,
        inherited.proxy,
    )
    .inspect_err(|e| abandon(e))?;
    let managed = mc_proxy::admin::start_managed(
        &proxy.state,
        csr::key_and_csr,
        std::sync::Arc::new(acme::Client),
    );
    let dns = mc_dns::Dns::start(
        &config.data_dir,
        &config.dns,
        config_file,
        workers,
        driver.driver,
        inherited.dns,
    )
    .inspect_err(|e| abandon(e))
    .map_err(RunError::Dns)?;
    if let Some(s) = &successor {
        // Every worker accepting on the received sockets, then the donor stops.
        let want = proxy.state.socket_count();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while proxy.state.accepting() < want && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        match blocking(|| s.takeover(proxy.state.accepting())) {
            Ok(ms) => tracing::info!(
                handover_ms = ms,
                "upgrade: took over from the previous data plane"
            ),
            // Both processes accept on the same sockets: serving goes on.
            Err(e) => {
                tracing::error!(error = %e, "upgrade: the previous data plane did not confirm; serving anyway")
            }
        }
    }
    tracing::info!(workers, dns_workers = dns.worker_count(), io_driver = %driver.driver, reason = %driver.reason, "data plane workers started");

    let reloader = Arc::new(reload::Reloader::new(
        config_file.to_owned(),
        proxy.state.clone(),
    ));
    // Before `ready`: SIGHUP's default action would end the process.
    reload::watch_sighup(reloader.clone());
    let (health, grpc_health) = Health::new(COMPONENT);
    let mut metrics = MetricsBuilder::new(COMPONENT);
    reloader.register(metrics.registry());
    metrics
        .registry()
        .register_collector(Box::new(mc_proxy::metrics::ProxyCollector(
            proxy.state.published.clone(),
        )));
    metrics
        .registry()
        .register_collector(Box::new(mc_proxy::admin::ManagedCollector(
            proxy.state.clone(),
        )));
    metrics
        .registry()
        .register_collector(Box::new(mc_dns::metrics::DnsCollector(
            dns.state.published.clone(),
        )));
    let io_driver = prometheus_gauge_info(driver.driver.as_str());
    metrics.registry().register(
        "dataplane_io_driver",
        "The I/O driver every worker uses",
        io_driver,
    );
    let metrics = metrics.build();
    let limits = Limits {
        drain: config.admin.drain.get(),
        ..Limits::default()
    };
    let details = {
        let driver = driver.clone();
        let dns_listen = dns
            .state
            .published
            .listen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        Arc::new(move || {
            let mut d = BTreeMap::from([
                ("io_driver".to_owned(), driver.driver.to_string()),
                ("workers".to_owned(), workers.to_string()),
            ]);
            if !dns_listen.is_empty() {
                d.insert("dns_listen".to_owned(), dns_listen.clone());
            }
            d
        })
    };
    let admin_router = tonic::service::Routes::new(AdminService::new(
        COMPONENT,
        health.clone(),
        vec![
            AdminStore::new(
                "mc-proxy",
                proxy.state.store(),
                vec![mc_proxy::store::seal_key_path(&config.data_dir)],
            ),
            AdminStore::new(
                "mcns",
                dns.state.store(),
                vec![mc_dns::store::seal_key_path(&config.data_dir)],
            ),
        ],
        config.data_dir.join("snapshots"),
        details,
    ))
    .add_service(mc_proxy::admin::Admin::service(
        proxy.state.clone(),
        driver.clone(),
        reloader,
    ))
    .add_service(mc_dns::admin::Admin::service(
        dns.state.clone(),
        driver.clone(),
    ))
    .add_service(grpc_health)
    .into_axum_router();
    let ops = ops_router(COMPONENT, health.clone(), metrics, axum::Router::new());

    let admin = match inherited.admin {
        Some(l) => l
            .set_nonblocking(true)
            .and_then(|()| tokio::net::UnixListener::from_std(l))
            .map(|l| Listener::Unix(l, config.admin.socket.clone()))
            .map_err(|e| {
                listen_error("admin socket", config.admin.socket.display().to_string(), e)
            })?,
        None => Listener::unix("admin socket", &config.admin.socket)?,
    };
    let metrics_listener = match inherited.metrics {
        Some(l) => l
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(l))
            .map(Listener::Tcp)
            .map_err(|e| listen_error("metrics", config.admin.metrics.to_string(), e))?,
        None => Listener::tcp("metrics", config.admin.metrics).await?,
    };
    let signalled = Arc::new(AtomicU64::new(0));
    let sources = upgrade::Sources {
        proxy: proxy.state.clone(),
        dns: dns.state.clone(),
        stores: vec![proxy.state.store(), dns.state.store()],
        admin: listener_fd(&admin).map_err(|e| {
            listen_error("admin socket", config.admin.socket.display().to_string(), e)
        })?,
        metrics: listener_fd(&metrics_listener)
            .map_err(|e| listen_error("metrics", config.admin.metrics.to_string(), e))?,
    };
    let mut handed_over = upgrade::Donor::start(&upgrade_path, sources, signalled.clone())
        .map_err(|e| listen_error("upgrade socket", upgrade_path.display().to_string(), e))?;
    if let Some((exe, args)) = start.reexec {
        upgrade::watch_sigusr2(exe, args, signalled);
    }
    tracing::info!(
        version = mc_kit::version::VERSION,
        pid = std::process::id(),
        "data plane ready"
    );
    upgrade::notify_systemd();
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
    // Drain the proxy and DNS first (stop accepting, let connections finish), then the admin surfaces.
    let (trigger, admin_down) = mc_kit::shutdown::channel();
    let serving = tokio::spawn({
        let health = health.clone();
        async move { run_surfaces(surfaces, limits, &health, admin_down).await }
    });
    // Old routing snapshots are freed here, not on a worker (see ProxyState::sweep_retired).
    let sweeper = tokio::spawn({
        let state = proxy.state.clone();
        async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                tick.tick().await;
                state.sweep_retired();
            }
        }
    });
    let mut wait = shutdown;
    let handed = tokio::select! {
        () = wait.wait() => false,
        () = handed_over.wait() => true,
    };
    sweeper.abort();
    managed.abort();
    health.set_draining().await;
    if handed {
        // The successor serves the admin socket and metrics from now on.
        trigger.fire();
    }
    tokio::join!(
        proxy.drain(config.proxy.shutdown_timeout.get()),
        dns.drain(config.dns.shutdown_timeout.get()),
    );
    trigger.fire();
    match serving.await {
        Ok(r) => r?,
        Err(e) => tracing::error!(error = %e, "admin server task failed"),
    }
    if handed {
        // The socket files are the successor's now.
        tracing::info!("data plane handed over and drained");
        return Ok(());
    }
    let _ = std::fs::remove_file(&config.admin.socket);
    let _ = std::fs::remove_file(&upgrade_path);
    tracing::info!("data plane stopped");
    Ok(())
}

fn prometheus_gauge_info(
    driver: &'static str,
) -> prometheus_client::metrics::family::Family<
    Vec<(&'static str, &'static str)>,
    prometheus_client::metrics::gauge::Gauge,
> {
    let family = prometheus_client::metrics::family::Family::<
        Vec<(&'static str, &'static str)>,
        prometheus_client::metrics::gauge::Gauge,
    >::default();
    family.get_or_create(&vec![("driver", driver)]).set(1);
    family
}
