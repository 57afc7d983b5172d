//! `mcctl proxy routes import FILE`: many routes in one request.
//!
//! Every entry is checked here first, and an error names the entry
//! (`routes[3].mode`), so a bad file changes nothing. By default the file is
//! merged (its hostnames added or replaced); `--replace` makes it the whole
//! table, and what that removes is shown and confirmed first (a dry run).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};
use mc_proto::proxy::v1 as pb;
use serde::Serialize;

use crate::enums::parse_i32;
use crate::output::Out;
use crate::proxy::{Client, refused};

/// One entry of a `routes import` file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportRoute {
    hostname: String,
    backends: Vec<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    send_proxy_protocol: Option<String>,
    #[serde(default)]
    connect_timeout_ms: u32,
    #[serde(default)]
    idle_timeout_ms: u32,
    #[serde(default)]
    l7: Option<ImportL7>,
    /// `rr` (default), `least` or `hash`.
    #[serde(default)]
    balance: Option<String>,
    #[serde(default)]
    backend_weights: Vec<u32>,
    #[serde(default)]
    hash_header: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportL7 {
    certificate: String,
    #[serde(default)]
    backend_protocol: Option<String>,
    #[serde(default)]
    backend_server_name: String,
    #[serde(default)]
    access_log: bool,
    #[serde(default)]
    paths: Vec<ImportPath>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportPath {
    prefix: String,
    backends: Vec<String>,
    #[serde(default)]
    backend_protocol: Option<String>,
    #[serde(default)]
    strip_prefix: bool,
}

/// Merge, or replace the listener's table (after a confirmation or not).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum How {
    Merge,
    Replace,
    ReplaceAfterConfirming,
}

#[derive(Serialize)]
struct ImportView {
    routes: usize,
    replace: bool,
    added: u32,
    changed: u32,
    removed: u32,
    unchanged: u32,
    removed_hostnames: Vec<String>,
    policies_removed: u32,
    snapshot_generation: u64,
}

/// The most removed hostnames the confirmation names one by one.
const SHOW_REMOVED: usize = 20;

/// "3 routes (a.test, b.test, c.test) and 1 L7 policy".
fn removal(r: &pb::ReplaceRoutesResponse) -> String {
    let mut names: Vec<&str> = r
        .removed_hostnames
        .iter()
        .take(SHOW_REMOVED)
        .map(String::as_str)
        .collect();
    if r.removed_hostnames.len() > SHOW_REMOVED {
        names.push("…");
    }
    format!(
        "{} route(s) ({}) and {} L7 policy(ies)",
        r.removed,
        names.join(", "),
        r.policies_removed
    )
}

/// Asks on the terminal; refuses without one.
fn confirm(what: &str) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "--replace would remove {what}; nothing changed: pass --yes to confirm without a terminal"
        );
    }
    eprint!("--replace will remove {what}. Continue? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("not confirmed; nothing changed");
    }
    Ok(())
}

fn import_route(i: usize, r: ImportRoute) -> anyhow::Result<pb::Route> {
    let mode = parse_i32::<pb::RouteMode>(r.mode.as_deref().unwrap_or("l4"))
        .with_context(|| format!("routes[{i}].mode"))?;
    let send_proxy_protocol =
        parse_i32::<pb::ProxyProtocol>(r.send_proxy_protocol.as_deref().unwrap_or("off"))
            .with_context(|| format!("routes[{i}].send_proxy_protocol"))?;
    let l7 = match r.l7 {
        Some(l) => Some(pb::L7Options {
            certificate: l.certificate,
            backend_protocol: parse_i32::<pb::BackendProtocol>(
                l.backend_protocol.as_deref().unwrap_or("http1"),
            )
            .with_context(|| format!("routes[{i}].l7.backend_protocol"))?,
            backend_server_name: l.backend_server_name,
            access_log: l.access_log,
            paths: l
                .paths
                .into_iter()
                .enumerate()
                .map(|(j, p)| {
                    let backend_protocol = match p.backend_protocol.as_deref() {
                        None => 0,
                        Some(v) => parse_i32::<pb::BackendProtocol>(v).with_context(|| {
                            format!("routes[{i}].l7.paths[{j}].backend_protocol")
                        })?,
                    };
                    Ok(pb::PathRule {
                        prefix: p.prefix,
                        backends: p.backends,
                        backend_protocol,
                        strip_prefix: p.strip_prefix,
                    })
                })
                .collect::<anyhow::Result<_>>()?,
            ..Default::default()
        }),
        None => None,
    };
    Ok(pb::Route {
        listener: String::new(),
        hostname: r.hostname,
        mode,
        backends: r.backends,
        send_proxy_protocol,
        connect_timeout_ms: r.connect_timeout_ms,
        idle_timeout_ms: r.idle_timeout_ms,
        l7,
        balance: parse_i32::<pb::BalancePolicy>(r.balance.as_deref().unwrap_or("rr"))
            .with_context(|| format!("routes[{i}].balance"))?,
        backend_weights: r.backend_weights,
        hash_header: r.hash_header,
        ..pb::Route::default()
    })
}

pub(super) async fn run(
    c: &mut Client,
    out: Out,
    file: &Path,
    listener: Option<String>,
    how: How,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let entries: Vec<ImportRoute> = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a JSON array of routes", file.display()))?;
    let routes = entries
        .into_iter()
        .enumerate()
        .map(|(i, r)| import_route(i, r))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let n = routes.len();
    let mut request = pb::ReplaceRoutesRequest {
        listener: listener.unwrap_or_default(),
        routes,
        merge: how == How::Merge,
        dry_run: false,
    };
    if how == How::ReplaceAfterConfirming {
        let preview = c
            .replace_routes(pb::ReplaceRoutesRequest {
                dry_run: true,
                ..request.clone()
            })
            .await
            .map_err(refused)?
            .into_inner();
        if preview.removed > 0 || preview.policies_removed > 0 {
            confirm(&removal(&preview))?;
        }
    }
    request.dry_run = false;
    let r = c
        .replace_routes(request)
        .await
        .map_err(refused)?
        .into_inner();
    if r.removed > 0 || r.policies_removed > 0 {
        eprintln!("removed {}", removal(&r));
    }
    let line = format!(
        "{n} routes: {} added, {} changed, {} removed, {} unchanged (snapshot {})",
        r.added, r.changed, r.removed, r.unchanged, r.snapshot_generation
    );
    let view = ImportView {
        routes: n,
        replace: how != How::Merge,
        added: r.added,
        changed: r.changed,
        removed: r.removed,
        unchanged: r.unchanged,
        removed_hostnames: r.removed_hostnames,
        policies_removed: r.policies_removed,
        snapshot_generation: r.snapshot_generation,
    };
    out.done(&view, &line)
}
