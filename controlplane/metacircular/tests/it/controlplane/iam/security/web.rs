//! The web-facing items of the adversarial review (issue 12): each test
//! performs the attack against a running `mcd controlplane` on 127.0.0.1
//! and asserts the refusal.

use std::process::Command;

use super::super::Controlplane;

const LIMITS: &str = "requests_per_minute_per_ip = 10000\nfailures_per_minute_per_ip = 10000\n";

/// A raw curl exchange that does not follow redirects: (status, headers
/// lowercased as "name: value" lines, body).
fn raw(args: &[&str]) -> (u16, Vec<String>, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D", "-", "-o", "-"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .map_or((text.as_str(), ""), |(h, b)| (h, b));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .map(|l| match l.split_once(':') {
            Some((k, v)) => format!("{}: {}", k.to_ascii_lowercase(), v.trim()),
            None => l.to_owned(),
        })
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    headers.iter().find_map(|h| h.strip_prefix(prefix.as_str()))
}

/// Posts the UI login form (as a same-origin browser would) with `fields`.
fn ui_login(cp: &Controlplane, fields: &[(&str, &str)]) -> (u16, Vec<String>, String) {
    let mut args: Vec<String> = vec!["--cacert".into(), cp.ca.clone()];
    for (k, v) in fields {
        args.push("--data-urlencode".into());
        args.push(format!("{k}={v}"));
    }
    args.push(format!("{}/ui/login", cp.rest));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    raw(&refs)
}

/// Item 4: after a successful sign-in, `return_to` never leads off the
/// origin, whatever the browser would strip or fold (tab, newline,
/// backslash, their percent-encoded forms, `//`, absolute URLs), and a
/// refused value is a clean redirect to `/ui/`, never a 500.
#[test]
fn open_redirect_after_sign_in_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), LIMITS);
    for evil in [
        "/\t/evil.example",
        "/%09/evil.example",
        "/\n/evil.example",
        "/%0a/evil.example",
        "/\r\n/evil.example",
        "/\\evil.example",
        "/%5cevil.example",
        "/%5C%5Cevil.example",
        "/%2f%2fevil.example",
        "/%2F/evil.example",
        "//evil.example",
        "///evil.example",
        "/..//evil.example",
        "https://evil.example/",
        "https:evil.example",
        "evil.example",
    ] {
        let (code, headers, body) = ui_login(
            &cp,
            &[
                ("username", "admin"),
                ("password", &cp.password),
                ("return_to", evil),
            ],
        );
        assert_eq!(code, 303, "return_to={evil:?}: {body}");
        assert!(
            header(&headers, "set-cookie").is_some(),
            "return_to={evil:?}: signed in"
        );
        assert_eq!(
            header(&headers, "location"),
            Some("/ui/"),
            "return_to={evil:?}"
        );
    }
    // A local path is still followed.
    let (code, headers, _) = ui_login(
        &cp,
        &[
            ("username", "admin"),
            ("password", &cp.password),
            ("return_to", "/ui/admin/audit?x=1"),
        ],
    );
    assert_eq!(
        (code, header(&headers, "location")),
        (303, Some("/ui/admin/audit?x=1"))
    );
}
