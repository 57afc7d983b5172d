//! One request: policies, header rewriting, the backend exchange, and the
//! response streamed back (or the proxy's own 403/502/503/504).

use std::cell::Cell;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use super::ConnCtx;
use super::backend::{self, BackendError, Lease, TunnelIo, UpgradeRx};
use super::body::{Counted, OnEnd, Tracked};
use super::headers::{self, HostError};
use crate::gate::{Refused, Slot, retry_after_secs};
use crate::health::InFlight;
use crate::model::PolicyRule;
use crate::stats::route as rstat;

pub(super) type ProxyBody = Tracked<Finish>;
pub(super) type ProxyResponse = Response<ProxyBody>;

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded as they are.
fn hop_by_hop() -> [&'static HeaderName; 7] {
    [
        &header::CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
        &header::TE,
        &header::PROXY_AUTHORIZATION,
    ]
}

pub(super) async fn handle(
    mut req: Request<Incoming>,
    ctx: Rc<ConnCtx>,
) -> Result<ProxyResponse, Infallible> {
    let started = Instant::now();
    let route = ctx.route.clone();
    let counters = &route.runtime.counters;
    let worker = ctx.worker;
    counters.add(worker, rstat::REQUESTS, 1);
    ctx.begin();
    let access = route
        .spec
        .l7
        .as_ref()
        .is_some_and(|s| s.access_log)
        .then(|| AccessLine {
            method: req.method().to_string(),
            path: req.uri().path().chars().take(256).collect(),
        });
    let end = |status: StatusCode, lease: Option<Lease>| Finish {
        ctx: ctx.clone(),
        status: status.as_u16(),
        started,
        access: access.clone(),
        lease,
        slot: None,
        in_flight: None,
    };

    // The route's policies hold only for the hosts it serves: a request for
    // another host (coalesced HTTP/2, or a Host that differs from the SNI)
    // goes no further.
    let host = match headers::request_host(
        req.uri().authority().map(http::uri::Authority::as_str),
        req.headers(),
    ) {
        Ok(None) if req.version() == http::Version::HTTP_11 => {
            Err(HostError::Bad("an HTTP/1.1 request needs a Host header"))
        }
        other => other,
    };
    let host = match host {
        Ok(h) => h,
        Err(HostError::Bad(why)) => {
            tracing::debug!(client = %ctx.client, route = %route.spec.hostname, why, "bad request host");
            let status = StatusCode::BAD_REQUEST;
            return Ok(small(status, why, end(status, None)));
        }
    };
    if misdirected(&ctx, host.as_deref()) {
        tracing::debug!(client = %ctx.client, route = %route.spec.hostname, ?host, "misdirected request");
        let status = StatusCode::MISDIRECTED_REQUEST;
        return Ok(small(
            status,
            "this connection does not serve that host",
            end(status, None),
        ));
    }

    // The route's limits: a request over them is answered here and costs
    // the backend nothing; an admitted one holds its slot until its body ends.
    let admitted = route
        .l7
        .as_ref()
        .map(|l7| l7.gate.admit(ctx.client.ip()))
        .transpose();
    let slot = match admitted {
        Ok(slot) => slot.flatten(),
        Err(why) => {
            tracing::debug!(client = %ctx.client, route = %route.spec.hostname, ?why, "request over the route's limits");
            return Ok(over_limit(&why, end));
        }
    };

    if let Some(l7) = &route.l7
        && let Some(rule) = first_match(&l7.policies, req.headers())
    {
        counters.add(worker, rstat::POLICY_BLOCKS, 1);
        tracing::debug!(client = %ctx.client, route = %route.spec.hostname, ?rule, "blocked by policy");
        let status = StatusCode::FORBIDDEN;
        return Ok(small(status, "forbidden by policy", end(status, None)));
    }

    // hyper bounds its read buffer, not the head: a head that arrives in
    // one burst is measured here.
    let head_bytes = req.uri().path_and_query().map_or(0, |p| p.as_str().len())
        + req.uri().authority().map_or(0, |a| a.as_str().len())
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    if head_bytes > super::MAX_HEADER_BYTES || req.headers().len() > super::MAX_HEADERS {
        let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        return Ok(small(
            status,
            "request headers too large",
            end(status, None),
        ));
    }

    // The path rule (or the route's own backends) this request goes to.
    let upstream = route.upstream(req.uri().path());
    if let Some(prefix) = upstream.as_ref().and_then(|u| u.strip) {
        strip_prefix(&mut req, prefix);
    }
    let upgrade = !ctx.h2 && headers::is_websocket_upgrade(req.headers());
    rewrite_request(&mut req, &ctx, upgrade);
    let timeout = route
        .spec
        .l7
        .as_ref()
        .map_or(crate::model::DEFAULT_BACKEND_RESPONSE_TIMEOUT, |s| {
            s.backend_response_timeout
        });
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(
        parts,
        Counted::new(body, route.runtime.clone(), worker, rstat::BYTES_UP),
    );
    let sent = match &upstream {
        Some(u) => {
            let from = (worker, ctx.client.ip());
            backend::send(&route, u, from, req, upgrade, timeout).await
        }
        None => Err(BackendError::NoHealthy),
    };
    match sent {
        Ok(sent) => {
            let mut response = sent.response;
            let status = response.status();
            if status == StatusCode::SWITCHING_PROTOCOLS {
                if sent.upgraded.is_none() {
                    // A 101 to a request that asked for no (allowed) upgrade:
                    // never splice, never pass it on.
                    tracing::debug!(route = %route.spec.hostname, "backend switched protocols unasked");
                    counters.add(worker, rstat::ERR_502, 1);
                    let status = StatusCode::BAD_GATEWAY;
                    return Ok(small(status, "backend unavailable", end(status, None)));
                }
                // The connection loop splices the sockets once hyper lets go.
                *ctx.upgraded.borrow_mut() = sent.upgraded;
            } else {
                strip_hop_by_hop(response.headers_mut(), false);
            }
            if !ctx.h2 {
                *response.version_mut() = http::Version::HTTP_11;
            }
            let (parts, body) = response.into_parts();
            let mut finish = end(status, sent.lease);
            finish.slot = slot;
            finish.in_flight = sent.in_flight;
            Ok(Response::from_parts(
                parts,
                Tracked::new(Either::Left(body), finish),
            ))
        }
        Err(e) => {
            let (status, index, text) = match &e {
                BackendError::NoHealthy => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    rstat::ERR_503,
                    "no healthy backend".to_owned(),
                ),
                BackendError::Failed(m) => (StatusCode::BAD_GATEWAY, rstat::ERR_502, {
                    tracing::debug!(route = %route.spec.hostname, error = %m, "backend failed");
                    "backend unavailable".to_owned()
                }),
                BackendError::Timeout(what) => (
                    StatusCode::GATEWAY_TIMEOUT,
                    rstat::ERR_504,
                    format!("{what} timed out"),
                ),
            };
            counters.add(worker, index, 1);
            Ok(small(status, &text, end(status, None)))
        }
    }
}

/// Removes a path rule's `prefix` from the request target (the query stays;
/// the scheme and authority of an HTTP/2 or absolute-form target too).
fn strip_prefix(req: &mut Request<Incoming>, prefix: &str) {
    let Some(stripped) = req
        .uri()
        .path_and_query()
        .and_then(|pq| crate::model::strip_prefix(pq.as_str(), prefix))
    else {
        return;
    };
    let mut parts = req.uri().clone().into_parts();
    match stripped.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return,
    }
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

/// Copies bytes both ways after a `101 Switching Protocols` (WebSocket).
pub(super) async fn tunnel(
    mut client: Box<dyn TunnelIo>,
    client_early: Bytes,
    backend: UpgradeRx,
    ctx: Rc<ConnCtx>,
) {
    use tokio::io::AsyncWriteExt;
    let Ok((mut backend, backend_early)) = backend.await else {
        tracing::debug!("backend upgrade did not complete");
        return;
    };
    ctx.begin();
    let early = async {
        if !client_early.is_empty() {
            backend.write_all(&client_early).await?;
        }
        if !backend_early.is_empty() {
            client.write_all(&backend_early).await?;
        }
        Ok::<_, std::io::Error>(())
    };
    if early.await.is_ok() {
        match tokio::io::copy_bidirectional(&mut client, &mut backend).await {
            Ok((up, down)) => {
                let counters = &ctx.route.runtime.counters;
                counters.add(ctx.worker, rstat::BYTES_UP, up);
                counters.add(ctx.worker, rstat::BYTES_DOWN, down);
            }
            Err(e) => tracing::debug!(error = %e, "upgraded connection ended with an error"),
        }
    }
    ctx.end();
}

/// 429 for a client over the route's rate, 503 when the route has its
/// maximum of requests in flight; both say when to retry.
fn over_limit(
    why: &Refused,
    end: impl FnOnce(StatusCode, Option<Lease>) -> Finish,
) -> ProxyResponse {
    let (status, text, secs) = match why {
        Refused::Rate(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            "request rate limit exceeded",
            retry_after_secs(*wait),
        ),
        Refused::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests in flight",
            1,
        ),
    };
    let mut r = small(status, text, end(status, None));
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

fn small(status: StatusCode, text: &str, end: Finish) -> ProxyResponse {
    let body = format!(
        "{} {}: {text}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut r = Response::new(Tracked::new(
        Either::Right(Full::new(Bytes::from(body))),
        end,
    ));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The first policy that blocks this request.
pub(super) fn first_match<'a>(
    policies: &'a [PolicyRule],
    headers: &HeaderMap,
) -> Option<&'a PolicyRule> {
    policies.iter().find(|p| match p {
        PolicyRule::BlockUserAgent { substring } => headers
            .get_all(header::USER_AGENT)
            .iter()
            .any(|ua| contains_ignore_ascii_case(ua.as_bytes(), substring.as_bytes())),
        PolicyRule::RequireHeader { name, value } => {
            let mut values = headers.get_all(name.as_str()).iter();
            match value {
                None => values.next().is_none(),
                Some(v) => !values.any(|h| h.as_bytes() == v.as_bytes()),
            }
        }
    })
}

/// `needle` must be lower-case.
fn contains_ignore_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || hay.windows(needle.len()).any(|w| {
            w.iter()
                .zip(needle)
                .all(|(a, b)| a.to_ascii_lowercase() == *b)
        })
}

/// Whether `host` (of a request on this connection) is served by another
/// route than the one the connection was admitted for: its lookup in the
/// listener's table must give that route (exact name or its wildcard; a
/// more specific route for the name wins, as for SNI). A host no route
/// names is accepted only on a connection routed by default (no SNI).
fn misdirected(ctx: &ConnCtx, host: Option<&str>) -> bool {
    let Some(host) = host else {
        return false;
    };
    match ctx.listener.routes.lookup(host) {
        Some(r) => !std::sync::Arc::ptr_eq(r, &ctx.route),
        None => ctx.by_sni,
    }
}

/// Removes hop-by-hop headers and those the `Connection` header names.
/// `keep_upgrade` keeps `Connection: upgrade` + `Upgrade` for a WebSocket handshake.
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Allocates only when `Connection` names other headers (rare).
    let mut named: Vec<HeaderName> = Vec::new();
    for v in headers.get_all(header::CONNECTION) {
        for t in v.to_str().ok().into_iter().flat_map(|s| s.split(',')) {
            let t = t.trim();
            if ["keep-alive", "close", "upgrade"]
                .iter()
                .any(|k| t.eq_ignore_ascii_case(k))
            {
                continue;
            }
            if let Ok(n) = HeaderName::from_bytes(t.as_bytes()) {
                named.push(n);
            }
        }
    }
    for n in named {
        headers.remove(n);
    }
    let te_trailers = headers.contains_key(header::TE)
        && headers.get_all(header::TE).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim() == "trailers"))
        });
    for h in hop_by_hop() {
        if keep_upgrade && (*h == header::UPGRADE || *h == header::CONNECTION) {
            continue;
        }
        headers.remove(h);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    // gRPC needs `te: trailers` end to end; it is the only TE value HTTP/2 allows.
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Appends `, <value>` to header `name`, or sets it.
fn append_element(headers: &mut HeaderMap, name: &HeaderName, value: &HeaderValue) {
    let joined = match headers.get(name) {
        Some(prev) => {
            let mut v = Vec::with_capacity(prev.len() + 2 + value.len());
            v.extend_from_slice(prev.as_bytes());
            v.extend_from_slice(b", ");
            v.extend_from_slice(value.as_bytes());
            HeaderValue::from_maybe_shared(Bytes::from(v)).ok()
        }
        None => Some(value.clone()),
    };
    if let Some(v) = joined {
        headers.insert(name.clone(), v);
    }
}

/// Forwarding headers as a client may not set them.
fn forwarding_headers() -> [&'static HeaderName; 5] {
    [
        &header::FORWARDED,
        &X_FORWARDED_FOR,
        &X_FORWARDED_PROTO,
        &X_FORWARDED_HOST,
        &X_REAL_IP,
    ]
}

/// The headers a backend gets: hop-by-hop ones gone (an `Upgrade` only for
/// a WebSocket handshake), and the forwarding headers set by this proxy.
/// A client's `Forwarded`/`X-Forwarded-*`/`X-Real-IP` are always dropped
/// (they would be believed downstream): even behind a trusted proxy they
/// were written by the client, since a PROXY-protocol peer in front of a
/// TLS-terminating route relays bytes it cannot read; the address that
/// proxy vouched for is what this proxy writes.
fn rewrite_request(req: &mut Request<Incoming>, ctx: &ConnCtx, upgrade: bool) {
    let forwarded = {
        // `handle` checked the authority or Host (no `\` or quote can pass).
        let host = match req.uri().authority() {
            Some(a) => Some(a.as_str()),
            None => req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok()),
        };
        let mut cache = ctx.forwarded_cache.borrow_mut();
        match (&*cache, host) {
            (Some((cached, v)), Some(h)) if cached == h => Some((v.clone(), h.to_owned())),
            (_, host) => {
                let v = headers::forwarded_element(&ctx.forwarded_for, host);
                if let (Some(h), Some(v)) = (host, &v) {
                    *cache = Some((h.to_owned(), v.clone()));
                }
                v.map(|v| (v, host.unwrap_or_default().to_owned()))
            }
        }
    };
    let headers = req.headers_mut();
    strip_hop_by_hop(headers, upgrade);
    headers.remove(&HTTP2_SETTINGS);
    for name in forwarding_headers() {
        headers.remove(name);
    }
    // Only the certificate verified on this connection names the client.
    headers.remove(&crate::client_cert::HEADER);
    if let Some(identity) = &ctx.client_cert {
        headers.insert(crate::client_cert::HEADER.clone(), identity.clone());
    }
    append_element(headers, &X_FORWARDED_FOR, &ctx.client_ip);
    headers.insert(X_REAL_IP.clone(), ctx.client_ip.clone());
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
    match forwarded {
        Some((f, host)) => {
            append_element(headers, &header::FORWARDED, &f);
            match HeaderValue::try_from(host) {
                Ok(h) if !h.is_empty() => {
                    headers.insert(X_FORWARDED_HOST.clone(), h);
                }
                _ => {
                    headers.remove(&X_FORWARDED_HOST);
                }
            }
        }
        None => {
            headers.remove(&X_FORWARDED_HOST);
        }
    }
}

#[derive(Clone)]
struct AccessLine {
    method: String,
    path: String,
}

/// End of a request: counters, the connection's in-flight count, the pooled
/// backend connection, and the access log line.
pub(super) struct Finish {
    ctx: Rc<ConnCtx>,
    status: u16,
    started: Instant,
    access: Option<AccessLine>,
    lease: Option<Lease>,
    /// The request's place under the route's in-flight cap, given back
    /// with this (when the response body ends).
    slot: Option<Slot>,
    /// The request's count on its backend (least outstanding).
    in_flight: Option<InFlight>,
}

impl OnEnd for Finish {
    fn on_end(self, bytes: u64, complete: bool) {
        let this = self;
        let route = &this.ctx.route;
        let counters = &route.runtime.counters;
        counters.add(this.ctx.worker, rstat::class(this.status), 1);
        counters.add(this.ctx.worker, rstat::BYTES_DOWN, bytes);
        if complete && let Some(lease) = this.lease {
            lease.give_back();
        }
        this.ctx.end();
        if let Some(a) = this.access
            && let Some(sampled) = access_sample()
        {
            tracing::info!(
                target: "mc_proxy::access",
                route = %route.spec.hostname,
                client = %this.ctx.client,
                method = %a.method,
                path = %a.path,
                status = this.status,
                bytes,
                duration_us = u64::try_from(this.started.elapsed().as_micros()).unwrap_or(u64::MAX),
                complete,
                sampled,
            );
        }
    }
}

/// Lines per second per worker written in full before sampling starts.
const ACCESS_LINES_PER_SECOND: u32 = 200;
/// Beyond that, one line in this many.
const ACCESS_SAMPLE: u32 = 100;

thread_local! {
    static ACCESS_WINDOW: Cell<(Instant, u32)> = Cell::new((Instant::now(), 0));
}

/// `Some(1)` to log this line in full, `Some(n)` for one line standing for
/// `n`, `None` to skip it.
fn access_sample() -> Option<u32> {
    ACCESS_WINDOW.with(|w| {
        let (start, n) = w.get();
        let now = Instant::now();
        let (start, n) = if now.duration_since(start).as_secs() >= 1 {
            (now, 0)
        } else {
            (start, n)
        };
        w.set((start, n.saturating_add(1)));
        if n < ACCESS_LINES_PER_SECOND {
            Some(1)
        } else if (n - ACCESS_LINES_PER_SECOND).is_multiple_of(ACCESS_SAMPLE) {
            Some(ACCESS_SAMPLE)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn policies_first_match_wins() {
        let p = vec![
            PolicyRule::BlockUserAgent {
                substring: "badbot".into(),
            },
            PolicyRule::RequireHeader {
                name: "x-token".into(),
                value: Some("s3cret".into()),
            },
        ];
        assert_eq!(
            first_match(&p, &headers(&[("user-agent", "Mozilla BadBot/1.0")])),
            p.first()
        );
        assert_eq!(
            first_match(&p, &headers(&[("user-agent", "curl")])),
            p.get(1)
        );
        assert_eq!(first_match(&p, &headers(&[("x-token", "nope")])), p.get(1));
        assert_eq!(first_match(&p, &headers(&[("x-token", "s3cret")])), None);
        let presence = vec![PolicyRule::RequireHeader {
            name: "x-any".into(),
            value: None,
        }];
        assert!(first_match(&presence, &headers(&[])).is_some());
        assert!(first_match(&presence, &headers(&[("x-any", "")])).is_none());
    }

    #[test]
    fn hop_by_hop_headers_go_and_te_trailers_stays() {
        let mut h = headers(&[
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("x-kept", "1"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert!(h.get("x-secret").is_none() && h.get("keep-alive").is_none());
        assert!(h.get("transfer-encoding").is_none() && h.get("connection").is_none());
        assert_eq!(h.get("te").map(|v| v.as_bytes()), Some(&b"trailers"[..]));
        assert!(h.get("x-kept").is_some());
        let mut ws = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(super::headers::is_websocket_upgrade(&ws));
        strip_hop_by_hop(&mut ws, true);
        assert!(ws.get("upgrade").is_some() && ws.get("connection").is_some());
    }
}
