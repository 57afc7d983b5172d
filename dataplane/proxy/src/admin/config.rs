//! The `[proxy]` section of the data plane's TOML: the bootstrap state.
//!
//! ```toml
//! [proxy]
//! shutdown_timeout = "30s"
//! max_client_hello = 16384
//!
//! [[proxy.listeners]]
//! name = "public"
//! address = "0.0.0.0:443"
//! proxy_protocol = "off"          # off | v1 | v2 | any
//! trusted_proxies = []            # CIDRs allowed to send a PROXY header
//! default_route = ""              # route hostname for ClientHellos without SNI
//! client_hello_timeout = "10s"
//! connect_timeout = "5s"
//! idle_timeout = "5m"
//! min_tls = "1.3"                 # L7 routes: "1.2" also allows TLS 1.2
//!
//! [[proxy.listeners]]             # plain HTTP: ACME HTTP-01 + redirects to https
//! name = "plain"
//! address = "0.0.0.0:80"
//! kind = "http"                   # tls (default) | http
//! client_hello_timeout = "10s"    # here: time allowed for the request head
//!
//! [[proxy.routes]]                # ACME HTTP-01 responder for one hostname
//! listener = "plain"
//! hostname = "app.example.com"
//! backends = ["127.0.0.1:8402"]   # gets /.well-known/acme-challenge/… for it
//! plain_http = "redirect"         # other requests: redirect (308 to https, the
//!                                 # default) | serve (relayed here) | "404"
//!
//! [[proxy.routes]]
//! listener = "public"             # may be omitted when there is one listener
//! hostname = "*.example.com"
//! backends = ["10.0.0.5:443"]
//! mode = "l4"
//! send_proxy_protocol = "off"     # off | v1 | v2
//!
//! [[proxy.routes]]                # balancing and an active health check
//! hostname = "api.example.com"
//! backends = ["10.0.0.9:443", "10.0.0.10:443"]
//! weights = [3, 1]                # per backend, 1-100 (default 1)
//! balance = "least"               # rr (default) | least | hash
//! slow_start = "30s"              # readmitted backends ramp up (default off)
//! ejection_base = "10s"           # a failed connect ejects for this long, doubling
//! ejection_max = "5m"             # per ejection in a row up to this
//! health_check = { kind = "tcp", interval = "5s", timeout = "2s", rise = 2, fall = 3 }
//!                                 # kind: tcp | tls | http (path, expect_status) | grpc (service)
//!
//! [[proxy.routes]]                # TLS terminated here, HTTP reverse proxy
//! hostname = "app.example.com"
//! backends = ["10.0.0.6:8080"]
//! mode = "l7"
//! l7 = { certificate = "app", backend_protocol = "http1" }   # http1 | h2c | tls
//!
//! [[proxy.routes]]                # path rules: the longest prefix wins
//! hostname = "shop.example.com"
//! backends = ["10.0.0.7:8080"]    # what no rule matches
//! mode = "l7"
//! [proxy.routes.l7]
//! certificate = "shop"
//! [[proxy.routes.l7.paths]]
//! prefix = "/api/"
//! backends = ["10.0.0.8:8080"]
//! strip_prefix = true             # /api/v1?x reaches the backend as /v1?x
//!
//! [[proxy.certificates]]          # chain checked against certificate_authorities
//! name = "app"
//! chain_file = "/srv/mc-proxy/app.pem"
//! key_file = "/srv/mc-proxy/app.key"
//!
//! [proxy.metacrypt]               # signs managed certificates (mcctl proxy certs managed)
//! grpc = "https://cp.internal:8443"
//! ca_cert = "/srv/mc/ca.pem"
//! token_file = "/srv/mc/proxy.token"
//!
//! [proxy.acme]                    # ACME-sourced managed certificates
//! ca_cert = "/srv/mc/acme-ca.pem" # trusted for the directory (default: the system bundle)
//!
//! [proxy.firewall]
//! block_ips = ["192.0.2.7"]
//! block_cidrs = ["198.51.100.0/24"]
//! block_countries = ["XX"]
//! geoip_db = "/srv/mc-proxy/GeoLite2-Country.mmdb"
//! rate_per_second = 20
//! burst = 40
//! max_connections_per_ip = 256
//! max_connections_total = 50000
//! ```
//!
//! File vs stored state: entries in this file are applied at every start and
//! the file wins for them — they show as origin `config` and the admin API
//! refuses to change or remove them (edit the file instead). Entries made
//! through the admin API persist in redb and are kept across restarts. A
//! stored API entry with the same key as a file entry is replaced by the
//! file's, with a warning naming both. Limits set in the file are file-owned
//! the same way.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use mc_kit::config::Duration;
use serde::Deserialize;

use crate::firewall::{FirewallRule, Limits, RuleTarget};
use crate::model::{
    self, Backend, BackendProtocol, Balance, BalancePolicy, CheckKind, ClientAuth, HealthCheck,
    HostPattern, Invalid, L7Spec, ListenerKind, ListenerSpec, MinTls, Origin, PathRule, PlainHttp,
    ProxyProtocolIn, ProxyProtocolOut, RequestLimits, RouteMode, RouteSpec,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub firewall: FirewallConfig,
    /// How long open connections may run on after SIGTERM.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: Duration,
    /// Largest ClientHello (all its records) accepted, in bytes.
    #[serde(default = "default_max_client_hello")]
    pub max_client_hello: usize,
    /// PEM bundles that certificate chains must lead to (checked at upload)
    /// and that TLS backends are verified against by default. Default: the
    /// system bundle, when present.
    #[serde(default)]
    pub certificate_authorities: Option<Vec<PathBuf>>,
    #[serde(default)]
    pub certificates: Vec<CertificateConfig>,
    /// Where managed certificates are signed (see [`super::MetacryptSource`]).
    #[serde(default)]
    pub metacrypt: Option<super::MetacryptSource>,
    /// How ACME-sourced managed certificates reach their CA (see [`super::AcmeSection`]).
    #[serde(default)]
    pub acme: super::AcmeSection,
}

/// A certificate for L7 routes, read from PEM files at every start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    pub name: String,
    pub chain_file: PathBuf,
    pub key_file: PathBuf,
}

/// The `l7` table of a route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L7Config {
    pub certificate: String,
    #[serde(default)]
    pub backend_protocol: BackendProtocol,
    #[serde(default)]
    pub backend_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub backend_server_name: Option<String>,
    #[serde(default)]
    pub backend_tls_insecure_skip_verify: bool,
    #[serde(default)]
    pub request_header_timeout: Option<Duration>,
    #[serde(default)]
    pub backend_response_timeout: Option<Duration>,
    #[serde(default)]
    pub max_concurrent_streams: Option<u32>,
    #[serde(default)]
    pub access_log: bool,
    /// `[[proxy.routes.l7.paths]]`: path-prefix rules.
    #[serde(default)]
    pub paths: Vec<PathConfig>,
    /// Requests per second per client; 429 over it.
    #[serde(default)]
    pub rate_per_second: u32,
    #[serde(default)]
    pub rate_burst: u32,
    /// Requests in flight on the route; 503 over it.
    #[serde(default)]
    pub max_concurrent_requests: u32,
    /// Client certificates must chain to these CAs (PEM file).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// With `client_ca_file`: also serve clients without a certificate.
    #[serde(default)]
    pub client_cert_optional: bool,
}

/// One path rule of an L7 route in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathConfig {
    pub prefix: String,
    pub backends: Vec<String>,
    #[serde(default)]
    pub backend_protocol: Option<BackendProtocol>,
    #[serde(default)]
    pub strip_prefix: bool,
}

/// The system CA bundle on Debian and derivatives.
pub(crate) const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

impl Default for ProxySection {
    fn default() -> Self {
        Self {
            listeners: Vec::new(),
            routes: Vec::new(),
            firewall: FirewallConfig::default(),
            shutdown_timeout: default_shutdown_timeout(),
            max_client_hello: default_max_client_hello(),
            certificate_authorities: None,
            certificates: Vec::new(),
            metacrypt: None,
            acme: super::AcmeSection::default(),
        }
    }
}

fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_client_hello() -> usize {
    16 * 1024
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub name: String,
    pub address: SocketAddr,
    #[serde(default)]
    pub proxy_protocol: ProxyProtocolIn,
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    #[serde(default)]
    pub default_route: String,
    #[serde(default)]
    pub client_hello_timeout: Option<Duration>,
    #[serde(default)]
    pub connect_timeout: Option<Duration>,
    #[serde(default)]
    pub idle_timeout: Option<Duration>,
    #[serde(default)]
    pub min_tls: MinTls,
    /// `tls` (SNI routing, the default) or `http` (plain HTTP: ACME HTTP-01
    /// challenges to the Host's route, 308 to https for hostnames with a TLS
    /// route, 404 otherwise).
    #[serde(default)]
    pub kind: ListenerKind,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default)]
    pub listener: String,
    pub hostname: String,
    pub backends: Vec<String>,
    #[serde(default)]
    pub mode: RouteMode,
    #[serde(default)]
    pub send_proxy_protocol: ProxyProtocolOut,
    #[serde(default)]
    pub connect_timeout: Option<Duration>,
    #[serde(default)]
    pub idle_timeout: Option<Duration>,
    #[serde(default)]
    pub l7: Option<L7Config>,
    #[serde(default)]
    pub balance: BalancePolicy,
    /// One per backend; empty: all 1.
    #[serde(default)]
    pub weights: Vec<u32>,
    /// L7 with `balance = "hash"`: hash this header's value.
    #[serde(default)]
    pub hash_header: Option<String>,
    #[serde(default)]
    pub slow_start: Option<Duration>,
    /// Outlier ejection: first length (default 10s), doubled per ejection in a row.
    #[serde(default)]
    pub ejection_base: Option<Duration>,
    /// The longest ejection (default 5m).
    #[serde(default)]
    pub ejection_max: Option<Duration>,
    #[serde(default)]
    pub health_check: Option<HealthCheckConfig>,
    /// Routes on an `http` listener: `redirect` (default), `serve` or `404`.
    #[serde(default)]
    pub plain_http: PlainHttp,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKindConfig {
    Tcp,
    Tls,
    Http,
    Grpc,
}

/// A route's `health_check = { kind = "http", path = "/healthz", ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    pub kind: CheckKindConfig,
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub rise: Option<u32>,
    #[serde(default)]
    pub fall: Option<u32>,
    /// http: the path to GET (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// http: the status expected (default 200).
    #[serde(default)]
    pub expect_status: Option<u16>,
    /// grpc: the service asked about (default: the whole server).
    #[serde(default)]
    pub service: Option<String>,
}

impl HealthCheckConfig {
    fn spec(&self) -> HealthCheck {
        let kind = match self.kind {
            CheckKindConfig::Tcp => CheckKind::Tcp,
            CheckKindConfig::Tls => CheckKind::Tls,
            CheckKindConfig::Http => CheckKind::Http {
                path: self.path.clone().unwrap_or_else(|| "/".to_owned()),
                expect_status: self.expect_status.unwrap_or(200),
            },
            CheckKindConfig::Grpc => CheckKind::Grpc {
                service: self.service.clone().unwrap_or_default(),
            },
        };
        let mut c = HealthCheck::new(kind);
        if let Some(i) = self.interval {
            c.interval = i.get();
        }
        c.timeout = self
            .timeout
            .map_or(c.timeout.min(c.interval), Duration::get);
        c.rise = self.rise.unwrap_or(c.rise);
        c.fall = self.fall.unwrap_or(c.fall);
        c
    }
}

impl RouteConfig {
    fn balance(&self) -> Balance {
        Balance {
            policy: self.balance,
            hash_header: self.hash_header.as_ref().map(|h| h.to_ascii_lowercase()),
            weights: self.weights.clone(),
            slow_start: self.slow_start.map(Duration::get).unwrap_or_default(),
            ejection_base: self.ejection_base.map(Duration::get).unwrap_or_default(),
            ejection_max: self.ejection_max.map(Duration::get).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallConfig {
    #[serde(default)]
    pub block_ips: Vec<String>,
    #[serde(default)]
    pub block_cidrs: Vec<String>,
    #[serde(default)]
    pub block_countries: Vec<String>,
    #[serde(default)]
    pub geoip_db: Option<PathBuf>,
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    #[serde(default)]
    pub burst: Option<u32>,
    #[serde(default)]
    pub max_connections_per_ip: Option<u32>,
    #[serde(default)]
    pub max_connections_total: Option<u32>,
}

/// The file's entries as validated specs, with `proxy.`-prefixed keys in errors.
pub struct Bootstrap {
    pub listeners: Vec<ListenerSpec>,
    pub routes: Vec<RouteSpec>,
    pub rules: Vec<FirewallRule>,
    /// `Some` when the file sets any limit: the file then owns all four.
    pub limits: Option<Limits>,
    pub geoip_db: Option<PathBuf>,
    /// (name, chain PEM, key PEM), read from the files.
    pub certificates: Vec<(String, String, String)>,
    pub authorities: Vec<PathBuf>,
}

impl ProxySection {
    pub fn bootstrap(&self) -> Result<Bootstrap, mc_kit::config::Invalid> {
        let err = |i: usize, kind: &str, e: Invalid| {
            let field = e
                .field
                .split_once('.')
                .map_or(e.field.as_str(), |(_, f)| f)
                .to_owned();
            mc_kit::config::Invalid::new(format!("proxy.{kind}[{i}].{field}"), e.message)
        };
        if self.max_client_hello < 512 || self.max_client_hello > 64 * 1024 {
            return Err(mc_kit::config::Invalid::new(
                "proxy.max_client_hello",
                "between 512 and 65536 bytes",
            ));
        }
        let mut listeners = Vec::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let default_route = match l.default_route.as_str() {
                "" => None,
                h => Some(
                    HostPattern::parse(h)
                        .map_err(|m| err(i, "listeners", Invalid::new("l.default_route", m)))?,
                ),
            };
            let spec = ListenerSpec {
                name: l.name.clone(),
                address: l.address,
                proxy_protocol: l.proxy_protocol,
                trusted_proxies: l.trusted_proxies.clone(),
                default_route,
                client_hello_timeout: l
                    .client_hello_timeout
                    .map_or(model::DEFAULT_CLIENT_HELLO_TIMEOUT, Duration::get),
                connect_timeout: l
                    .connect_timeout
                    .map_or(model::DEFAULT_CONNECT_TIMEOUT, Duration::get),
                idle_timeout: l
                    .idle_timeout
                    .map_or(model::DEFAULT_IDLE_TIMEOUT, Duration::get),
                min_tls: l.min_tls,
                origin: Origin::ConfigFile,
                kind: l.kind,
            };
            spec.validate().map_err(|e| err(i, "listeners", e))?;
            if listeners.iter().any(|o: &ListenerSpec| o.name == spec.name) {
                return Err(err(
                    i,
                    "listeners",
                    Invalid::new("l.name", format!("`{}` is listed twice", spec.name)),
                ));
            }
            listeners.push(spec);
        }
        let mut routes = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            let listener = match (r.listener.as_str(), listeners.as_slice()) {
                ("", [only]) => only.name.clone(),
                ("", _) => {
                    return Err(err(
                        i,
                        "routes",
                        Invalid::new(
                            "r.listener",
                            "required when there is not exactly one listener",
                        ),
                    ));
                }
                (name, ls) if ls.iter().any(|l| l.name == name) => name.to_owned(),
                (name, _) => {
                    return Err(err(
                        i,
                        "routes",
                        Invalid::new(
                            "r.listener",
                            format!("no listener named `{name}` in the file"),
                        ),
                    ));
                }
            };
            let backends = r
                .backends
                .iter()
                .map(|b| Backend::parse(b))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| err(i, "routes", Invalid::new("r.backends", m)))?;
            let spec = RouteSpec {
                listener,
                hostname: HostPattern::parse(&r.hostname)
                    .map_err(|m| err(i, "routes", Invalid::new("r.hostname", m)))?,
                mode: r.mode,
                backends,
                send_proxy_protocol: r.send_proxy_protocol,
                connect_timeout: r.connect_timeout.map(Duration::get),
                idle_timeout: r.idle_timeout.map(Duration::get),
                l7: match &r.l7 {
                    Some(c) => {
                        Some(l7_spec(c).map_err(|m| err(i, "routes", Invalid::new("r.l7", m)))?)
                    }
                    None => None,
                },
                origin: Origin::ConfigFile,
                balance: r.balance(),
                health_check: r.health_check.as_ref().map(HealthCheckConfig::spec),
                plain_http: r.plain_http,
            };
            spec.validate().map_err(|e| err(i, "routes", e))?;
            let kind = listeners
                .iter()
                .find(|l: &&ListenerSpec| l.name == spec.listener)
                .map(|l| l.kind)
                .unwrap_or_default();
            spec.check_listener_kind(kind)
                .map_err(|e| err(i, "routes", e))?;
            if routes.iter().any(|o: &RouteSpec| o.key() == spec.key()) {
                return Err(err(
                    i,
                    "routes",
                    Invalid::new("r.hostname", format!("`{}` is listed twice", spec.hostname)),
                ));
            }
            routes.push(spec);
        }
        let fw = &self.firewall;
        let mut rules = Vec::new();
        let targets = fw
            .block_ips
            .iter()
            .map(|s| ("block_ips", RuleTarget::parse_ip(s)))
            .chain(
                fw.block_cidrs
                    .iter()
                    .map(|s| ("block_cidrs", RuleTarget::parse_cidr(s))),
            )
            .chain(
                fw.block_countries
                    .iter()
                    .map(|s| ("block_countries", RuleTarget::parse_country(s))),
            );
        for (key, target) in targets {
            let target = target.map_err(|e| {
                mc_kit::config::Invalid::new(format!("proxy.firewall.{key}"), e.message)
            })?;
            rules.push(FirewallRule {
                target,
                comment: String::new(),
                origin: Origin::ConfigFile,
            });
        }
        if rules
            .iter()
            .any(|r| matches!(r.target, RuleTarget::Country(_)))
            && fw.geoip_db.is_none()
        {
            return Err(mc_kit::config::Invalid::new(
                "proxy.firewall.block_countries",
                "needs proxy.firewall.geoip_db",
            ));
        }
        if let Some(p) = &fw.geoip_db
            && !p.is_file()
        {
            return Err(mc_kit::config::Invalid::new(
                "proxy.firewall.geoip_db",
                format!("{} does not exist", p.display()),
            ));
        }
        let any_limit = fw.rate_per_second.is_some()
            || fw.burst.is_some()
            || fw.max_connections_per_ip.is_some()
            || fw.max_connections_total.is_some();
        let limits = any_limit.then(|| Limits {
            rate_per_second: fw.rate_per_second.unwrap_or(0),
            burst: fw.burst.unwrap_or(fw.rate_per_second.unwrap_or(0)),
            max_connections_per_ip: fw.max_connections_per_ip.unwrap_or(0),
            max_connections_total: fw.max_connections_total.unwrap_or(0),
        });
        if let Some(l) = &limits {
            l.validate().map_err(|e| {
                mc_kit::config::Invalid::new(
                    format!("proxy.firewall.{}", e.field.trim_start_matches("limits.")),
                    e.message,
                )
            })?;
        }
        let mut certificates = Vec::new();
        for (i, c) in self.certificates.iter().enumerate() {
            let key = |f: &str| format!("proxy.certificates[{i}].{f}");
            model::check_certificate_name("name", &c.name)
                .map_err(|e| mc_kit::config::Invalid::new(key("name"), e.message))?;
            let read = |f: &str, p: &PathBuf| {
                std::fs::read_to_string(p).map_err(|e| {
                    mc_kit::config::Invalid::new(key(f), format!("{}: {e}", p.display()))
                })
            };
            certificates.push((
                c.name.clone(),
                read("chain_file", &c.chain_file)?,
                read("key_file", &c.key_file)?,
            ));
        }
        let authorities = match &self.certificate_authorities {
            Some(files) => files.clone(),
            None => [PathBuf::from(SYSTEM_CA_BUNDLE)]
                .into_iter()
                .filter(|p| p.is_file())
                .collect(),
        };
        for (i, f) in authorities.iter().enumerate() {
            if !f.is_file() {
                return Err(mc_kit::config::Invalid::new(
                    format!("proxy.certificate_authorities[{i}]"),
                    format!("{} does not exist", f.display()),
                ));
            }
        }
        Ok(Bootstrap {
            listeners,
            routes,
            rules,
            limits,
            geoip_db: fw.geoip_db.clone(),
            certificates,
            authorities,
        })
    }
}

fn l7_spec(c: &L7Config) -> Result<L7Spec, String> {
    let mut spec = L7Spec::new(c.certificate.clone());
    spec.backend_protocol = c.backend_protocol;
    spec.backend_ca_pem = match &c.backend_ca_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| format!("backend_ca_file: {}: {e}", p.display()))?,
        ),
        None => None,
    };
    spec.backend_server_name = c.backend_server_name.clone();
    spec.backend_tls_insecure_skip_verify = c.backend_tls_insecure_skip_verify;
    if let Some(d) = c.request_header_timeout {
        spec.request_header_timeout = d.get();
    }
    if let Some(d) = c.backend_response_timeout {
        spec.backend_response_timeout = d.get();
    }
    if let Some(n) = c.max_concurrent_streams {
        spec.max_concurrent_streams = n;
    }
    spec.access_log = c.access_log;
    spec.limits = RequestLimits {
        rate_per_second: c.rate_per_second,
        burst: c.rate_burst,
        max_concurrent_requests: c.max_concurrent_requests,
    };
    spec.client_auth = match (&c.client_ca_file, c.client_cert_optional) {
        (None, false) => None,
        (None, true) => return Err("client_cert_optional needs client_ca_file".to_owned()),
        (Some(p), optional) => Some(ClientAuth {
            ca_pem: std::fs::read_to_string(p)
                .map_err(|e| format!("client_ca_file: {}: {e}", p.display()))?,
            optional,
        }),
    };
    for (i, p) in c.paths.iter().enumerate() {
        let backends = p
            .backends
            .iter()
            .map(|b| Backend::parse(b))
            .collect::<Result<_, _>>()
            .map_err(|m| format!("paths[{i}].backends: {m}"))?;
        spec.paths.push(PathRule {
            prefix: p.prefix.clone(),
            backends,
            backend_protocol: p.backend_protocol,
            strip_prefix: p.strip_prefix,
        });
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(route: serde_json::Value) -> Result<Bootstrap, mc_kit::config::Invalid> {
        let s: ProxySection = serde_json::from_value(serde_json::json!({
            "listeners": [{"name": "public", "address": "127.0.0.1:8443"}],
            "routes": [route],
        }))
        .expect("section parses");
        s.bootstrap()
    }

    #[test]
    fn balancing_and_health_checks_from_the_file() {
        let boot = section(serde_json::json!({
            "hostname": "a.example.com",
            "backends": ["10.0.0.1:443", "10.0.0.2:443"],
            "weights": [3, 1],
            "balance": "least",
            "slow_start": "30s",
            "health_check": {"kind": "http", "path": "/healthz", "interval": "1s"},
        }))
        .expect("valid");
        let r = &boot.routes[0];
        assert_eq!(r.balance.policy, BalancePolicy::Least);
        assert_eq!(r.balance.weights, [3, 1]);
        assert_eq!(r.balance.slow_start, std::time::Duration::from_secs(30));
        let check = r.health_check.as_ref().expect("check");
        assert_eq!(
            check.kind,
            CheckKind::Http {
                path: "/healthz".into(),
                expect_status: 200
            }
        );
        assert_eq!(check.interval, std::time::Duration::from_secs(1));
        assert_eq!(check.timeout, std::time::Duration::from_secs(1), "capped");
        // One weight for two backends, and a header hash on L4: refused.
        for bad in [
            serde_json::json!({"hostname": "b.example.com", "backends": ["10.0.0.1:443", "10.0.0.2:443"], "weights": [2]}),
            serde_json::json!({"hostname": "c.example.com", "backends": ["10.0.0.1:443"], "balance": "hash", "hash_header": "x-user"}),
        ] {
            assert!(section(bad).is_err());
        }
    }
}
