//! `mcctl`: the operator's CLI.
//!
//! It finds the platform from `--endpoints FILE`, else `$MC_ENDPOINTS`, else
//! `./.mc-dev/endpoints.json` (what `mcd dev` writes), so after `mcd dev`
//! every command works with no flags.

mod dns;
mod endpoints;
mod iam;
mod proxy;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mc_proto::admin::v1::StatusRequest;

use endpoints::Endpoints;

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
    /// Show each process: version, readiness, uptime and details.
    Status,
    /// Print the endpoints file in use and its contents.
    Endpoints,
    /// Log in to MCIAS; the token is kept for the other commands.
    Login {
        #[arg(long)]
        username: Option<String>,
        /// The service the login is for (matched by login-policy rules).
        #[arg(long, default_value = "mcctl")]
        service: String,
    },
    /// Revoke the saved token.
    Logout,
    /// Who the saved token belongs to.
    Whoami,
    /// MCIAS administration: accounts, tokens, policy, audit.
    #[command(subcommand)]
    Iam(iam::IamCommand),
    /// MC-Proxy: routes, listeners, firewall, status.
    #[command(subcommand)]
    Proxy(proxy::ProxyCommand),
    /// MCNS: zones, records, cache, status.
    #[command(subcommand)]
    Dns(dns::DnsCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let endpoints = Endpoints::find(cli.endpoints.as_deref(), std::env::var_os("MC_ENDPOINTS"))?;
    match cli.command {
        Command::Endpoints => {
            println!("# {}", endpoints.path.display());
            println!("{}", serde_json::to_string_pretty(&endpoints.json)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Status => status(&endpoints, cli.json),
        Command::Login { username, service } => block_on(iam::login(&endpoints, username, service)),
        Command::Logout => block_on(iam::logout(&endpoints)),
        Command::Whoami => block_on(iam::whoami(&endpoints)),
        Command::Iam(cmd) => block_on(iam::run(&endpoints, cmd)),
        Command::Proxy(cmd) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(proxy::run(&endpoints, cli.json, cmd))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dns(cmd) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(dns::run(&endpoints, cli.json, cmd))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn block_on(f: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(f)?;
    Ok(ExitCode::SUCCESS)
}

fn status(endpoints: &Endpoints, json: bool) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    let mut all_ready = true;
    for (name, socket) in endpoints.admin_sockets() {
        let result = runtime.block_on(async {
            let mut client = mc_shell::admin::connect(&socket)
                .await
                .with_context(|| format!("cannot reach {name} at {}", socket.display()))?;
            let status = client
                .status(StatusRequest {})
                .await
                .with_context(|| format!("{name} status"))?;
            anyhow::Ok(status.into_inner())
        });
        match result {
            Ok(s) => {
                all_ready &= s.ready;
                rows.push(serde_json::json!({
                    "component": name,
                    "state": if s.ready { "ready" } else { "not ready" },
                    "version": s.version,
                    "uptime_seconds": s.uptime_seconds,
                    "details": s.details,
                }));
            }
            Err(e) => {
                all_ready = false;
                rows.push(serde_json::json!({ "component": name, "state": "down", "error": format!("{e:#}") }));
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!(
            "{:<14} {:<10} {:<28} {:>8}  DETAILS",
            "COMPONENT", "STATE", "VERSION", "UPTIME"
        );
        for r in &rows {
            let details = r["details"]
                .as_object()
                .map(|d| {
                    d.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .or_else(|| r["error"].as_str().map(str::to_owned))
                .unwrap_or_default();
            println!(
                "{:<14} {:<10} {:<28} {:>7}s  {}",
                r["component"].as_str().unwrap_or_default(),
                r["state"].as_str().unwrap_or_default(),
                r["version"].as_str().unwrap_or("-"),
                r["uptime_seconds"].as_u64().unwrap_or(0),
                details
            );
        }
    }
    Ok(if all_ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
