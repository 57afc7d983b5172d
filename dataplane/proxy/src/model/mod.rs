//! The proxy's validated domain types.
//!
//! Admin API requests and config-file entries become these types through
//! `validate` functions only; nothing else constructs them, so every snapshot
//! is built from checked input (a bad request changes nothing).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

mod balance;
mod client_auth;
mod limits;
mod paths;

pub use balance::{
    Balance, BalancePolicy, CheckKind, DEFAULT_EJECTION_BASE, DEFAULT_EJECTION_MAX, HealthCheck,
};
pub use client_auth::ClientAuth;
pub use limits::RequestLimits;
pub use paths::PathRule;
pub(crate) use paths::strip as strip_prefix;

/// A field-level validation failure (the kit's one type): becomes gRPC
/// InvalidArgument or a config error.
pub use mc_kit::api::Invalid;
/// Where an entry came from (the kit's one rule: the config file bootstraps
/// state and wins for its own entries, read-only through the API; entries
/// made through the API persist in redb).
pub use mc_kit::origin::Origin;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocolIn {
    #[default]
    Off,
    V1,
    V2,
    Any,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocolOut {
    #[default]
    Off,
    V1,
    V2,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteMode {
    #[default]
    L4,
    L7,
}

/// A route's hostname: an exact name or `*.` + suffix, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostPattern(String);

impl HostPattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        let lower = s.trim_end_matches('.').to_ascii_lowercase();
        let name = lower.strip_prefix("*.").unwrap_or(&lower);
        if name.contains('*') {
            return Err(format!(
                "`{s}`: a wildcard is only allowed as the whole first label (`*.example.com`)"
            ));
        }
        check_dns_name(name).map_err(|e| format!("`{s}`: {e}"))?;
        Ok(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The suffix after `*.` for wildcards.
    pub fn wildcard_suffix(&self) -> Option<&str> {
        self.0.strip_prefix("*.")
    }
}

impl TryFrom<String> for HostPattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<HostPattern> for String {
    fn from(h: HostPattern) -> String {
        h.0
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("must be 1 to 253 characters".to_owned());
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("every label must be 1 to 63 characters".to_owned());
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("only letters, digits, `-` and `_` are allowed in labels".to_owned());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("labels may not start or end with `-`".to_owned());
        }
    }
    Ok(())
}

/// A listener name: `[a-z0-9-]{1,63}`.
pub(crate) fn check_name(field: &str, name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("`{name}` must be 1 to 63 characters of a-z, 0-9 and `-`"),
        ))
    }
}

/// A backend `host:port`. Hosts are IP literals or DNS names; the admin API
/// refuses a name that does not resolve when the route is saved
/// (`admin::backends`), and the worker re-resolves names each time it
/// publishes a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Backend {
    pub host: String,
    pub port: u16,
}

impl Backend {
    /// A backend an operator gave (API or config file): well-formed
    /// `host:port` whose host is an IP literal or a DNS name that cannot be
    /// mistaken for a mistyped address (`256.1.1.1`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let b = Self::parse_syntax(s)?;
        if b.socket_addr().is_none() {
            let host = b.host.as_str();
            if host.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
                return Err(format!(
                    "`{s}`: `{host}` is not a valid IPv4 address (four numbers 0-255)"
                ));
            }
            // RFC 3696 §2: a top-level label is never all digits.
            if host
                .rsplit('.')
                .next()
                .is_some_and(|tld| tld.bytes().all(|c| c.is_ascii_digit()))
            {
                return Err(format!(
                    "`{s}`: `{host}` is neither an IP address nor a DNS name (its last label is a number)"
                ));
            }
        }
        Ok(b)
    }

    /// `host:port` syntax only: what a stored route needs to load, so a
    /// backend saved before [`Backend::parse`] grew stricter still loads.
    fn parse_syntax(s: &str) -> Result<Self, String> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            if addr.port() == 0 {
                return Err(format!("`{s}`: port must be 1-65535"));
            }
            return Ok(Self {
                host: addr.ip().to_string(),
                port: addr.port(),
            });
        }
        match s.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => return Err(format!("`{s}` has no port: write it as host:port")),
            Ok(IpAddr::V6(_)) => {
                return Err(format!(
                    "`{s}`: an IPv6 address needs brackets and a port, as in [2001:db8::1]:443"
                ));
            }
            Err(_) => {}
        }
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("`{s}` has no port: write it as host:port"))?;
        if host.contains(':') {
            return Err(format!(
                "`{s}`: an IPv6 address needs brackets, as in [2001:db8::1]:443"
            ));
        }
        if port.is_empty() {
            return Err(format!("`{s}` has no port: write it as host:port"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| format!("`{s}`: port must be 1-65535"))?;
        if port == 0 {
            return Err(format!("`{s}`: port must be 1-65535"));
        }
        check_dns_name(host).map_err(|e| format!("`{s}`: host {e}"))?;
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The address when the host is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl TryFrom<String> for Backend {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse_syntax(&s)
    }
}

impl From<Backend> for String {
    fn from(b: Backend) -> String {
        b.to_string()
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

pub const DEFAULT_CLIENT_HELLO_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// What a listener speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    /// TLS, routed by SNI (L4 pass-through or L7 termination).
    #[default]
    Tls,
    /// Plain HTTP (`:80`): ACME HTTP-01 challenges go to the Host's route on
    /// this listener (its backends are the responders); other requests for a
    /// hostname with a route on a TLS listener get a 308 to HTTPS; the rest 404.
    Http,
}

/// What a plain-HTTP listener does with a hostname's requests other than
/// ACME challenges (set on the hostname's route on that listener).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlainHttp {
    /// 308 to https when the hostname has a route on a TLS listener, else 404.
    #[default]
    Redirect,
    /// Every request (challenges too) relayed to the route's backends.
    Serve,
    /// 404; challenges still go to the route's backends.
    #[serde(rename = "404", alias = "not_found")]
    NotFound,
}

/// Lowest TLS version an L7 route on a listener accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MinTls {
    #[serde(rename = "1.2")]
    V12,
    #[default]
    #[serde(rename = "1.3")]
    V13,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerSpec {
    pub name: String,
    pub address: SocketAddr,
    pub proxy_protocol: ProxyProtocolIn,
    pub trusted_proxies: Vec<IpNet>,
    /// Hostname of a route used when the ClientHello has no SNI.
    pub default_route: Option<HostPattern>,
    pub client_hello_timeout: Duration,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// L7 routes only; L4 routes pass the client's TLS through untouched.
    #[serde(default)]
    pub min_tls: MinTls,
    pub origin: Origin,
    #[serde(default)]
    pub kind: ListenerKind,
}

impl ListenerSpec {
    pub fn validate(&self) -> Result<(), Invalid> {
        check_name("listener.name", &self.name)?;
        if self.proxy_protocol != ProxyProtocolIn::Off && self.trusted_proxies.is_empty() {
            return Err(Invalid::new(
                "listener.trusted_proxies",
                "required when proxy_protocol is not off (a PROXY header is accepted only from these CIDRs)",
            ));
        }
        if self.kind == ListenerKind::Http && self.proxy_protocol != ProxyProtocolIn::Off {
            return Err(Invalid::new(
                "listener.proxy_protocol",
                "not supported on an http listener",
            ));
        }
        if self.kind == ListenerKind::Http && self.default_route.is_some() {
            return Err(Invalid::new(
                "listener.default_route",
                "an http listener routes by the Host header; it has no default route",
            ));
        }
        for (field, d) in [
            ("listener.client_hello_timeout", self.client_hello_timeout),
            ("listener.connect_timeout", self.connect_timeout),
            ("listener.idle_timeout", self.idle_timeout),
        ] {
            check_timeout(field, d)?;
        }
        Ok(())
    }
}

fn check_timeout(field: &str, d: Duration) -> Result<(), Invalid> {
    if d.is_zero() || d > MAX_TIMEOUT {
        return Err(Invalid::new(field, "must be between 1ms and 24h"));
    }
    Ok(())
}

pub(crate) const MAX_BACKENDS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSpec {
    pub listener: String,
    pub hostname: HostPattern,
    pub mode: RouteMode,
    pub backends: Vec<Backend>,
    pub send_proxy_protocol: ProxyProtocolOut,
    /// `None`: the listener's default.
    pub connect_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    /// Present exactly when `mode` is L7.
    #[serde(default)]
    pub l7: Option<L7Spec>,
    pub origin: Origin,
    /// Balancing policy and backend weights.
    #[serde(default)]
    pub balance: Balance,
    /// Active health check of the route's backends (and its path rules').
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Routes on an `http` listener: what non-challenge requests get.
    #[serde(default)]
    pub plain_http: PlainHttp,
}

/// How an L7 route talks to its backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendProtocol {
    /// HTTP/1.1 over TCP (WebSocket upgrades pass through).
    #[default]
    Http1,
    /// Cleartext HTTP/2 with prior knowledge (gRPC backends).
    H2c,
    /// TLS re-encryption; ALPN offers h2 and http/1.1.
    Tls,
}

pub const DEFAULT_REQUEST_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_BACKEND_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 128;
const MAX_CA_PEM: usize = 256 * 1024;

/// The TLS-terminating, HTTP-proxying part of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct L7Spec {
    /// Name of a stored certificate.
    pub certificate: String,
    pub backend_protocol: BackendProtocol,
    /// PEM bundle the backend's certificate is verified against (TLS
    /// backends); `None`: the proxy's configured certificate authorities.
    pub backend_ca_pem: Option<String>,
    /// Name presented to and verified on TLS backends; `None`: the backend's host.
    pub backend_server_name: Option<String>,
    pub backend_tls_insecure_skip_verify: bool,
    pub request_header_timeout: Duration,
    pub backend_response_timeout: Duration,
    pub max_concurrent_streams: u32,
    pub access_log: bool,
    /// Path-prefix rules; the longest matching prefix wins, the route's own
    /// backends take what none matches.
    #[serde(default)]
    pub paths: Vec<PathRule>,
    #[serde(default)]
    pub limits: RequestLimits,
    /// Client certificates: required (or only requested) and verified
    /// against these CAs; `None`: not asked for.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
}

impl L7Spec {
    pub fn new(certificate: impl Into<String>) -> Self {
        Self {
            certificate: certificate.into(),
            backend_protocol: BackendProtocol::Http1,
            backend_ca_pem: None,
            backend_server_name: None,
            backend_tls_insecure_skip_verify: false,
            request_header_timeout: DEFAULT_REQUEST_HEADER_TIMEOUT,
            backend_response_timeout: DEFAULT_BACKEND_RESPONSE_TIMEOUT,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            access_log: false,
            paths: Vec::new(),
            limits: RequestLimits::default(),
            client_auth: None,
        }
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        check_certificate_name("route.l7.certificate", &self.certificate)?;
        check_timeout(
            "route.l7.request_header_timeout",
            self.request_header_timeout,
        )?;
        check_timeout(
            "route.l7.backend_response_timeout",
            self.backend_response_timeout,
        )?;
        if !(1..=10_000).contains(&self.max_concurrent_streams) {
            return Err(Invalid::new(
                "route.l7.max_concurrent_streams",
                "between 1 and 10000",
            ));
        }
        paths::validate("route.l7.paths", &self.paths)?;
        self.limits.validate()?;
        if let Some(c) = &self.client_auth {
            c.validate()?;
        }
        let tls = std::iter::once(self.backend_protocol)
            .chain(self.paths.iter().filter_map(|p| p.backend_protocol))
            .any(|p| p == BackendProtocol::Tls);
        if !tls
            && (self.backend_ca_pem.is_some()
                || self.backend_server_name.is_some()
                || self.backend_tls_insecure_skip_verify)
        {
            return Err(Invalid::new(
                "route.l7.backend_protocol",
                "backend TLS settings need backend_protocol = tls (on the route or a path rule)",
            ));
        }
        if let Some(pem) = &self.backend_ca_pem {
            if pem.len() > MAX_CA_PEM {
                return Err(Invalid::new("route.l7.backend_ca_pem", "at most 256 KiB"));
            }
            crate::tls::parse_roots(pem.as_bytes())
                .map_err(|m| Invalid::new("route.l7.backend_ca_pem", m))?;
        }
        if let Some(name) = &self.backend_server_name {
            rustls_pki_types::ServerName::try_from(name.as_str()).map_err(|_| {
                Invalid::new(
                    "route.l7.backend_server_name",
                    format!("`{name}` is not a DNS name or IP address"),
                )
            })?;
        }
        Ok(())
    }
}

/// A certificate name: `[a-z0-9.*-]{1,253}` (by convention the route's hostname).
pub(crate) fn check_certificate_name(field: &str, name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'*' | b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("`{name}` must be 1 to 253 characters of a-z, 0-9, `.`, `-`, `_` and `*`"),
        ))
    }
}

/// What an L7 policy matches; a match answers 403.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub(crate) enum PolicyRule {
    /// The User-Agent contains `substring` (ASCII case-insensitive; stored lower-cased).
    BlockUserAgent { substring: String },
    /// The header `name` is missing (or differs from `value` when set).
    RequireHeader { name: String, value: Option<String> },
}

pub(crate) const MAX_POLICIES_PER_ROUTE: usize = 64;

/// One L7 policy of a route; evaluated in `position` order, first match wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct L7PolicySpec {
    pub id: String,
    pub listener: String,
    pub hostname: HostPattern,
    pub rule: PolicyRule,
    pub position: u32,
    pub origin: Origin,
}

impl PolicyRule {
    /// Checks and normalizes a rule.
    pub(crate) fn validated(self) -> Result<Self, Invalid> {
        match self {
            Self::BlockUserAgent { substring } => {
                if substring.is_empty() || substring.len() > 256 || !is_visible(&substring, true) {
                    return Err(Invalid::new(
                        "policy.value",
                        "a User-Agent substring of 1 to 256 visible ASCII characters",
                    ));
                }
                Ok(Self::BlockUserAgent {
                    substring: substring.to_ascii_lowercase(),
                })
            }
            Self::RequireHeader { name, value } => {
                let name = name.to_ascii_lowercase();
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() || name.len() > 128 {
                    return Err(Invalid::new(
                        "policy.value",
                        format!("`{name}` is not a valid header name"),
                    ));
                }
                if let Some(v) = &value
                    && (v.len() > 1024 || http::HeaderValue::from_str(v).is_err())
                {
                    return Err(Invalid::new(
                        "policy.header_value",
                        "at most 1024 visible ASCII characters",
                    ));
                }
                Ok(Self::RequireHeader { name, value })
            }
        }
    }
}

fn is_visible(s: &str, allow_space: bool) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_graphic() || (allow_space && b == b' '))
}

impl RouteSpec {
    /// What a route on a listener of `kind` may be: on an `http` listener its
    /// backends are ACME HTTP-01 responders spoken to in plain HTTP.
    pub fn check_listener_kind(&self, kind: ListenerKind) -> Result<(), Invalid> {
        if kind == ListenerKind::Tls && self.plain_http != PlainHttp::Redirect {
            return Err(Invalid::new(
                "route.plain_http",
                format!(
                    "only for routes on an http listener; `{}` is a tls listener",
                    self.listener
                ),
            ));
        }
        if kind == ListenerKind::Http
            && (self.mode != RouteMode::L4 || self.send_proxy_protocol != ProxyProtocolOut::Off)
        {
            return Err(Invalid::new(
                "route.mode",
                format!(
                    "listener `{}` is an http listener: its routes name ACME responders (mode l4, no PROXY header)",
                    self.listener
                ),
            ));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        check_name("route.listener", &self.listener)?;
        if self.backends.is_empty() {
            return Err(Invalid::new(
                "route.backends",
                "at least one backend is required",
            ));
        }
        if self.backends.len() > MAX_BACKENDS {
            return Err(Invalid::new(
                "route.backends",
                format!("at most {MAX_BACKENDS} backends"),
            ));
        }
        match (self.mode, &self.l7) {
            (RouteMode::L7, Some(l7)) => {
                l7.validate()?;
                if self.send_proxy_protocol != ProxyProtocolOut::Off {
                    return Err(Invalid::new(
                        "route.send_proxy_protocol",
                        "L7 routes pass the client address in X-Forwarded-For and Forwarded, not a PROXY header",
                    ));
                }
            }
            (RouteMode::L7, None) => {
                return Err(Invalid::new(
                    "route.l7",
                    "required when mode is l7 (at least the certificate)",
                ));
            }
            (RouteMode::L4, Some(_)) => {
                return Err(Invalid::new("route.l7", "only for mode l7"));
            }
            (RouteMode::L4, None) => {}
        }
        self.balance
            .validate(self.backends.len(), self.mode == RouteMode::L7)?;
        if let Some(h) = &self.health_check {
            h.validate()?;
        }
        if let Some(d) = self.connect_timeout {
            check_timeout("route.connect_timeout", d)?;
        }
        if let Some(d) = self.idle_timeout {
            check_timeout("route.idle_timeout", d)?;
        }
        Ok(())
    }

    /// Every backend of the route, its path rules' included, with the
    /// request field that names it.
    pub fn all_backends(&self) -> impl Iterator<Item = (String, &Backend)> {
        let own = self.backends.iter().map(|b| ("backends".to_owned(), b));
        let rules = self.l7.iter().flat_map(|l7| {
            l7.paths.iter().enumerate().flat_map(|(i, p)| {
                p.backends
                    .iter()
                    .map(move |b| (format!("l7.paths[{i}].backends"), b))
            })
        });
        own.chain(rules)
    }

    pub fn key(&self) -> (String, HostPattern) {
        (self.listener.clone(), self.hostname.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        assert_eq!(
            HostPattern::parse("Example.COM.").expect("ok").as_str(),
            "example.com"
        );
        let w = HostPattern::parse("*.Example.com").expect("ok");
        assert_eq!(w.wildcard_suffix(), Some("example.com"));
        for bad in [
            "",
            "*",
            "a.*.com",
            "*x.com",
            "-a.com",
            "a..com",
            "a b.com",
            &"a".repeat(64),
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backends() {
        assert_eq!(
            Backend::parse("127.0.0.1:80").expect("ok").to_string(),
            "127.0.0.1:80"
        );
        assert_eq!(
            Backend::parse("[::1]:443").expect("ok").to_string(),
            "[::1]:443"
        );
        assert_eq!(
            Backend::parse("Web.Internal:8080").expect("ok").host,
            "web.internal"
        );
        for bad in ["x", "h:0", "h:70000", ":80", "a b:1", "127.0.0.1:0"] {
            assert!(Backend::parse(bad).is_err(), "{bad}");
        }
        // What a new user typed (issue 19): each refused, naming the problem.
        for (bad, says) in [
            ("256.1.1.1:443", "not a valid IPv4 address"),
            ("10.0.0.5", "has no port"),
            ("web.internal", "has no port"),
            ("web.internal:", "has no port"),
            ("10.0.0.5:0", "port must be 1-65535"),
            ("10.0.0.5:65536", "port must be 1-65535"),
            ("2001:db8::1:443", "needs brackets"),
            ("10.0.0.500:80", "not a valid IPv4 address"),
            ("host.123:80", "last label is a number"),
        ] {
            let e = Backend::parse(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
        // A stored route from before the stricter check still loads.
        let old: Backend = serde_json::from_str("\"256.1.1.1:443\"").expect("loads");
        assert_eq!(old.to_string(), "256.1.1.1:443");
    }
}
