//! `mcctl dns …`: MCNS (`mc.dns.v1`) through the data plane's admin
//! socket, or with `--node NAME` through the control plane
//! ([`crate::target`]), one module per command group.
//!
//! Each group parses its own subcommands and answers through
//! [`Out`](crate::output::Out); this module only connects and dispatches.

mod cache;
mod records;
mod status;
mod tsig;
mod zones;

use clap::{Args, Subcommand};
use mc_proto::dns::v1 as pb;
use pb::dns_admin_client::DnsAdminClient;

use crate::endpoints::Endpoints;
use crate::output::Out;

pub(crate) type Client = DnsAdminClient<crate::target::Channel>;

#[derive(Args)]
pub(crate) struct DnsArgs {
    /// This node's MCNS, through the control plane (your MCIAS token;
    /// changes are audited), instead of the local admin socket.
    #[arg(long, global = true, value_name = "NAME")]
    node: Option<String>,
    #[command(subcommand)]
    command: DnsCommand,
}

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
    crate::iam::client::refused(status)
}

pub(crate) async fn run(endpoints: &Endpoints, out: Out, args: DnsArgs) -> anyhow::Result<()> {
    let channel = crate::target::channel(endpoints, "dns", args.node.as_deref()).await?;
    let mut c = DnsAdminClient::new(channel);
    match args.command {
        DnsCommand::Status => status::run(&mut c, out).await,
        DnsCommand::Zones(cmd) => zones::run(&mut c, out, cmd).await,
        DnsCommand::Records(cmd) => records::run(&mut c, out, cmd).await,
        DnsCommand::Flush { name } => cache::flush(&mut c, out, name).await,
        DnsCommand::Tsig(cmd) => tsig::run(&mut c, out, cmd).await,
    }
}
