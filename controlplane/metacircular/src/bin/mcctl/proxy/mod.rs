//! `mcctl proxy …`: MC-Proxy (`mc.proxy.v1`) through the data plane's
//! admin socket, or with `--node NAME` through the control plane
//! ([`crate::target`]), one module per command group.
//!
//! Each group parses its own subcommands and answers through
//! [`Out`](crate::output::Out); this module only connects and dispatches.

mod certs;
mod firewall;
mod listeners;
mod policies;
mod routes;
mod status;

use clap::{Args, Subcommand};
use mc_proto::proxy::v1 as pb;
use pb::proxy_admin_client::ProxyAdminClient;

use crate::endpoints::Endpoints;
use crate::output::Out;

pub(crate) type Client = ProxyAdminClient<crate::target::Channel>;

#[derive(Args)]
pub(crate) struct ProxyArgs {
    /// This node's MC-Proxy, through the control plane (your MCIAS token;
    /// changes are audited), instead of the local admin socket.
    #[arg(long, global = true, value_name = "NAME")]
    node: Option<String>,
    #[command(subcommand)]
    command: ProxyCommand,
}

#[derive(Subcommand)]
pub(crate) enum ProxyCommand {
    /// Version, workers, I/O driver, per-listener and per-route counters, blocks.
    Status,
    /// Listeners.
    #[command(subcommand)]
    Listeners(listeners::ListenerCommand),
    /// Routes: SNI hostname → backends.
    #[command(subcommand)]
    Routes(routes::RouteCommand),
    /// Certificates for L7 routes (stored sealed; keys are never shown).
    #[command(subcommand)]
    Certs(certs::CertCommand),
    /// Per-route L7 policies (403 on match; first match wins).
    #[command(subcommand)]
    Policies(policies::PolicyCommand),
    /// The global firewall.
    #[command(subcommand)]
    Firewall(firewall::FirewallCommand),
    /// Re-read the GeoIP database file.
    GeoipReload,
    /// Re-read the data plane's config file and apply it in place (as SIGHUP
    /// does): routes, listeners, certificates, firewall; API entries stay.
    Reload,
}

/// A gRPC error as the operator should read it.
pub(crate) fn refused(status: tonic::Status) -> anyhow::Error {
    crate::iam::client::refused(status)
}

/// `5s`, `5m`… as milliseconds.
pub(crate) fn parse_ms(s: &str) -> Result<u32, String> {
    let d: mc_kit::config::Duration = s.parse()?;
    u32::try_from(d.get().as_millis()).map_err(|_| format!("`{s}` is too long"))
}

pub(crate) async fn client(endpoints: &Endpoints, node: Option<&str>) -> anyhow::Result<Client> {
    let channel = crate::target::channel(endpoints, "proxy", node).await?;
    // Route tables of up to 100k entries travel in one message.
    Ok(ProxyAdminClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20))
}

pub(crate) async fn run(endpoints: &Endpoints, out: Out, args: ProxyArgs) -> anyhow::Result<()> {
    let mut c = client(endpoints, args.node.as_deref()).await?;
    match args.command {
        ProxyCommand::Status => status::run(&mut c, out).await,
        ProxyCommand::Listeners(cmd) => listeners::run(&mut c, out, cmd).await,
        ProxyCommand::Routes(cmd) => routes::run(&mut c, out, cmd).await,
        ProxyCommand::Certs(cmd) => certs::run(&mut c, out, cmd).await,
        ProxyCommand::Policies(cmd) => policies::run(&mut c, out, cmd).await,
        ProxyCommand::Firewall(cmd) => firewall::run(&mut c, out, cmd).await,
        ProxyCommand::GeoipReload => firewall::geoip_reload(&mut c, out).await,
        ProxyCommand::Reload => reload(&mut c, out).await,
    }
}

#[derive(serde::Serialize)]
struct ReloadView {
    config_file: String,
    snapshot_generation: u64,
    listeners: u32,
    routes: u32,
}

/// `mcctl proxy reload`.
async fn reload(c: &mut Client, out: Out) -> anyhow::Result<()> {
    let r = c
        .reload_config(pb::ReloadConfigRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    let view = ReloadView {
        config_file: r.config_file,
        snapshot_generation: r.snapshot_generation,
        listeners: r.listeners,
        routes: r.routes,
    };
    let line = format!(
        "reloaded {}: {} listener(s), {} route(s), snapshot {}",
        view.config_file, view.listeners, view.routes, view.snapshot_generation
    );
    out.done(&view, &line)
}
