//! The proxy's validated domain types.
//!
//! Admin API requests and config-file entries become these types through
//! `validate` functions only; nothing else constructs them, so every snapshot
//! is built from checked input (a bad request changes nothing).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A field-level validation failure: becomes gRPC InvalidArgument or a config error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Where an entry came from. The config file bootstraps state and wins for
/// its own entries (re-applied at every start, read-only through the API);
/// entries made through the API persist in redb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    ConfigFile,
    AdminApi,
}

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
pub fn check_name(field: &str, name: &str) -> Result<(), Invalid> {
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

/// A backend `host:port`. Hosts are IP literals or names resolved at connect time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Backend {
    pub host: String,
    pub port: u16,
}

impl Backend {
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            if addr.port() == 0 {
                return Err(format!("`{s}`: port must be 1-65535"));
            }
            return Ok(Self {
                host: addr.ip().to_string(),
                port: addr.port(),
            });
        }
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("`{s}` is not host:port"))?;
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
        Self::parse(&s)
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
    pub origin: Origin,
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

pub const MAX_BACKENDS: usize = 64;

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
    pub origin: Origin,
}

impl RouteSpec {
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
        if self.mode == RouteMode::L7 {
            return Err(Invalid::new(
                "route.mode",
                "l7 (TLS termination) is not available in this build yet; use l4",
            ));
        }
        if let Some(d) = self.connect_timeout {
            check_timeout("route.connect_timeout", d)?;
        }
        if let Some(d) = self.idle_timeout {
            check_timeout("route.idle_timeout", d)?;
        }
        Ok(())
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
    }
}
