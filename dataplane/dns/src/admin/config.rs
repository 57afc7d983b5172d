//! The `[dns]` section of the data plane's TOML.
//!
//! ```toml
//! [dns]
//! listen = ["0.0.0.0:53", "[::]:53"]      # UDP and TCP on each; empty = not serving
//! upstreams = ["192.0.2.53:53"]           # forwarding targets; empty = no forwarding
//! recursion_allowed = ["127.0.0.0/8", "::1/128"]   # the default: this host only;
//!                                         # list your networks to serve them
//! udp_payload = 1232                      # our EDNS UDP size
//! upstream_timeout = "2s"                 # per upstream attempt
//! cache_entries = 10000                   # per worker
//! tcp_idle_timeout = "10s"
//! tcp_max_connections = 1024              # across workers
//! shutdown_timeout = "5s"
//!
//! [dns.rrl]                               # response rate limiting (authoritative, UDP), on by default
//! responses_per_second = 100              # per client prefix; 0 = off
//! burst = 0                               # 0 = responses_per_second
//! exempt = ["127.0.0.0/8", "::1/128"]     # never limited (the default: loopback)
//! slip = 2                                # every Nth limited response is a TC=1 reply
//! ipv4_prefix = 24
//! ipv6_prefix = 56
//!
//! [[dns.tsig_keys]]                       # secrets: keep this file 0600 (a warning otherwise)
//! name = "xfr"
//! algorithm = "hmac-sha256"               # hmac-sha256 | hmac-sha384 | hmac-sha512
//! secret = "base64…"
//! update_zones = []                       # zones this key may change with RFC 2136 UPDATE
//!
//! [[dns.secondaries]]                     # AXFR allowed (TSIG required) + NOTIFY sent
//! address = "192.0.2.2:53"
//! tsig_key = "xfr"
//!
//! [[dns.zones]]                           # config-owned zones (origin `config`)
//! name = "mcp.example.net"
//! primary_ns = "ns1.mcp.example.net"      # default the first nameserver, else ns1.<zone>
//! admin_email = "hostmaster@example.net"  # default hostmaster@<zone>
//! nameservers = []                        # default [primary_ns]
//! records = ["ns1 A 192.0.2.1", "www 300 A 192.0.2.10"]   # NAME [TTL] TYPE VALUE
//! ```
//!
//! File vs stored state, as for the proxy: a zone in the file is applied at
//! every start and the file wins for it (its SOA parameters and the records
//! it lists are origin `config`; the API refuses to change those or delete
//! the zone). Records added through the API to a config zone persist, as do
//! zones created through the API. A config zone removed from the file
//! disappears with its records.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use mc_kit::api::Invalid;
use mc_kit::config::Duration;
use mc_kit::origin::Origin;
use serde::Deserialize;

use crate::model::{RType, RecordSpec, SoaParams, ZoneName, ZoneSpec};
use crate::tsig::{TsigKey, parse_algorithm};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSection {
    #[serde(default)]
    pub listen: Vec<SocketAddr>,
    #[serde(default)]
    pub upstreams: Vec<SocketAddr>,
    /// Who may use the forwarding resolver (RD=1 for names outside our
    /// zones). Default: loopback only (`127.0.0.0/8`, `::1/128`), so a node
    /// is never an open resolver by accident; list the networks to serve.
    #[serde(default = "default_recursion_allowed")]
    pub recursion_allowed: Vec<IpNet>,
    #[serde(default = "default_udp_payload")]
    pub udp_payload: u16,
    #[serde(default = "default_upstream_timeout")]
    pub upstream_timeout: Duration,
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    #[serde(default = "default_tcp_idle_timeout")]
    pub tcp_idle_timeout: Duration,
    #[serde(default = "default_tcp_max_connections")]
    pub tcp_max_connections: usize,
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: Duration,
    #[serde(default)]
    pub rrl: RrlConfig,
    #[serde(default)]
    pub tsig_keys: Vec<TsigKeyConfig>,
    #[serde(default)]
    pub secondaries: Vec<SecondaryConfig>,
    #[serde(default)]
    pub zones: Vec<ZoneConfig>,
}

impl Default for DnsSection {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            upstreams: Vec::new(),
            recursion_allowed: default_recursion_allowed(),
            udp_payload: default_udp_payload(),
            upstream_timeout: default_upstream_timeout(),
            cache_entries: default_cache_entries(),
            tcp_idle_timeout: default_tcp_idle_timeout(),
            tcp_max_connections: default_tcp_max_connections(),
            shutdown_timeout: default_shutdown_timeout(),
            rrl: RrlConfig::default(),
            tsig_keys: Vec::new(),
            secondaries: Vec::new(),
            zones: Vec::new(),
        }
    }
}

/// Loopback, IPv4 and IPv6.
fn loopback() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn default_recursion_allowed() -> Vec<IpNet> {
    loopback()
}
fn default_udp_payload() -> u16 {
    1232
}
fn default_upstream_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_cache_entries() -> usize {
    10_000
}
fn default_tcp_idle_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_tcp_max_connections() -> usize {
    1024
}
fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Response rate limiting for authoritative UDP answers, per client prefix
/// (a reflection attack's victim gets at most this many answers; TCP and
/// exempt addresses are never limited).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RrlConfig {
    /// Answers per second per prefix; 0 turns RRL off. Default
    /// [`DEFAULT_RRL_RATE`]: far above what one resolver's prefix asks an
    /// authoritative server for, far below a useful reflection flood.
    #[serde(default = "default_rrl_rate")]
    pub responses_per_second: u32,
    /// Answers a prefix may get at once; 0 = `responses_per_second`.
    #[serde(default)]
    pub burst: u32,
    /// Sources never limited. Default: loopback (this host's own clients
    /// cannot be spoofed from the network). At most 1024 entries.
    #[serde(default = "loopback")]
    pub exempt: Vec<IpNet>,
    #[serde(default = "default_slip")]
    pub slip: u32,
    #[serde(default = "default_v4_prefix")]
    pub ipv4_prefix: u8,
    #[serde(default = "default_v6_prefix")]
    pub ipv6_prefix: u8,
}

impl Default for RrlConfig {
    fn default() -> Self {
        Self {
            responses_per_second: default_rrl_rate(),
            burst: 0,
            exempt: loopback(),
            slip: default_slip(),
            ipv4_prefix: default_v4_prefix(),
            ipv6_prefix: default_v6_prefix(),
        }
    }
}

/// The default RRL rate, answers per second per client prefix.
pub(crate) const DEFAULT_RRL_RATE: u32 = 100;

fn default_rrl_rate() -> u32 {
    DEFAULT_RRL_RATE
}

impl RrlConfig {
    /// Whether answers to `ip` are never rate limited.
    pub(crate) fn is_exempt(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.exempt.iter().any(|n| n.contains(&ip))
    }
}

fn default_slip() -> u32 {
    2
}
fn default_v4_prefix() -> u8 {
    24
}
fn default_v6_prefix() -> u8 {
    56
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigKeyConfig {
    pub name: String,
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    pub secret: String,
    /// Zones this key may change with RFC 2136 UPDATE; empty = none.
    #[serde(default)]
    pub update_zones: Vec<String>,
}

fn default_algorithm() -> String {
    "hmac-sha256".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondaryConfig {
    pub address: SocketAddr,
    pub tsig_key: String,
    /// Zones this secondary may transfer and is notified about; empty = all.
    #[serde(default)]
    pub zones: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    pub name: String,
    #[serde(default)]
    pub primary_ns: String,
    #[serde(default)]
    pub admin_email: String,
    #[serde(default)]
    pub refresh: u32,
    #[serde(default)]
    pub retry: u32,
    #[serde(default)]
    pub expire: u32,
    #[serde(default)]
    pub minimum: u32,
    #[serde(default)]
    pub ttl: u32,
    #[serde(default)]
    pub nameservers: Vec<String>,
    #[serde(default)]
    pub records: Vec<String>,
}

/// A secondary server: may AXFR with its key, and is NOTIFYed on change.
#[derive(Debug, Clone)]
pub(crate) struct Secondary {
    pub(crate) address: SocketAddr,
    pub(crate) key: TsigKey,
    pub(crate) zones: Vec<ZoneName>,
}

impl Secondary {
    pub(crate) fn serves(&self, zone: &ZoneName) -> bool {
        self.zones.is_empty() || self.zones.contains(zone)
    }
}

/// The validated `[dns]` section: runtime settings plus bootstrap zones.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    pub(crate) listen: Vec<SocketAddr>,
    pub(crate) upstreams: Vec<SocketAddr>,
    pub(crate) recursion_allowed: Vec<IpNet>,
    pub(crate) udp_payload: u16,
    pub(crate) upstream_timeout: std::time::Duration,
    pub(crate) cache_entries: usize,
    pub(crate) tcp_idle_timeout: std::time::Duration,
    pub(crate) tcp_max_connections: usize,
    pub(crate) rrl: RrlConfig,
    /// The section holds secrets (TSIG keys): its file must not be readable by others.
    pub(crate) holds_secrets: bool,
    pub(crate) secondaries: Vec<Secondary>,
    /// Every TSIG key; those with `update_zones` authorize UPDATE.
    pub(crate) tsig_keys: Vec<TsigKey>,
    pub(crate) zones: Vec<(ZoneSpec, Vec<RecordSpec>, Vec<String>)>,
}

impl DnsSettings {
    pub(crate) fn recursion_allowed_for(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.recursion_allowed.iter().any(|n| n.contains(&ip))
    }
}

fn bad(key: impl Into<String>, msg: impl Into<String>) -> mc_kit::config::Invalid {
    mc_kit::config::Invalid::new(key, msg)
}

impl DnsSection {
    /// Validates the section; errors name the dotted `dns.` key.
    pub fn settings(&self) -> Result<DnsSettings, mc_kit::config::Invalid> {
        if !(512..=4096).contains(&self.udp_payload) {
            return Err(bad("dns.udp_payload", "between 512 and 4096 bytes"));
        }
        for (key, d, max) in [
            ("dns.upstream_timeout", self.upstream_timeout.get(), 60),
            ("dns.tcp_idle_timeout", self.tcp_idle_timeout.get(), 3600),
            ("dns.shutdown_timeout", self.shutdown_timeout.get(), 300),
        ] {
            if d.is_zero() || d > std::time::Duration::from_secs(max) {
                return Err(bad(key, format!("between 1ms and {max}s")));
            }
        }
        if !(16..=1_000_000).contains(&self.cache_entries) {
            return Err(bad("dns.cache_entries", "between 16 and 1000000"));
        }
        if !(1..=100_000).contains(&self.tcp_max_connections) {
            return Err(bad("dns.tcp_max_connections", "between 1 and 100000"));
        }
        if self.upstreams.len() > 16 {
            return Err(bad("dns.upstreams", "at most 16 upstreams"));
        }
        if let Some(u) = self.upstreams.iter().find(|u| u.port() == 0) {
            return Err(bad("dns.upstreams", format!("`{u}`: port 0")));
        }
        let mut seen = Vec::new();
        for a in &self.listen {
            if seen.contains(a) {
                return Err(bad("dns.listen", format!("`{a}` is listed twice")));
            }
            seen.push(*a);
        }
        let r = &self.rrl;
        if r.responses_per_second > 1000 {
            return Err(bad("dns.rrl.responses_per_second", "at most 1000"));
        }
        if r.burst > 100_000 {
            return Err(bad("dns.rrl.burst", "at most 100000"));
        }
        if r.slip > 10 {
            return Err(bad("dns.rrl.slip", "between 0 (never) and 10"));
        }
        if !(8..=32).contains(&r.ipv4_prefix) {
            return Err(bad("dns.rrl.ipv4_prefix", "between 8 and 32"));
        }
        if !(16..=128).contains(&r.ipv6_prefix) {
            return Err(bad("dns.rrl.ipv6_prefix", "between 16 and 128"));
        }
        if r.exempt.len() > 1024 {
            return Err(bad("dns.rrl.exempt", "at most 1024 entries"));
        }
        let mut keys: Vec<TsigKey> = Vec::new();
        for (i, k) in self.tsig_keys.iter().enumerate() {
            let algorithm = parse_algorithm(&k.algorithm)
                .map_err(|m| bad(format!("dns.tsig_keys[{i}].algorithm"), m))?;
            let mut key = TsigKey::new(&k.name, algorithm, &k.secret)
                .map_err(|m| bad(format!("dns.tsig_keys[{i}]"), m))?;
            key.update_zones = k
                .update_zones
                .iter()
                .map(|z| ZoneName::parse(z))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("dns.tsig_keys[{i}].update_zones"), e.message))?;
            if keys.iter().any(|o| o.name == key.name) {
                return Err(bad(
                    format!("dns.tsig_keys[{i}].name"),
                    format!("`{}` is listed twice", k.name),
                ));
            }
            keys.push(key);
        }
        let mut secondaries = Vec::new();
        for (i, s) in self.secondaries.iter().enumerate() {
            let key = keys
                .iter()
                .find(|k| {
                    k.name_str
                        .eq_ignore_ascii_case(s.tsig_key.trim_end_matches('.'))
                })
                .cloned()
                .ok_or_else(|| {
                    bad(
                        format!("dns.secondaries[{i}].tsig_key"),
                        format!(
                            "no key `{}` in dns.tsig_keys (AXFR always needs TSIG)",
                            s.tsig_key
                        ),
                    )
                })?;
            let zones = s
                .zones
                .iter()
                .map(|z| ZoneName::parse(z))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("dns.secondaries[{i}].zones"), e.message))?;
            secondaries.push(Secondary {
                address: s.address,
                key,
                zones,
            });
        }
        let mut zones = Vec::new();
        for (i, z) in self.zones.iter().enumerate() {
            let zerr = |e: Invalid| bad(format!("dns.zones[{i}].{}", e.field), e.message);
            let name = ZoneName::parse(&z.name)
                .map_err(|e| bad(format!("dns.zones[{i}].name"), e.message))?;
            if zones
                .iter()
                .any(|(s, _, _): &(ZoneSpec, _, _)| s.name == name)
            {
                return Err(bad(
                    format!("dns.zones[{i}].name"),
                    format!("`{name}` is listed twice"),
                ));
            }
            let soa = SoaParams {
                primary_ns: z.primary_ns.clone(),
                admin_email: z.admin_email.clone(),
                refresh: z.refresh,
                retry: z.retry,
                expire: z.expire,
                minimum: z.minimum,
                ttl: z.ttl,
            }
            .primary_from(&z.nameservers)
            .normalize(&name)
            .map_err(zerr)?;
            let mut records = Vec::new();
            for (j, line) in z.records.iter().enumerate() {
                let r = parse_record_line(&name, line, soa.ttl, Origin::ConfigFile)
                    .map_err(|e| bad(format!("dns.zones[{i}].records[{j}]"), e.to_string()))?;
                records.push(r);
            }
            let spec = ZoneSpec {
                name,
                soa,
                serial: 0,
                origin: Origin::ConfigFile,
            };
            zones.push((spec, records, z.nameservers.clone()));
        }
        Ok(DnsSettings {
            listen: self.listen.clone(),
            upstreams: self.upstreams.clone(),
            recursion_allowed: self.recursion_allowed.clone(),
            udp_payload: self.udp_payload,
            upstream_timeout: self.upstream_timeout.get(),
            cache_entries: self.cache_entries,
            tcp_idle_timeout: self.tcp_idle_timeout.get(),
            tcp_max_connections: self.tcp_max_connections,
            rrl: self.rrl.clone(),
            holds_secrets: !self.tsig_keys.is_empty(),
            secondaries,
            tsig_keys: keys,
            zones,
        })
    }
}

/// `NAME [TTL] TYPE VALUE`, as in a zone file (NAME relative, `@` for the apex).
pub(crate) fn parse_record_line(
    zone: &ZoneName,
    line: &str,
    default_ttl: u32,
    origin: Origin,
) -> Result<RecordSpec, Invalid> {
    let tokens = tokens(line);
    let usage = || {
        Invalid::new(
            "record",
            format!("`{line}`: expected `NAME [TTL] TYPE VALUE`"),
        )
    };
    let (_, name) = tokens.first().copied().ok_or_else(usage)?;
    let mut i = 1;
    let mut ttl = 0;
    if let Some(t) = tokens.get(i).and_then(|(_, t)| t.parse::<u32>().ok()) {
        ttl = t;
        i += 1;
    }
    let (_, type_token) = tokens.get(i).copied().ok_or_else(usage)?;
    let rtype: RType = type_token.parse()?;
    let value = match tokens.get(i + 1) {
        Some((start, _)) => line.get(*start..).unwrap_or("").trim(),
        None => "",
    };
    RecordSpec::new(zone, name, rtype, ttl, value, default_ttl, origin)
}

/// Whitespace-separated tokens with their byte offsets.
fn tokens(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &line[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &line[s..]));
    }
    out
}

#[cfg(test)]
mod tests;
