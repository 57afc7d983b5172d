//! A control-plane service as a type: what the host needs to mount it.
//!
//! A service implements [`HostedService`] once — its name, config, store
//! schema, how it opens, its REST router, its gRPC routes and its method
//! map — and the host mounts a list of them ([`Mounted`]): one store per
//! service under `<data_dir>/<NAME>/`, one merged [`MethodMap`] enforced by
//! one auth layer for every route of every service, one admin store list.
//!
//! Architecture invariant: a service never sees another service's store;
//! what services share goes through the [`ServiceCtx`] (the token verifier)
//! or through their public APIs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mc_kit::config::Validate;
use mc_kit::store::{Schema, Store, StoreSpec};
use mc_shell::admin::AdminStore;
use serde::de::DeserializeOwned;

use crate::auth::{DuplicateRoute, MethodMap, TokenVerifier};

/// What the host gives a service when it opens.
#[derive(Clone)]
pub struct ServiceCtx {
    /// The parent data dir (`/srv`); a service keeps its files in [`Self::dir`].
    pub data_dir: PathBuf,
    /// The HTTPS REST listener (`/healthz`, REST, web UIs).
    pub rest_addr: SocketAddr,
    /// The gRPC listener.
    pub grpc_addr: SocketAddr,
    /// Verifies bearer tokens (MCIAS's keys). `None` only while MCIAS itself
    /// opens: it is the verifier the others get.
    pub verifier: Option<Arc<dyn TokenVerifier>>,
    /// Forwards password logins to MCIAS (for services whose clients send
    /// a username and password in their own protocol, like the registry's
    /// Basic auth). `None` only while MCIAS itself opens.
    pub login: Option<Arc<dyn LoginForwarder>>,
}

/// A password login another service forwards to MCIAS, so MCIAS's lockout,
/// rate limits, login policy (`service_name`, `tags`) and audit apply.
pub struct ForwardedLogin {
    pub username: String,
    pub password: String,
    pub service_name: String,
    pub tags: Vec<String>,
    pub source: Option<std::net::IpAddr>,
}

impl Drop for ForwardedLogin {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.password);
    }
}

/// Why a forwarded login did not produce a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefused {
    #[error("{0}")]
    BadCredentials(String),
    /// The password was right but the account needs a second factor.
    #[error("this account needs a second factor: use an MCIAS token as the password")]
    SecondFactor,
    /// MCIAS's login policy refused it.
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    Unavailable(String),
}

/// Logs in at MCIAS on behalf of a service's client; returns an MCIAS token.
pub trait LoginForwarder: Send + Sync + 'static {
    fn login<'a>(
        &'a self,
        login: ForwardedLogin,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<String, LoginRefused>> + Send + 'a>,
    >;
}

impl ServiceCtx {
    /// The service's own directory: `<data_dir>/<name>`.
    pub fn dir(&self, name: &str) -> PathBuf {
        self.data_dir.join(name)
    }

    /// The REST base URL clients use: `https://<rest addr>`.
    pub fn public_url(&self) -> String {
        format!("https://{}", self.rest_addr)
    }
}

/// A service failed to open.
#[derive(Debug, thiserror::Error)]
#[error("{service}: {message}")]
pub struct ServiceError {
    pub service: &'static str,
    pub message: String,
}

/// One control-plane service.
pub trait HostedService: Send + Sync + Sized + 'static {
    /// Its name: store directory and file (`<data_dir>/<NAME>/<NAME>.redb`),
    /// config section (`[<NAME>]`), metrics label, admin store name.
    const NAME: &'static str;
    /// Its key in `endpoints.json` (defaults to [`Self::NAME`]).
    const ENDPOINTS_KEY: &'static str = Self::NAME;
    /// Its config section. Field names in [`Validate`] errors are relative
    /// to the section; the host prefixes `<NAME>.`.
    type Config: DeserializeOwned + Validate + Default + Clone + Send + Sync + std::fmt::Debug;

    /// Its store's schema and ordered migrations.
    fn schema() -> &'static Schema;

    /// Files outside the store that its sealed data needs (key files), so a
    /// snapshot carries them.
    fn key_files(dir: &Path) -> Vec<PathBuf> {
        let _ = dir;
        Vec::new()
    }

    /// Opens the store and whatever else the service needs.
    fn open(ctx: &ServiceCtx, config: Self::Config) -> Result<Arc<Self>, ServiceError>;

    /// Every REST route and gRPC method it serves, with what each requires.
    fn methods() -> MethodMap;

    /// Its REST routes (axum paths as in [`Self::methods`]), without a
    /// fallback: the host answers unmatched paths for every service.
    fn rest(self: &Arc<Self>) -> axum::Router;

    /// Adds its gRPC services to the process's one gRPC router.
    fn grpc(self: &Arc<Self>, routes: &mut tonic::service::RoutesBuilder);

    /// Its open store (for snapshots).
    fn store(&self) -> Arc<Store>;

    /// Its Prometheus metrics, read at scrape time (names get the process's
    /// `mc_` prefix; start them with the service's name).
    fn collector(self: &Arc<Self>) -> Option<Box<dyn prometheus_client::collector::Collector>> {
        None
    }

    /// A token verifier other services may use (MCIAS provides one).
    fn verifier(self: &Arc<Self>) -> Option<Arc<dyn TokenVerifier>> {
        None
    }

    /// A login forwarder other services may use (MCIAS provides one).
    fn login_forwarder(self: &Arc<Self>) -> Option<Arc<dyn LoginForwarder>> {
        None
    }

    /// Named URLs for `endpoints.json` (`"ui" → https://…/ui/`), known
    /// from the config alone (so `mcd dev` can write them before start).
    fn endpoints(ctx: &ServiceCtx) -> BTreeMap<String, String> {
        let _ = ctx;
        BTreeMap::new()
    }
}

/// Where a service keeps its store.
pub fn store_path<S: HostedService>(data_dir: &Path) -> PathBuf {
    data_dir.join(S::NAME).join(format!("{}.redb", S::NAME))
}

/// The store of `S`, for `mcd snapshot` / `mcd restore`.
pub fn store_spec<S: HostedService>(data_dir: &Path) -> StoreSpec {
    StoreSpec {
        name: S::NAME,
        path: store_path::<S>(data_dir),
        schema: S::schema(),
        key_files: S::key_files(&data_dir.join(S::NAME)),
    }
}

/// Everything the mounted services contribute to the process.
#[derive(Default)]
pub struct Mounted {
    pub methods: MethodMap,
    pub rest: axum::Router,
    pub grpc: tonic::service::RoutesBuilder,
    pub stores: Vec<AdminStore>,
    pub collectors: Vec<Box<dyn prometheus_client::collector::Collector>>,
    pub verifier: Option<Arc<dyn TokenVerifier>>,
    pub login: Option<Arc<dyn LoginForwarder>>,
}

/// Mounting failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(transparent)]
    Open(#[from] ServiceError),
    #[error(transparent)]
    Duplicate(#[from] DuplicateRoute),
}

impl Mounted {
    /// Opens `S` and adds its routes, methods, store and metrics. The first
    /// service that offers a verifier becomes the verifier of the rest.
    pub fn mount<S: HostedService>(
        &mut self,
        ctx: &ServiceCtx,
        config: S::Config,
    ) -> Result<Arc<S>, MountError> {
        let ctx = ServiceCtx {
            verifier: self.verifier.clone(),
            login: self.login.clone(),
            ..ctx.clone()
        };
        let service = S::open(&ctx, config)?;
        self.methods = std::mem::take(&mut self.methods).merge(S::methods())?;
        self.rest = std::mem::take(&mut self.rest).merge(service.rest());
        service.grpc(&mut self.grpc);
        self.stores.push(AdminStore::new(
            S::NAME,
            service.store(),
            S::key_files(&ctx.data_dir.join(S::NAME)),
        ));
        self.collectors.extend(service.collector());
        if self.verifier.is_none() {
            self.verifier = service.verifier();
        }
        if self.login.is_none() {
            self.login = service.login_forwarder();
        }
        Ok(service)
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use mc_kit::store::json::create_tables;
    use mc_kit::store::{Migration, StoreError, Table};
    use tower::ServiceExt;

    use super::*;
    use crate::auth::Requirement;

    const ROWS: Table = Table::new("rows");
    fn create(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
        create_tables(txn, &[ROWS])
    }
    const SCHEMA: Schema = Schema {
        name: "demo",
        migrations: &[Migration {
            to_version: 1,
            description: "rows",
            apply: create,
        }],
    };

    /// A minimal service: one REST route, optionally the gRPC health service.
    struct Demo<const N: u8>(Arc<Store>);

    impl<const N: u8> HostedService for Demo<N> {
        const NAME: &'static str = ["alpha", "beta", "gamma"][N as usize];
        type Config = ();
        fn schema() -> &'static Schema {
            &SCHEMA
        }
        fn open(ctx: &ServiceCtx, (): ()) -> Result<Arc<Self>, ServiceError> {
            let store = Store::open(&store_path::<Self>(&ctx.data_dir), &SCHEMA).map_err(|e| {
                ServiceError {
                    service: Self::NAME,
                    message: e.to_string(),
                }
            })?;
            Ok(Arc::new(Self(Arc::new(store))))
        }
        fn methods() -> MethodMap {
            // gamma claims alpha's route: mounting it must fail.
            let path = if N == 2 {
                "/v1/alpha"
            } else {
                ["/v1/alpha", "/v1/beta"][N as usize]
            };
            MethodMap::new().rest("GET", path, Requirement::Public)
        }
        fn rest(self: &Arc<Self>) -> axum::Router {
            let path = ["/v1/alpha", "/v1/beta", "/v1/gamma"][N as usize];
            axum::Router::new().route(path, axum::routing::get(|| async { Self::NAME }))
        }
        fn grpc(self: &Arc<Self>, routes: &mut tonic::service::RoutesBuilder) {
            if N == 0 {
                let (_, health) = tonic_health::server::health_reporter();
                routes.add_service(health);
            }
        }
        fn store(&self) -> Arc<Store> {
            self.0.clone()
        }
    }

    fn ctx(dir: &Path) -> ServiceCtx {
        ServiceCtx {
            data_dir: dir.to_owned(),
            rest_addr: SocketAddr::from(([127, 0, 0, 1], 8443)),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 9443)),
            verifier: None,
            login: None,
        }
    }

    async fn get(router: &axum::Router, path: &str) -> (StatusCode, String) {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn two_services_mount_side_by_side_and_a_shared_route_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = ctx(dir.path());
        let mut mounted = Mounted::default();
        mounted.mount::<Demo<0>>(&ctx, ()).expect("alpha");
        mounted.mount::<Demo<1>>(&ctx, ()).expect("beta");
        assert_eq!(mounted.stores.len(), 2);
        assert!(store_path::<Demo<1>>(dir.path()).exists(), "beta/beta.redb");
        assert!(mounted.methods.get("GET /v1/alpha").is_some());
        assert!(mounted.methods.get("GET /v1/beta").is_some());
        assert_eq!(
            get(&mounted.rest, "/v1/alpha").await,
            (StatusCode::OK, "alpha".into())
        );
        assert_eq!(
            get(&mounted.rest, "/v1/beta").await,
            (StatusCode::OK, "beta".into())
        );
        // The gRPC router of all services builds (no clashing fallbacks).
        let grpc = std::mem::take(&mut mounted.grpc)
            .routes()
            .into_axum_router();
        let (status, _) = get(&grpc, "/grpc.health.v1.Health/Check").await;
        assert_ne!(status, StatusCode::NOT_FOUND);
        let err = mounted.mount::<Demo<2>>(&ctx, ()).err();
        assert!(
            matches!(&err, Some(MountError::Duplicate(DuplicateRoute(r))) if r == "GET /v1/alpha"),
            "{err:?}"
        );
    }
}
