//! mc-loadtest: the platform's own load generator (issue 7).
//!
//! A fixed number of worker threads (`--threads`, default 1), each running
//! its own `mio` event loop over non-blocking sockets: no locks and no shared
//! state on the request path. Each thread keeps its own HdrHistogram and
//! counters; they are merged once the run is over. Runs are bounded by
//! `--duration` (and optionally `--requests`), and only loopback targets are
//! accepted.
//!
//! One JSON line is printed per run. Given `--pid PID` (repeatable), it also
//! carries the CPU seconds (utime + stime, summed over the PIDs, sampled
//! before and after the run) and the peak RSS (VmHWM) of the server under
//! test, and its CPU per unit of work. See docs/PERFORMANCE.md.

mod api;
mod dns;
mod dns_tcp;
mod http;
mod idle;
mod procfs;
mod tally;
mod tls_http;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Map, Value, json};

use crate::tally::{ErrorKind, Tally};

#[derive(Parser)]
#[command(
    name = "mc-loadtest",
    version,
    about = "Load generator for MC-Proxy, MCNS and the control plane's APIs (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// L4: a new TCP + full TLS 1.3 connection per request (`Connection: close`)
    #[command(name = "l4-conn")]
    L4Conn(TlsArgs),
    /// L4: long connections downloading a large body (`--path`, default /1m) back to back; MiB/s
    #[command(name = "l4-bulk")]
    L4Bulk(TlsArgs),
    /// L4: HTTP/1.1 keep-alive small requests over long TLS connections
    #[command(name = "l4-ka")]
    L4Ka(TlsArgs),
    /// L7 (TLS terminated by the router): a new TLS 1.3 handshake and one request per
    /// connection. The client side is l4-conn's; the router decides what it measures.
    /// (HTTP/2 multiplexed load comes from h2load: `loadtest/compare` l7-h2load-h2.)
    #[command(name = "l7-conn")]
    L7Conn(TlsArgs),
    /// L7: HTTP/1.1 keep-alive small requests, TLS terminated by the router
    #[command(name = "l7-h1")]
    L7H1(TlsArgs),
    /// An HTTPS API served directly (no router): HTTP/1.1 keep-alive requests with a
    /// method, headers and a body, e.g. Metacrypt's Vault facade beside OpenBao
    /// (`loadtest/crypt-compare`). Any status other than 2xx counts as an error.
    #[command(name = "api")]
    Api(ApiArgs),
    /// DNS over UDP: closed-loop queries from a list (`NAME TYPE` per line)
    #[command(name = "dns-udp")]
    DnsUdp(DnsArgs),
    /// DNS over TCP (RFC 7766): `--connections` long connections, each with up to
    /// `--pipeline` queries outstanding (1 = closed loop); reconnects when the server closes
    #[command(name = "dns-tcp")]
    DnsTcp(DnsTcpArgs),
    /// Memory per idle connection: opens `--connections` TLS connections (L4 through the
    /// router; with `--h2`, HTTP/2 terminated by the router: preface + SETTINGS), holds
    /// them `--hold`, and reports the `--pid` RSS before and after, per connection
    #[command(name = "idle")]
    Idle(IdleArgs),
}

#[derive(Args)]
struct Common {
    /// The server (or router) under test: a loopback `IP:PORT` or `localhost:PORT`.
    #[arg(long)]
    target: String,
    /// A name for the server under test, copied into the report.
    #[arg(long, default_value = "")]
    label: String,
    /// Worker threads, each with its own event loop.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Concurrent connections (or, for DNS, queries in flight), over all threads.
    #[arg(long)]
    connections: Option<usize>,
    /// How long to run: `5s`, `500ms`, `1m` or plain seconds.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Stop earlier, after this many completed requests.
    #[arg(long)]
    requests: Option<u64>,
    /// A request (or connection) with no answer after this long counts as an error.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// A process of the server under test whose CPU and peak RSS to report (repeatable).
    #[arg(long = "pid")]
    pids: Vec<u32>,
}

#[derive(Args)]
struct TlsArgs {
    #[command(flatten)]
    common: Common,
    /// The TLS server name (SNI) to route by.
    #[arg(long)]
    sni: String,
    /// PEM file of the CA that signed the backend's certificate.
    #[arg(long)]
    ca: PathBuf,
    /// Request path.
    #[arg(long)]
    path: Option<String>,
    /// Host header (default: the SNI).
    #[arg(long)]
    host: Option<String>,
}

#[derive(Args)]
struct ApiArgs {
    #[command(flatten)]
    tls: TlsArgs,
    /// Request method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// A request header, `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// A file whose bytes are the request body (sent with `Content-Length`).
    #[arg(long)]
    body_file: Option<PathBuf>,
}

#[derive(Args)]
struct DnsArgs {
    #[command(flatten)]
    common: Common,
    /// Queries, one `NAME TYPE` per line (TYPE: A, AAAA, NS, SOA, MX, TXT, CNAME, PTR, SRV, ANY
    /// or a number); `#` starts a comment. Sent round robin.
    #[arg(long)]
    queries: PathBuf,
}

#[derive(Args)]
struct DnsTcpArgs {
    #[command(flatten)]
    dns: DnsArgs,
    /// Queries outstanding per connection: 1 (closed loop) to 64.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
}

#[derive(Args)]
struct IdleArgs {
    /// The router under test: a loopback `IP:PORT` or `localhost:PORT`.
    #[arg(long)]
    target: String,
    /// A name for the server under test, copied into the report.
    #[arg(long, default_value = "")]
    label: String,
    /// The TLS server name (SNI) to route by.
    #[arg(long)]
    sni: String,
    /// PEM file of the CA that signed the certificate the client sees.
    #[arg(long)]
    ca: PathBuf,
    /// Connections to open and hold (1 to 100000; mind `ulimit -n`).
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// How long to hold them idle before measuring: `10s`, `500ms`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    hold: Duration,
    /// HTTP/2: ALPN h2, client preface and SETTINGS after the handshake.
    #[arg(long)]
    h2: bool,
    /// Connect + handshake timeout per connection.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// A process of the server under test whose RSS to report (repeatable; required).
    #[arg(long = "pid", required = true)]
    pids: Vec<u32>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (like 5s, 500ms, 1m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{s}`: unit must be ms, s or m")),
    };
    if !(secs > 0.0 && secs <= 24.0 * 3600.0) {
        return Err(format!("`{s}` must be more than 0 and at most 24h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Resolves `target` and refuses anything that is not a loopback address.
fn loopback_target(target: &str) -> Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = target
        .to_socket_addrs()
        .with_context(|| format!("--target `{target}` is not HOST:PORT"))?
        .collect();
    let Some(addr) = addrs.first() else {
        bail!("--target `{target}` resolves to nothing");
    };
    if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        bail!(
            "--target `{target}` resolves to {}, which is not a loopback address: \
             mc-loadtest only sends load to this machine (127.0.0.0/8, ::1)",
            bad.ip()
        );
    }
    Ok(*addr)
}

fn tls_config(ca: &std::path::Path) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::crypto::aws_lc_rs as p;
    let pem = std::fs::read(ca).with_context(|| format!("reading --ca {}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.with_context(|| format!("--ca {}: bad PEM", ca.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("--ca {}: not a usable CA certificate", ca.display()))?;
    }
    if roots.is_empty() {
        bail!("--ca {}: no certificate in the file", ca.display());
    }
    // The suite and group every peer is measured with (docs/PERFORMANCE.md).
    let provider = rustls::crypto::CryptoProvider {
        cipher_suites: vec![p::cipher_suite::TLS13_AES_128_GCM_SHA256],
        kx_groups: vec![p::kx_group::X25519],
        ..p::default_provider()
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 with the aws-lc-rs provider")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Every new connection is a full handshake.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Splits `total` over `threads` as evenly as possible.
fn share(total: usize, threads: usize, i: usize) -> usize {
    total / threads + usize::from(i < total % threads)
}

struct Run {
    scenario: &'static str,
    unit: Unit,
    common_json: Map<String, Value>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Request,
    MiB,
    /// Server RSS growth per idle connection (`idle`): the throughput field.
    KibPerConn,
}

fn run_tls(name: &'static str, args: &TlsArgs) -> Result<(Run, Tally, f64)> {
    run_http(name, args, None)
}

/// The TLS HTTP/1.1 scenarios; `api` supplies its own request.
fn run_http(
    name: &'static str,
    args: &TlsArgs,
    api: Option<&ApiArgs>,
) -> Result<(Run, Tally, f64)> {
    let c = &args.common;
    let addr = loopback_target(&c.target)?;
    let (mode, default_conns, default_path, unit) = match name {
        "l4-conn" | "l7-conn" => (tls_http::Mode::ConnPerRequest, 16, "/", Unit::Request),
        "l4-bulk" => (tls_http::Mode::KeepAlive, 4, "/1m", Unit::MiB),
        _ => (tls_http::Mode::KeepAlive, 16, "/", Unit::Request),
    };
    let connections = c.connections.unwrap_or(default_conns);
    check_counts(c.threads, connections)?;
    let server_name = ServerName::try_from(args.sni.clone())
        .with_context(|| format!("--sni `{}` is not a DNS name", args.sni))?;
    let tls = tls_config(&args.ca)?;
    let path = args.path.as_deref().unwrap_or(default_path);
    let host = args.host.as_deref().unwrap_or(&args.sni);
    let close = if mode == tls_http::Mode::ConnPerRequest {
        "Connection: close\r\n"
    } else {
        ""
    };
    let request: Arc<[u8]> = match api {
        Some(api) => {
            let body = match &api.body_file {
                Some(f) => Some(
                    std::fs::read(f)
                        .with_context(|| format!("reading --body-file {}", f.display()))?,
                ),
                None => None,
            };
            api::request(&api.method, &api.headers, body.as_deref(), path, host)?.into()
        }
        None => {
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: mc-loadtest\r\n{close}\r\n")
                .into_bytes()
                .into()
        }
    };

    let measure = Measure::start(&c.pids)?;
    let deadline = Instant::now() + c.duration;
    let plans: Vec<tls_http::Plan> = (0..c.threads)
        .map(|i| tls_http::Plan {
            mode,
            addr,
            server_name: server_name.clone(),
            tls: tls.clone(),
            request: request.clone(),
            connections: share(connections, c.threads, i),
            deadline,
            max_requests: c.requests.map(|r| share(r as usize, c.threads, i) as u64),
            timeout: c.timeout,
        })
        .collect();
    let tally = run_threads(plans, |p| tls_http::run(&p))?;
    let elapsed = measure.elapsed();
    let mut common_json = measure.finish(&c.pids, elapsed)?;
    common_json.insert("sni".into(), json!(args.sni));
    common_json.insert("path".into(), json!(path));
    common_json.insert("connections".into(), json!(connections));
    Ok((
        Run {
            scenario: name,
            unit,
            common_json,
        },
        tally,
        elapsed,
    ))
}

/// `dns-udp` (`pipeline` None: `--connections` queries in flight over one
/// socket per thread) or `dns-tcp` (`--connections` TCP connections with
/// `pipeline` queries outstanding on each).
fn run_dns(args: &DnsArgs, pipeline: Option<usize>) -> Result<(Run, Tally, f64)> {
    let c = &args.common;
    let addr = loopback_target(&c.target)?;
    let connections = c
        .connections
        .unwrap_or(if pipeline.is_some() { 16 } else { 64 });
    check_counts(c.threads, connections)?;
    if let Some(p) = pipeline
        && !(1..=dns_tcp::MAX_PIPELINE).contains(&p)
    {
        bail!("--pipeline must be 1 to {}", dns_tcp::MAX_PIPELINE);
    }
    if pipeline.is_none() && connections.div_ceil(c.threads) > 1 << 16 {
        bail!("dns-udp: at most 65536 queries in flight per thread (message ids)");
    }
    let text = std::fs::read_to_string(&args.queries)
        .with_context(|| format!("reading --queries {}", args.queries.display()))?;
    let queries = Arc::new(
        dns::parse_query_list(&text)
            .with_context(|| format!("--queries {}", args.queries.display()))?,
    );
    let measure = Measure::start(&c.pids)?;
    let deadline = Instant::now() + c.duration;
    let max_requests = |i| c.requests.map(|r| share(r as usize, c.threads, i) as u64);
    let tally = match pipeline {
        None => {
            let plans: Vec<dns::Plan> = (0..c.threads)
                .map(|i| dns::Plan {
                    addr,
                    queries: queries.clone(),
                    first_query: i * 7919,
                    in_flight: share(connections, c.threads, i),
                    deadline,
                    max_requests: max_requests(i),
                    timeout: c.timeout,
                })
                .collect();
            run_threads(plans, |p| dns::run(&p))?
        }
        Some(pipeline) => {
            let plans: Vec<dns_tcp::Plan> = (0..c.threads)
                .map(|i| dns_tcp::Plan {
                    addr,
                    queries: queries.clone(),
                    first_query: i * 7919,
                    connections: share(connections, c.threads, i),
                    pipeline,
                    deadline,
                    max_requests: max_requests(i),
                    timeout: c.timeout,
                })
                .collect();
            run_threads(plans, |p| dns_tcp::run(&p))?
        }
    };
    let elapsed = measure.elapsed();
    let mut common_json = measure.finish(&c.pids, elapsed)?;
    let scenario = match pipeline {
        None => {
            common_json.insert("in_flight".into(), json!(connections));
            "dns-udp"
        }
        Some(p) => {
            common_json.insert("connections".into(), json!(connections));
            common_json.insert("pipeline".into(), json!(p));
            common_json.insert("in_flight".into(), json!(connections * p));
            common_json.insert("reconnects".into(), json!(tally.reconnects));
            "dns-tcp"
        }
    };
    common_json.insert("query_names".into(), json!(queries.len()));
    Ok((
        Run {
            scenario,
            unit: Unit::Request,
            common_json,
        },
        tally,
        elapsed,
    ))
}

fn run_idle(args: &IdleArgs) -> Result<(Run, Tally, f64)> {
    let addr = loopback_target(&args.target)?;
    if !(1..=100_000).contains(&args.connections) {
        bail!("--connections must be 1 to 100000");
    }
    let server_name = ServerName::try_from(args.sni.clone())
        .with_context(|| format!("--sni `{}` is not a DNS name", args.sni))?;
    let mut tls = (*tls_config(&args.ca)?).clone();
    if args.h2 {
        tls.alpn_protocols = vec![b"h2".to_vec()];
    }
    let plan = idle::Plan {
        addr,
        server_name,
        tls: Arc::new(tls),
        h2: args.h2,
        connections: args.connections,
        timeout: args.timeout,
    };
    let spids = pid_strings(&args.pids);
    let measure = Measure::start(&args.pids)?;
    let before = procfs::rss_total(&spids).context("--pid")?;
    let mut tally = Tally::new();
    let held = idle::open_all(&plan, &mut tally);
    std::thread::sleep(args.hold);
    let after = procfs::rss_total(&spids).context("--pid (after the hold)")?;
    let elapsed = measure.elapsed();
    let mut common_json = measure.finish(&args.pids, elapsed)?;
    drop(held);
    // Each connection opened and held counts as one completed request.
    let open = tally.requests;
    let delta = after as f64 - before as f64;
    let per_conn = if open > 0 {
        json!(round(delta / open as f64, 2))
    } else {
        Value::Null
    };
    common_json.insert("sni".into(), json!(args.sni));
    common_json.insert("connections".into(), json!(args.connections));
    common_json.insert("held".into(), json!(open));
    common_json.insert("hold_s".into(), json!(args.hold.as_secs_f64()));
    common_json.insert("rss_before_kib".into(), json!(before));
    common_json.insert("rss_after_kib".into(), json!(after));
    common_json.insert("rss_kib_per_conn".into(), per_conn.clone());
    common_json.insert("throughput".into(), per_conn);
    Ok((
        Run {
            scenario: if args.h2 { "idle-h2" } else { "idle-l4" },
            unit: Unit::KibPerConn,
            common_json,
        },
        tally,
        elapsed,
    ))
}

fn check_counts(threads: usize, connections: usize) -> Result<()> {
    if !(1..=64).contains(&threads) {
        bail!("--threads must be 1 to 64");
    }
    if connections < threads || connections > 100_000 {
        bail!("--connections must be at least --threads and at most 100000");
    }
    Ok(())
}

/// Runs one plan per thread and merges the tallies.
fn run_threads<P: Send + 'static>(
    plans: Vec<P>,
    f: fn(P) -> std::io::Result<Tally>,
) -> Result<Tally> {
    let handles: Vec<_> = plans
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            std::thread::Builder::new()
                .name(format!("load-{i}"))
                .spawn(move || f(p))
        })
        .collect::<Result<_, _>>()
        .context("starting worker threads")?;
    let mut total = Tally::new();
    for h in handles {
        let t = h
            .join()
            .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?
            .context("worker event loop")?;
        total.merge(&t);
    }
    Ok(total)
}

/// CPU and wall clock of a run, sampled around it.
struct Measure {
    started: Instant,
    server_cpu: Option<f64>,
    client_cpu: f64,
}

impl Measure {
    fn start(pids: &[u32]) -> Result<Self> {
        let pids = pid_strings(pids);
        Ok(Self {
            server_cpu: if pids.is_empty() {
                None
            } else {
                Some(procfs::cpu_total(&pids).context("--pid")?)
            },
            client_cpu: procfs::cpu_seconds("self")?,
            started: Instant::now(),
        })
    }

    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn finish(&self, pids: &[u32], elapsed: f64) -> Result<Map<String, Value>> {
        let spids = pid_strings(pids);
        let mut m = Map::new();
        m.insert("elapsed_s".into(), json!(round(elapsed, 3)));
        m.insert(
            "client_cpu_s".into(),
            json!(round(procfs::cpu_seconds("self")? - self.client_cpu, 2)),
        );
        if let Some(before) = self.server_cpu {
            let after = procfs::cpu_total(&spids).context("--pid (after the run)")?;
            m.insert("server_pids".into(), json!(pids));
            m.insert("server_cpu_s".into(), json!(round(after - before, 2)));
            m.insert(
                "server_peak_rss_kib".into(),
                json!(procfs::peak_rss_total(&spids)?),
            );
        }
        Ok(m)
    }
}

fn pid_strings(pids: &[u32]) -> Vec<String> {
    pids.iter().map(u32::to_string).collect()
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn report(run: Run, tally: &Tally, elapsed: f64, label: &str, target: &str) -> Value {
    let mut out = Map::new();
    out.insert("scenario".into(), json!(run.scenario));
    out.insert("target".into(), json!(label));
    out.insert("addr".into(), json!(target));
    out.insert("requests".into(), json!(tally.requests));
    let mut errors = Map::new();
    for k in ErrorKind::ALL {
        if tally.errors(k) > 0 {
            errors.insert(k.name().into(), json!(tally.errors(k)));
        }
    }
    out.insert("errors_total".into(), json!(tally.total_errors()));
    out.insert("errors".into(), Value::Object(errors));
    let mib = tally.body_bytes as f64 / (1024.0 * 1024.0);
    let rps = tally.requests as f64 / elapsed;
    out.insert("rps".into(), json!(round(rps, 1)));
    out.insert("mib_per_s".into(), json!(round(mib / elapsed, 2)));
    out.insert("connects".into(), json!(tally.connects));
    out.insert(
        "throughput".into(),
        match run.unit {
            Unit::Request => json!(round(rps, 1)),
            Unit::MiB => json!(round(mib / elapsed, 2)),
            Unit::KibPerConn => run
                .common_json
                .get("throughput")
                .cloned()
                .unwrap_or(Value::Null),
        },
    );
    out.insert(
        "unit".into(),
        json!(match run.unit {
            Unit::Request => "req/s",
            Unit::MiB => "MiB/s",
            Unit::KibPerConn => "KiB/conn",
        }),
    );
    let h = &tally.latency_us;
    out.insert(
        "latency_us".into(),
        json!({
            "p50": h.value_at_quantile(0.5),
            "p90": h.value_at_quantile(0.9),
            "p99": h.value_at_quantile(0.99),
            "p99.9": h.value_at_quantile(0.999),
            "max": h.max(),
            "mean": round(h.mean(), 1),
        }),
    );
    if let Some(tls) = &tally.negotiated {
        out.insert("tls".into(), json!(tls));
    }
    if tally.rcodes.iter().any(|&n| n > 0) {
        let mut rc = Map::new();
        for (i, &n) in tally.rcodes.iter().enumerate() {
            if n > 0 {
                rc.insert(dns::rcode_name(i).into(), json!(n));
            }
        }
        out.insert("rcodes".into(), Value::Object(rc));
    }
    let cpu = run.common_json.get("server_cpu_s").and_then(Value::as_f64);
    for (k, v) in run.common_json {
        out.insert(k, v);
    }
    if let Some(cpu) = cpu {
        let us = cpu * 1e6;
        let per_req = if tally.requests > 0 {
            json!(round(us / tally.requests as f64, 2))
        } else {
            Value::Null
        };
        out.insert("server_cpu_us_per_req".into(), per_req);
        if run.unit == Unit::MiB {
            let per_mib = if mib > 0.0 {
                json!(round(us / mib, 1))
            } else {
                Value::Null
            };
            out.insert("server_cpu_us_per_mib".into(), per_mib);
        }
        out.insert(
            "server_cpu_pct".into(),
            json!(round(cpu / elapsed * 100.0, 1)),
        );
    }
    Value::Object(out)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (result, label, target) = match &cli.scenario {
        Scenario::L4Conn(a) => (run_tls("l4-conn", a), &a.common.label, &a.common.target),
        Scenario::L4Bulk(a) => (run_tls("l4-bulk", a), &a.common.label, &a.common.target),
        Scenario::L4Ka(a) => (run_tls("l4-ka", a), &a.common.label, &a.common.target),
        Scenario::DnsUdp(a) => (run_dns(a, None), &a.common.label, &a.common.target),
        Scenario::Idle(a) => (run_idle(a), &a.label, &a.target),
        Scenario::DnsTcp(a) => (
            run_dns(&a.dns, Some(a.pipeline)),
            &a.dns.common.label,
            &a.dns.common.target,
        ),
        Scenario::L7Conn(a) => (run_tls("l7-conn", a), &a.common.label, &a.common.target),
        Scenario::L7H1(a) => (run_tls("l7-h1", a), &a.common.label, &a.common.target),
        Scenario::Api(a) => (
            run_http("api", &a.tls, Some(a)),
            &a.tls.common.label,
            &a.tls.common.target,
        ),
    };
    match result {
        Ok((run, tally, elapsed)) => {
            println!("{}", report(run, &tally, elapsed, label, target));
            if tally.requests == 0 {
                eprintln!("mc-loadtest: no request completed");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mc-loadtest: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn only_loopback() {
        assert!(loopback_target("127.0.0.1:443").is_ok());
        assert!(loopback_target("127.8.9.10:443").is_ok());
        assert!(loopback_target("[::1]:53").is_ok());
        assert!(loopback_target("10.0.0.1:443").is_err());
        assert!(loopback_target("192.0.2.1:443").is_err());
        assert!(loopback_target("127.0.0.1").is_err());
    }

    #[test]
    fn shares_add_up() {
        for total in [1, 7, 64] {
            for threads in 1..=4 {
                let s: usize = (0..threads).map(|i| share(total, threads, i)).sum();
                assert_eq!(s, total);
            }
        }
    }
}
