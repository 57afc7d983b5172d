//! What a request says about itself, checked before it is forwarded: the
//! host it names (Host, absolute-form authority, `:authority`), the
//! `Upgrade` it asks for, and the forwarding headers it brings.
//!
//! Invariants: a request reaches a backend only for the route its
//! connection was admitted for by SNI (else 421) and with one consistent
//! host (else 400); only a WebSocket upgrade is forwarded (no h2c tunnel);
//! forwarding headers (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`) come from
//! the proxy alone, and every value it writes is RFC 7239-correct (no `\`, no `"`
//! inside a quoted string). Everything here is pure and bounded by the
//! request head (already capped).

use http::header::{self, HeaderMap, HeaderValue};

/// Why a request's host is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HostError {
    /// Malformed, repeated or inconsistent host: 400.
    Bad(&'static str),
}

/// The host part of an authority (`host[:port]`, `[v6][:port]`), lower-cased
/// and without a trailing dot; `None` when it is not a valid authority for
/// an `https` request (userinfo, bad port, characters outside a DNS name or
/// IP literal).
pub(super) fn authority_host(authority: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        return port_ok(port).then(|| format!("[{}]", v6.to_ascii_lowercase()));
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if !port_ok(port) {
        return None;
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        && !host.starts_with('.')
        && !host.contains("..");
    valid.then(|| host.to_ascii_lowercase())
}

/// A port is empty (`host:` is allowed by RFC 3986) or 1–5 digits.
fn port_ok(port: Option<&str>) -> bool {
    port.is_none_or(|p| p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The host a request names: from the URI's authority (absolute form, or
/// HTTP/2's `:authority`) and the `Host` header, which must agree (port
/// ignored). `Ok(None)`: neither is present.
pub(super) fn request_host(
    authority: Option<&str>,
    headers: &HeaderMap,
) -> Result<Option<String>, HostError> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host_header = hosts.next();
    if hosts.next().is_some() {
        return Err(HostError::Bad("more than one Host header"));
    }
    let from_header = match host_header {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(authority_host)
                .ok_or(HostError::Bad("malformed Host header"))?,
        ),
        None => None,
    };
    let from_uri = match authority {
        Some(a) => Some(authority_host(a).ok_or(HostError::Bad("malformed request authority"))?),
        None => None,
    };
    match (from_uri, from_header) {
        (Some(u), Some(h)) if u != h => Err(HostError::Bad(
            "the request target's authority and the Host header differ",
        )),
        (Some(u), _) => Ok(Some(u)),
        (None, h) => Ok(h),
    }
}

/// Whether the request asks to switch to WebSocket: `Connection: upgrade`
/// and exactly one `Upgrade` value, `websocket` (any case). Any other
/// upgrade (h2c, TLS, …) is not forwarded: the headers are stripped and
/// the request goes on as a plain one.
pub(super) fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let mut upgrades = headers.get_all(header::UPGRADE).iter();
    let websocket = upgrades
        .next()
        .is_some_and(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"websocket"))
        && upgrades.next().is_none();
    websocket
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// RFC 7230 `tchar`.
#[cfg(test)]
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `value` is a well-formed `Forwarded` field value (RFC 7239 §4)
/// with no quoted-pair: `token=value` pairs joined by `;`, elements by
/// `,`, values a token or a quoted string without `\` or control
/// characters: what every `Forwarded` element this proxy writes satisfies.
#[cfg(test)]
pub(super) fn forwarded_is_clean(value: &[u8]) -> bool {
    if value.is_empty() {
        return false;
    }
    value.split(|b| *b == b',').all(|element| {
        element.trim_ascii().split(|b| *b == b';').all(|pair| {
            let Some(eq) = pair.iter().position(|b| *b == b'=') else {
                return false;
            };
            let (name, rest) = pair.split_at(eq);
            let name = name.trim_ascii();
            let v = rest.get(1..).unwrap_or_default().trim_ascii();
            let name_ok = !name.is_empty() && name.iter().all(|b| is_tchar(*b));
            let value_ok = match v.strip_prefix(b"\"") {
                Some(q) => q.strip_suffix(b"\"").is_some_and(|inner| {
                    inner.iter().all(|b| {
                        *b != b'\\' && *b != b'"' && (*b == b'\t' || !b.is_ascii_control())
                    })
                }),
                None => !v.is_empty() && v.iter().all(|b| is_tchar(*b)),
            };
            name_ok && value_ok
        })
    })
}

/// Builds this hop's `Forwarded` element: `for=…;proto=https` plus
/// `;host="…"` when the host is safe inside a quoted string (an authority
/// that passed [`authority_host`] always is).
pub(super) fn forwarded_element(forwarded_for: &str, host: Option<&str>) -> Option<HeaderValue> {
    let host = host.filter(|h| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    });
    let value = match host {
        Some(h) => format!("{forwarded_for};host=\"{h}\""),
        None => forwarded_for.to_owned(),
    };
    HeaderValue::try_from(value).ok()
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
    fn authority_host_lowercases_and_drops_port_and_dot() {
        assert_eq!(
            authority_host("WWW.W.test:8443").as_deref(),
            Some("www.w.test")
        );
        assert_eq!(authority_host("www.w.test.").as_deref(), Some("www.w.test"));
        assert_eq!(authority_host("www.w.test:").as_deref(), Some("www.w.test"));
        assert_eq!(authority_host("[::1]:443").as_deref(), Some("[::1]"));
        assert_eq!(authority_host("127.0.0.1").as_deref(), Some("127.0.0.1"));
        for bad in [
            "",
            "adm.w.test\\",
            "a\"b",
            "user@host",
            "host:port",
            "host:123456",
            "[::1",
            "[nope]",
            "[::1]x",
            "a..b",
            ".a",
            "a b",
        ] {
            assert_eq!(authority_host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn host_header_and_authority_must_agree() {
        let h = headers(&[("host", "www.w.test:443")]);
        assert_eq!(request_host(None, &h), Ok(Some("www.w.test".into())));
        assert_eq!(
            request_host(Some("WWW.w.test"), &h),
            Ok(Some("www.w.test".into()))
        );
        assert!(request_host(Some("adm.w.test"), &h).is_err());
        assert_eq!(
            request_host(Some("adm.w.test"), &HeaderMap::new()),
            Ok(Some("adm.w.test".into()))
        );
        assert_eq!(request_host(None, &HeaderMap::new()), Ok(None));
        let two = headers(&[("host", "www.w.test"), ("host", "adm.w.test")]);
        assert!(request_host(None, &two).is_err());
        let backslash = headers(&[("host", "www.w.test\\")]);
        assert!(request_host(None, &backslash).is_err());
    }

    #[test]
    fn only_websocket_upgrades() {
        assert!(is_websocket_upgrade(&headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
        ])));
        for u in ["h2c", "websocket, h2c", "TLS/1.2", ""] {
            assert!(
                !is_websocket_upgrade(&headers(&[("connection", "upgrade"), ("upgrade", u)])),
                "{u}"
            );
        }
        assert!(!is_websocket_upgrade(&headers(&[("upgrade", "websocket")])));
        assert!(!is_websocket_upgrade(&headers(&[
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("upgrade", "h2c"),
        ])));
    }

    #[test]
    fn forwarded_values_are_validated() {
        for good in [
            &b"for=192.0.2.60;proto=http;by=203.0.113.43"[..],
            b"for=\"[2001:db8:cafe::17]:4711\"",
            b"for=192.0.2.43, for=198.51.100.17",
            b"for=_hidden;host=\"a.example:443\"",
        ] {
            assert!(
                forwarded_is_clean(good),
                "{}",
                String::from_utf8_lossy(good)
            );
        }
        for bad in [
            &b""[..],
            b"for=127.0.0.1;host=\"adm.w.test\\\", for=6.6.6.6",
            b"for=\"a\\\"b\"",
            b"for",
            b"for=",
            b"for=\"unterminated",
            b"for=a b",
            b"f r=1",
            b"for=\"\x01\"",
        ] {
            assert!(!forwarded_is_clean(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn our_forwarded_element_never_carries_a_backslash() {
        let v = forwarded_element("for=127.0.0.1;proto=https", Some("www.w.test:443"));
        assert_eq!(
            v.as_ref().map(HeaderValue::as_bytes),
            Some(&b"for=127.0.0.1;proto=https;host=\"www.w.test:443\""[..])
        );
        let v = forwarded_element("for=127.0.0.1;proto=https", Some("adm.w.test\\"));
        assert_eq!(
            v.as_ref().map(HeaderValue::as_bytes),
            Some(&b"for=127.0.0.1;proto=https"[..])
        );
        let v6 = forwarded_element("for=\"[::1]\";proto=https", None);
        assert!(v6.is_some_and(|v| forwarded_is_clean(v.as_bytes())));
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Whatever a client sends as Host, what passes is a lower-case
            /// name or IP literal that can sit in a quoted string, and the
            /// element the proxy builds from it is clean RFC 7239.
            #[test]
            fn any_host_gives_a_safe_name_or_a_refusal(host in "[ -~]{0,40}") {
                if let Some(h) = authority_host(&host) {
                    prop_assert!(!h.is_empty());
                    prop_assert!(!h.contains(['\\', '"', ' ', '@']));
                    prop_assert_eq!(h.to_ascii_lowercase(), h.clone());
                    let v = forwarded_element("for=127.0.0.1;proto=https", Some(&host));
                    prop_assert!(v.is_some_and(|v| forwarded_is_clean(v.as_bytes())));
                }
            }

            #[test]
            fn forwarded_validation_never_panics(v in proptest::collection::vec(any::<u8>(), 0..80)) {
                let _ = forwarded_is_clean(&v);
            }
        }
    }
}
