//! `mc.proxy.v1.ProxyAdmin` on the data plane's admin socket.
//!
//! API boundary: proto messages are converted into validated domain types
//! here and nowhere else; [`ProxyState`] only ever sees checked input.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mc_kit::api::ApiError;
use mc_kit::clock::unix_now;
use mc_proto::proxy::v1 as pb;
use pb::proxy_admin_server::{ProxyAdmin, ProxyAdminServer};
use tonic::{Request, Response, Status};

use super::ProxyState;
use super::grpc_paths::path_backends;
use super::grpc_policy::{policy_from_pb, policy_pb};
use super::reload::Reload;
use crate::firewall::{FirewallRule, Limits, RuleTarget};
use crate::model::{
    Backend, BackendProtocol, ClientAuth, HostPattern, Invalid, L7Spec, ListenerKind, ListenerSpec,
    MinTls, Origin, ProxyProtocolIn, ProxyProtocolOut, RequestLimits, RouteMode, RouteSpec,
};
use crate::stats::{global, listener as lstat, route as rstat};

pub struct Admin {
    state: Arc<ProxyState>,
    started: Instant,
    started_at_unix_ms: u64,
    driver: mc_rt::DriverChoice,
    /// `ReloadConfig`: the host's reload (it owns the config file).
    reload: Arc<dyn Reload>,
}

impl Admin {
    pub fn service(
        state: Arc<ProxyState>,
        driver: mc_rt::DriverChoice,
        reload: Arc<dyn Reload>,
    ) -> ProxyAdminServer<Self> {
        // ReplaceRoutes carries whole tables (up to 100k routes).
        ProxyAdminServer::new(Self {
            state,
            reload,
            started: Instant::now(),
            started_at_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            driver,
        })
        .max_decoding_message_size(64 << 20)
    }
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn from_ms(v: u32) -> Option<Duration> {
    (v > 0).then(|| Duration::from_millis(u64::from(v)))
}

pub(super) fn origin(o: Origin) -> i32 {
    match o {
        Origin::ConfigFile => pb::Origin::ConfigFile as i32,
        Origin::AdminApi => pb::Origin::AdminApi as i32,
    }
}

fn proxy_in(p: ProxyProtocolIn) -> i32 {
    (match p {
        ProxyProtocolIn::Off => pb::ProxyProtocol::Off,
        ProxyProtocolIn::V1 => pb::ProxyProtocol::V1,
        ProxyProtocolIn::V2 => pb::ProxyProtocol::V2,
        ProxyProtocolIn::Any => pb::ProxyProtocol::Any,
    }) as i32
}

fn proxy_out(p: ProxyProtocolOut) -> i32 {
    (match p {
        ProxyProtocolOut::Off => pb::ProxyProtocol::Off,
        ProxyProtocolOut::V1 => pb::ProxyProtocol::V1,
        ProxyProtocolOut::V2 => pb::ProxyProtocol::V2,
    }) as i32
}

fn mode(m: RouteMode) -> i32 {
    (match m {
        RouteMode::L4 => pb::RouteMode::L4,
        RouteMode::L7 => pb::RouteMode::L7,
    }) as i32
}

fn listener_pb(l: &ListenerSpec) -> pb::Listener {
    pb::Listener {
        name: l.name.clone(),
        address: l.address.to_string(),
        proxy_protocol: proxy_in(l.proxy_protocol),
        trusted_proxies: l.trusted_proxies.iter().map(ToString::to_string).collect(),
        default_route: l
            .default_route
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        min_tls_version: match l.min_tls {
            MinTls::V12 => pb::TlsVersion::TlsVersion12,
            MinTls::V13 => pb::TlsVersion::TlsVersion13,
        } as i32,
        client_hello_timeout_ms: ms(l.client_hello_timeout),
        connect_timeout_ms: ms(l.connect_timeout),
        idle_timeout_ms: ms(l.idle_timeout),
        origin: origin(l.origin),
        kind: match l.kind {
            ListenerKind::Tls => pb::ListenerKind::Tls,
            ListenerKind::Http => pb::ListenerKind::Http,
        } as i32,
    }
}

fn route_pb(r: &RouteSpec) -> pb::Route {
    let mut out = pb::Route {
        listener: r.listener.clone(),
        hostname: r.hostname.to_string(),
        mode: mode(r.mode),
        backends: r.backends.iter().map(ToString::to_string).collect(),
        send_proxy_protocol: proxy_out(r.send_proxy_protocol),
        connect_timeout_ms: r.connect_timeout.map_or(0, ms),
        idle_timeout_ms: r.idle_timeout.map_or(0, ms),
        l7: r.l7.as_ref().map(l7_pb),
        origin: origin(r.origin),
        ..pb::Route::default()
    };
    super::grpc_balance::balance_pb(r, &mut out);
    out
}

fn l7_pb(l: &L7Spec) -> pb::L7Options {
    pb::L7Options {
        certificate: l.certificate.clone(),
        backend_protocol: backend_protocol(l.backend_protocol),
        backend_ca_pem: l.backend_ca_pem.clone().unwrap_or_default(),
        backend_server_name: l.backend_server_name.clone().unwrap_or_default(),
        backend_tls_insecure_skip_verify: l.backend_tls_insecure_skip_verify,
        request_header_timeout_ms: ms(l.request_header_timeout),
        backend_response_timeout_ms: ms(l.backend_response_timeout),
        max_concurrent_streams: l.max_concurrent_streams,
        access_log: l.access_log,
        paths: l.paths.iter().map(super::grpc_paths::path_pb).collect(),
        rate_per_second: l.limits.rate_per_second,
        rate_burst: l.limits.burst,
        max_concurrent_requests: l.limits.max_concurrent_requests,
        client_ca_pem: l
            .client_auth
            .as_ref()
            .map(|c| c.ca_pem.clone())
            .unwrap_or_default(),
        client_cert_optional: l.client_auth.as_ref().is_some_and(|c| c.optional),
    }
}

pub(super) fn backend_protocol(p: BackendProtocol) -> i32 {
    (match p {
        BackendProtocol::Http1 => pb::BackendProtocol::Http1,
        BackendProtocol::H2c => pb::BackendProtocol::H2c,
        BackendProtocol::Tls => pb::BackendProtocol::Tls,
    }) as i32
}

fn l7_from_pb(l: pb::L7Options) -> Result<L7Spec, Invalid> {
    let mut spec = L7Spec::new(l.certificate);
    spec.backend_protocol = match pb::BackendProtocol::try_from(l.backend_protocol) {
        Ok(pb::BackendProtocol::Unspecified | pb::BackendProtocol::Http1) => BackendProtocol::Http1,
        Ok(pb::BackendProtocol::H2c) => BackendProtocol::H2c,
        Ok(pb::BackendProtocol::Tls) => BackendProtocol::Tls,
        Err(_) => return Err(Invalid::new("route.l7.backend_protocol", "unknown value")),
    };
    spec.backend_ca_pem = (!l.backend_ca_pem.is_empty()).then_some(l.backend_ca_pem);
    spec.backend_server_name = (!l.backend_server_name.is_empty()).then_some(l.backend_server_name);
    spec.backend_tls_insecure_skip_verify = l.backend_tls_insecure_skip_verify;
    if let Some(d) = from_ms(l.request_header_timeout_ms) {
        spec.request_header_timeout = d;
    }
    if let Some(d) = from_ms(l.backend_response_timeout_ms) {
        spec.backend_response_timeout = d;
    }
    if l.max_concurrent_streams > 0 {
        spec.max_concurrent_streams = l.max_concurrent_streams;
    }
    spec.access_log = l.access_log;
    spec.paths = l
        .paths
        .into_iter()
        .enumerate()
        .map(super::grpc_paths::path_from_pb)
        .collect::<Result<_, _>>()?;
    spec.limits = RequestLimits {
        rate_per_second: l.rate_per_second,
        burst: l.rate_burst,
        max_concurrent_requests: l.max_concurrent_requests,
    };
    spec.client_auth = match (l.client_ca_pem.is_empty(), l.client_cert_optional) {
        (true, false) => None,
        (true, true) => {
            return Err(Invalid::new(
                "route.l7.client_cert_optional",
                "needs client_ca_pem",
            ));
        }
        (false, optional) => Some(ClientAuth {
            ca_pem: l.client_ca_pem,
            optional,
        }),
    };
    Ok(spec)
}

fn listener_from_pb(l: pb::Listener) -> Result<ListenerSpec, Invalid> {
    let address = l.address.parse().map_err(|_| {
        Invalid::new(
            "listener.address",
            format!("`{}` is not ip:port", l.address),
        )
    })?;
    let proxy_protocol = match pb::ProxyProtocol::try_from(l.proxy_protocol) {
        Ok(pb::ProxyProtocol::Unspecified | pb::ProxyProtocol::Off) => ProxyProtocolIn::Off,
        Ok(pb::ProxyProtocol::V1) => ProxyProtocolIn::V1,
        Ok(pb::ProxyProtocol::V2) => ProxyProtocolIn::V2,
        Ok(pb::ProxyProtocol::Any) => ProxyProtocolIn::Any,
        Err(_) => return Err(Invalid::new("listener.proxy_protocol", "unknown value")),
    };
    let min_tls = match pb::TlsVersion::try_from(l.min_tls_version) {
        Ok(pb::TlsVersion::Unspecified | pb::TlsVersion::TlsVersion13) => MinTls::V13,
        Ok(pb::TlsVersion::TlsVersion12) => MinTls::V12,
        Err(_) => return Err(Invalid::new("listener.min_tls_version", "unknown value")),
    };
    let kind = match pb::ListenerKind::try_from(l.kind) {
        Ok(pb::ListenerKind::Unspecified | pb::ListenerKind::Tls) => ListenerKind::Tls,
        Ok(pb::ListenerKind::Http) => ListenerKind::Http,
        Err(_) => return Err(Invalid::new("listener.kind", "unknown value")),
    };
    let trusted_proxies = l
        .trusted_proxies
        .iter()
        .map(|c| {
            c.parse().map_err(|_| {
                Invalid::new("listener.trusted_proxies", format!("`{c}` is not a CIDR"))
            })
        })
        .collect::<Result<_, _>>()?;
    let default_route = match l.default_route.as_str() {
        "" => None,
        h => Some(HostPattern::parse(h).map_err(|m| Invalid::new("listener.default_route", m))?),
    };
    Ok(ListenerSpec {
        name: l.name,
        address,
        proxy_protocol,
        trusted_proxies,
        default_route,
        client_hello_timeout: from_ms(l.client_hello_timeout_ms)
            .unwrap_or(crate::model::DEFAULT_CLIENT_HELLO_TIMEOUT),
        connect_timeout: from_ms(l.connect_timeout_ms)
            .unwrap_or(crate::model::DEFAULT_CONNECT_TIMEOUT),
        idle_timeout: from_ms(l.idle_timeout_ms).unwrap_or(crate::model::DEFAULT_IDLE_TIMEOUT),
        min_tls,
        origin: Origin::AdminApi,
        kind,
    })
}

fn route_from_pb(r: pb::Route) -> Result<RouteSpec, Invalid> {
    let mode = match pb::RouteMode::try_from(r.mode) {
        Ok(pb::RouteMode::Unspecified | pb::RouteMode::L4) => RouteMode::L4,
        Ok(pb::RouteMode::L7) => RouteMode::L7,
        Err(_) => return Err(Invalid::new("route.mode", "unknown value")),
    };
    let send_proxy_protocol = match pb::ProxyProtocol::try_from(r.send_proxy_protocol) {
        Ok(pb::ProxyProtocol::Unspecified | pb::ProxyProtocol::Off) => ProxyProtocolOut::Off,
        Ok(pb::ProxyProtocol::V1) => ProxyProtocolOut::V1,
        Ok(pb::ProxyProtocol::V2) => ProxyProtocolOut::V2,
        Ok(pb::ProxyProtocol::Any) | Err(_) => {
            return Err(Invalid::new(
                "route.send_proxy_protocol",
                "must be off, v1 or v2",
            ));
        }
    };
    let backends = r
        .backends
        .iter()
        .map(|b| Backend::parse(b).map_err(|m| Invalid::new("route.backends", m)))
        .collect::<Result<_, _>>()?;
    let (balance, health_check) = super::grpc_balance::balance_from_pb(&r)?;
    Ok(RouteSpec {
        listener: r.listener,
        hostname: HostPattern::parse(&r.hostname).map_err(|m| Invalid::new("route.hostname", m))?,
        mode,
        backends,
        send_proxy_protocol,
        connect_timeout: from_ms(r.connect_timeout_ms),
        idle_timeout: from_ms(r.idle_timeout_ms),
        l7: r.l7.map(l7_from_pb).transpose()?,
        origin: Origin::AdminApi,
        balance,
        health_check,
        plain_http: super::grpc_balance::plain_http_from_pb(r.plain_http)?,
    })
}

fn rule_pb(r: &FirewallRule) -> pb::FirewallRule {
    use pb::firewall_rule::Target;
    pb::FirewallRule {
        target: Some(match &r.target {
            RuleTarget::Ip(ip) => Target::Ip(ip.to_string()),
            RuleTarget::Cidr(net) => Target::Cidr(net.to_string()),
            RuleTarget::Country(cc) => Target::Country(cc.clone()),
        }),
        comment: r.comment.clone(),
        origin: origin(r.origin),
    }
}

fn target_from_pb(r: Option<pb::FirewallRule>) -> Result<(RuleTarget, String), Invalid> {
    use pb::firewall_rule::Target;
    let r = r.ok_or_else(|| Invalid::new("rule", "required"))?;
    let target = match r.target {
        Some(Target::Ip(ip)) => RuleTarget::parse_ip(&ip)?,
        Some(Target::Cidr(c)) => RuleTarget::parse_cidr(&c)?,
        Some(Target::Country(c)) => RuleTarget::parse_country(&c)?,
        None => {
            return Err(Invalid::new(
                "rule",
                "set exactly one of ip, cidr or country",
            ));
        }
    };
    Ok((target, r.comment))
}

fn limits_pb(l: Limits) -> pb::FirewallLimits {
    pb::FirewallLimits {
        rate_per_second: l.rate_per_second,
        burst: l.burst,
        max_connections_per_ip: l.max_connections_per_ip,
        max_connections_total: l.max_connections_total,
    }
}

fn geoip_pb(g: &crate::firewall::GeoIpInfo) -> pb::GeoIpDatabase {
    pb::GeoIpDatabase {
        path: g.path.display().to_string(),
        database_type: g.db.database_type().to_owned(),
        build_epoch_unix: i64::try_from(g.db.build_epoch()).unwrap_or(0),
        loaded_at_unix: g.loaded_at_unix,
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl ProxyAdmin for Admin {
    async fn get_status(&self, _: Request<pb::GetStatusRequest>) -> Reply<pb::GetStatusResponse> {
        let published = &self.state.published;
        let snap = published.snapshot.load_full();
        let now = crate::snapshot::now_ms();
        let mut listeners: Vec<_> = snap
            .listeners
            .values()
            .map(|l| {
                let mut routes = Vec::new();
                let mut seen = std::collections::HashSet::new();
                for spec in self.state.routes(&l.spec.name) {
                    let Some(entry) = l.routes.get(&spec.hostname) else {
                        continue;
                    };
                    if !seen.insert(Arc::as_ptr(&entry.runtime)) {
                        continue;
                    }
                    let c = &entry.runtime.counters;
                    routes.push(pb::RouteStats {
                        hostname: spec.hostname.to_string(),
                        mode: mode(spec.mode),
                        connections_total: c.sum(rstat::CONNECTIONS),
                        connections_active: c.sum(rstat::ACTIVE),
                        bytes_client_to_backend: c.sum(rstat::BYTES_UP),
                        bytes_backend_to_client: c.sum(rstat::BYTES_DOWN),
                        backend_connect_failures: c.sum(rstat::CONNECT_FAILURES),
                        responses: rstat::RESPONSES
                            .iter()
                            .map(|(k, i)| ((*k).to_owned(), c.sum(*i)))
                            .filter(|(_, v)| *v > 0)
                            .collect(),
                        policy_blocks: c.sum(rstat::POLICY_BLOCKS),
                        backends: entry
                            .runtime
                            .pool
                            .backends
                            .iter()
                            .chain(path_backends(entry))
                            .map(|b| super::grpc_balance::backend_status(b, now, unix_now()))
                            .collect(),
                    });
                }
                let bound = published.listeners.load();
                let address = bound
                    .listeners
                    .iter()
                    .find(|b| b.name == l.spec.name)
                    .map_or(l.spec.address, |b| b.address);
                pb::ListenerStats {
                    name: l.spec.name.clone(),
                    address: address.to_string(),
                    connections_total: l.counters.sum(lstat::CONNECTIONS),
                    connections_active: l.counters.sum(lstat::ACTIVE),
                    unrouted: l.counters.sum(lstat::UNROUTED),
                    routes,
                }
            })
            .collect();
        listeners.sort_by(|a, b| a.name.cmp(&b.name));
        let g = &published.globals;
        Ok(Response::new(pb::GetStatusResponse {
            version: mc_kit::version::VERSION.to_owned(),
            uptime_seconds: self.started.elapsed().as_secs(),
            workers: u32::try_from(published.workers).unwrap_or(u32::MAX),
            io_driver: match self.driver.driver {
                mc_rt::Driver::Uring => pb::IoDriver::IoUring as i32,
                mc_rt::Driver::Epoll => pb::IoDriver::Epoll as i32,
            },
            io_driver_reason: self.driver.reason.clone(),
            snapshot_generation: snap.generation,
            listeners,
            blocks: global::BLOCK_REASONS
                .iter()
                .map(|(name, i)| ((*name).to_owned(), g.sum(*i)))
                .collect(),
            client_hello_failures: g.sum(global::CLIENT_HELLO_FAILURES),
            pid: std::process::id(),
            started_at_unix_ms: self.started_at_unix_ms,
            executable: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        }))
    }

    async fn list_listeners(
        &self,
        _: Request<pb::ListListenersRequest>,
    ) -> Reply<pb::ListListenersResponse> {
        let bound = self.state.published.listeners.load();
        let listeners = self
            .state
            .listeners()
            .iter()
            .map(|l| {
                let mut p = listener_pb(l);
                if let Some(b) = bound.listeners.iter().find(|b| b.name == l.name) {
                    p.address = b.address.to_string();
                }
                p
            })
            .collect();
        Ok(Response::new(pb::ListListenersResponse { listeners }))
    }

    async fn get_listener(&self, r: Request<pb::GetListenerRequest>) -> Reply<pb::Listener> {
        Ok(Response::new(listener_pb(
            &self.state.listener(&r.into_inner().name)?,
        )))
    }

    async fn upsert_listener(&self, r: Request<pb::UpsertListenerRequest>) -> Reply<pb::Listener> {
        let l = r
            .into_inner()
            .listener
            .ok_or_else(|| Status::invalid_argument("listener: required"))?;
        let spec = listener_from_pb(l).map_err(ApiError::from)?;
        Ok(Response::new(listener_pb(
            &self.state.upsert_listener(spec)?,
        )))
    }

    async fn remove_listener(
        &self,
        r: Request<pb::RemoveListenerRequest>,
    ) -> Reply<pb::RemoveListenerResponse> {
        let r = r.into_inner();
        let removed = self.state.remove_listener(&r.name, r.force)?;
        Ok(Response::new(pb::RemoveListenerResponse { removed }))
    }

    async fn list_routes(
        &self,
        r: Request<pb::ListRoutesRequest>,
    ) -> Reply<pb::ListRoutesResponse> {
        let routes = self
            .state
            .routes(&r.into_inner().listener)
            .iter()
            .map(route_pb)
            .collect();
        Ok(Response::new(pb::ListRoutesResponse { routes }))
    }

    async fn get_route(&self, r: Request<pb::GetRouteRequest>) -> Reply<pb::Route> {
        let r = r.into_inner();
        Ok(Response::new(route_pb(
            &self.state.route(&r.listener, &r.hostname)?,
        )))
    }

    async fn upsert_route(&self, r: Request<pb::UpsertRouteRequest>) -> Reply<pb::Route> {
        let r = r.into_inner();
        let route = r
            .route
            .ok_or_else(|| Status::invalid_argument("route: required"))?;
        let spec = route_from_pb(route).map_err(ApiError::from)?;
        super::backends::check_resolve(
            spec.all_backends()
                .map(|(field, b)| (format!("route.{field}"), b))
                .collect(),
        )
        .await
        .map_err(ApiError::from)?;
        Ok(Response::new(route_pb(
            &self.state.upsert_route(spec, r.create_only)?,
        )))
    }

    async fn remove_route(
        &self,
        r: Request<pb::RemoveRouteRequest>,
    ) -> Reply<pb::RemoveRouteResponse> {
        let r = r.into_inner();
        let removed = self.state.remove_route(&r.listener, &r.hostname)?;
        Ok(Response::new(pb::RemoveRouteResponse { removed }))
    }

    async fn replace_routes(
        &self,
        r: Request<pb::ReplaceRoutesRequest>,
    ) -> Reply<pb::ReplaceRoutesResponse> {
        let r = r.into_inner();
        if r.routes.len() > super::MAX_ROUTES_PER_REPLACE {
            return Err(Status::invalid_argument(format!(
                "routes: at most {} per request",
                super::MAX_ROUTES_PER_REPLACE
            )));
        }
        let specs = r
            .routes
            .into_iter()
            .enumerate()
            .map(|(i, route)| {
                route_from_pb(route).map_err(|e| {
                    Invalid::new(
                        format!("routes[{i}].{}", e.field.trim_start_matches("route.")),
                        e.message,
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::from)?;
        super::backends::check_resolve(
            specs
                .iter()
                .enumerate()
                .flat_map(|(i, s)| {
                    s.all_backends()
                        .map(move |(field, b)| (format!("routes[{i}].{field}"), b))
                })
                .collect(),
        )
        .await
        .map_err(ApiError::from)?;
        let state = self.state.clone();
        let listener = r.listener;
        // Validating and publishing a large table is CPU work: off the reactor.
        let mode = super::routes::ReplaceMode {
            merge: r.merge,
            dry_run: r.dry_run,
        };
        let s = tokio::task::spawn_blocking(move || state.replace_routes(&listener, specs, mode))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(pb::ReplaceRoutesResponse {
            added: s.added,
            changed: s.changed,
            removed: s.removed,
            unchanged: s.unchanged,
            snapshot_generation: s.generation,
            removed_hostnames: s.removed_hostnames,
            policies_removed: s.policies_removed,
        }))
    }

    async fn list_certificates(
        &self,
        _: Request<pb::ListCertificatesRequest>,
    ) -> Reply<pb::ListCertificatesResponse> {
        let certificates = super::grpc_managed::list(&self.state);
        Ok(Response::new(pb::ListCertificatesResponse { certificates }))
    }

    async fn put_certificate(
        &self,
        r: Request<pb::PutCertificateRequest>,
    ) -> Reply<pb::Certificate> {
        let r = r.into_inner();
        let state = self.state.clone();
        // Parsing and verifying a chain is CPU work: keep it off the reactor.
        let stored = tokio::task::spawn_blocking(move || {
            state.put_certificate(&r.name, &r.chain_pem, &r.key_pem)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(super::grpc_managed::installed(&stored)))
    }

    async fn remove_certificate(
        &self,
        r: Request<pb::RemoveCertificateRequest>,
    ) -> Reply<pb::RemoveCertificateResponse> {
        let removed = self.state.remove_certificate(&r.into_inner().name)?;
        Ok(Response::new(pb::RemoveCertificateResponse { removed }))
    }

    async fn put_managed_certificate(
        &self,
        r: Request<pb::PutManagedCertificateRequest>,
    ) -> Reply<pb::Certificate> {
        Ok(Response::new(
            super::grpc_managed::put(&self.state, r.into_inner()).await?,
        ))
    }

    async fn remove_managed_certificate(
        &self,
        r: Request<pb::RemoveCertificateRequest>,
    ) -> Reply<pb::RemoveCertificateResponse> {
        let removed = self.state.remove_managed(&r.into_inner().name)?;
        Ok(Response::new(pb::RemoveCertificateResponse { removed }))
    }

    async fn renew_managed_certificate(
        &self,
        r: Request<pb::RemoveCertificateRequest>,
    ) -> Reply<pb::Certificate> {
        let name = r.into_inner().name;
        Ok(Response::new(
            super::grpc_managed::renew(&self.state, &name).await?,
        ))
    }

    async fn list_l7_policies(
        &self,
        r: Request<pb::ListL7PoliciesRequest>,
    ) -> Reply<pb::ListL7PoliciesResponse> {
        let r = r.into_inner();
        let policies = self
            .state
            .policies(&r.listener, &r.hostname)?
            .iter()
            .map(policy_pb)
            .collect();
        Ok(Response::new(pb::ListL7PoliciesResponse { policies }))
    }

    async fn add_l7_policy(&self, r: Request<pb::AddL7PolicyRequest>) -> Reply<pb::L7Policy> {
        let p = r
            .into_inner()
            .policy
            .ok_or_else(|| Status::invalid_argument("policy: required"))?;
        let rule = policy_from_pb(&p).map_err(ApiError::from)?;
        Ok(Response::new(policy_pb(&self.state.add_policy(
            &p.listener,
            &p.hostname,
            rule,
        )?)))
    }

    async fn remove_l7_policy(
        &self,
        r: Request<pb::RemoveL7PolicyRequest>,
    ) -> Reply<pb::RemoveL7PolicyResponse> {
        let removed = self.state.remove_policy(&r.into_inner().id)?;
        Ok(Response::new(pb::RemoveL7PolicyResponse { removed }))
    }

    async fn get_firewall(&self, _: Request<pb::GetFirewallRequest>) -> Reply<pb::Firewall> {
        let (rules, limits, geoip) = self.state.firewall();
        Ok(Response::new(pb::Firewall {
            rules: rules.iter().map(rule_pb).collect(),
            limits: Some(limits_pb(limits)),
            geoip: geoip.as_deref().map(geoip_pb),
        }))
    }

    async fn add_firewall_rule(
        &self,
        r: Request<pb::AddFirewallRuleRequest>,
    ) -> Reply<pb::FirewallRule> {
        let r = r.into_inner();
        // Without a database no country can be blocked: say that before
        // judging the code (README's `XX` placeholder is not a country).
        if let Some(pb::FirewallRule {
            target: Some(pb::firewall_rule::Target::Country(_)),
            ..
        }) = &r.rule
        {
            self.state.require_geoip()?;
        }
        let (target, comment) = target_from_pb(r.rule).map_err(ApiError::from)?;
        Ok(Response::new(rule_pb(
            &self.state.add_rule(target, comment)?,
        )))
    }

    async fn remove_firewall_rule(
        &self,
        r: Request<pb::RemoveFirewallRuleRequest>,
    ) -> Reply<pb::RemoveFirewallRuleResponse> {
        let (target, _) = target_from_pb(r.into_inner().rule).map_err(ApiError::from)?;
        let removed = self.state.remove_rule(&target)?;
        Ok(Response::new(pb::RemoveFirewallRuleResponse { removed }))
    }

    async fn set_firewall_limits(
        &self,
        r: Request<pb::SetFirewallLimitsRequest>,
    ) -> Reply<pb::FirewallLimits> {
        let l = r
            .into_inner()
            .limits
            .ok_or_else(|| Status::invalid_argument("limits: required"))?;
        let limits = Limits {
            rate_per_second: l.rate_per_second,
            burst: l.burst,
            max_connections_per_ip: l.max_connections_per_ip,
            max_connections_total: l.max_connections_total,
        };
        Ok(Response::new(limits_pb(self.state.set_limits(limits)?)))
    }

    async fn reload_geo_ip(&self, _: Request<pb::ReloadGeoIpRequest>) -> Reply<pb::GeoIpDatabase> {
        Ok(Response::new(geoip_pb(self.state.reload_geoip()?.as_ref())))
    }

    async fn reload_config(
        &self,
        _: Request<pb::ReloadConfigRequest>,
    ) -> Reply<pb::ReloadConfigResponse> {
        let reload = self.reload.clone();
        // Reading files, binding and a commit: off the reactor.
        let r = tokio::task::spawn_blocking(move || reload.reload())
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(pb::ReloadConfigResponse {
            config_file: self.state.config_file.display().to_string(),
            snapshot_generation: r.generation,
            listeners: u32::try_from(r.listeners).unwrap_or(u32::MAX),
            routes: u32::try_from(r.routes).unwrap_or(u32::MAX),
        }))
    }
}
