//! Metacrypt as a hosted control-plane service: how the host opens and
//! mounts it (after MCIAS, whose token verifier guards every route).
//!
//! `key_files()` is empty on purpose: a snapshot holds only sealed data,
//! never unseal material. Dev only (`dev_passphrase_file`, set by `mcd
//! dev`): the first start initialises with a random passphrase written
//! 0600 to that file and every start unseals from it in the background;
//! that first start also mounts a kv engine at `secret`, as `bao server -dev`.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mc_kit::store::{Schema, Store};
use mc_service::auth::MethodMap;
use mc_service::hosted::{HostedService, ServiceCtx, ServiceError, store_path};
use zeroize::Zeroizing;

use crate::config::MetacryptConfig;
use crate::core::{Caller, InitInput, Metacrypt, MountInput, UnsealInputBody};

/// Where `mcd dev` keeps the dev passphrase: `<data_dir>/metacrypt/dev-passphrase`.
pub fn dev_passphrase_path(data_dir: &Path) -> PathBuf {
    data_dir.join(Metacrypt::NAME).join("dev-passphrase")
}

fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

fn random_passphrase() -> Result<Zeroizing<String>, String> {
    use base64::Engine as _;
    let mut raw = Zeroizing::new([0u8; 24]);
    aws_lc_rs::rand::fill(raw.as_mut()).map_err(|_| "no randomness".to_owned())?;
    Ok(Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref()),
    ))
}

/// Dev only: the passphrase in `file`, created (random, 0600) when the
/// barrier is not initialized and the file does not exist yet.
fn dev_passphrase(m: &Metacrypt, file: &Path) -> Result<Zeroizing<String>, String> {
    let initialized = m.status().map_err(|e| e.to_string())?.initialized;
    if !initialized && !file.exists() {
        let pass = random_passphrase()?;
        write_secret(file, &pass).map_err(|e| format!("writing {}: {e}", file.display()))?;
        return Ok(pass);
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?,
    );
    Ok(Zeroizing::new(text.trim().to_owned()))
}

/// Dev only: initialise with, or unseal from, the passphrase (in the
/// background: Argon2id takes a moment).
async fn dev_unseal(m: Arc<Metacrypt>, pass: Zeroizing<String>) {
    let dev = Caller::default();
    let result = match m.status() {
        Ok(s) if !s.initialized => m
            .init(
                &dev,
                InitInput {
                    passphrase: Some(pass.to_string()),
                    ..InitInput::default()
                },
            )
            .await
            .and_then(|_| {
                // As `bao server -dev`: a kv mount named `secret`, once.
                m.create_mount(
                    &dev,
                    MountInput {
                        name: "secret".to_owned(),
                        kind: "kv".to_owned(),
                        description: "mounted by mcd dev".to_owned(),
                        config: None,
                    },
                )
                .and_then(|_| {
                    // And `user` (user-to-user encryption), as the design says.
                    m.create_mount(
                        &dev,
                        MountInput {
                            name: "user".to_owned(),
                            kind: "user".to_owned(),
                            description: "mounted by mcd dev".to_owned(),
                            config: None,
                        },
                    )
                })
                .map(|_| ())
            }),
        Ok(_) => m
            .unseal(
                &dev,
                UnsealInputBody {
                    passphrase: Some(pass.to_string()),
                    ..UnsealInputBody::default()
                },
            )
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => tracing::info!("metacrypt: dev auto-unseal done"),
        Err(e) => tracing::error!(error = %e, "metacrypt: dev auto-unseal failed; it stays sealed"),
    }
}

impl HostedService for Metacrypt {
    const NAME: &'static str = "metacrypt";
    const ENDPOINTS_KEY: &'static str = "crypt";
    type Config = MetacryptConfig;

    fn schema() -> &'static Schema {
        &crate::store::SCHEMA
    }

    fn open(ctx: &ServiceCtx, config: MetacryptConfig) -> Result<Arc<Self>, ServiceError> {
        let fail = |message: String| ServiceError {
            service: Self::NAME,
            message,
        };
        let dev = config.dev_passphrase_file.clone();
        let m = Arc::new(
            Metacrypt::open(&store_path::<Self>(&ctx.data_dir), config)
                .map_err(|e| fail(e.to_string()))?,
        );
        // Opt-in auto-unseal from a key file on separate storage.
        m.config_ref()
            .check_key_file_outside(&ctx.data_dir)
            .map_err(|e| fail(e.to_string()))?;
        m.auto_unseal();
        // Rewrap jobs and periodic tasks (CRL refresh among them), while unsealed.
        m.start_jobs();
        if let Some(v) = &ctx.verifier {
            let _ = m.ui_verifier.set(v.clone());
        }
        if let Some(file) = dev {
            tracing::warn!(path = %file.display(), "metacrypt: dev passphrase file in use (dev only: whoever reads it reads every secret)");
            // A missing or unreadable file (a restored store, say) leaves the
            // barrier sealed: it is unsealed by hand, never refused to start.
            match (
                dev_passphrase(&m, &file),
                tokio::runtime::Handle::try_current(),
            ) {
                (Ok(pass), Ok(rt)) => {
                    rt.spawn(dev_unseal(m.clone(), pass));
                }
                (Err(e), _) => {
                    tracing::error!(error = %e, "metacrypt: no dev passphrase; it stays sealed");
                }
                (_, Err(_)) => {
                    return Err(fail("dev auto-unseal needs a tokio runtime".to_owned()));
                }
            }
        }
        Ok(m)
    }

    fn methods() -> MethodMap {
        crate::methods::map()
    }

    fn rest(self: &Arc<Self>) -> axum::Router {
        crate::api::router(self.clone()).merge(crate::ui::router(self.clone()))
    }

    fn grpc(self: &Arc<Self>, routes: &mut tonic::service::RoutesBuilder) {
        crate::api::grpc::Services::add(self.clone(), routes);
    }

    fn store(&self) -> Arc<Store> {
        Metacrypt::store(self)
    }

    fn collector(self: &Arc<Self>) -> Option<Box<dyn prometheus_client::collector::Collector>> {
        Some(Box::new(crate::core::metrics::MetacryptCollector(
            Arc::downgrade(self),
        )))
    }

    fn endpoints(ctx: &ServiceCtx) -> BTreeMap<String, String> {
        BTreeMap::from([("url".to_owned(), format!("{}/v1/crypt", ctx.public_url()))])
    }
}
