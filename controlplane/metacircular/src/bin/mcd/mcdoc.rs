//! `mcd mcdoc`: the docs site (mc-mcdoc), configured by an optional TOML
//! file (`MC_<SECTION>_<KEY>` overrides apply with or without one) and
//! flags, which win.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::daemon::{EXIT_CONFIG, watch_shutdown};

#[derive(clap::Args)]
pub(crate) struct McdocArgs {
    /// The site's TOML config ([site], [server], [log]); optional.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The Markdown directory (site.dir).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Address to serve on (server.listen); default 0.0.0.0:$PORT when
    /// PORT is set (an MCP container), else 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The site's title (site.title).
    #[arg(long)]
    title: Option<String>,
}

pub(crate) fn run(args: McdocArgs) -> anyhow::Result<ExitCode> {
    let loaded = match &args.config {
        Some(path) => mc_kit::config::load::<mc_mcdoc::McdocConfig>(path),
        None => mc_kit::config::parse("", std::path::Path::new("(flags)"), std::env::vars()),
    };
    let mut config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mcd: {e}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    if let Some(d) = args.dir {
        config.site.dir = d;
    }
    if let Some(t) = args.title {
        config.site.title = t;
    }
    if args.listen.is_some() {
        config.server.listen = args.listen;
    }
    let port = match std::env::var("PORT") {
        Ok(p) => match p.parse::<u16>() {
            Ok(p) => Some(p),
            Err(_) => {
                eprintln!("mcd: PORT={p:?} is not a port number");
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
        },
        Err(_) => None,
    };
    if let Err(e) = mc_kit::config::Validate::validate(&config) {
        eprintln!("mcd: {e}");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let listen = config.server.address(port);
    mc_kit::telemetry::init(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let result = runtime.block_on(async {
        let down = watch_shutdown(false);
        mc_mcdoc::run(config, listen, down).await
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result?;
    Ok(ExitCode::SUCCESS)
}
