//! L7 path rules: the longest prefix picks the backends, stripping shows in
//! the backend's request target, over HTTP/2 and HTTP/1.1; rules set from
//! the file and from mcctl; changing them under a request loop fails no
//! request.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::backends::Backends;
use super::{Site, add_l7, curl};

fn path_rules_route_strip_and_change_under_load(io: &str) {
    let site = Site::new();
    let backends = Backends::new();
    let root = backends.http("root");
    let api = backends.http("api");
    let v2 = backends.http("v2");
    let file_route = format!(
        "[[proxy.routes]]\nhostname = \"file.l7.test\"\nbackends = [\"127.0.0.1:{root}\"]\nmode = \"l7\"\n\
         l7 = {{ certificate = \"site\", paths = [\
         {{ prefix = \"/api/\", backends = [\"127.0.0.1:{api}\"], strip_prefix = true }}, \
         {{ prefix = \"/api/v2/\", backends = [\"127.0.0.1:{v2}\"], backend_protocol = \"h2c\", strip_prefix = true }}] }}\n"
    );
    let (dp, proxy) = site.start(io, &file_route);
    let ca = site.pki.ca();
    let get = |host: &str, path: &str, client: &str| {
        let (code, body) = curl(proxy, &ca, host, path, &[client]);
        assert_eq!(code, 200, "{host}{path} {client}: {body}");
        body.trim().to_owned()
    };
    for client in ["--http2", "--http1.1"] {
        // Stripped, query kept; the longest prefix wins; `/apix` is no `/api/`.
        assert_eq!(
            get("file.l7.test", "/api/users?x=1", client),
            "backend api /users?x=1"
        );
        assert_eq!(get("file.l7.test", "/api/", client), "backend api /");
        assert_eq!(
            get("file.l7.test", "/api/v2/items", client),
            "backend v2 /items"
        );
        assert_eq!(get("file.l7.test", "/", client), "backend root /");
        assert_eq!(get("file.l7.test", "/apix", client), "backend root /apix");
        let (code, body) = curl(proxy, &ca, "file.l7.test", "/api/v2/headers", &[client]);
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("version=HTTP/2.0"), "the rule's h2c: {body}");
    }

    // The same through mcctl, then listed.
    let add = |api_backend: u16, extra: &[&str]| {
        let rule = format!("/api/=127.0.0.1:{api_backend}");
        let mut args = vec!["--replace", "--path", &rule];
        args.extend_from_slice(extra);
        let out = add_l7(&dp, "app.l7.test", root, &args);
        assert!(out.status.success(), "{out:?}");
    };
    add(api, &["--strip-prefix", "/api/"]);
    for client in ["--http2", "--http1.1"] {
        assert_eq!(
            get("app.l7.test", "/api/a?b=c", client),
            "backend api /a?b=c"
        );
        assert_eq!(
            get("app.l7.test", "/index.html", client),
            "backend root /index.html"
        );
    }
    let listing = dp.ok(&["--json", "proxy", "routes", "list"]);
    let routes: serde_json::Value = serde_json::from_str(&listing).expect("json");
    let app = routes
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["hostname"] == "app.l7.test"))
        .expect("listed");
    assert_eq!(
        app["paths"][0],
        format!("/api/=127.0.0.1:{api} (stripped)"),
        "{app}"
    );

    // A bad rule is refused by name and changes nothing.
    for (bad, says) in [
        ("api/=127.0.0.1:1", "must start with `/`"),
        ("/a?b=127.0.0.1:1", "no `?` or `#`"),
        ("/x=nowhere", "has no port"),
    ] {
        let out = add_l7(&dp, "app.l7.test", 1, &["--replace", "--path", bad]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{bad}: {err}");
        assert!(err.contains("l7.paths[0]"), "names the rule: {err}");
    }
    assert_eq!(get("app.l7.test", "/api/a", "--http2"), "backend api /a");

    // Rules change under four request loops (new connections, both HTTP
    // versions): every request is answered by the old rule's backend or
    // the new one's, none fails.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let loops: Vec<_> = (0..4)
        .map(|i| {
            let (stop, done, ca) = (stop.clone(), done.clone(), ca.clone());
            let client = if i % 2 == 0 { "--http2" } else { "--http1.1" };
            std::thread::spawn(move || {
                let mut bad = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let url = format!("https://app.l7.test:{}/api/n", proxy.port());
                    let out = Command::new("curl")
                        .args(["-sS", "--max-time", "10", client, "--cacert", &ca])
                        .arg("--resolve")
                        .arg(format!("app.l7.test:{}:127.0.0.1", proxy.port()))
                        .args(["-w", "%{http_code}\\n", &url, &url])
                        .output()
                        .expect("curl");
                    let text = String::from_utf8_lossy(&out.stdout).into_owned();
                    let lines: Vec<&str> = text.lines().collect();
                    let ok = out.status.success()
                        && lines.len() == 4
                        && lines.chunks(2).all(|c| {
                            c[1] == "200"
                                && (c[0] == "backend api /n" || c[0] == "backend v2 /api/n")
                        });
                    if !ok {
                        bad.push(format!("{text} {}", String::from_utf8_lossy(&out.stderr)));
                    }
                    done.fetch_add(2, Ordering::Relaxed);
                }
                bad
            })
        })
        .collect();
    for round in 0..10 {
        if round % 2 == 0 {
            add(v2, &[]);
        } else {
            add(api, &["--strip-prefix", "/api/"]);
        }
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = loops
        .into_iter()
        .flat_map(|t| t.join().expect("loop"))
        .collect();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(done.load(Ordering::Relaxed) >= 8, "the loops ran");
    // The last change (round 9) holds.
    assert_eq!(get("app.l7.test", "/api/z", "--http1.1"), "backend api /z");
}
both_drivers!(path_rules_route_strip_and_change_under_load);
