//! `mcctl proxy …`: MC-Proxy through the data plane's admin socket
//! (`mc.proxy.v1`), one module per command group.
//!
//! Each group parses its own subcommands and answers through
//! [`Out`](crate::output::Out); this module only connects and dispatches.

mod certs;
mod firewall;
mod listeners;
mod policies;
mod routes;
mod status;

use anyhow::Context;
use clap::Subcommand;
use mc_proto::proxy::v1 as pb;
use pb::proxy_admin_client::ProxyAdminClient;
use tonic::transport::Channel;

use crate::endpoints::Endpoints;
use crate::output::Out;

pub(crate) type Client = ProxyAdminClient<Channel>;

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
}

/// A gRPC error as the operator should read it.
pub(crate) fn refused(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", status.message())
}

/// `5s`, `5m`… as milliseconds.
pub(crate) fn parse_ms(s: &str) -> Result<u32, String> {
    let d: mc_kit::config::Duration = s.parse()?;
    u32::try_from(d.get().as_millis()).map_err(|_| format!("`{s}` is too long"))
}

pub(crate) async fn client(endpoints: &Endpoints) -> anyhow::Result<Client> {
    let socket = endpoints
        .socket("proxy")
        .context("endpoints file has no proxy.admin_socket")?;
    let channel = mc_shell::admin::channel(&socket)
        .await
        .with_context(|| format!("cannot reach the data plane at {}", socket.display()))?;
    // Route tables of up to 100k entries travel in one message.
    Ok(ProxyAdminClient::new(channel).max_decoding_message_size(64 << 20))
}

pub(crate) async fn run(endpoints: &Endpoints, out: Out, cmd: ProxyCommand) -> anyhow::Result<()> {
    let mut c = client(endpoints).await?;
    match cmd {
        ProxyCommand::Status => status::run(&mut c, out).await,
        ProxyCommand::Listeners(cmd) => listeners::run(&mut c, out, cmd).await,
        ProxyCommand::Routes(cmd) => routes::run(&mut c, out, cmd).await,
        ProxyCommand::Certs(cmd) => certs::run(&mut c, out, cmd).await,
        ProxyCommand::Policies(cmd) => policies::run(&mut c, out, cmd).await,
        ProxyCommand::Firewall(cmd) => firewall::run(&mut c, out, cmd).await,
        ProxyCommand::GeoipReload => firewall::geoip_reload(&mut c, out).await,
    }
}
