//! `mcctl proxy routes add`: one route from flags.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use mc_proto::proxy::v1 as pb;

use super::RouteView;
use crate::enums::from_flag;
use crate::output::Out;
use crate::proxy::{Client, parse_ms, refused};

/// `--mode`: spelled as `pb::RouteMode` without its prefix.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    L4,
    L7,
}

/// `--backend-protocol`: spelled as `pb::BackendProtocol` without its prefix.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum BackendProtocol {
    Http1,
    H2c,
    Tls,
}

/// `--send-proxy-protocol`: spelled as `pb::ProxyProtocol` without its prefix.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ProxyVersion {
    Off,
    V1,
    V2,
}

#[derive(Args)]
pub(crate) struct AddArgs {
    /// Exact name or `*.example.com`.
    hostname: String,
    /// Backend `ip:port`, `[ipv6]:port` or `name:port`, with `=WEIGHT` (1-100,
    /// default 1) for --balance; repeat for several. A name must resolve when
    /// the route is saved.
    #[arg(long = "backend", required = true, value_name = "HOST:PORT[=WEIGHT]")]
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
    /// Replace the hostname's route if it already has one with other settings
    /// (without it that is refused, so a typo cannot silently repoint a route).
    #[arg(long)]
    replace: bool,
    #[command(flatten)]
    l7: L7Args,
    #[command(flatten)]
    balance: super::balance::BalanceArgs,
}

/// The flags that only mean something with `--mode l7`.
#[derive(Args)]
struct L7Args {
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
    /// L7: requests whose path starts with PREFIX go to HOST:PORT (repeat
    /// for several rules or backends); the longest prefix wins, the route's
    /// --backend takes the rest.
    #[arg(long = "path", value_name = "PREFIX=HOST:PORT")]
    paths: Vec<String>,
    /// L7: remove PREFIX (a --path rule's) from the path before forwarding.
    #[arg(long = "strip-prefix", value_name = "PREFIX")]
    strip: Vec<String>,
    /// L7: requests per second per client address; over it 429 + Retry-After.
    #[arg(long, value_name = "N")]
    rate_limit: Option<u32>,
    /// L7: requests a client may make at once before --rate-limit applies
    /// (default: one second's worth).
    #[arg(long, value_name = "N", requires = "rate_limit")]
    rate_burst: Option<u32>,
    /// L7: requests in flight on the route at once; over it 503 + Retry-After.
    #[arg(long, value_name = "N")]
    max_requests: Option<u32>,
    /// L7: require a client certificate that chains to a CA in this PEM file;
    /// the backend gets the identity in X-Forwarded-Client-Cert.
    #[arg(long, value_name = "FILE")]
    client_ca: Option<PathBuf>,
    /// L7 with --client-ca: also serve clients without a certificate.
    #[arg(long, requires = "client_ca")]
    client_cert_optional: bool,
}

/// `--path` and `--strip-prefix` as rules, in the order first named.
fn path_rules(paths: Vec<String>, strip: &[String]) -> anyhow::Result<Vec<pb::PathRule>> {
    let mut rules: Vec<pb::PathRule> = Vec::new();
    for p in paths {
        let Some((prefix, backend)) = p.split_once('=') else {
            bail!("--path {p}: write it as PREFIX=HOST:PORT, e.g. /api/=10.0.0.5:8080");
        };
        match rules.iter_mut().find(|r| r.prefix == prefix) {
            Some(r) => r.backends.push(backend.to_owned()),
            None => rules.push(pb::PathRule {
                prefix: prefix.to_owned(),
                backends: vec![backend.to_owned()],
                backend_protocol: 0,
                strip_prefix: strip.iter().any(|s| s == prefix),
            }),
        }
    }
    if let Some(s) = strip
        .iter()
        .find(|s| !rules.iter().any(|r| &r.prefix == *s))
    {
        bail!("--strip-prefix {s}: no --path rule has that prefix");
    }
    Ok(rules)
}

impl L7Args {
    fn options(self, mode: Mode) -> anyhow::Result<Option<pb::L7Options>> {
        let certificate = match (mode, self.cert) {
            (Mode::L4, None)
                if self.paths.is_empty()
                    && self.strip.is_empty()
                    && self.rate_limit.is_none()
                    && self.max_requests.is_none()
                    && self.client_ca.is_none() =>
            {
                return Ok(None);
            }
            (Mode::L4, None) => {
                bail!(
                    "--path, --strip-prefix, --rate-limit, --max-requests and --client-ca need --mode l7"
                )
            }
            (Mode::L4, Some(_)) => bail!("--cert and the other L7 options need --mode l7"),
            (Mode::L7, None) => bail!("--mode l7 needs --cert NAME (see `mcctl proxy certs put`)"),
            (Mode::L7, Some(certificate)) => certificate,
        };
        let backend_ca_pem = match self.backend_ca {
            Some(p) => {
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?
            }
            None => String::new(),
        };
        Ok(Some(pb::L7Options {
            certificate,
            backend_protocol: from_flag::<pb::BackendProtocol>(&self.backend_protocol)?,
            backend_ca_pem,
            backend_server_name: self.backend_server_name.unwrap_or_default(),
            backend_tls_insecure_skip_verify: self.insecure_skip_verify,
            request_header_timeout_ms: self.header_timeout.unwrap_or(0),
            backend_response_timeout_ms: self.response_timeout.unwrap_or(0),
            max_concurrent_streams: self.max_streams.unwrap_or(0),
            access_log: self.access_log,
            paths: path_rules(self.paths, &self.strip)?,
            rate_per_second: self.rate_limit.unwrap_or(0),
            rate_burst: self.rate_burst.unwrap_or(0),
            max_concurrent_requests: self.max_requests.unwrap_or(0),
            client_ca_pem: match self.client_ca {
                Some(p) => std::fs::read_to_string(&p)
                    .with_context(|| format!("reading {}", p.display()))?,
                None => String::new(),
            },
            client_cert_optional: self.client_cert_optional,
        }))
    }
}

pub(super) async fn run(c: &mut Client, out: Out, a: AddArgs) -> anyhow::Result<()> {
    let (backends, backend_weights) = super::balance::split_weights(a.backends)?;
    let mut route = pb::Route {
        listener: a.listener.unwrap_or_default(),
        hostname: a.hostname,
        mode: from_flag::<pb::RouteMode>(&a.mode)?,
        backends,
        backend_weights,
        send_proxy_protocol: from_flag::<pb::ProxyProtocol>(&a.send_proxy_protocol)?,
        connect_timeout_ms: a.connect_timeout.unwrap_or(0),
        idle_timeout_ms: a.idle_timeout.unwrap_or(0),
        l7: a.l7.options(a.mode)?,
        ..pb::Route::default()
    };
    a.balance.apply(&mut route)?;
    let r = c
        .upsert_route(pb::UpsertRouteRequest {
            route: Some(route),
            create_only: !a.replace,
        })
        .await
        .map_err(|s| match s.code() {
            tonic::Code::AlreadyExists => {
                anyhow::anyhow!("{}; pass --replace to replace it", s.message())
            }
            _ => refused(s),
        })?
        .into_inner();
    let line = format!(
        "route {} on {} → {}",
        r.hostname,
        r.listener,
        r.backends.join(", ")
    );
    out.done(&RouteView::from(r), &line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enums::{flag_name, parse};

    /// The flags are spelled as the proto values, so `from_flag` cannot fail.
    #[test]
    fn path_flags_group_by_prefix() {
        let rules = path_rules(
            vec!["/api/=a:1".into(), "/=c:3".into(), "/api/=b:2".into()],
            &["/api/".into()],
        )
        .expect("rules");
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].backends, ["a:1", "b:2"]);
        assert!(rules[0].strip_prefix && !rules[1].strip_prefix);
        assert!(path_rules(vec!["/api/".into()], &[]).is_err());
        assert!(path_rules(vec!["/a=b:1".into()], &["/x".into()]).is_err());
    }

    #[test]
    fn every_flag_value_names_a_proto_value() {
        for m in Mode::value_variants() {
            assert!(parse::<pb::RouteMode>(&flag_name(m)).is_ok());
        }
        for p in BackendProtocol::value_variants() {
            assert!(parse::<pb::BackendProtocol>(&flag_name(p)).is_ok());
        }
        for v in ProxyVersion::value_variants() {
            assert!(parse::<pb::ProxyProtocol>(&flag_name(v)).is_ok());
        }
    }
}
