//! `mcd snapshot` and `mcd restore`.
//!
//! A running process holds its redb files locked, so a snapshot of a live
//! process is asked of the process itself over its admin socket (it copies
//! from one read transaction while writes continue). A stopped process's
//! files are opened and copied directly. Restore is offline only.
//!
//! Each store's key files travel with it (`<store>-<stamp>.<key name>`
//! beside `<store>-<stamp>.redb`): a restored MCIAS needs `master.key` to
//! open its signing keys, TOTP secrets and passkeys, a restored MC-Proxy
//! needs `cert-seal.key` for its L7 private keys.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use mc_kit::store::{Store, StoreSpec};
use mc_proto::admin::v1::{SnapshotRequest, StoreSnapshot};
use mc_shell::admin::{AdminStore, KeyRestore};

use crate::Component;
use crate::daemon::EXIT_CONFIG;

/// The stores, admin socket and data dir a component's config names.
fn describe(
    component: Component,
    config: &Path,
) -> Result<(Vec<StoreSpec>, PathBuf, PathBuf), mc_kit::config::ConfigError> {
    Ok(match component {
        Component::Controlplane => {
            let c: mc_controlplane::ControlplaneConfig = mc_kit::config::load(config)?;
            (
                mc_controlplane::stores(&c),
                c.server.admin_socket,
                c.data_dir,
            )
        }
        Component::Dataplane => {
            let c: mc_dataplane::DataplaneConfig = mc_kit::config::load(config)?;
            (mc_dataplane::stores(&c), c.admin.socket, c.data_dir)
        }
        Component::Agent => {
            let c: mc_agent::AgentConfig = mc_kit::config::load(config)?;
            (Vec::new(), c.server.admin_socket, c.data_dir)
        }
    })
}

pub(crate) fn snapshot(
    component: Component,
    config: &Path,
    dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let (stores, socket, data_dir) = match describe(component, config) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mcd: {e}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let dir = match dir {
        Some(d) => std::path::absolute(&d).with_context(|| format!("{}", d.display()))?,
        None => data_dir.join("snapshots"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let online = runtime.block_on(async {
        let Ok(mut client) = mc_shell::admin::connect(&socket).await else {
            return Ok(None);
        };
        let request = SnapshotRequest {
            dir: dir.display().to_string(),
        };
        client
            .snapshot(request)
            .await
            .map(|r| Some(r.into_inner().snapshots))
    });
    let snapshots = match online {
        Ok(Some(s)) => s,
        Ok(None) => offline(&stores, &dir)?,
        Err(status) => bail!(
            "the running {component} refused the snapshot: {}",
            status.message()
        ),
    };
    if snapshots.is_empty() {
        println!("{component} owns no stores yet; nothing to snapshot");
    }
    for s in &snapshots {
        println!(
            "{}\t{}\t{} tables\t{} entries\t{} bytes",
            s.store, s.path, s.tables, s.entries, s.bytes
        );
        for key in &s.key_files {
            println!("{}\t{key}\tkey file", s.store);
        }
    }
    if snapshots.iter().any(|s| !s.key_files.is_empty()) {
        println!(
            "the snapshot holds key files: keep {} as secret as the data dir",
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn offline(stores: &[StoreSpec], dir: &Path) -> anyhow::Result<Vec<StoreSnapshot>> {
    let mut open = Vec::new();
    for spec in stores {
        if !spec.path.exists() {
            eprintln!(
                "mcd: {} does not exist yet; skipping store `{}`",
                spec.path.display(),
                spec.name
            );
            continue;
        }
        open.push(AdminStore::new(
            spec.name,
            Arc::new(Store::open(&spec.path, spec.schema)?),
            spec.key_files.clone(),
        ));
    }
    Ok(mc_shell::admin::snapshot_stores(&open, dir)?)
}

pub(crate) fn restore(
    component: Component,
    config: &Path,
    store: &str,
    from: &Path,
) -> anyhow::Result<ExitCode> {
    let (stores, _, _) = match describe(component, config) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mcd: {e}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let Some(spec) = stores.iter().find(|s| s.name == store) else {
        let names: Vec<_> = stores.iter().map(|s| s.name).collect();
        bail!(
            "{component} has no store `{store}` (it has: {})",
            names.join(", ")
        );
    };
    Store::restore(from, &spec.path, spec.schema)?;
    println!("restored {} from {}", spec.path.display(), from.display());
    for done in mc_shell::admin::restore_key_files(from, &spec.key_files)? {
        match done {
            KeyRestore::Restored { key, from } => {
                println!("restored {} from {}", key.display(), from.display());
            }
            KeyRestore::Unchanged { key } => {
                println!("{} already matches the snapshot", key.display());
            }
            KeyRestore::Replaced { key, kept } => println!(
                "restored {} from the snapshot; the key it replaced is kept as {}",
                key.display(),
                kept.display()
            ),
            KeyRestore::Missing { key, expected } => eprintln!(
                "mcd: warning: the snapshot carries no {} (looked for {}); sealed data in `{store}` opens only if the key in place is the one it was sealed with",
                key.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                expected.display()
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
