//! MCR as a hosted control-plane service: its store under
//! `<data_dir>/mcr/`, `/v2/` and `/v1/registry/` on the REST listener,
//! `mc.registry.v1` on the gRPC listener.

use std::collections::BTreeMap;
use std::sync::Arc;

use mc_kit::store::{Schema, Store};
use mc_service::auth::MethodMap;
use mc_service::hosted::{HostedService, ServiceCtx, ServiceError, store_path};

use crate::Mcr;
use crate::config::McrConfig;
use crate::core::Core;
use crate::core::uploads::Sessions;
use crate::registry::auth::Auth;
use crate::storage::Storage;

fn realm(ctx: &ServiceCtx, config: &McrConfig) -> String {
    if config.realm.is_empty() {
        format!("{}/v2/token", ctx.public_url())
    } else {
        config.realm.clone()
    }
}

fn service(ctx: &ServiceCtx, config: &McrConfig) -> String {
    if config.service.is_empty() {
        ctx.rest_addr.to_string()
    } else {
        config.service.clone()
    }
}

impl HostedService for Mcr {
    const NAME: &'static str = "mcr";
    const ENDPOINTS_KEY: &'static str = "registry";
    type Config = McrConfig;

    fn schema() -> &'static Schema {
        &crate::store::SCHEMA
    }

    fn open(ctx: &ServiceCtx, config: McrConfig) -> Result<Arc<Self>, ServiceError> {
        let fail = |message: String| ServiceError {
            service: Self::NAME,
            message,
        };
        let store = Store::open(&store_path::<Self>(&ctx.data_dir), &crate::store::SCHEMA)
            .map_err(|e| fail(e.to_string()))?;
        let backend = config.backend().map_err(fail)?;
        let fs = Storage::open(&ctx.dir(Self::NAME), &backend).map_err(|e| fail(e.to_string()))?;
        match fs.expire_sessions(config.upload_ttl.get()) {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "expired upload sessions removed"),
            Err(e) => return Err(fail(format!("expiring upload sessions: {e}"))),
        }
        let store = Arc::new(store);
        let policy =
            Arc::new(crate::policy::Policy::load(store.clone()).map_err(|e| fail(e.to_string()))?);
        let auth = Auth::new(
            realm(ctx, &config),
            service(ctx, &config),
            config.token_ttl.get(),
            ctx.verifier.clone(),
            ctx.login.clone(),
            config.login_tags.clone(),
            crate::registry::decide::Decider::new(policy.clone(), store.clone()),
        );
        let core = Core { store, fs };
        match crate::gc::Gc::mark_interrupted(&core) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(runs = n, "GC runs cut by a restart marked interrupted"),
            Err(e) => return Err(fail(format!("marking interrupted GC runs: {e}"))),
        }
        let gc = crate::gc::Gc::new(config.gc_grace.get(), crate::gc::system_clock());
        let mcr = Arc::new(Self {
            core,
            sessions: Sessions::new(
                config.max_sessions,
                config.max_sessions_per_account,
                config.upload_ttl.get(),
            ),
            auth,
            policy,
            config,
            gc,
            ui_verifier: ctx.verifier.clone(),
        });
        crate::gc::schedule(&mcr);
        Ok(mcr)
    }

    fn methods() -> MethodMap {
        crate::methods::map()
    }

    fn rest(self: &Arc<Self>) -> axum::Router {
        crate::registry::router(self.clone())
            .merge(crate::api::rest::router(self.clone()))
            .merge(crate::gc::api::router(self.clone()))
            .merge(crate::gc::retention_api::router(self.clone()))
            .merge(crate::api::storage::router(self.clone()))
            .merge(crate::ui::router(self.clone()))
    }

    fn grpc(self: &Arc<Self>, routes: &mut tonic::service::RoutesBuilder) {
        crate::api::grpc::Services::add(self.clone(), routes);
        crate::gc::api::add_grpc(self.clone(), routes);
        crate::gc::retention_api::add_grpc(self.clone(), routes);
        crate::api::storage::add_grpc(self.clone(), routes);
    }

    fn store(&self) -> Arc<Store> {
        Mcr::store(self)
    }

    fn endpoints(ctx: &ServiceCtx) -> BTreeMap<String, String> {
        let config = McrConfig::default();
        BTreeMap::from([
            ("url".to_owned(), format!("{}/v2/", ctx.public_url())),
            ("host".to_owned(), ctx.rest_addr.to_string()),
            ("realm".to_owned(), realm(ctx, &config)),
        ])
    }
}
