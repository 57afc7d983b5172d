//! Balancing, health checks, ejection, the plain-HTTP action and backend
//! status between `mc.proxy.v1` and the model (a part of [`super::grpc`]
//! kept apart to keep files short).

use std::time::Duration;

use mc_proto::proxy::v1 as pb;

use crate::health::Down;
use crate::model::{Balance, BalancePolicy, CheckKind, HealthCheck, Invalid, PlainHttp, RouteSpec};
use crate::snapshot::BackendHealth;

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn from_ms(v: u32, default: Duration) -> Duration {
    if v == 0 {
        default
    } else {
        Duration::from_millis(u64::from(v))
    }
}

/// Writes the route's balancing and health check into `out`.
pub(super) fn balance_pb(r: &RouteSpec, out: &mut pb::Route) {
    out.balance = match r.balance.policy {
        BalancePolicy::Rr => pb::BalancePolicy::Rr,
        BalancePolicy::Least => pb::BalancePolicy::Least,
        BalancePolicy::Hash => pb::BalancePolicy::Hash,
    } as i32;
    out.backend_weights = r.balance.weights.clone();
    out.hash_header = r.balance.hash_header.clone().unwrap_or_default();
    out.slow_start_ms = ms(r.balance.slow_start);
    out.ejection_base_ms = ms(r.balance.ejection_base);
    out.ejection_max_ms = ms(r.balance.ejection_max);
    out.plain_http = match r.plain_http {
        PlainHttp::Redirect => pb::PlainHttp::Redirect,
        PlainHttp::Serve => pb::PlainHttp::Serve,
        PlainHttp::NotFound => pb::PlainHttp::NotFound,
    } as i32;
    out.health_check = r.health_check.as_ref().map(|h| {
        let (kind, http_path, expect_status, grpc_service) = match &h.kind {
            CheckKind::Tcp => (pb::HealthCheckKind::Tcp, "", 0, ""),
            CheckKind::Tls => (pb::HealthCheckKind::Tls, "", 0, ""),
            CheckKind::Http {
                path,
                expect_status,
            } => (
                pb::HealthCheckKind::Http,
                path.as_str(),
                u32::from(*expect_status),
                "",
            ),
            CheckKind::Grpc { service } => (pb::HealthCheckKind::Grpc, "", 0, service.as_str()),
        };
        pb::HealthCheck {
            kind: kind as i32,
            interval_ms: ms(h.interval),
            timeout_ms: ms(h.timeout),
            rise: h.rise,
            fall: h.fall,
            http_path: http_path.to_owned(),
            expect_status,
            grpc_service: grpc_service.to_owned(),
        }
    });
}

/// A route's `plain_http` from a request.
pub(super) fn plain_http_from_pb(v: i32) -> Result<PlainHttp, Invalid> {
    match pb::PlainHttp::try_from(v) {
        Ok(pb::PlainHttp::Unspecified | pb::PlainHttp::Redirect) => Ok(PlainHttp::Redirect),
        Ok(pb::PlainHttp::Serve) => Ok(PlainHttp::Serve),
        Ok(pb::PlainHttp::NotFound) => Ok(PlainHttp::NotFound),
        Err(_) => Err(Invalid::new("route.plain_http", "unknown value")),
    }
}

/// The route's balancing and health check from a request.
pub(super) fn balance_from_pb(r: &pb::Route) -> Result<(Balance, Option<HealthCheck>), Invalid> {
    let policy = match pb::BalancePolicy::try_from(r.balance) {
        Ok(pb::BalancePolicy::Unspecified | pb::BalancePolicy::Rr) => BalancePolicy::Rr,
        Ok(pb::BalancePolicy::Least) => BalancePolicy::Least,
        Ok(pb::BalancePolicy::Hash) => BalancePolicy::Hash,
        Err(_) => return Err(Invalid::new("route.balance", "unknown value")),
    };
    let balance = Balance {
        policy,
        hash_header: (!r.hash_header.is_empty()).then(|| r.hash_header.to_ascii_lowercase()),
        weights: r.backend_weights.clone(),
        slow_start: Duration::from_millis(u64::from(r.slow_start_ms)),
        ejection_base: Duration::from_millis(u64::from(r.ejection_base_ms)),
        ejection_max: Duration::from_millis(u64::from(r.ejection_max_ms)),
    };
    let check = r.health_check.as_ref().map(check_from_pb).transpose()?;
    Ok((balance, check))
}

fn check_from_pb(h: &pb::HealthCheck) -> Result<HealthCheck, Invalid> {
    let kind = match pb::HealthCheckKind::try_from(h.kind) {
        Ok(pb::HealthCheckKind::Tcp) => CheckKind::Tcp,
        Ok(pb::HealthCheckKind::Tls) => CheckKind::Tls,
        Ok(pb::HealthCheckKind::Http) => CheckKind::Http {
            path: if h.http_path.is_empty() {
                "/".to_owned()
            } else {
                h.http_path.clone()
            },
            expect_status: if h.expect_status == 0 {
                200
            } else {
                u16::try_from(h.expect_status).map_err(|_| {
                    Invalid::new("route.health_check.expect_status", "an HTTP status 100-599")
                })?
            },
        },
        Ok(pb::HealthCheckKind::Grpc) => CheckKind::Grpc {
            service: h.grpc_service.clone(),
        },
        Ok(pb::HealthCheckKind::Unspecified) | Err(_) => {
            return Err(Invalid::new(
                "route.health_check.kind",
                "one of tcp, tls, http or grpc",
            ));
        }
    };
    let mut c = HealthCheck::new(kind);
    c.interval = from_ms(h.interval_ms, c.interval);
    c.timeout = from_ms(h.timeout_ms, c.timeout.min(c.interval));
    if h.rise > 0 {
        c.rise = h.rise;
    }
    if h.fall > 0 {
        c.fall = h.fall;
    }
    Ok(c)
}

/// One backend's line in `GetStatus`.
pub(super) fn backend_status(b: &BackendHealth, now: u64, unix_now: i64) -> pb::BackendStatus {
    let down = b.state.down(now);
    pb::BackendStatus {
        address: b.backend.to_string(),
        up: down.is_none(),
        retry_at_unix: match down {
            Some(Down::Ejected(until)) => {
                unix_now + i64::try_from(until.saturating_sub(now).div_ceil(1000)).unwrap_or(0)
            }
            _ => 0,
        },
        weight: b.weight,
        outstanding: b.state.outstanding(),
        ejections: b.state.ejections(),
        down_reason: match down {
            None => String::new(),
            Some(Down::Check) => "check".to_owned(),
            Some(Down::Ejected(_)) => "ejected".to_owned(),
        },
    }
}
