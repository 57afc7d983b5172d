//! `mcctl dns …`: MCNS through the data plane's admin socket (`mc.dns.v1`),
//! one module per command group.
//!
//! Each group parses its own subcommands and answers through
//! [`Out`](crate::output::Out); this module only connects and dispatches.

mod cache;
mod records;
mod status;
mod tsig;
mod zones;

use anyhow::Context;
use clap::Subcommand;
use mc_proto::dns::v1 as pb;
use pb::dns_admin_client::DnsAdminClient;
use tonic::transport::Channel;

use crate::endpoints::Endpoints;
use crate::output::Out;

pub(crate) type Client = DnsAdminClient<Channel>;

#[derive(Subcommand)]
pub(crate) enum DnsCommand {
    /// Version, workers, I/O driver, listen addresses, responses by rcode, cache, upstreams.
    Status,
    /// Zones.
    #[command(subcommand)]
    Zones(zones::ZoneCommand),
    /// Records of a zone.
    #[command(subcommand)]
    Records(records::RecordCommand),
    /// Drop the forwarding cache (all names, or one).
    Flush { name: Option<String> },
    /// TSIG keys for RFC 2136 UPDATE.
    #[command(subcommand)]
    Tsig(tsig::TsigCommand),
}

/// A gRPC error as the operator should read it.
pub(crate) fn refused(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", status.message())
}

async fn client(endpoints: &Endpoints) -> anyhow::Result<Client> {
    let socket = endpoints
        .socket("dns")
        .or_else(|| endpoints.socket("dataplane"))
        .context("endpoints file has no dns.admin_socket")?;
    let channel = mc_shell::admin::channel(&socket)
        .await
        .with_context(|| format!("cannot reach the data plane at {}", socket.display()))?;
    Ok(DnsAdminClient::new(channel))
}

pub(crate) async fn run(endpoints: &Endpoints, out: Out, cmd: DnsCommand) -> anyhow::Result<()> {
    let mut c = client(endpoints).await?;
    match cmd {
        DnsCommand::Status => status::run(&mut c, out).await,
        DnsCommand::Zones(cmd) => zones::run(&mut c, out, cmd).await,
        DnsCommand::Records(cmd) => records::run(&mut c, out, cmd).await,
        DnsCommand::Flush { name } => cache::flush(&mut c, out, name).await,
        DnsCommand::Tsig(cmd) => tsig::run(&mut c, out, cmd).await,
    }
}
