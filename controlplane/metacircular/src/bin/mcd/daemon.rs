//! `mcd controlplane|dataplane|agent --config FILE`: load, validate, run, drain.

use std::process::ExitCode;

use anyhow::Context;
use mc_kit::shutdown::{self, Shutdown};

use crate::{Component, DaemonArgs};

/// Exit code for a refused config, distinct from runtime failure.
pub(crate) const EXIT_CONFIG: u8 = 2;

/// How long blocking tasks left over after `run` returns may hold the exit.
const SHUTDOWN_LEFTOVERS: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) fn run(component: Component, args: DaemonArgs) -> anyhow::Result<ExitCode> {
    macro_rules! load {
        ($ty:ty) => {
            match mc_kit::config::load::<$ty>(&args.config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("mcd: {e}");
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            }
        };
    }
    if args.upgrade && !matches!(component, Component::Dataplane) {
        eprintln!("mcd: --upgrade is for `mcd dataplane` only");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    if matches!(component, Component::Dataplane) {
        // The data plane's admin side (gRPC, snapshot builds, redb writes)
        // yields the CPU to the packet workers, which are started from the
        // main thread and keep its normal priority.
        builder.on_thread_start(|| {
            let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
        });
    }
    let runtime = builder.build().context("starting the tokio runtime")?;
    let result = match component {
        Component::Controlplane => {
            let config = load!(mc_controlplane::ControlplaneConfig);
            if args.check_config {
                return Ok(config_ok(&args));
            }
            mc_kit::telemetry::init(&config.log);
            runtime.block_on(async {
                let down = watch_shutdown(args.exit_with_stdin);
                mc_controlplane::run(config, down)
                    .await
                    .map_err(anyhow::Error::from)
            })
        }
        Component::Dataplane => {
            let config = load!(mc_dataplane::DataplaneConfig);
            if args.check_config {
                return Ok(config_ok(&args));
            }
            mc_kit::telemetry::init(&config.log);
            // SIGUSR2 re-runs the executable this process started from.
            let start = mc_dataplane::Start {
                upgrade: args.upgrade,
                reexec: std::env::current_exe()
                    .ok()
                    .map(|exe| (exe, std::env::args_os().skip(1).collect())),
            };
            runtime.block_on(async {
                let down = watch_shutdown(args.exit_with_stdin);
                mc_dataplane::run(config, &args.config, down, start)
                    .await
                    .map_err(anyhow::Error::from)
            })
        }
        Component::Agent => {
            let config = load!(mc_agent::AgentConfig);
            if args.check_config {
                return Ok(config_ok(&args));
            }
            mc_kit::telemetry::init(&config.log);
            runtime.block_on(async {
                let down = watch_shutdown(args.exit_with_stdin);
                mc_agent::run(config, down)
                    .await
                    .map_err(anyhow::Error::from)
            })
        }
    };
    // Whatever blocking work is still parked (a redb read, a DNS lookup)
    // must not keep a failed or drained process alive.
    runtime.shutdown_timeout(SHUTDOWN_LEFTOVERS);
    result?;
    Ok(ExitCode::SUCCESS)
}

fn config_ok(args: &DaemonArgs) -> ExitCode {
    println!("{}: ok", args.config.display());
    ExitCode::SUCCESS
}

/// Shutdown on SIGINT/SIGTERM, and on stdin EOF when supervised.
pub(crate) fn watch_shutdown(exit_with_stdin: bool) -> Shutdown {
    let (trigger, down) = shutdown::channel();
    let trigger = std::sync::Arc::new(trigger);
    {
        let trigger = trigger.clone();
        tokio::spawn(async move {
            match shutdown::signal().await {
                Ok(name) => tracing::info!(signal = name, "shutting down"),
                Err(e) => tracing::error!(error = %e, "cannot watch signals; shutting down"),
            }
            trigger.fire();
        });
    }
    if exit_with_stdin {
        // A plain thread, not tokio's stdin: its blocking read would hold
        // the runtime's shutdown (and so the process) open until the
        // supervisor closed the pipe, so a child that failed would hang
        // instead of exiting, and `mcd dev` would wait for it forever.
        let spawned = std::thread::Builder::new()
            .name("stdin-watch".into())
            .spawn(move || {
                use std::io::Read;
                let mut stdin = std::io::stdin();
                let mut buf = [0_u8; 64];
                while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
                tracing::info!("supervisor went away; shutting down");
                trigger.fire();
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot watch the supervisor's pipe");
        }
    }
    down
}
