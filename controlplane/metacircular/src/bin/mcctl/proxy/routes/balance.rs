//! `mcctl proxy routes add`: the balancing and health-check flags, and how
//! `routes list` shows them.

use anyhow::bail;
use clap::{Args, ValueEnum};
use mc_proto::proxy::v1 as pb;

use crate::enums::{from_flag, name_or};
use crate::proxy::parse_ms;

/// `--balance`: spelled as `pb::BalancePolicy` without its prefix.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Policy {
    Rr,
    Least,
    Hash,
}

/// `--health-check`: spelled as `pb::HealthCheckKind` without its prefix.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum CheckKind {
    Tcp,
    Tls,
    Http,
    Grpc,
}

/// `--plain-http`: spelled as `pb::PlainHttp` without its prefix (`404`: NOT_FOUND).
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum PlainHttp {
    Redirect,
    Serve,
    #[value(name = "404")]
    NotFound,
}

#[derive(Args)]
pub(super) struct BalanceArgs {
    /// How backends are picked: weighted round robin, least outstanding
    /// connections (L4) / requests (L7), or consistent hashing of the client
    /// address (or of --hash-header on L7).
    #[arg(long, value_enum, default_value = "rr")]
    balance: Policy,
    /// L7 with --balance hash: hash this request header when present.
    #[arg(long, value_name = "HEADER")]
    hash_header: Option<String>,
    /// A backend coming back ramps up to its full share over this long, e.g. `30s`.
    #[arg(long, value_parser = parse_ms, value_name = "DURATION")]
    slow_start: Option<u32>,
    /// A failed connect takes a backend out this long, doubled per ejection
    /// in a row, e.g. `2s` (default 10s).
    #[arg(long, value_parser = parse_ms, value_name = "DURATION")]
    ejection_base: Option<u32>,
    /// The longest ejection, e.g. `1m` (default 5m).
    #[arg(long, value_parser = parse_ms, value_name = "DURATION")]
    ejection_max: Option<u32>,
    /// Routes on an http listener: what the hostname's requests other than
    /// ACME challenges get: a 308 to https, relayed to the backends, or 404.
    #[arg(long, value_enum, value_name = "ACTION")]
    plain_http: Option<PlainHttp>,
    /// Check every backend actively: TCP connect, TLS handshake, HTTP GET
    /// (--check-path, --check-status) or gRPC health (--check-service).
    #[arg(long, value_enum)]
    health_check: Option<CheckKind>,
    /// Time between checks, e.g. `5s` (default 5s).
    #[arg(long, value_parser = parse_ms, requires = "health_check", value_name = "DURATION")]
    check_interval: Option<u32>,
    /// Time a check may take, e.g. `2s` (default 2s, at most the interval).
    #[arg(long, value_parser = parse_ms, requires = "health_check", value_name = "DURATION")]
    check_timeout: Option<u32>,
    /// Successes in a row that bring a backend back (default 2).
    #[arg(long, requires = "health_check", value_name = "N")]
    check_rise: Option<u32>,
    /// Failures in a row that take a backend out (default 3).
    #[arg(long, requires = "health_check", value_name = "N")]
    check_fall: Option<u32>,
    /// --health-check http: the path to GET (default `/`).
    #[arg(long, requires = "health_check", value_name = "PATH")]
    check_path: Option<String>,
    /// --health-check http: the status expected (default 200).
    #[arg(long, requires = "health_check", value_name = "CODE")]
    check_status: Option<u32>,
    /// --health-check grpc: the service asked about (default: the server).
    #[arg(long, requires = "health_check", value_name = "NAME")]
    check_service: Option<String>,
}

/// `--backend ADDR[=WEIGHT]` values as backends and weights (none when no
/// backend has a weight).
pub(super) fn split_weights(values: Vec<String>) -> anyhow::Result<(Vec<String>, Vec<u32>)> {
    let mut backends = Vec::new();
    let mut weights = Vec::new();
    let mut any = false;
    for v in values {
        match v.rsplit_once('=') {
            Some((addr, w)) => {
                let Ok(w) = w.parse::<u32>() else {
                    bail!("--backend {v}: the weight after `=` is a number 1-100");
                };
                any = true;
                backends.push(addr.to_owned());
                weights.push(w);
            }
            None => {
                backends.push(v);
                weights.push(1);
            }
        }
    }
    Ok((backends, if any { weights } else { Vec::new() }))
}

impl BalanceArgs {
    /// Sets the route's balancing and health check.
    pub(super) fn apply(self, route: &mut pb::Route) -> anyhow::Result<()> {
        route.balance = from_flag::<pb::BalancePolicy>(&self.balance)?;
        route.hash_header = self.hash_header.unwrap_or_default();
        route.slow_start_ms = self.slow_start.unwrap_or(0);
        route.ejection_base_ms = self.ejection_base.unwrap_or(0);
        route.ejection_max_ms = self.ejection_max.unwrap_or(0);
        if let Some(p) = &self.plain_http {
            route.plain_http = from_flag::<pb::PlainHttp>(p)?;
        }
        let Some(kind) = self.health_check else {
            return Ok(());
        };
        let kind = from_flag::<pb::HealthCheckKind>(&kind)?;
        if (self.check_path.is_some() || self.check_status.is_some())
            && kind != pb::HealthCheckKind::Http as i32
        {
            bail!("--check-path and --check-status need --health-check http");
        }
        if self.check_service.is_some() && kind != pb::HealthCheckKind::Grpc as i32 {
            bail!("--check-service needs --health-check grpc");
        }
        route.health_check = Some(pb::HealthCheck {
            kind,
            interval_ms: self.check_interval.unwrap_or(0),
            timeout_ms: self.check_timeout.unwrap_or(0),
            rise: self.check_rise.unwrap_or(0),
            fall: self.check_fall.unwrap_or(0),
            http_path: self.check_path.unwrap_or_default(),
            expect_status: self.check_status.unwrap_or(0),
            grpc_service: self.check_service.unwrap_or_default(),
        });
        Ok(())
    }
}

/// `rr`, `least`, `hash`, `hash(x-user)`, with `, slow start 30000ms` and
/// `, ejection 2000ms-5m`.
pub(super) fn describe_balance(r: &pb::Route) -> String {
    let mut s = name_or::<pb::BalancePolicy>(r.balance, "rr");
    if !r.hash_header.is_empty() {
        s = format!("{s}({})", r.hash_header);
    }
    if r.slow_start_ms > 0 {
        s = format!("{s}, slow start {}ms", r.slow_start_ms);
    }
    if r.ejection_base_ms > 0 || r.ejection_max_ms > 0 {
        let or = |v: u32, d: &str| {
            if v == 0 {
                d.to_owned()
            } else {
                format!("{v}ms")
            }
        };
        s = format!(
            "{s}, ejection {}-{}",
            or(r.ejection_base_ms, "10s"),
            or(r.ejection_max_ms, "5m")
        );
    }
    s
}

/// `http GET /healthz → 200 every 5000ms (rise 2, fall 3)`, or empty.
pub(super) fn describe_check(r: &pb::Route) -> String {
    let Some(c) = &r.health_check else {
        return String::new();
    };
    let kind = name_or::<pb::HealthCheckKind>(c.kind, "?");
    let what = match pb::HealthCheckKind::try_from(c.kind) {
        Ok(pb::HealthCheckKind::Http) => format!(" GET {} → {}", c.http_path, c.expect_status),
        Ok(pb::HealthCheckKind::Grpc) if !c.grpc_service.is_empty() => {
            format!(" {}", c.grpc_service)
        }
        _ => String::new(),
    };
    format!(
        "{kind}{what} every {}ms, timeout {}ms (rise {}, fall {})",
        c.interval_ms, c.timeout_ms, c.rise, c.fall
    )
}

/// Backends as `ADDR` or, when the route has weights, `ADDR=WEIGHT`.
pub(super) fn weighted(backends: &[String], weights: &[u32]) -> Vec<String> {
    if weights.is_empty() {
        return backends.to_vec();
    }
    backends
        .iter()
        .zip(weights)
        .map(|(b, w)| format!("{b}={w}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enums::{flag_name, parse};

    #[test]
    fn weights_follow_backends() {
        let (b, w) = split_weights(vec!["a:1=3".into(), "b:2".into()]).expect("ok");
        assert_eq!(b, ["a:1", "b:2"]);
        assert_eq!(w, [3, 1]);
        let (_, w) = split_weights(vec!["a:1".into()]).expect("ok");
        assert!(w.is_empty());
        assert!(split_weights(vec!["a:1=x".into()]).is_err());
    }

    #[test]
    fn every_flag_value_names_a_proto_value() {
        for p in Policy::value_variants() {
            assert!(parse::<pb::BalancePolicy>(&flag_name(p)).is_ok());
        }
        for k in CheckKind::value_variants() {
            assert!(parse::<pb::HealthCheckKind>(&flag_name(k)).is_ok());
        }
        for p in PlainHttp::value_variants() {
            assert!(parse::<pb::PlainHttp>(&flag_name(p)).is_ok());
        }
    }
}
