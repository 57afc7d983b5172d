//! `mcctl`: the operator's CLI.
//!
//! It finds the platform from `--endpoints FILE`, else `$MC_ENDPOINTS`, else
//! `./.mc-dev/endpoints.json` (what `mcd dev` writes), so after `mcd dev`
//! every command works with no flags.
//!
//! One module per command group (`status`, `iam/`, `crypt`, `proxy/`, `dns/`, `dev`,
//! `registry`, `mcp`, `mcp_data`, `mcp_sync`, `audit`; `target` picks the socket or the
//! control plane for `proxy`/`dns`), each
//! with a small `run` per command; every answer goes through [`output::Out`],
//! so `--json` means the same everywhere, and proto enums are spelled through
//! [`enums`] only.

mod audit;
mod crypt;
mod dev;
mod dns;
mod endpoints;
mod enums;
mod iam;
mod mcp;
mod mcp_data;
mod mcp_sync;
mod output;
mod proxy;
mod registry;
mod secret;
mod status;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

use endpoints::Endpoints;
use output::Out;

#[derive(Parser)]
#[command(name = "mcctl", version = mc_kit::version::VERSION, about = "Metacircular operator CLI")]
struct Cli {
    /// The platform's endpoints.json (default: $MC_ENDPOINTS, then ./.mc-dev/endpoints.json).
    #[arg(long, global = true, value_name = "FILE")]
    endpoints: Option<PathBuf>,
    /// Print machine-readable JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show each process: version, readiness, uptime and details; with a
    /// SERVICE, that MCP service's containers, ports, health and drift.
    Status { service: Option<String> },
    /// Print the endpoints file in use and its contents.
    Endpoints,
    /// Log in to MCIAS; the token is kept for the other commands.
    Login {
        #[arg(long)]
        username: Option<String>,
        /// The service the login is for (matched by login-policy rules).
        #[arg(long, default_value = "mcctl")]
        service: String,
        #[command(flatten)]
        password: iam::client::PasswordSource,
    },
    /// Revoke the saved token.
    Logout,
    /// Who the saved token belongs to.
    Whoami,
    /// MCIAS administration: accounts, tokens, policy, audit.
    #[command(subcommand)]
    Iam(iam::IamCommand),
    /// Metacrypt: the seal/unseal barrier.
    #[command(subcommand)]
    Crypt(crypt::CryptCommand),
    /// MC-Proxy: routes, listeners, firewall, status (a node's, with --node).
    Proxy(proxy::ProxyArgs),
    /// MCNS: zones, records, cache, status (a node's, with --node).
    Dns(dns::DnsArgs),
    /// MCR: repositories, tags, policy, quotas, audit, garbage collection, retention.
    #[command(subcommand)]
    Registry(registry::RegistryCommand),
    /// Development helpers for the platform `mcd dev` runs: dev certificates.
    #[command(subcommand)]
    Dev(dev::DevCommand),
    /// MCP: deploy a service from its TOML definition (placement, then the node's agent).
    Deploy {
        file: PathBuf,
        /// Validate and place only; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// MCP: remove a service's routes and containers (keeps /srv/<service> unless --purge).
    Undeploy {
        service: String,
        #[arg(long)]
        purge: bool,
    },
    /// MCP: every deployed service and its containers.
    Ps {
        /// Only services on this node.
        #[arg(long, default_value = "")]
        node: String,
    },
    /// MCP: registered nodes, their health and load.
    Nodes,
    /// MCP: nodes (list, or one node's status with its last probe).
    #[command(subcommand)]
    Node(NodeCommand),
    /// MCP: make the deployed services exactly the definitions in DIR (*.toml):
    /// deploy the new, redeploy the changed, undeploy the ones not there.
    Sync {
        dir: PathBuf,
        /// Show what would change (with the changed fields); change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// MCP: stop every container of a service.
    Stop { service: String },
    /// MCP: start every container of a service.
    Start { service: String },
    /// MCP: restart every container of a service.
    Restart { service: String },
    /// MCP: a service's container log, relayed from its node's agent.
    Logs(mcp::LogsArgs),
    /// MCP: snapshot a service's /srv/<service> (kept on the master).
    Snapshot { service: String },
    /// MCP: stored snapshots, newest first (all services, or one).
    Snapshots { service: Option<String> },
    /// MCP: restore a snapshot onto its service's node (stop, import, start).
    Restore { snapshot: String },
    /// MCP: the audit trail of data-plane changes made through the control plane.
    Audit(audit::AuditArgs),
    /// MCP: move a service and its data to another node.
    Migrate {
        service: String,
        /// The target node.
        #[arg(long)]
        to: String,
    },
}

/// `mcctl node …`.
#[derive(Subcommand)]
enum NodeCommand {
    /// Registered nodes, their health and load (as `mcctl nodes`).
    List,
    /// One node: health, heartbeat, the master's last probe, load.
    Status { name: String },
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `mcctl … | head`: once the reader is gone, `println!` panics on EPIPE
/// (Rust ignores SIGPIPE, and this crate forbids the `unsafe` that would
/// restore it). Stop quietly with the status a SIGPIPE-killed tool reports to
/// a shell (128 + 13), as other Unix tools do; every other panic is reported
/// as before.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    // std prints "failed printing to stdout: Broken pipe (os error 32)".
    let epipe =
        std::io::Error::from_raw_os_error(rustix::io::Errno::PIPE.raw_os_error()).to_string();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains(&epipe) {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// `mcctl endpoints --json`.
#[derive(Serialize)]
struct EndpointsView<'a> {
    path: String,
    endpoints: &'a serde_json::Value,
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let endpoints = Endpoints::find(cli.endpoints.as_deref(), std::env::var_os("MC_ENDPOINTS"))?;
    let out = Out::new(cli.json);
    let e = &endpoints;
    match cli.command {
        Command::Status { service: None } => status::run(e, out),
        Command::Status {
            service: Some(service),
        } => block_on(mcp::status(e, out, service)),
        Command::Endpoints => {
            let view = EndpointsView {
                path: e.path.display().to_string(),
                endpoints: &e.json,
            };
            let text = serde_json::to_string_pretty(&e.json)?;
            out.show(&view, || println!("# {}\n{text}", view.path))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Login {
            username,
            service,
            password,
        } => block_on(iam::login(e, out, username, service, password)),
        Command::Logout => block_on(iam::logout(e, out)),
        Command::Whoami => block_on(iam::whoami(e, out)),
        Command::Iam(cmd) => block_on(iam::run(e, out, cmd)),
        Command::Crypt(cmd) => block_on(crypt::run(e, out, cmd)),
        Command::Proxy(cmd) => block_on(proxy::run(e, out, cmd)),
        Command::Dns(cmd) => block_on(dns::run(e, out, cmd)),
        Command::Dev(cmd) => block_on(dev::run(e, out, cmd)),
        Command::Registry(cmd) => block_on(registry::run(e, out, cmd)),
        Command::Deploy { file, dry_run } => block_on(mcp::deploy(e, out, &file, dry_run)),
        Command::Undeploy { service, purge } => block_on(mcp::undeploy(e, out, service, purge)),
        Command::Ps { node } => block_on(mcp::ps(e, out, node)),
        Command::Nodes | Command::Node(NodeCommand::List) => block_on(mcp::nodes(e, out)),
        Command::Node(NodeCommand::Status { name }) => block_on(mcp::node_status(e, out, name)),
        Command::Sync { dir, dry_run } => block_on(mcp_sync::sync(e, out, &dir, dry_run)),
        Command::Stop { service } => block_on(mcp::act(e, out, service, mcp::Action::Stop)),
        Command::Start { service } => block_on(mcp::act(e, out, service, mcp::Action::Start)),
        Command::Restart { service } => block_on(mcp::act(e, out, service, mcp::Action::Restart)),
        Command::Logs(a) => block_on(mcp::logs(e, out, a, cli.json)),
        Command::Snapshot { service } => block_on(mcp_data::snapshot(e, out, service)),
        Command::Snapshots { service } => block_on(mcp_data::snapshots(e, out, service)),
        Command::Restore { snapshot } => block_on(mcp_data::restore(e, out, snapshot)),
        Command::Audit(a) => block_on(audit::run(e, out, a)),
        Command::Migrate { service, to } => block_on(mcp_data::migrate(e, out, service, to)),
    }
}

fn block_on(f: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(f)?;
    Ok(ExitCode::SUCCESS)
}
