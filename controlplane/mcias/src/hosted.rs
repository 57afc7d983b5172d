//! MCIAS as a hosted control-plane service: how the host opens and mounts it.
//!
//! MCIAS is the first service mounted: it offers the token verifier every
//! later service is given. On a new store it creates the bootstrap admin and
//! writes its credentials once to `<dir>/bootstrap.json` (0600).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mc_kit::store::{Schema, Store};
use mc_service::auth::{MethodMap, TokenVerifier};
use mc_service::caller::Caller;
use mc_service::hosted::{
    ForwardedLogin, HostedService, LoginForwarder, LoginRefused, ServiceCtx, ServiceError,
};

use crate::config::McAuthConfig;
use crate::core::{Bootstrap, LocalVerifier, Mcias};

/// Where the first admin's credentials are written when MCIAS creates them.
pub fn bootstrap_path(data_dir: &Path) -> PathBuf {
    data_dir.join(Mcias::NAME).join("bootstrap.json")
}

/// The master key that seals signing keys, TOTP secrets and passkeys.
pub fn master_key_path(dir: &Path) -> PathBuf {
    dir.join("master.key")
}

fn write_bootstrap(path: &Path, creds: &Bootstrap) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(
        serde_json::to_string_pretty(creds)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    f.sync_all()
}

impl HostedService for Mcias {
    const NAME: &'static str = "mcias";
    const ENDPOINTS_KEY: &'static str = "iam";
    type Config = McAuthConfig;

    fn schema() -> &'static Schema {
        &crate::store::SCHEMA
    }

    fn key_files(dir: &Path) -> Vec<PathBuf> {
        vec![master_key_path(dir)]
    }

    fn open(ctx: &ServiceCtx, mut config: McAuthConfig) -> Result<Arc<Self>, ServiceError> {
        let fail = |message: String| ServiceError {
            service: Self::NAME,
            message,
        };
        if config.issuer.is_empty() {
            config.issuer = ctx.public_url();
        }
        if config.webauthn_origin.is_empty() {
            config.webauthn_origin =
                format!("https://{}:{}", config.webauthn_rp_id, ctx.rest_addr.port());
        }
        let (iam, bootstrap) =
            Mcias::open(&ctx.data_dir, config).map_err(|e| fail(e.to_string()))?;
        if let Some(creds) = bootstrap {
            let path = bootstrap_path(&ctx.data_dir);
            write_bootstrap(&path, &creds)
                .map_err(|e| fail(format!("writing {}: {e}", path.display())))?;
            tracing::warn!(path = %path.display(), "bootstrap admin created; its credentials are in this file (0600): change the password and delete it");
        }
        Ok(Arc::new(iam))
    }

    fn methods() -> MethodMap {
        crate::methods::map()
    }

    fn rest(self: &Arc<Self>) -> axum::Router {
        crate::api::router(self.clone())
    }

    fn grpc(self: &Arc<Self>, routes: &mut tonic::service::RoutesBuilder) {
        crate::api::grpc::Services::add(self.clone(), routes);
    }

    fn store(&self) -> Arc<Store> {
        Mcias::store(self)
    }

    fn verifier(self: &Arc<Self>) -> Option<Arc<dyn TokenVerifier>> {
        Some(Arc::new(LocalVerifier::new(self.clone())))
    }

    fn login_forwarder(self: &Arc<Self>) -> Option<Arc<dyn LoginForwarder>> {
        Some(Arc::new(InProcessLogin(self.clone())))
    }

    fn endpoints(ctx: &ServiceCtx) -> BTreeMap<String, String> {
        let url = ctx.public_url();
        BTreeMap::from([
            ("url".to_owned(), url.clone()),
            (
                "ui".to_owned(),
                format!("https://localhost:{}/ui/", ctx.rest_addr.port()),
            ),
            (
                "oidc_discovery".to_owned(),
                format!("{url}/.well-known/openid-configuration"),
            ),
        ])
    }
}

/// Password logins other services forward (the registry's Basic auth):
/// the same [`Mcias::login`] as `/v1/auth/login`, so lockout, rate limits,
/// login policy and audit apply unchanged.
struct InProcessLogin(Arc<Mcias>);

impl LoginForwarder for InProcessLogin {
    fn login<'a>(
        &'a self,
        login: ForwardedLogin,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<String, LoginRefused>> + Send + 'a>,
    > {
        Box::pin(async move {
            use crate::error::IamError;
            let caller = Caller {
                principal: None,
                source: login.source,
            };
            let input = crate::core::LoginInput {
                username: login.username.clone(),
                password: login.password.clone(),
                service_name: Some(login.service_name.clone()),
                tags: login.tags.clone(),
                ..Default::default()
            };
            match self.0.login(&caller, input).await {
                Ok(session) => Ok(session.token),
                Err(IamError::TotpRequired { .. } | IamError::PasskeyRequired) => {
                    Err(LoginRefused::SecondFactor)
                }
                Err(IamError::Forbidden(m)) => Err(LoginRefused::Denied(m)),
                Err(IamError::RateLimited(m)) => Err(LoginRefused::RateLimited(m)),
                Err(IamError::Internal(m)) => Err(LoginRefused::Unavailable(m)),
                Err(e) => Err(LoginRefused::BadCredentials(e.to_string())),
            }
        })
    }
}
