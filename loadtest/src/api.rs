//! The request of the `api` scenario: an HTTPS API called directly (method,
//! headers, body), built once and sent back to back on every connection.
//!
//! Everything that reaches the wire is checked here, so a typo on the command
//! line is an error rather than a malformed request measured as the server's.

use anyhow::{Result, bail};

/// The bytes of one HTTP/1.1 request. A body, when given, is sent with
/// `Content-Length`; headers are `Name: value`.
pub(crate) fn request(
    method: &str,
    headers: &[String],
    body: Option<&[u8]>,
    path: &str,
    host: &str,
) -> Result<Vec<u8>> {
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        bail!("--method `{method}` is not an HTTP method (like GET or POST)");
    }
    if !path.starts_with('/') || path.contains(|c: char| c.is_whitespace() || c.is_control()) {
        bail!("--path `{path}` must start with / and hold no spaces");
    }
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: mc-loadtest\r\n");
    for h in headers {
        let bad = || anyhow::anyhow!("--header `{h}` is not `Name: value`");
        let (name, value) = h.split_once(':').ok_or_else(bad)?;
        let name = name.trim();
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || value.contains(['\r', '\n'])
        {
            return Err(bad());
        }
        head.push_str(&format!("{name}: {}\r\n", value.trim()));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_with_headers_and_body() {
        let headers = vec![
            "X-Vault-Token: t0k".to_owned(),
            "Content-Type:application/json".to_owned(),
        ];
        let r = request(
            "POST",
            &headers,
            Some(b"{\"a\":1}"),
            "/v1/transit/encrypt/k",
            "h",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "POST /v1/transit/encrypt/k HTTP/1.1\r\nHost: h\r\nUser-Agent: mc-loadtest\r\n\
             X-Vault-Token: t0k\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
        );
    }

    #[test]
    fn get_without_body_has_no_length() {
        let r = String::from_utf8(request("GET", &[], None, "/v1/secret/data/x", "h").unwrap())
            .unwrap();
        assert!(r.ends_with("User-Agent: mc-loadtest\r\n\r\n"), "{r}");
    }

    #[test]
    fn refuses_what_would_be_malformed() {
        for (method, header, path) in [
            ("get", "A: b", "/"),
            ("", "A: b", "/"),
            ("GET", "no colon", "/"),
            ("GET", ": empty name", "/"),
            ("GET", "Bad Name: x", "/"),
            ("GET", "A: b\r\nInjected: y", "/"),
            ("GET", "A: b", "no-slash"),
            ("GET", "A: b", "/with space"),
        ] {
            assert!(
                request(method, &[header.to_owned()], None, path, "h").is_err(),
                "{method} {header:?} {path:?}"
            );
        }
    }
}
