//! The site's state: the current [`Tree`] (replaced by the poller when a
//! walk finds a difference) and the in-memory cache of rendered pages.
//!
//! Invariant: a cached page is served only while its file's stamp (size,
//! modification time) equals the one in the current tree, so a change is
//! served from the first request after the poll that saw it. The cache
//! holds at most one entry per served file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::highlight::Highlighter;
use crate::render::{self, Page};
use crate::tree::{File, Stamp, Tree};

/// Counters on `/metrics` (`mc_mcdoc_*`).
#[derive(Clone, Default)]
pub(crate) struct SiteMetrics {
    pub(crate) renders: Counter,
    pub(crate) cache_hits: Counter,
    pub(crate) reloads: Counter,
    pub(crate) pages: Gauge,
}

impl SiteMetrics {
    pub(crate) fn register(&self, r: &mut Registry) {
        let r = r.sub_registry_with_prefix("mcdoc");
        r.register(
            "renders",
            "Pages rendered from Markdown",
            self.renders.clone(),
        );
        r.register(
            "cache_hits",
            "Pages served from the cache",
            self.cache_hits.clone(),
        );
        r.register(
            "reloads",
            "Walks that found the tree changed",
            self.reloads.clone(),
        );
        r.register("pages", "Markdown pages served", self.pages.clone());
    }
}

pub(crate) struct Site {
    pub(crate) root: PathBuf,
    pub(crate) title: String,
    pub(crate) tree: ArcSwap<Tree>,
    pub(crate) hl: Highlighter,
    cache: Mutex<HashMap<String, (Stamp, Arc<Page>)>>,
    pub(crate) metrics: SiteMetrics,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    #[error("{rel}: {source}")]
    Read { rel: String, source: std::io::Error },
}

impl Site {
    pub(crate) fn open(root: PathBuf, title: String) -> std::io::Result<Self> {
        let tree = Tree::walk(&root)?;
        let metrics = SiteMetrics::default();
        metrics.pages.set(pages(&tree));
        Ok(Self {
            root,
            title,
            tree: ArcSwap::from_pointee(tree),
            hl: Highlighter::new(),
            cache: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    /// Walks the tree again; publishes it when it differs. `true` then.
    pub(crate) fn refresh(&self) -> std::io::Result<bool> {
        let tree = Tree::walk(&self.root)?;
        if **self.tree.load() == tree {
            return Ok(false);
        }
        self.metrics.pages.set(pages(&tree));
        self.metrics.reloads.inc();
        // Drop what no longer exists; changed entries fail their stamp check.
        if let Ok(mut c) = self.cache.lock() {
            c.retain(|k, _| tree.files.contains_key(k));
        }
        self.tree.store(Arc::new(tree));
        Ok(true)
    }

    /// The rendered page of `key` (a Markdown file of the current tree).
    pub(crate) fn page(&self, key: &str, file: &File) -> Result<Arc<Page>, PageError> {
        if let Ok(c) = self.cache.lock()
            && let Some((stamp, page)) = c.get(key)
            && *stamp == file.stamp
        {
            self.metrics.cache_hits.inc();
            return Ok(page.clone());
        }
        let bytes = Tree::read(&self.root, file).map_err(|source| PageError::Read {
            rel: file.rel.clone(),
            source,
        })?;
        let page = Arc::new(render::render(&String::from_utf8_lossy(&bytes), &self.hl));
        self.metrics.renders.inc();
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key.to_owned(), (file.stamp, page.clone()));
        }
        Ok(page)
    }

    /// Polls for changes every `every` until `shutdown`.
    pub(crate) async fn poll(
        self: Arc<Self>,
        every: std::time::Duration,
        mut shutdown: mc_kit::shutdown::Shutdown,
    ) {
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                () = tokio::time::sleep(every) => {}
            }
            let site = self.clone();
            match tokio::task::spawn_blocking(move || site.refresh()).await {
                Ok(Ok(true)) => tracing::info!("the docs changed: serving the new tree"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot walk the docs directory"),
                Err(e) => tracing::warn!(error = %e, "the walk failed"),
            }
        }
    }
}

fn pages(tree: &Tree) -> i64 {
    let n = tree
        .files
        .values()
        .filter(|f| f.kind == crate::tree::Kind::Markdown)
        .count();
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_rendered_again_after_the_refresh_and_cached_until_then() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.md"), "# One").unwrap();
        let site = Site::open(d.path().to_owned(), "t".into()).unwrap();
        let get = |site: &Site| {
            let tree = site.tree.load_full();
            let f = tree.files.get("a").cloned().unwrap();
            site.page("a", &f).unwrap().title.clone()
        };
        assert_eq!(get(&site).as_deref(), Some("One"));
        assert_eq!(get(&site).as_deref(), Some("One"));
        assert_eq!(site.metrics.renders.get(), 1);
        assert_eq!(site.metrics.cache_hits.get(), 1);
        assert!(!site.refresh().unwrap(), "nothing changed");
        // A different size is a different stamp, whatever the clock's resolution.
        std::fs::write(d.path().join("a.md"), "# Two!").unwrap();
        std::fs::write(d.path().join("b.md"), "# B").unwrap();
        assert!(site.refresh().unwrap());
        assert_eq!(get(&site).as_deref(), Some("Two!"));
        assert_eq!(site.metrics.renders.get(), 2);
        assert_eq!(site.metrics.pages.get(), 2);
        std::fs::remove_file(d.path().join("a.md")).unwrap();
        assert!(site.refresh().unwrap());
        assert!(!site.tree.load().files.contains_key("a"));
        assert_eq!(site.cache.lock().unwrap().len(), 0);
    }
}
