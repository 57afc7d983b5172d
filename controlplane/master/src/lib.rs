//! mc-master: the MCP master, hosted by the control plane (section `[mcp]`,
//! store `<data_dir>/mcp/mcp.redb`).
//!
//! Serves `mc.deploy.v1.Master` on the control plane's gRPC listener and
//! its REST twin under `/v1/mcp/`: the node registry (`registry`: agents
//! register and heartbeat with their own `agent-<node>` accounts), service
//! definitions (`spec`: TOML, validated), placement and deploys through the
//! node agents (`deploy`, `agents`), snapshots of service data kept on the
//! master (`snapshots`) and migration between nodes (`migrate`), and the
//! front door to every node's data plane: MC-Proxy and MCNS admin calls
//! relayed through the node's agent (`relay`), each change in the audit
//! trail (`audit`). In the background (`jobs`): the probe of nodes whose
//! heartbeats stopped (`probe`) and scheduled snapshots (`schedule`);
//! `sync` makes the deployed services a given set; `ui` is the web page
//! under `/ui/mcp/`; `metrics` what `/metrics` shows. Caller rules in
//! `methods`. Design: docs/design/mcp.md.

use std::sync::Arc;

use mc_kit::store::{Schema, Store};
use mc_service::auth::MethodMap;
use mc_service::hosted::{HostedService, ServiceCtx, ServiceError, store_path};

mod agents;
mod audit;
mod config;
pub mod dataplane;
mod deploy;
mod grpc;
mod jobs;
pub mod methods;
mod metrics;
mod migrate;
mod names;
mod probe;
mod registry;
mod relay;
mod rest;
mod schedule;
mod snapshots;
pub mod spec;
mod store;
mod sync;
pub mod ui;

pub use config::McpConfig;
/// The relay's decoding as one entry point (fuzz target and property test).
#[doc(hidden)]
pub use relay::fuzzing::relay_request;

/// The master's state.
pub struct Master {
    store: Arc<Store>,
    config: McpConfig,
    /// `<data_dir>/mcp/snapshots`: one directory of archives per service.
    snapshots: std::path::PathBuf,
    /// Serializes registrations and heartbeats (read-modify-write of a node).
    registry: tokio::sync::Mutex<()>,
    /// Serializes deploys, undeploys and stop/start/restart.
    ops: tokio::sync::Mutex<()>,
    /// Probes and scheduled snapshots, for `/metrics`.
    counters: probe::Counters,
    /// Verifies the web UI's session cookies (MCIAS's verifier).
    ui_verifier: Option<Arc<dyn mc_service::auth::TokenVerifier>>,
}

impl HostedService for Master {
    const NAME: &'static str = "mcp";
    type Config = McpConfig;

    fn schema() -> &'static Schema {
        &store::SCHEMA
    }

    fn open(ctx: &ServiceCtx, config: McpConfig) -> Result<Arc<Self>, ServiceError> {
        let path = store_path::<Self>(&ctx.data_dir);
        let snapshots = path.with_file_name("snapshots");
        let store = Store::open(&path, &store::SCHEMA).map_err(|e| ServiceError {
            service: Self::NAME,
            message: e.to_string(),
        })?;
        if config.nodes.is_empty() {
            tracing::info!("mcp.nodes is empty: no agent can register");
        }
        let m = Arc::new(Self {
            store: Arc::new(store),
            config,
            snapshots,
            registry: tokio::sync::Mutex::new(()),
            ops: tokio::sync::Mutex::new(()),
            counters: probe::Counters::default(),
            ui_verifier: ctx.verifier.clone(),
        });
        jobs::spawn(&m);
        Ok(m)
    }

    fn methods() -> MethodMap {
        methods::map()
    }

    fn rest(self: &Arc<Self>) -> axum::Router {
        rest::router(self.clone())
            .merge(relay::rest::router(self.clone()))
            .merge(ui::router(self.clone()))
    }

    fn grpc(self: &Arc<Self>, routes: &mut tonic::service::RoutesBuilder) {
        routes.add_service(mc_proto::deploy::v1::master_server::MasterServer::new(
            grpc::MasterGrpc(self.clone()),
        ));
        routes.add_service(relay::grpc::RelayGrpc::<relay::grpc::Proxy>::new(
            self.clone(),
        ));
        routes.add_service(relay::grpc::RelayGrpc::<relay::grpc::Dns>::new(
            self.clone(),
        ));
    }

    fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    fn collector(self: &Arc<Self>) -> Option<Box<dyn prometheus_client::collector::Collector>> {
        Some(Box::new(metrics::MasterCollector(Arc::downgrade(self))))
    }
}
