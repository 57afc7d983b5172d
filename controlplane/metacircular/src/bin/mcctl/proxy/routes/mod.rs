//! `mcctl proxy routes …`: list, add, remove and import routes.

mod add;
mod balance;
mod import;

use std::path::PathBuf;

use anyhow::bail;
use clap::Subcommand;
use mc_proto::proxy::v1 as pb;
use serde::Serialize;

use super::{Client, refused};
use crate::enums::{name, name_or};
use crate::output::{Col, Out, Table, row};
use balance::weighted;

#[derive(Subcommand)]
pub(crate) enum RouteCommand {
    /// List routes (all listeners unless --listener).
    List {
        #[arg(long)]
        listener: Option<String>,
    },
    /// Add a route (idempotent); replacing one with other settings needs --replace.
    Add(Box<add::AddArgs>),
    /// Remove a route.
    Remove {
        hostname: String,
        #[arg(long)]
        listener: Option<String>,
    },
    /// Add or replace the routes in FILE, in one transaction and one snapshot;
    /// the listener's other routes stay unless --replace. FILE is JSON:
    /// `[{"hostname": "a.example.com", "backends": ["10.0.0.5:443"], "mode": "l4"|"l7",
    /// "send_proxy_protocol": "off"|"v1"|"v2", "l7": {"certificate": "a",
    /// "backend_protocol": "http1"|"h2c"|"tls", "paths": [{"prefix": "/api/",
    /// "backends": ["10.0.0.6:80"], "strip_prefix": true}]}, "balance": "rr"|"least"|"hash",
    /// "backend_weights": [3], "hash_header": "x-user"}, ...]`.
    Import {
        file: PathBuf,
        #[arg(long)]
        listener: Option<String>,
        /// Make FILE the listener's whole API route table: routes it does not
        /// list are removed with their L7 policies (shown, then confirmed).
        #[arg(long)]
        replace: bool,
        /// With --replace: do not ask for confirmation (needed without a terminal).
        #[arg(long, requires = "replace")]
        yes: bool,
    },
}

/// A route as `routes list --json` shows it.
#[derive(Serialize)]
struct RouteView {
    listener: String,
    hostname: String,
    mode: String,
    backends: Vec<String>,
    send_proxy_protocol: String,
    origin: String,
    /// L7 path rules as `PREFIX=BACKEND,…`, ` (stripped)` when it is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    paths: Vec<String>,
    /// `rr`, `least` or `hash` (with the header hashed, and slow start).
    balance: String,
    /// One per backend when the route has weights.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    backend_weights: Vec<u32>,
    /// The active health check, described; empty: none.
    #[serde(skip_serializing_if = "String::is_empty")]
    health_check: String,
    /// Routes on an http listener: `redirect`, `serve` or `404`.
    #[serde(skip_serializing_if = "String::is_empty")]
    plain_http: String,
}

impl From<pb::Route> for RouteView {
    fn from(r: pb::Route) -> Self {
        Self {
            balance: balance::describe_balance(&r),
            health_check: balance::describe_check(&r),
            plain_http: name::<pb::PlainHttp>(r.plain_http)
                .filter(|n| n != "redirect")
                .unwrap_or_default(),
            backend_weights: r.backend_weights.clone(),
            mode: name_or::<pb::RouteMode>(r.mode, "l4"),
            send_proxy_protocol: name_or::<pb::ProxyProtocol>(r.send_proxy_protocol, "off"),
            origin: name_or::<pb::Origin>(r.origin, "?"),
            paths: r
                .l7
                .iter()
                .flat_map(|l| &l.paths)
                .map(|p| {
                    let strip = if p.strip_prefix { " (stripped)" } else { "" };
                    format!("{}={}{strip}", p.prefix, p.backends.join(","))
                })
                .collect(),
            listener: r.listener,
            hostname: r.hostname,
            backends: r.backends,
        }
    }
}

const TABLE: Table = Table(&[
    Col::left("LISTENER", 12),
    Col::left("HOSTNAME", 32),
    Col::left("MODE", 4),
    Col::left("PROXY", 6),
    Col::left("ORIGIN", 8),
    Col::left("BALANCE", 8),
    Col::left("BACKENDS", 0),
]);

pub(super) async fn run(c: &mut Client, out: Out, cmd: RouteCommand) -> anyhow::Result<()> {
    match cmd {
        RouteCommand::List { listener } => list(c, out, listener).await,
        RouteCommand::Add(args) => add::run(c, out, *args).await,
        RouteCommand::Remove { hostname, listener } => remove(c, out, hostname, listener).await,
        RouteCommand::Import {
            file,
            listener,
            replace,
            yes,
        } => {
            let how = if !replace {
                import::How::Merge
            } else if yes {
                import::How::Replace
            } else {
                import::How::ReplaceAfterConfirming
            };
            import::run(c, out, &file, listener, how).await
        }
    }
}

async fn list(c: &mut Client, out: Out, listener: Option<String>) -> anyhow::Result<()> {
    let rs: Vec<RouteView> = c
        .list_routes(pb::ListRoutesRequest {
            listener: listener.unwrap_or_default(),
        })
        .await
        .map_err(refused)?
        .into_inner()
        .routes
        .into_iter()
        .map(RouteView::from)
        .collect();
    out.show(&rs, || {
        TABLE.print(rs.iter().map(|r| {
            row![
                r.listener,
                r.hostname,
                r.mode,
                r.send_proxy_protocol,
                r.origin,
                r.balance,
                std::iter::once(weighted(&r.backends, &r.backend_weights).join(","))
                    .chain(r.paths.iter().cloned())
                    .chain(
                        (!r.health_check.is_empty()).then(|| format!("check {}", r.health_check))
                    )
                    .collect::<Vec<_>>()
                    .join("; ")
            ]
        }));
    })
}

async fn remove(
    c: &mut Client,
    out: Out,
    hostname: String,
    listener: Option<String>,
) -> anyhow::Result<()> {
    let removed = c
        .remove_route(pb::RemoveRouteRequest {
            listener: listener.unwrap_or_default(),
            hostname: hostname.clone(),
        })
        .await
        .map_err(refused)?
        .into_inner()
        .removed;
    if !removed {
        bail!("no route {hostname}");
    }
    out.done(
        &serde_json::json!({ "removed": hostname }),
        &format!("removed route {hostname}"),
    )
}
