//! `mcctl proxy …`: MC-Proxy through the data plane's admin socket (`mc.proxy.v1`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use mc_proto::proxy::v1 as pb;
use pb::proxy_admin_client::ProxyAdminClient;
use tonic::transport::Channel;

use crate::endpoints::Endpoints;

#[derive(Subcommand)]
pub(crate) enum ProxyCommand {
    /// Version, workers, I/O driver, per-listener and per-route counters, blocks.
    Status,
    /// Listeners.
    #[command(subcommand)]
    Listeners(ListenerCommand),
    /// Routes: SNI hostname → backends.
    #[command(subcommand)]
    Routes(RouteCommand),
    /// Certificates for L7 routes (stored sealed; keys are never shown).
    #[command(subcommand)]
    Certs(CertCommand),
    /// Per-route L7 policies (403 on match; first match wins).
    #[command(subcommand)]
    Policies(PolicyCommand),
    /// The global firewall.
    #[command(subcommand)]
    Firewall(FirewallCommand),
    /// Re-read the GeoIP database file.
    GeoipReload,
}

#[derive(Subcommand)]
pub(crate) enum ListenerCommand {
    List,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Mode {
    L4,
    L7,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum BackendProtocol {
    Http1,
    H2c,
    Tls,
}

#[derive(Subcommand)]
pub(crate) enum CertCommand {
    List,
    /// Store or replace a certificate; routes using it serve it from the next handshake.
    Put {
        name: String,
        /// PEM: the leaf first, then its intermediates.
        #[arg(long)]
        chain: PathBuf,
        /// PEM private key (PKCS#8, SEC1 or PKCS#1).
        #[arg(long)]
        key: PathBuf,
    },
    Remove {
        name: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    List {
        #[arg(long)]
        listener: Option<String>,
        #[arg(long)]
        hostname: Option<String>,
    },
    /// Append a policy to an L7 route.
    Add {
        hostname: String,
        #[arg(long)]
        listener: Option<String>,
        /// 403 when the User-Agent contains this (case-insensitive).
        #[arg(
            long,
            conflicts_with = "require_header",
            required_unless_present = "require_header"
        )]
        block_user_agent: Option<String>,
        /// 403 unless this header is present: `NAME` or `NAME=VALUE`.
        #[arg(long)]
        require_header: Option<String>,
    },
    Remove {
        id: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ProxyVersion {
    Off,
    V1,
    V2,
}

#[derive(Subcommand)]
pub(crate) enum RouteCommand {
    /// List routes (all listeners unless --listener).
    List {
        #[arg(long)]
        listener: Option<String>,
    },
    /// Add or replace a route (idempotent).
    Add {
        /// Exact name or `*.example.com`.
        hostname: String,
        /// Backend `host:port`; repeat for several (round robin).
        #[arg(long = "backend", required = true, value_name = "HOST:PORT")]
        backends: Vec<String>,
        #[arg(long, value_enum, default_value = "l4")]
        mode: Mode,
        /// Required when there is more than one listener.
        #[arg(long)]
        listener: Option<String>,
        #[arg(long, value_enum, default_value = "off")]
        send_proxy_protocol: ProxyVersion,
        /// e.g. `5s` (default: the listener's).
        #[arg(long, value_parser = parse_ms)]
        connect_timeout: Option<u32>,
        /// e.g. `5m` (default: the listener's).
        #[arg(long, value_parser = parse_ms)]
        idle_timeout: Option<u32>,
        /// L7: the stored certificate to serve (`mcctl proxy certs put`).
        #[arg(long)]
        cert: Option<String>,
        /// L7: how backends are spoken to.
        #[arg(long, value_enum, default_value = "http1")]
        backend_protocol: BackendProtocol,
        /// L7 TLS backends: PEM CA bundle to verify them against (default: the proxy's CAs).
        #[arg(long)]
        backend_ca: Option<PathBuf>,
        /// L7 TLS backends: name to verify (default: the backend's host).
        #[arg(long)]
        backend_server_name: Option<String>,
        /// L7 TLS backends: do not verify their certificates (explicit and logged).
        #[arg(long)]
        insecure_skip_verify: bool,
        /// L7: time allowed for a client's first request headers, e.g. `10s`.
        #[arg(long, value_parser = parse_ms)]
        header_timeout: Option<u32>,
        /// L7: time allowed for a backend's response headers, e.g. `60s`.
        #[arg(long, value_parser = parse_ms)]
        response_timeout: Option<u32>,
        /// L7: concurrent HTTP/2 streams per client connection.
        #[arg(long)]
        max_streams: Option<u32>,
        /// L7: one structured log line per request (sampled at high rates).
        #[arg(long)]
        access_log: bool,
    },
    /// Remove a route.
    Remove {
        hostname: String,
        #[arg(long)]
        listener: Option<String>,
    },
    /// Replace every API-owned route of a listener with the table in FILE, in
    /// one transaction and one snapshot. FILE is JSON: `[{"hostname": "a.example.com",
    /// "backends": ["10.0.0.5:443"], "mode": "l4"|"l7", "send_proxy_protocol": "off"|"v1"|"v2",
    /// "l7": {"certificate": "a", "backend_protocol": "http1"|"h2c"|"tls"}}, ...]`.
    Import {
        file: PathBuf,
        #[arg(long)]
        listener: Option<String>,
    },
}

/// One entry of a `routes import` file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportRoute {
    hostname: String,
    backends: Vec<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    send_proxy_protocol: Option<String>,
    #[serde(default)]
    connect_timeout_ms: u32,
    #[serde(default)]
    idle_timeout_ms: u32,
    #[serde(default)]
    l7: Option<ImportL7>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportL7 {
    certificate: String,
    #[serde(default)]
    backend_protocol: Option<String>,
    #[serde(default)]
    backend_server_name: String,
    #[serde(default)]
    access_log: bool,
}

fn import_route(i: usize, r: ImportRoute) -> anyhow::Result<pb::Route> {
    let mode = match r.mode.as_deref() {
        None | Some("l4") => pb::RouteMode::L4,
        Some("l7") => pb::RouteMode::L7,
        Some(m) => bail!("routes[{i}].mode: `{m}` is not l4 or l7"),
    };
    let send_proxy_protocol = match r.send_proxy_protocol.as_deref() {
        None | Some("off") => pb::ProxyProtocol::Off,
        Some("v1") => pb::ProxyProtocol::V1,
        Some("v2") => pb::ProxyProtocol::V2,
        Some(v) => bail!("routes[{i}].send_proxy_protocol: `{v}` is not off, v1 or v2"),
    };
    let l7 = match r.l7 {
        Some(l) => Some(pb::L7Options {
            certificate: l.certificate,
            backend_protocol: match l.backend_protocol.as_deref() {
                None | Some("http1") => pb::BackendProtocol::Http1,
                Some("h2c") => pb::BackendProtocol::H2c,
                Some("tls") => pb::BackendProtocol::Tls,
                Some(p) => bail!("routes[{i}].l7.backend_protocol: `{p}` is not http1, h2c or tls"),
            } as i32,
            backend_server_name: l.backend_server_name,
            access_log: l.access_log,
            ..Default::default()
        }),
        None => None,
    };
    Ok(pb::Route {
        listener: String::new(),
        hostname: r.hostname,
        mode: mode as i32,
        backends: r.backends,
        send_proxy_protocol: send_proxy_protocol as i32,
        connect_timeout_ms: r.connect_timeout_ms,
        idle_timeout_ms: r.idle_timeout_ms,
        l7,
        origin: 0,
    })
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub(crate) struct Target {
    /// A single IPv4 or IPv6 address.
    #[arg(long)]
    ip: Option<String>,
    /// A network, e.g. 198.51.100.0/24.
    #[arg(long)]
    cidr: Option<String>,
    /// ISO 3166-1 alpha-2 country code (needs a GeoIP database).
    #[arg(long)]
    country: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum FirewallCommand {
    /// Rules, limits and the GeoIP database.
    List,
    /// Block an address, network or country (idempotent).
    Add {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Remove a block rule.
    Remove {
        #[command(flatten)]
        target: Target,
    },
    /// Set connection limits (0 = unlimited).
    Limits {
        /// New connections per second per client IP (at most 1000).
        #[arg(long, default_value_t = 0)]
        rate: u32,
        #[arg(long, default_value_t = 0)]
        burst: u32,
        #[arg(long, default_value_t = 0)]
        per_ip: u32,
        #[arg(long, default_value_t = 0)]
        total: u32,
    },
}

fn parse_ms(s: &str) -> Result<u32, String> {
    let d: mc_kit::config::Duration = s.parse()?;
    u32::try_from(d.get().as_millis()).map_err(|_| format!("`{s}` is too long"))
}

fn rule(t: Target, comment: String) -> pb::FirewallRule {
    use pb::firewall_rule::Target as T;
    let target = match (t.ip, t.cidr, t.country) {
        (Some(ip), _, _) => T::Ip(ip),
        (_, Some(c), _) => T::Cidr(c),
        (_, _, Some(cc)) => T::Country(cc),
        _ => T::Ip(String::new()),
    };
    pb::FirewallRule {
        target: Some(target),
        comment,
        origin: 0,
    }
}

fn proto_version(v: ProxyVersion) -> i32 {
    (match v {
        ProxyVersion::Off => pb::ProxyProtocol::Off,
        ProxyVersion::V1 => pb::ProxyProtocol::V1,
        ProxyVersion::V2 => pb::ProxyProtocol::V2,
    }) as i32
}

fn origin_name(o: i32) -> &'static str {
    match pb::Origin::try_from(o) {
        Ok(pb::Origin::ConfigFile) => "config",
        Ok(pb::Origin::AdminApi) => "api",
        _ => "?",
    }
}

fn proxy_name(p: i32) -> &'static str {
    match pb::ProxyProtocol::try_from(p) {
        Ok(pb::ProxyProtocol::V1) => "v1",
        Ok(pb::ProxyProtocol::V2) => "v2",
        Ok(pb::ProxyProtocol::Any) => "any",
        _ => "off",
    }
}

fn mode_name(m: i32) -> &'static str {
    match pb::RouteMode::try_from(m) {
        Ok(pb::RouteMode::L7) => "l7",
        _ => "l4",
    }
}

/// A gRPC error as the operator should read it.
fn policy_kind(k: i32) -> &'static str {
    match pb::L7PolicyKind::try_from(k) {
        Ok(pb::L7PolicyKind::BlockUserAgent) => "block_user_agent",
        Ok(pb::L7PolicyKind::RequireHeader) => "require_header",
        _ => "?",
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn refused(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", status.message())
}

async fn client(endpoints: &Endpoints) -> anyhow::Result<ProxyAdminClient<Channel>> {
    let socket = endpoints
        .socket("proxy")
        .context("endpoints file has no proxy.admin_socket")?;
    let channel = mc_shell::admin::channel(&socket)
        .await
        .with_context(|| format!("cannot reach the data plane at {}", socket.display()))?;
    // Route tables of up to 100k entries travel in one message.
    Ok(ProxyAdminClient::new(channel).max_decoding_message_size(64 << 20))
}

pub(crate) async fn run(
    endpoints: &Endpoints,
    json: bool,
    cmd: ProxyCommand,
) -> anyhow::Result<()> {
    let mut c = client(endpoints).await?;
    let print =
        |v: &serde_json::Value| println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    match cmd {
        ProxyCommand::Status => {
            let s = c
                .get_status(pb::GetStatusRequest {})
                .await
                .map_err(refused)?
                .into_inner();
            let driver = match pb::IoDriver::try_from(s.io_driver) {
                Ok(pb::IoDriver::IoUring) => "io_uring",
                Ok(pb::IoDriver::Epoll) => "epoll",
                _ => "?",
            };
            if json {
                print(&serde_json::json!({
                    "version": s.version, "uptime_seconds": s.uptime_seconds, "workers": s.workers,
                    "io_driver": driver, "io_driver_reason": s.io_driver_reason,
                    "snapshot_generation": s.snapshot_generation, "blocks": s.blocks,
                    "client_hello_failures": s.client_hello_failures,
                    "listeners": s.listeners.iter().map(|l| serde_json::json!({
                        "name": l.name, "address": l.address, "connections_total": l.connections_total,
                        "connections_active": l.connections_active, "unrouted": l.unrouted,
                        "routes": l.routes.iter().map(|r| serde_json::json!({
                            "hostname": r.hostname, "connections_total": r.connections_total,
                            "connections_active": r.connections_active,
                            "bytes_client_to_backend": r.bytes_client_to_backend,
                            "bytes_backend_to_client": r.bytes_backend_to_client,
                            "backend_connect_failures": r.backend_connect_failures,
                            "responses": r.responses, "policy_blocks": r.policy_blocks,
                            "backends": r.backends.iter().map(|b| serde_json::json!({"address": b.address, "up": b.up})).collect::<Vec<_>>(),
                        })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                }));
                return Ok(());
            }
            println!(
                "version {}  uptime {}s  workers {}  io {}{}",
                s.version,
                s.uptime_seconds,
                s.workers,
                driver,
                if s.io_driver_reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", s.io_driver_reason)
                }
            );
            println!(
                "snapshot generation {}  client hello failures {}",
                s.snapshot_generation, s.client_hello_failures
            );
            let mut blocks: Vec<_> = s.blocks.iter().filter(|(_, v)| **v > 0).collect();
            blocks.sort();
            if !blocks.is_empty() {
                println!(
                    "blocks: {}",
                    blocks
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
            for l in &s.listeners {
                println!(
                    "listener {} on {}: {} connections ({} open), {} unrouted",
                    l.name, l.address, l.connections_total, l.connections_active, l.unrouted
                );
                for r in &l.routes {
                    let backends: Vec<_> = r
                        .backends
                        .iter()
                        .map(|b| format!("{}{}", b.address, if b.up { "" } else { " (down)" }))
                        .collect();
                    println!(
                        "  {} → {}: {} connections ({} open), {} B up, {} B down, {} connect failures",
                        r.hostname,
                        backends.join(", "),
                        r.connections_total,
                        r.connections_active,
                        r.bytes_client_to_backend,
                        r.bytes_backend_to_client,
                        r.backend_connect_failures
                    );
                }
            }
        }
        ProxyCommand::Listeners(ListenerCommand::List) => {
            let ls = c
                .list_listeners(pb::ListListenersRequest {})
                .await
                .map_err(refused)?
                .into_inner()
                .listeners;
            if json {
                print(&serde_json::json!(ls.iter().map(|l| serde_json::json!({
                    "name": l.name, "address": l.address, "proxy_protocol": proxy_name(l.proxy_protocol),
                    "trusted_proxies": l.trusted_proxies, "default_route": l.default_route, "origin": origin_name(l.origin),
                })).collect::<Vec<_>>()));
                return Ok(());
            }
            println!(
                "{:<16} {:<24} {:<6} {:<8} TRUSTED PROXIES",
                "NAME", "ADDRESS", "PROXY", "ORIGIN"
            );
            for l in ls {
                println!(
                    "{:<16} {:<24} {:<6} {:<8} {}",
                    l.name,
                    l.address,
                    proxy_name(l.proxy_protocol),
                    origin_name(l.origin),
                    l.trusted_proxies.join(",")
                );
            }
        }
        ProxyCommand::Routes(RouteCommand::List { listener }) => {
            let rs = c
                .list_routes(pb::ListRoutesRequest {
                    listener: listener.unwrap_or_default(),
                })
                .await
                .map_err(refused)?
                .into_inner()
                .routes;
            if json {
                print(&serde_json::json!(rs.iter().map(|r| serde_json::json!({
                    "listener": r.listener, "hostname": r.hostname, "mode": mode_name(r.mode), "backends": r.backends,
                    "send_proxy_protocol": proxy_name(r.send_proxy_protocol), "origin": origin_name(r.origin),
                })).collect::<Vec<_>>()));
                return Ok(());
            }
            println!(
                "{:<12} {:<32} {:<4} {:<6} {:<8} BACKENDS",
                "LISTENER", "HOSTNAME", "MODE", "PROXY", "ORIGIN"
            );
            for r in rs {
                println!(
                    "{:<12} {:<32} {:<4} {:<6} {:<8} {}",
                    r.listener,
                    r.hostname,
                    mode_name(r.mode),
                    proxy_name(r.send_proxy_protocol),
                    origin_name(r.origin),
                    r.backends.join(",")
                );
            }
        }
        ProxyCommand::Routes(RouteCommand::Add {
            hostname,
            backends,
            mode,
            listener,
            send_proxy_protocol,
            connect_timeout,
            idle_timeout,
            cert,
            backend_protocol,
            backend_ca,
            backend_server_name,
            insecure_skip_verify,
            header_timeout,
            response_timeout,
            max_streams,
            access_log,
        }) => {
            let l7 = match (mode, cert) {
                (Mode::L4, None) => None,
                (Mode::L4, Some(_)) => bail!("--cert and the other L7 options need --mode l7"),
                (Mode::L7, None) => {
                    bail!("--mode l7 needs --cert NAME (see `mcctl proxy certs put`)")
                }
                (Mode::L7, Some(certificate)) => Some(pb::L7Options {
                    certificate,
                    backend_protocol: match backend_protocol {
                        BackendProtocol::Http1 => pb::BackendProtocol::Http1,
                        BackendProtocol::H2c => pb::BackendProtocol::H2c,
                        BackendProtocol::Tls => pb::BackendProtocol::Tls,
                    } as i32,
                    backend_ca_pem: match backend_ca {
                        Some(p) => std::fs::read_to_string(&p)
                            .with_context(|| format!("reading {}", p.display()))?,
                        None => String::new(),
                    },
                    backend_server_name: backend_server_name.unwrap_or_default(),
                    backend_tls_insecure_skip_verify: insecure_skip_verify,
                    request_header_timeout_ms: header_timeout.unwrap_or(0),
                    backend_response_timeout_ms: response_timeout.unwrap_or(0),
                    max_concurrent_streams: max_streams.unwrap_or(0),
                    access_log,
                }),
            };
            let route = pb::Route {
                listener: listener.unwrap_or_default(),
                hostname,
                mode: match mode {
                    Mode::L4 => pb::RouteMode::L4,
                    Mode::L7 => pb::RouteMode::L7,
                } as i32,
                backends,
                send_proxy_protocol: proto_version(send_proxy_protocol),
                connect_timeout_ms: connect_timeout.unwrap_or(0),
                idle_timeout_ms: idle_timeout.unwrap_or(0),
                l7,
                origin: 0,
            };
            let r = c
                .upsert_route(pb::UpsertRouteRequest { route: Some(route) })
                .await
                .map_err(refused)?
                .into_inner();
            println!(
                "route {} on {} → {}",
                r.hostname,
                r.listener,
                r.backends.join(", ")
            );
        }
        ProxyCommand::Routes(RouteCommand::Remove { hostname, listener }) => {
            let removed = c
                .remove_route(pb::RemoveRouteRequest {
                    listener: listener.unwrap_or_default(),
                    hostname: hostname.clone(),
                })
                .await
                .map_err(refused)?
                .into_inner()
                .removed;
            if !removed {
                bail!("no route {hostname}");
            }
            println!("removed route {hostname}");
        }
        ProxyCommand::Routes(RouteCommand::Import { file, listener }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let entries: Vec<ImportRoute> = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a JSON array of routes", file.display()))?;
            let routes = entries
                .into_iter()
                .enumerate()
                .map(|(i, r)| import_route(i, r))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let n = routes.len();
            let r = c
                .replace_routes(pb::ReplaceRoutesRequest {
                    listener: listener.unwrap_or_default(),
                    routes,
                })
                .await
                .map_err(refused)?
                .into_inner();
            println!(
                "{n} routes: {} added, {} changed, {} removed, {} unchanged (snapshot {})",
                r.added, r.changed, r.removed, r.unchanged, r.snapshot_generation
            );
        }
        ProxyCommand::Certs(CertCommand::List) => {
            let cs = c
                .list_certificates(pb::ListCertificatesRequest {})
                .await
                .map_err(refused)?
                .into_inner()
                .certificates;
            if json {
                print(&serde_json::json!(cs.iter().map(|c| serde_json::json!({
                    "name": c.name, "dns_names": c.dns_names, "not_before_unix": c.not_before_unix,
                    "not_after_unix": c.not_after_unix, "key_algorithm": c.key_algorithm,
                    "sha256_fingerprint": c.sha256_fingerprint, "origin": origin_name(c.origin),
                })).collect::<Vec<_>>()));
                return Ok(());
            }
            println!(
                "{:<24} {:<12} {:<8} {:<12} NAMES / SHA-256",
                "NAME", "KEY", "ORIGIN", "EXPIRES"
            );
            for c in cs {
                let days = (c.not_after_unix - unix_now()) / 86_400;
                println!(
                    "{:<24} {:<12} {:<8} {:<12} {} {}",
                    c.name,
                    c.key_algorithm,
                    origin_name(c.origin),
                    format!("in {days}d"),
                    c.dns_names.join(","),
                    c.sha256_fingerprint.get(..16).unwrap_or_default()
                );
            }
        }
        ProxyCommand::Certs(CertCommand::Put { name, chain, key }) => {
            let chain_pem = std::fs::read_to_string(&chain)
                .with_context(|| format!("reading {}", chain.display()))?;
            let key_pem = std::fs::read_to_string(&key)
                .with_context(|| format!("reading {}", key.display()))?;
            let cert = c
                .put_certificate(pb::PutCertificateRequest {
                    name,
                    chain_pem,
                    key_pem,
                })
                .await
                .map_err(refused)?
                .into_inner();
            println!(
                "certificate {} ({}, {}) sha256 {}",
                cert.name,
                cert.key_algorithm,
                cert.dns_names.join(","),
                cert.sha256_fingerprint
            );
        }
        ProxyCommand::Certs(CertCommand::Remove { name }) => {
            let removed = c
                .remove_certificate(pb::RemoveCertificateRequest { name: name.clone() })
                .await
                .map_err(refused)?
                .into_inner()
                .removed;
            if !removed {
                bail!("no certificate {name}");
            }
            println!("removed certificate {name}");
        }
        ProxyCommand::Policies(PolicyCommand::List { listener, hostname }) => {
            let ps = c
                .list_l7_policies(pb::ListL7PoliciesRequest {
                    listener: listener.unwrap_or_default(),
                    hostname: hostname.unwrap_or_default(),
                })
                .await
                .map_err(refused)?
                .into_inner()
                .policies;
            if json {
                print(&serde_json::json!(ps.iter().map(|p| serde_json::json!({
                    "id": p.id, "listener": p.listener, "hostname": p.hostname,
                    "kind": policy_kind(p.kind), "value": p.value, "header_value": p.header_value,
                    "position": p.position,
                })).collect::<Vec<_>>()));
                return Ok(());
            }
            println!(
                "{:<16} {:<28} {:<4} {:<18} MATCH",
                "ID", "ROUTE", "POS", "KIND"
            );
            for p in ps {
                let m = if p.header_value.is_empty() {
                    p.value.clone()
                } else {
                    format!("{}={}", p.value, p.header_value)
                };
                println!(
                    "{:<16} {:<28} {:<4} {:<18} {m}",
                    p.id,
                    p.hostname,
                    p.position,
                    policy_kind(p.kind)
                );
            }
        }
        ProxyCommand::Policies(PolicyCommand::Add {
            hostname,
            listener,
            block_user_agent,
            require_header,
        }) => {
            let (kind, value, header_value) = match (block_user_agent, require_header) {
                (Some(ua), None) => (pb::L7PolicyKind::BlockUserAgent, ua, String::new()),
                (None, Some(h)) => match h.split_once('=') {
                    Some((n, v)) => (pb::L7PolicyKind::RequireHeader, n.to_owned(), v.to_owned()),
                    None => (pb::L7PolicyKind::RequireHeader, h, String::new()),
                },
                _ => bail!("give exactly one of --block-user-agent or --require-header"),
            };
            let p = c
                .add_l7_policy(pb::AddL7PolicyRequest {
                    policy: Some(pb::L7Policy {
                        id: String::new(),
                        listener: listener.unwrap_or_default(),
                        hostname,
                        kind: kind as i32,
                        value,
                        header_value,
                        position: 0,
                    }),
                })
                .await
                .map_err(refused)?
                .into_inner();
            println!(
                "policy {} on {} at position {}: {} {}",
                p.id,
                p.hostname,
                p.position,
                policy_kind(p.kind),
                p.value
            );
        }
        ProxyCommand::Policies(PolicyCommand::Remove { id }) => {
            let removed = c
                .remove_l7_policy(pb::RemoveL7PolicyRequest { id: id.clone() })
                .await
                .map_err(refused)?
                .into_inner()
                .removed;
            if !removed {
                bail!("no policy {id}");
            }
            println!("removed policy {id}");
        }
        ProxyCommand::Firewall(FirewallCommand::List) => {
            let f = c
                .get_firewall(pb::GetFirewallRequest {})
                .await
                .map_err(refused)?
                .into_inner();
            use pb::firewall_rule::Target as T;
            let rows: Vec<_> = f
                .rules
                .iter()
                .map(|r| {
                    let (kind, value) = match &r.target {
                        Some(T::Ip(v)) => ("ip", v.as_str()),
                        Some(T::Cidr(v)) => ("cidr", v.as_str()),
                        Some(T::Country(v)) => ("country", v.as_str()),
                        None => ("?", ""),
                    };
                    (kind, value, origin_name(r.origin), r.comment.as_str())
                })
                .collect();
            let limits = f.limits.unwrap_or_default();
            if json {
                print(&serde_json::json!({
                    "rules": rows.iter().map(|(k, v, o, c)| serde_json::json!({"kind": k, "value": v, "origin": o, "comment": c})).collect::<Vec<_>>(),
                    "limits": {"rate_per_second": limits.rate_per_second, "burst": limits.burst,
                               "max_connections_per_ip": limits.max_connections_per_ip, "max_connections_total": limits.max_connections_total},
                    "geoip": f.geoip.map(|g| serde_json::json!({"path": g.path, "database_type": g.database_type, "build_epoch_unix": g.build_epoch_unix})),
                }));
                return Ok(());
            }
            println!("{:<8} {:<40} {:<8} COMMENT", "KIND", "VALUE", "ORIGIN");
            for (k, v, o, c) in rows {
                println!("{k:<8} {v:<40} {o:<8} {c}");
            }
            println!(
                "limits: rate {}/s burst {}, {} per IP, {} total (0 = unlimited)",
                limits.rate_per_second,
                limits.burst,
                limits.max_connections_per_ip,
                limits.max_connections_total
            );
            if let Some(g) = f.geoip {
                println!(
                    "geoip: {} ({}, built {})",
                    g.path, g.database_type, g.build_epoch_unix
                );
            }
        }
        ProxyCommand::Firewall(FirewallCommand::Add { target, comment }) => {
            let r = c
                .add_firewall_rule(pb::AddFirewallRuleRequest {
                    rule: Some(rule(target, comment)),
                })
                .await
                .map_err(refused)?
                .into_inner();
            println!(
                "blocking {:?}",
                r.target.map(|t| format!("{t:?}")).unwrap_or_default()
            );
        }
        ProxyCommand::Firewall(FirewallCommand::Remove { target }) => {
            let removed = c
                .remove_firewall_rule(pb::RemoveFirewallRuleRequest {
                    rule: Some(rule(target, String::new())),
                })
                .await
                .map_err(refused)?
                .into_inner()
                .removed;
            if !removed {
                bail!("no such rule");
            }
            println!("removed");
        }
        ProxyCommand::Firewall(FirewallCommand::Limits {
            rate,
            burst,
            per_ip,
            total,
        }) => {
            let l = c
                .set_firewall_limits(pb::SetFirewallLimitsRequest {
                    limits: Some(pb::FirewallLimits {
                        rate_per_second: rate,
                        burst,
                        max_connections_per_ip: per_ip,
                        max_connections_total: total,
                    }),
                })
                .await
                .map_err(refused)?
                .into_inner();
            println!(
                "limits: rate {}/s burst {}, {} per IP, {} total",
                l.rate_per_second, l.burst, l.max_connections_per_ip, l.max_connections_total
            );
        }
        ProxyCommand::GeoipReload => {
            let g = c
                .reload_geo_ip(pb::ReloadGeoIpRequest {})
                .await
                .map_err(refused)?
                .into_inner();
            println!(
                "geoip: {} ({}, built {})",
                g.path, g.database_type, g.build_epoch_unix
            );
        }
    }
    Ok(())
}
