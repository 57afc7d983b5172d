//! A plain-HTTP listener (kind `http`, `:80` in production): ACME HTTP-01
//! challenges go to the responder of the Host's route on this listener, any
//! other request for a hostname with a route on a TLS listener is redirected
//! to HTTPS (308, path and query kept), everything else gets 404. The Host's
//! route here may instead serve every request (`plain_http = serve`: relayed
//! to its backends) or answer 404 to all but challenges (`not_found`). The
//! proxy's own ACME orders ([`Http01Tokens`]) are answered here first.
//!
//! Invariant: one request per connection, answered or relayed, then closed;
//! the request head is bounded ([`MAX_HEAD`]) and must arrive within the
//! listener's `client_hello_timeout`; a challenge reaches its responder with
//! hop-by-hop headers replaced by `Connection: close`, so a client cannot
//! smuggle a second request to it. The firewall has already admitted the
//! client (same as the TLS listeners).

use std::net::SocketAddr;
use std::sync::Arc;

use monoio::io::{AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::conn::{connect, read_more, relay};
use crate::http01::Http01Tokens;
use crate::model::{ListenerKind, PlainHttp};
use crate::snapshot::{ListenerEntry, Snapshot};
use crate::stats::route as rstat;

/// Largest request head accepted; ACME and redirect requests are small.
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// The path prefix of ACME HTTP-01 challenges (RFC 8555 §8.3).
const ACME_PREFIX: &str = "/.well-known/acme-challenge/";
/// Headers not passed to a responder: hop-by-hop ones (replaced by
/// `Connection: close`) and the forwarding ones this proxy sets itself.
const DROPPED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

/// What the parsed head asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Pass the (rewritten) head to the Host's route's backends: its ACME
    /// responder, or its site when the route serves plain HTTP.
    Challenge { host: String },
    /// 308 to this URL.
    Redirect(String),
    /// A status and a short reason.
    Refuse(u16, &'static str),
}

/// A request head: the lower-cased host (port removed), the method, the target.
struct Head<'a> {
    method: &'a str,
    target: &'a str,
    host: String,
    headers: Vec<(&'a str, &'a [u8])>,
    version: u8,
}

enum Parsed<'a> {
    Complete(Head<'a>),
    Incomplete,
    Bad(u16, &'static str),
}

fn parse(buf: &[u8]) -> Parsed<'_> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Parsed::Incomplete,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Bad(431, "too many header fields");
        }
        Err(_) => return Parsed::Bad(400, "malformed request"),
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Parsed::Bad(400, "malformed request");
    };
    let mut host = None;
    let mut kept = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return Parsed::Bad(400, "more than one Host header");
            }
            host = Some(h.value);
        }
        kept.push((h.name, h.value));
    }
    // HTTP/1.1 requires Host; an HTTP/1.0 request without one has no hostname to route.
    let Some(host) = host
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(host_name)
    else {
        return Parsed::Bad(400, "missing or invalid Host header");
    };
    Parsed::Complete(Head {
        method,
        target,
        host,
        headers: kept,
        version,
    })
}

/// `example.com:80` / `Example.COM` → `example.com`; `None` for anything that
/// is not a DNS name (bracketed IPv6 literals and IPs have no TLS route).
fn host_name(value: &str) -> Option<String> {
    let v = value.trim();
    let name = match v.rsplit_once(':') {
        Some((n, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => v,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.split('.').any(str::is_empty);
    ok.then(|| name.to_ascii_lowercase())
}

/// The port, among TLS listeners holding a route for `host`, a redirect
/// points to: 443 when one is on 443, else the lowest.
fn https_port(snapshot: &Snapshot, host: &str) -> Option<u16> {
    snapshot
        .listeners
        .values()
        .filter(|l| l.spec.kind == ListenerKind::Tls && l.routes.lookup(host).is_some())
        .map(|l| l.spec.address.port())
        .min_by_key(|&p| (p != 443, p))
}

pub(crate) fn decide(
    method: &str,
    target: &str,
    host: &str,
    listener: &ListenerEntry,
    snapshot: &Snapshot,
) -> Decision {
    if !target.starts_with('/') {
        // Absolute-form and `*` targets are for proxies and OPTIONS; neither is served here.
        return Decision::Refuse(400, "request target must be a path");
    }
    let path = target.split('?').next().unwrap_or(target);
    // The hostname's route on this listener decides what the rest gets.
    let here = listener.routes.lookup(host).map(|r| r.spec.plain_http);
    if here == Some(PlainHttp::Serve) {
        return Decision::Challenge {
            host: host.to_owned(),
        };
    }
    if path.starts_with(ACME_PREFIX) && here.is_some() {
        if method != "GET" && method != "HEAD" {
            return Decision::Refuse(405, "challenges are fetched with GET");
        }
        return Decision::Challenge {
            host: host.to_owned(),
        };
    }
    if here == Some(PlainHttp::NotFound) {
        return Decision::Refuse(404, "no such site");
    }
    match https_port(snapshot, host) {
        Some(443) => Decision::Redirect(format!("https://{host}{target}")),
        Some(port) => Decision::Redirect(format!("https://{host}:{port}{target}")),
        None => Decision::Refuse(404, "no such site"),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        _ => "Error",
    }
}

/// A complete `Connection: close` response with a short text body.
pub(crate) fn response(status: u16, location: Option<&str>, body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    if let Some(l) = location {
        out.push_str(&format!("location: {l}\r\n"));
    }
    out.push_str(&format!(
        "content-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    out.into_bytes()
}

async fn answer(mut client: TcpStream, bytes: Vec<u8>) {
    let _ = client.write_all(bytes).await;
    let _ = client.shutdown().await;
}

/// Serves one connection on an `http` listener; `client` is the firewall-admitted peer.
pub(crate) async fn serve(
    mut stream: TcpStream,
    client: SocketAddr,
    listener: &Arc<ListenerEntry>,
    snapshot: &Snapshot,
    worker: usize,
    http01: &Http01Tokens,
) {
    let timeout = listener.spec.client_hello_timeout;
    let read = async {
        let mut buf = Vec::with_capacity(1024);
        loop {
            let (res, b) = read_more(&mut stream, buf, MAX_HEAD + 1).await;
            buf = b;
            match res {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            match parse(&buf) {
                Parsed::Incomplete if buf.len() > MAX_HEAD => {
                    return Some(Err((431, "request head too large")));
                }
                Parsed::Incomplete => {}
                Parsed::Bad(s, why) => return Some(Err((s, why))),
                Parsed::Complete(_) => return Some(Ok(buf)),
            }
        }
    };
    let buf = match monoio::time::timeout(timeout, read).await {
        Ok(Some(Ok(buf))) => buf,
        Ok(Some(Err((status, why)))) => {
            return answer(stream, response(status, None, why)).await;
        }
        Ok(None) => return,
        Err(_) => {
            return answer(stream, response(408, None, "request head took too long")).await;
        }
    };
    let Parsed::Complete(head) = parse(&buf) else {
        return answer(stream, response(400, None, "malformed request")).await;
    };
    if let Some(key_authorization) = own_challenge(&head, http01) {
        return answer(stream, response(200, None, &key_authorization)).await;
    }
    match decide(head.method, head.target, &head.host, listener, snapshot) {
        Decision::Refuse(status, why) => answer(stream, response(status, None, why)).await,
        Decision::Redirect(url) => {
            answer(stream, response(308, Some(&url), "moved to https\n")).await;
        }
        Decision::Challenge { host } => {
            let Some(route) = listener.routes.lookup(&host).cloned() else {
                return answer(stream, response(404, None, "no such site")).await;
            };
            let counters = &route.runtime.counters;
            counters.add(worker, rstat::CONNECTIONS, 1);
            let Some((mut backend, _in_flight)) = connect(&route, worker, client.ip()).await else {
                return answer(stream, response(502, None, "no responder reachable")).await;
            };
            let out = forwarded_head(&head, client);
            counters.add(worker, rstat::BYTES_UP, out.len() as u64);
            let (res, _) = backend.write_all(out).await;
            if res.is_err() {
                return answer(stream, response(502, None, "responder went away")).await;
            }
            relay(stream, backend, &route, worker).await;
        }
    }
}

/// The answer to an HTTP-01 challenge of this proxy's own ACME orders
/// ([`Http01Tokens`]): a GET or HEAD for a published (Host, token).
fn own_challenge(head: &Head<'_>, http01: &Http01Tokens) -> Option<Arc<str>> {
    if head.method != "GET" && head.method != "HEAD" {
        return None;
    }
    let token = head.target.strip_prefix(ACME_PREFIX)?;
    http01.lookup(&head.host, token)
}

/// The head passed to a responder: same request line and end-to-end
/// headers, then `X-Forwarded-For`/`-Proto`/`-Host` and `Connection: close`.
fn forwarded_head(head: &Head<'_>, client: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(
        format!(
            "{} {} HTTP/1.{}\r\n",
            head.method, head.target, head.version
        )
        .as_bytes(),
    );
    for (name, value) in &head.headers {
        if DROPPED.iter().any(|d| name.eq_ignore_ascii_case(d)) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "x-forwarded-for: {}\r\nx-forwarded-proto: http\r\nx-forwarded-host: {}\r\nconnection: close\r\n\r\n",
            client.ip(),
            head.host
        )
        .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_port_case_and_trailing_dot() {
        assert_eq!(
            host_name("Example.COM:8080").as_deref(),
            Some("example.com")
        );
        assert_eq!(host_name("a.test.").as_deref(), Some("a.test"));
        assert_eq!(host_name("[::1]:80"), None);
        assert_eq!(host_name("a..b"), None);
        assert_eq!(host_name(""), None);
        assert_eq!(host_name("a b"), None);
    }

    #[test]
    fn heads_are_parsed_and_refused_when_bad() {
        let Parsed::Complete(h) =
            parse(b"GET /x?y=1 HTTP/1.1\r\nHost: A.test:80\r\nConnection: keep-alive\r\n\r\n")
        else {
            panic!("complete");
        };
        assert_eq!(
            (h.method, h.target, h.host.as_str()),
            ("GET", "/x?y=1", "a.test")
        );
        let out = String::from_utf8(forwarded_head(&h, "127.0.0.2:5".parse().expect("addr")))
            .expect("utf8");
        assert!(
            out.starts_with("GET /x?y=1 HTTP/1.1\r\nHost: A.test:80\r\n"),
            "{out}"
        );
        assert!(
            !out.contains("keep-alive") && out.ends_with("connection: close\r\n\r\n"),
            "{out}"
        );
        assert!(out.contains("x-forwarded-for: 127.0.0.2\r\n"), "{out}");
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: a"),
            Parsed::Incomplete
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\n\r\n"),
            Parsed::Bad(400, _)
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Parsed::Bad(400, _)
        ));
        assert!(matches!(
            parse(b"\x16\x03\x01\x02\x00"),
            Parsed::Bad(400, _)
        ));
    }

    #[test]
    fn own_challenges_are_answered_for_their_host_only() {
        let tokens = Http01Tokens::default();
        tokens
            .publish("a.test", "tok", "tok.thumb")
            .expect("publish");
        let head = |raw: &'static [u8]| match parse(raw) {
            Parsed::Complete(h) => h,
            _ => panic!("complete"),
        };
        let get = head(b"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: A.test\r\n\r\n");
        assert_eq!(own_challenge(&get, &tokens).as_deref(), Some("tok.thumb"));
        let other = head(b"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: b.test\r\n\r\n");
        assert_eq!(own_challenge(&other, &tokens), None);
        let post = head(b"POST /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: a.test\r\n\r\n");
        assert_eq!(own_challenge(&post, &tokens), None);
        let query = head(b"GET /.well-known/acme-challenge/tok?x HTTP/1.1\r\nHost: a.test\r\n\r\n");
        assert_eq!(own_challenge(&query, &tokens), None);
    }

    #[test]
    fn responses_are_complete_and_close() {
        let r =
            String::from_utf8(response(308, Some("https://a.test/x?y"), "moved\n")).expect("utf8");
        assert!(
            r.starts_with("HTTP/1.1 308 Permanent Redirect\r\nlocation: https://a.test/x?y\r\n")
        );
        assert!(
            r.contains("content-length: 6\r\nconnection: close\r\n\r\nmoved\n"),
            "{r}"
        );
    }
}
