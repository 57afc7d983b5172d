//! mc-mcdoc: MCDoc, a read-only docs site (`mcd mcdoc`), the platform's
//! first hosted workload.
//!
//! Renders a directory (or git checkout) of Markdown as HTML on request:
//! GitHub-flavoured Markdown with highlighted code (`render`,
//! `highlight`), a navigation tree from the directory (`tree`, `http`),
//! relative links between `.md` files pointed at their pages. Rendered
//! pages are cached in memory and re-rendered when a poll of the tree sees
//! their file change (`site`). `/healthz` and `/metrics` come from
//! mc-shell. Raw HTML in the Markdown is escaped, never passed through.
//! Design: docs/design/mcdoc.md.

use std::sync::Arc;

use mc_kit::shutdown::Shutdown;
use mc_shell::health::Health;
use mc_shell::metrics::MetricsBuilder;
use mc_shell::serve::{Limits, Listener, Surface, ops_router, run_surfaces};

mod config;
mod highlight;
mod http;
mod render;
mod site;
mod tree;

pub use config::{McdocConfig, ServerSection, SiteSection};

pub const COMPONENT: &str = "mcdoc";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("site.dir {dir}: {source}")]
    Dir {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Listen(#[from] mc_shell::serve::ListenError),
    #[error(transparent)]
    Serve(#[from] mc_shell::serve::ServeError),
}

/// Serves the site on `listen` until `shutdown` fires, then drains.
pub async fn run(
    config: McdocConfig,
    listen: std::net::SocketAddr,
    shutdown: Shutdown,
) -> Result<(), RunError> {
    let dir = config.site.dir.clone();
    let site = tokio::task::spawn_blocking(move || site::Site::open(dir, config.site.title))
        .await
        .map_err(|e| RunError::Dir {
            dir: config.site.dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(|source| RunError::Dir {
            dir: config.site.dir.clone(),
            source,
        })?;
    let site = Arc::new(site);
    let (health, _) = Health::new(COMPONENT);
    let mut builder = MetricsBuilder::new(COMPONENT);
    site.metrics.register(builder.registry());
    let metrics = builder.build();
    tokio::spawn(site.clone().poll(config.site.poll.get(), shutdown.clone()));
    let router = ops_router(COMPONENT, health.clone(), metrics, http::router(site));
    let listener = Listener::tcp("http", listen).await?;
    tracing::info!(address = %listener.local_addr(), dir = %config.site.dir.display(), "mcdoc serving");
    let surfaces = vec![Surface {
        name: "http",
        listener,
        tls: None,
        router,
    }];
    run_surfaces(surfaces, Limits::default(), &health, shutdown).await?;
    Ok(())
}
