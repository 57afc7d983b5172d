//! `mcctl sync DIR [--dry-run]`: declarative deploys. Every `*.toml` in
//! DIR (not its subdirectories) is a service definition, validated here
//! (errors name the file) and sent in one `Sync`; the master deploys the
//! new, redeploys the changed and undeploys the services DIR does not
//! list. `--dry-run` prints the same plan with each change's fields and
//! changes nothing. A sync that did not fully succeed exits non-zero.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use mc_master::spec::{MAX_FILE, ServiceDef};
use mc_proto::deploy::v1 as pb;
use serde::Serialize;

use crate::endpoints::Endpoints;
use crate::iam::client::refused;
use crate::mcp::{StepView, client, print_steps, step_views};
use crate::output::{Col, Out, Table, row, spinner};

/// Most definitions in one directory (the master's bound too).
const MAX_FILES: usize = 256;

#[derive(Serialize)]
struct ChangeView {
    service: String,
    action: String,
    node: String,
    success: bool,
    diff: Vec<String>,
    steps: Vec<StepView>,
}

#[derive(Serialize)]
struct SyncView {
    dry_run: bool,
    success: bool,
    changes: Vec<ChangeView>,
}

const CHANGES: Table = Table(&[
    Col::left("ACTION", 10),
    Col::left("SERVICE", 16),
    Col::left("NODE", 10),
    Col::left("OK", 0),
]);

/// The definitions in `dir`, sorted by file name.
fn read_dir(dir: &Path) -> anyhow::Result<Vec<ServiceDef>> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    if files.len() > MAX_FILES {
        bail!("{} holds more than {MAX_FILES} definitions", dir.display());
    }
    files.sort();
    let mut defs = Vec::new();
    for f in files {
        let mut text = String::new();
        std::fs::File::open(&f)
            .and_then(|h| h.take(MAX_FILE as u64 + 1).read_to_string(&mut text))
            .with_context(|| format!("reading {}", f.display()))?;
        let def =
            ServiceDef::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        if let Some(other) = defs.iter().position(|d: &ServiceDef| d.name == def.name) {
            bail!(
                "{}: {} is defined twice (file {} too)",
                f.display(),
                def.name,
                other + 1
            );
        }
        defs.push(def);
    }
    Ok(defs)
}

pub(crate) async fn sync(e: &Endpoints, out: Out, dir: &Path, dry_run: bool) -> anyhow::Result<()> {
    let defs = read_dir(dir)?;
    let mut c = client(e).await?;
    let bar = spinner(format!("syncing {} services", defs.len()));
    let r = c
        .sync(pb::SyncRequest {
            specs: defs.iter().map(ServiceDef::to_proto).collect(),
            dry_run,
        })
        .await;
    bar.finish_and_clear();
    let r = r.map_err(refused)?.into_inner();
    let view = SyncView {
        dry_run,
        success: r.success,
        changes: r
            .changes
            .into_iter()
            .map(|c| ChangeView {
                service: c.service,
                action: c.action,
                node: c.node,
                success: c.success,
                diff: c.diff,
                steps: step_views(c.steps),
            })
            .collect(),
    };
    out.show(&view, || {
        for c in &view.changes {
            let ok = if c.success { "ok" } else { "FAILED" };
            CHANGES.print(std::iter::once(row![c.action, c.service, c.node, ok]));
            for d in &c.diff {
                println!("    {d}");
            }
            if !c.success {
                print_steps(&c.steps);
            }
        }
        if dry_run {
            println!("dry run: nothing changed");
        }
    })?;
    if !view.success {
        bail!("sync did not fully succeed (see above)");
    }
    Ok(())
}
