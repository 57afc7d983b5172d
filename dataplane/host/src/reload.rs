//! Config reload without a restart: SIGHUP, and `mc.proxy.v1 ReloadConfig`
//! (`mcctl proxy reload`), both through [`Reloader`].
//!
//! The file is read and validated whole (`mc_kit::config::load`, env
//! overrides included), then each engine applies what its admin API can
//! change (MC-Proxy: `ProxyState::reload`). Settings outside that (worker
//! count, I/O driver, admin and metrics addresses, `proxy.max_client_hello`,
//! `proxy.certificate_authorities`, `[dns]`) take effect at the next start
//! or upgrade. A refused reload is logged, counted in
//! `mc_dataplane_config_reloads_total{result="failed"}` and flagged by
//! `mc_dataplane_config_reload_failing`, and changes nothing.

use std::path::PathBuf;
use std::sync::Arc;

use mc_kit::api::ApiError;
use mc_proxy::admin::{Reload, Reloaded};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::DataplaneConfig;

type Outcomes = Family<Vec<(&'static str, &'static str)>, Counter>;

/// Reloads this process's config file into its running engines.
pub(crate) struct Reloader {
    file: PathBuf,
    proxy: Arc<mc_proxy::ProxyState>,
    outcomes: Outcomes,
    failing: Gauge,
}

impl Reloader {
    pub(crate) fn new(file: PathBuf, proxy: Arc<mc_proxy::ProxyState>) -> Self {
        Self {
            file,
            proxy,
            outcomes: Outcomes::default(),
            failing: Gauge::default(),
        }
    }

    /// Registers `mc_dataplane_config_reloads_total` and `…_reload_failing`.
    pub(crate) fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "dataplane_config_reloads",
            "Config reloads (SIGHUP, ReloadConfig) by result",
            self.outcomes.clone(),
        );
        registry.register(
            "dataplane_config_reload_failing",
            "1 while the last config reload was refused (the running config is the one before it)",
            self.failing.clone(),
        );
        for result in ["ok", "failed"] {
            let _ = self.outcomes.get_or_create(&vec![("result", result)]);
        }
    }

    fn apply(&self) -> Result<Reloaded, ApiError> {
        let config = mc_kit::config::load::<DataplaneConfig>(&self.file)
            .map_err(|e| ApiError::FailedPrecondition(e.to_string()))?;
        self.proxy.reload(&config.proxy).map_err(|e| match e {
            ApiError::Invalid(i) => ApiError::FailedPrecondition(format!(
                "{}: {}: {}",
                self.file.display(),
                i.field,
                i.message
            )),
            other => other,
        })
    }
}

impl Reload for Reloader {
    fn reload(&self) -> Result<Reloaded, ApiError> {
        let result = self.apply();
        let label = match &result {
            Ok(r) => {
                tracing::info!(file = %self.file.display(), generation = r.generation, listeners = r.listeners, routes = r.routes, "config reloaded");
                "ok"
            }
            Err(e) => {
                tracing::error!(file = %self.file.display(), error = %e, "config reload refused; nothing changed");
                "failed"
            }
        };
        self.failing.set(i64::from(result.is_err()));
        self.outcomes.get_or_create(&vec![("result", label)]).inc();
        result
    }
}

/// Reloads on every SIGHUP (off the reactor), until the process ends.
pub(crate) fn watch_sighup(reloader: Arc<Reloader>) {
    let mut sig = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGHUP; reload with `mcctl proxy reload`");
            return;
        }
    };
    tokio::spawn(async move {
        while sig.recv().await.is_some() {
            let r = reloader.clone();
            let _ = tokio::task::spawn_blocking(move || r.reload()).await;
        }
    });
}
