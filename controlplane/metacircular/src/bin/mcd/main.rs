//! `mcd`: the Metacircular node daemon.
//!
//! One binary, one subcommand per process kind, so a node runs exactly the
//! same code in production (`mcd controlplane --config …` under systemd) and
//! in development (`mcd dev`, which supervises the same subcommands as child
//! processes on loopback).

mod daemon;
mod dev;
mod dev_pki;
mod mcdoc;
mod snapshot;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "mcd", version = mc_kit::version::VERSION, about = "Metacircular node daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Component {
    Controlplane,
    Dataplane,
    Agent,
}

/// As the command line spells it (`dataplane`), for messages.
impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_possible_value() {
            Some(v) => f.write_str(v.get_name()),
            None => f.write_str("?"),
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct DaemonArgs {
    /// The process's TOML config.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Load and validate the config, print the result, and exit.
    #[arg(long)]
    check_config: bool,
    /// Shut down when standard input closes (used by `mcd dev` so children
    /// never outlive their supervisor).
    #[arg(long, hide = true)]
    exit_with_stdin: bool,
    /// Data plane only: take the listening sockets and stores of the data
    /// plane running with this config, start serving, then let it drain and
    /// exit (zero-downtime restart or binary upgrade; SIGUSR2 to a running
    /// data plane does the same).
    #[arg(long)]
    upgrade: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the data plane: MC-Proxy and MCNS on the thread-per-core runtime.
    Dataplane(DaemonArgs),
    /// Run the control plane: its hosted services (today MCIAS) over HTTPS REST and gRPC.
    Controlplane(DaemonArgs),
    /// Run this node's agent: deploys services as Podman containers for the MCP master.
    Agent(DaemonArgs),
    /// Serve a directory of Markdown as a read-only docs site (MCDoc).
    Mcdoc(mcdoc::McdocArgs),
    /// Run the platform as built on loopback (data plane + control plane with
    /// MCIAS), with all state under --data-dir.
    Dev {
        #[arg(long, value_name = "DIR", default_value = "./.mc-dev")]
        data_dir: PathBuf,
    },
    /// Write a consistent snapshot of a process's stores (online through its
    /// admin socket when it runs, else directly from the files).
    Snapshot {
        component: Component,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Directory to write into (default: <data_dir>/snapshots).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Replace one store of a stopped process with a snapshot.
    Restore {
        component: Component,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Store name, as `mcd snapshot` prints it.
        #[arg(long)]
        store: String,
        /// The snapshot file.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Controlplane(args) => daemon::run(Component::Controlplane, args),
        Command::Dataplane(args) => daemon::run(Component::Dataplane, args),
        Command::Agent(args) => daemon::run(Component::Agent, args),
        Command::Mcdoc(args) => mcdoc::run(args),
        Command::Dev { data_dir } => dev::run(&data_dir),
        Command::Snapshot {
            component,
            config,
            dir,
        } => snapshot::snapshot(component, &config, dir),
        Command::Restore {
            component,
            config,
            store,
            from,
        } => snapshot::restore(component, &config, &store, &from),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
