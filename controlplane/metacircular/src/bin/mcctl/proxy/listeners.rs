//! `mcctl proxy listeners …`.

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use mc_proto::proxy::v1 as pb;
use serde::Serialize;

use super::{Client, parse_ms, refused};
use crate::enums::{from_flag, name_or};
use crate::output::{Col, Out, Table, row};

#[derive(Subcommand)]
pub(crate) enum ListenerCommand {
    List,
    /// Add a listener, or change one the admin API owns (binds before it commits).
    Add(AddArgs),
    /// Remove a listener (refused while it has routes, unless --force).
    Remove {
        name: String,
        /// Also remove the listener's routes and their L7 policies.
        #[arg(long)]
        force: bool,
    },
}

/// `--proxy-protocol`: spelled as `pb::ProxyProtocol` without its prefix.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ProxyVersion {
    Off,
    V1,
    V2,
    Any,
}

/// `--kind`: spelled as `pb::ListenerKind` without its prefix.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Kind {
    Tls,
    Http,
}

/// `--min-tls`.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum TlsVersion {
    #[value(name = "1.2")]
    V12,
    #[value(name = "1.3")]
    V13,
}

#[derive(Args)]
pub(crate) struct AddArgs {
    /// `[a-z0-9-]{1,63}`.
    name: String,
    /// `ip:port` to listen on, e.g. `0.0.0.0:443`.
    #[arg(long)]
    address: String,
    /// `tls`: SNI routing; `http`: plain HTTP, ACME HTTP-01 challenges to the
    /// Host's route on this listener, 308 to https for hostnames with a TLS route.
    #[arg(long, value_enum, default_value = "tls")]
    kind: Kind,
    /// Accept a PROXY header from --trusted-proxy peers.
    #[arg(long, value_enum, default_value = "off")]
    proxy_protocol: ProxyVersion,
    /// CIDR allowed to send a PROXY header; repeat for several.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    trusted_proxies: Vec<String>,
    /// Route hostname used for ClientHellos without SNI.
    #[arg(long)]
    default_route: Option<String>,
    /// Lowest TLS version L7 routes offer.
    #[arg(long, value_enum, default_value = "1.3")]
    min_tls: TlsVersion,
    /// Time allowed for the PROXY header and the ClientHello, e.g. `10s`.
    #[arg(long, value_parser = parse_ms)]
    client_hello_timeout: Option<u32>,
    /// Default backend connect timeout for routes, e.g. `5s`.
    #[arg(long, value_parser = parse_ms)]
    connect_timeout: Option<u32>,
    /// Default idle timeout for routes, e.g. `5m`.
    #[arg(long, value_parser = parse_ms)]
    idle_timeout: Option<u32>,
}

impl AddArgs {
    fn into_pb(self) -> anyhow::Result<pb::Listener> {
        Ok(pb::Listener {
            name: self.name,
            address: self.address,
            proxy_protocol: from_flag::<pb::ProxyProtocol>(&self.proxy_protocol)?,
            trusted_proxies: self.trusted_proxies,
            default_route: self.default_route.unwrap_or_default(),
            min_tls_version: match self.min_tls {
                TlsVersion::V12 => pb::TlsVersion::TlsVersion12,
                TlsVersion::V13 => pb::TlsVersion::TlsVersion13,
            }
            .into(),
            client_hello_timeout_ms: self.client_hello_timeout.unwrap_or(0),
            connect_timeout_ms: self.connect_timeout.unwrap_or(0),
            idle_timeout_ms: self.idle_timeout.unwrap_or(0),
            origin: 0,
            kind: from_flag::<pb::ListenerKind>(&self.kind)?,
        })
    }
}

#[derive(Serialize)]
struct ListenerView {
    name: String,
    address: String,
    kind: String,
    proxy_protocol: String,
    trusted_proxies: Vec<String>,
    default_route: String,
    origin: String,
}

impl From<pb::Listener> for ListenerView {
    fn from(l: pb::Listener) -> Self {
        Self {
            name: l.name,
            address: l.address,
            kind: name_or::<pb::ListenerKind>(l.kind, "tls"),
            proxy_protocol: name_or::<pb::ProxyProtocol>(l.proxy_protocol, "off"),
            trusted_proxies: l.trusted_proxies,
            default_route: l.default_route,
            origin: name_or::<pb::Origin>(l.origin, "?"),
        }
    }
}

const TABLE: Table = Table(&[
    Col::left("NAME", 16),
    Col::left("ADDRESS", 24),
    Col::left("KIND", 5),
    Col::left("PROXY", 6),
    Col::left("ORIGIN", 8),
    Col::left("TRUSTED PROXIES", 0),
]);

pub(super) async fn run(c: &mut Client, out: Out, cmd: ListenerCommand) -> anyhow::Result<()> {
    match cmd {
        ListenerCommand::List => list(c, out).await,
        ListenerCommand::Add(args) => add(c, out, args.into_pb()?).await,
        ListenerCommand::Remove { name, force } => remove(c, out, name, force).await,
    }
}

async fn add(c: &mut Client, out: Out, listener: pb::Listener) -> anyhow::Result<()> {
    let l = ListenerView::from(
        c.upsert_listener(pb::UpsertListenerRequest {
            listener: Some(listener),
        })
        .await
        .map_err(refused)?
        .into_inner(),
    );
    let line = format!("listener {} on {}", l.name, l.address);
    out.done(&l, &line)
}

async fn remove(c: &mut Client, out: Out, name: String, force: bool) -> anyhow::Result<()> {
    let removed = c
        .remove_listener(pb::RemoveListenerRequest {
            name: name.clone(),
            force,
        })
        .await
        .map_err(refused)?
        .into_inner()
        .removed;
    if !removed {
        bail!("no listener {name}");
    }
    out.done(
        &serde_json::json!({ "removed": name }),
        &format!("removed listener {name}"),
    )
}

async fn list(c: &mut Client, out: Out) -> anyhow::Result<()> {
    let ls: Vec<ListenerView> = c
        .list_listeners(pb::ListListenersRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .listeners
        .into_iter()
        .map(ListenerView::from)
        .collect();
    out.show(&ls, || {
        TABLE.print(ls.iter().map(|l| {
            row![
                l.name,
                l.address,
                l.kind,
                l.proxy_protocol,
                l.origin,
                l.trusted_proxies.join(",")
            ]
        }));
    })
}
