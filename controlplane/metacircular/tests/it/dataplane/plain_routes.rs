//! Per-hostname control of the plain-HTTP listener (`plain_http` on the
//! hostname's route there): `redirect` (the default: 308 to https), `serve`
//! (every request relayed to the route's backends in plain HTTP) and `404`
//! (challenges still relayed, the rest refused), from the file and from
//! mcctl; refused on a TLS listener's route. Both I/O drivers, real curl.

use super::plain_http::{get, listeners, responder};
use crate::peers::{Dataplane, free_port};

fn plain_routes_redirect_serve_or_refuse_per_hostname(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (site, site_seen) = responder("the plain site");
    let (acme, acme_seen) = responder("token.thumbprint");
    let (tls, plain) = (free_port(), free_port());
    let tls_route = |h: &str| {
        format!(
            "[[proxy.routes]]\nlistener = \"public\"\nhostname = \"{h}\"\nbackends = [\"127.0.0.1:9\"]\n"
        )
    };
    let dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "{}{}{}{}\
             [[proxy.routes]]\nlistener = \"plain\"\nhostname = \"redirect.test\"\nbackends = [\"127.0.0.1:{acme}\"]\n\
             [[proxy.routes]]\nlistener = \"plain\"\nhostname = \"serve.test\"\nbackends = [\"127.0.0.1:{site}\"]\nplain_http = \"serve\"\n\
             [[proxy.routes]]\nlistener = \"plain\"\nhostname = \"nf.test\"\nbackends = [\"127.0.0.1:{acme}\"]\nplain_http = \"404\"\n",
            listeners(tls, plain),
            tls_route("redirect.test"),
            tls_route("serve.test"),
            tls_route("nf.test"),
        ),
    );

    // redirect (the default): 308 to the TLS listener.
    let (code, text) = get(plain, "redirect.test", "/a?b=1", &[]);
    assert_eq!(code, 308, "{text}");
    assert!(
        text.contains(&format!("location: https://redirect.test:{tls}/a?b=1\r\n")),
        "{text}"
    );

    // serve: any path and method reaches the site in plain HTTP, even though
    // the hostname also has a TLS route.
    let (code, text) = get(plain, "serve.test", "/page?q=2", &[]);
    assert_eq!(code, 200, "{text}");
    assert!(text.ends_with("the plain site"), "{text}");
    let (code, _) = get(plain, "serve.test", "/form", &["-X", "POST", "-d", "x=1"]);
    assert_eq!(code, 200);
    let heads = site_seen.lock().expect("lock").clone();
    assert_eq!(heads.len(), 2, "{heads:?}");
    let first = heads[0].to_ascii_lowercase();
    assert!(first.starts_with("get /page?q=2 http/1.1\r\n"), "{first}");
    assert!(
        first.contains("x-forwarded-proto: http\r\n") && first.contains("connection: close\r\n"),
        "{first}"
    );
    assert!(heads[1].starts_with("POST /form "), "{}", heads[1]);

    // 404: no redirect, but the ACME challenge still reaches the responder.
    let (code, text) = get(plain, "nf.test", "/", &[]);
    assert_eq!(code, 404, "{text}");
    let (code, text) = get(plain, "nf.test", "/.well-known/acme-challenge/t1", &[]);
    assert_eq!(code, 200, "{text}");
    assert!(text.ends_with("token.thumbprint"), "{text}");
    assert_eq!(acme_seen.lock().expect("lock").len(), 1);

    // From mcctl: a route switched to serve; `routes list` shows it.
    dp.ok(&[
        "proxy",
        "routes",
        "add",
        "api.test",
        "--listener",
        "plain",
        "--backend",
        &format!("127.0.0.1:{site}"),
        "--plain-http",
        "serve",
    ]);
    let (code, text) = get(plain, "api.test", "/x", &[]);
    assert_eq!(code, 200, "{text}");
    let listed: serde_json::Value =
        serde_json::from_str(&dp.ok(&["--json", "proxy", "routes", "list", "--listener", "plain"]))
            .expect("json");
    let modes: Vec<_> = listed
        .as_array()
        .expect("routes")
        .iter()
        .map(|r| {
            (
                r["hostname"].as_str().unwrap_or("").to_owned(),
                r["plain_http"].clone(),
            )
        })
        .collect();
    assert!(
        modes.contains(&("api.test".into(), "serve".into()))
            && modes.contains(&("nf.test".into(), "404".into())),
        "{modes:?}"
    );

    // On a TLS listener's route the setting is refused, and says why.
    let out = dp.mcctl(&[
        "proxy",
        "routes",
        "add",
        "tls.test",
        "--listener",
        "public",
        "--backend",
        "127.0.0.1:9",
        "--plain-http",
        "serve",
    ]);
    assert!(!out.status.success(), "plain_http on a TLS route accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only for routes on an http listener"), "{err}");
}

both_drivers!(plain_routes_redirect_serve_or_refuse_per_hostname);
