//! L7 HTTP: HTTP/2 and HTTP/1.1 clients, plain and TLS backends, error
//! answers and policies; WebSocket upgrades; the PROXY protocol address in
//! the backend's headers; failover between two backends.

use std::process::Command;

use futures_util::{SinkExt, StreamExt};

use super::backends::Backends;
use super::{Pki, curl, l7_toml, route, tls_to};
use crate::peers::{Dataplane, free_port};

fn http_versions_backends_errors_and_policies(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (chain, key, _) = pki.leaf("site", &["*.l7.test"]);
    let (bchain, bkey, _) = pki.leaf("backend", &["backend.test"]);
    let backends = Backends::new();
    let plain = backends.http("plain");
    let tls_backend = backends.https("tls", &bchain, &bkey);
    let closed = free_port();
    let listen = free_port();
    let routes = [
        route("h1.l7.test", plain, "certificate = \"site\", backend_protocol = \"http1\""),
        route("h2c.l7.test", plain, "certificate = \"site\", backend_protocol = \"h2c\""),
        route(
            "tls.l7.test",
            tls_backend,
            "certificate = \"site\", backend_protocol = \"tls\", backend_server_name = \"backend.test\"",
        ),
        route("down.l7.test", closed, "certificate = \"site\""),
        // Backend certificates are verified: the name 127.0.0.1 is not in it…
        route(
            "unverified.l7.test",
            tls_backend,
            "certificate = \"site\", backend_protocol = \"tls\"",
        ),
        // …unless verification is turned off, explicitly.
        route(
            "insecure.l7.test",
            tls_backend,
            "certificate = \"site\", backend_protocol = \"tls\", backend_tls_insecure_skip_verify = true",
        ),
        route(
            "slow.l7.test",
            plain,
            "certificate = \"site\", backend_response_timeout = \"500ms\"",
        ),
        // L4 on the same listener: the backend's own certificate reaches the client.
        format!("[[proxy.routes]]\nhostname = \"backend.test\"\nbackends = [\"127.0.0.1:{tls_backend}\"]\n"),
    ]
    .concat();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &l7_toml(&pki, listen, &[("site", &chain, &key)], &routes),
    );
    let proxy = dp.listen("public");
    let ca = pki.ca();

    for (host, backend_version) in [
        ("h1.l7.test", "HTTP/1.1"),
        ("h2c.l7.test", "HTTP/2.0"),
        ("tls.l7.test", "HTTP/2.0"),
    ] {
        for client in ["--http2", "--http1.1"] {
            let (code, body) = curl(
                proxy,
                &ca,
                host,
                "/headers",
                &[
                    client,
                    "-H",
                    "X-Forwarded-For: 198.51.100.9",
                    "-A",
                    "curl-test",
                ],
            );
            assert_eq!(code, 200, "{host} {client}: {body}");
            assert!(
                body.contains(&format!("version={backend_version}")),
                "{host} {client}: {body}"
            );
            // A direct client's X-Forwarded-For is not believed (security suite, item 10).
            assert!(
                body.contains("x-forwarded-for: 127.0.0.1\n") && !body.contains("198.51.100.9"),
                "XFF set by the proxy: {body}"
            );
            assert!(body.contains("x-real-ip: 127.0.0.1"), "{body}");
            assert!(body.contains("x-forwarded-proto: https"), "{body}");
            assert!(
                body.contains(&format!(
                    "forwarded: for=127.0.0.1;proto=https;host=\"{host}:{}\"",
                    proxy.port()
                )),
                "{body}"
            );
            let host_line = if backend_version == "HTTP/1.1" {
                format!("host: {host}:{}", proxy.port())
            } else {
                String::new()
            };
            assert!(body.contains(&host_line), "host preserved: {body}");
        }
    }
    // Hop-by-hop headers (and those `Connection` names) stop at the proxy.
    let (code, body) = curl(
        proxy,
        &ca,
        "h1.l7.test",
        "/headers",
        &[
            "--http1.1",
            "-H",
            "Connection: keep-alive, X-Hop",
            "-H",
            "X-Hop: 1",
            "-H",
            "Keep-Alive: timeout=5",
        ],
    );
    assert_eq!(code, 200);
    assert!(
        !body.contains("x-hop") && !body.contains("keep-alive"),
        "{body}"
    );

    // The L4 route on the same listener: curl verifies the backend's own certificate.
    let (code, body) = curl(proxy, &ca, "backend.test", "/x", &[]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("backend tls /x"), "{body}");

    let (code, body) = curl(proxy, &ca, "unverified.l7.test", "/", &[]);
    assert_eq!(
        code, 502,
        "a backend failing verification is not used: {body}"
    );
    let (code, body) = curl(proxy, &ca, "insecure.l7.test", "/", &[]);
    assert_eq!(code, 200, "{body}");

    // Errors: refused → 502, then marked down → 503; slow → 504.
    let (code, body) = curl(proxy, &ca, "down.l7.test", "/", &[]);
    assert_eq!(code, 502, "{body}");
    let (code, body) = curl(proxy, &ca, "down.l7.test", "/", &[]);
    assert_eq!(code, 503, "{body}");
    let (code, body) = curl(proxy, &ca, "slow.l7.test", "/slow", &[]);
    assert_eq!(code, 504, "{body}");

    // Policies through mcctl: first match wins, a match is 403.
    dp.ok(&[
        "proxy",
        "policies",
        "add",
        "h1.l7.test",
        "--block-user-agent",
        "BadBot",
    ]);
    dp.ok(&[
        "proxy",
        "policies",
        "add",
        "h1.l7.test",
        "--require-header",
        "x-team=blue",
    ]);
    let (code, _) = curl(
        proxy,
        &ca,
        "h1.l7.test",
        "/",
        &["-A", "Mozilla badbot/2", "-H", "x-team: blue"],
    );
    assert_eq!(code, 403);
    let (code, _) = curl(proxy, &ca, "h1.l7.test", "/", &["-H", "x-team: red"]);
    assert_eq!(code, 403);
    let (code, body) = curl(proxy, &ca, "h1.l7.test", "/", &["-H", "x-team: blue"]);
    assert_eq!(code, 200, "{body}");
    let bad = dp.mcctl(&[
        "proxy",
        "policies",
        "add",
        "backend.test",
        "--block-user-agent",
        "x",
    ]);
    assert!(!bad.status.success(), "policies need an L7 route");
    let listing = dp.ok(&["proxy", "policies", "list", "--json"]);
    let policies: serde_json::Value = serde_json::from_str(&listing).expect("json");
    let id = policies[0]["id"].as_str().expect("id").to_owned();
    dp.ok(&["proxy", "policies", "remove", &id]);
    let (code, _) = curl(
        proxy,
        &ca,
        "h1.l7.test",
        "/",
        &["-A", "badbot", "-H", "x-team: blue"],
    );
    assert_eq!(code, 200, "removed policy no longer applies");

    // h2load: many concurrent streams, no errors.
    let out = Command::new("h2load")
        .args(["-n", "2000", "-c", "4", "-m", "16"])
        .arg(format!("--connect-to=127.0.0.1:{}", proxy.port()))
        .arg(format!("https://h2c.l7.test:{}/", proxy.port()))
        .output()
        .expect("h2load (scripts/test installs nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("2000 succeeded, 0 failed, 0 errored"),
        "h2load: {text}"
    );

    let status = dp.status();
    let routes = status["listeners"][0]["routes"].as_array().expect("routes");
    let stats = |h: &str| {
        routes
            .iter()
            .find(|r| r["hostname"] == h)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(stats("down.l7.test")["responses"]["502"], 1, "{status}");
    assert_eq!(stats("down.l7.test")["responses"]["503"], 1, "{status}");
    assert_eq!(stats("slow.l7.test")["responses"]["504"], 1, "{status}");
    assert!(
        stats("h1.l7.test")["policy_blocks"].as_u64() >= Some(2),
        "{status}"
    );
    assert!(
        stats("h2c.l7.test")["responses"]["2xx"].as_u64() >= Some(2002),
        "{status}"
    );
    let (code, metrics) = crate::support::curl(&[&dp.metrics]);
    assert_eq!(code, 200);
    assert!(
        metrics.contains(
            "proxy_http_responses_total{listener=\"public\",route=\"down.l7.test\",code=\"502\"} 1"
        ),
        "{metrics}"
    );
}
both_drivers!(http_versions_backends_errors_and_policies);

fn websocket_echo_over_http1_upgrade(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (chain, key, _) = pki.leaf("ws", &["ws.test"]);
    let backends = Backends::new();
    let plain = backends.http("ws");
    let listen = free_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &l7_toml(
            &pki,
            listen,
            &[("ws", &chain, &key)],
            &route("ws.test", plain, "certificate = \"ws\""),
        ),
    );
    let proxy = dp.listen("public");
    let ca = pki.ca();
    backends.rt.block_on(async {
        use tokio_tungstenite::tungstenite::Message;
        let tls = tls_to(proxy, &ca, "ws.test", b"").await;
        let (mut ws, resp) = tokio_tungstenite::client_async("wss://ws.test/ws", tls)
            .await
            .expect("websocket handshake through the proxy");
        assert_eq!(resp.status(), 101);
        for i in 0..10 {
            let m = format!("hello {i}");
            ws.send(Message::text(m.clone())).await.expect("send");
            let back = ws.next().await.expect("frame").expect("ok");
            assert_eq!(back.into_text().expect("text").as_str(), m);
        }
        let blob = vec![42u8; 200_000];
        ws.send(Message::binary(blob.clone())).await.expect("send");
        let back = ws.next().await.expect("frame").expect("ok");
        assert_eq!(back.into_data().as_ref(), blob.as_slice());
    });
}
both_drivers!(websocket_echo_over_http1_upgrade);

fn proxy_protocol_address_reaches_the_backend_headers(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (chain, key, _) = pki.leaf("site", &["pp.test"]);
    let backends = Backends::new();
    let plain = backends.http("plain");
    let listen = free_port();
    let toml = format!(
        "certificate_authorities = [\"{}\"]\n[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n\
         proxy_protocol = \"v1\"\ntrusted_proxies = [\"127.0.0.0/8\"]\n\
         [[proxy.certificates]]\nname = \"site\"\nchain_file = \"{chain}\"\nkey_file = \"{key}\"\n{}",
        pki.ca(),
        route("pp.test", plain, "certificate = \"site\"")
    );
    let dp = Dataplane::start(dir.path(), io, &toml);
    let proxy = dp.listen("public");
    let ca = pki.ca();
    let body = backends.rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // An edge proxy in front vouches for the client 203.0.113.7.
        let mut tls = tls_to(
            proxy,
            &ca,
            "pp.test",
            b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n",
        )
        .await;
        tls.write_all(b"GET /headers HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n")
            .await
            .expect("request");
        let mut out = Vec::new();
        let end = tls.read_to_end(&mut out).await;
        assert!(end.is_ok(), "the proxy ends TLS with close_notify: {end:?}");
        String::from_utf8_lossy(&out).into_owned()
    });
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("x-forwarded-for: 203.0.113.7"), "{body}");
    assert!(body.contains("x-real-ip: 203.0.113.7"), "{body}");
    assert!(
        body.contains("forwarded: for=203.0.113.7;proto=https"),
        "{body}"
    );
}
both_drivers!(proxy_protocol_address_reaches_the_backend_headers);

/// Two backends behind one L7 route: requests are spread over both; when
/// one goes away (listener and pooled connections), every request is
/// still answered, by the other; a route whose first backend was never up
/// answers from the second.
fn two_backend_failover(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let (chain, key, _) = pki.leaf("site", &["*.l7.test"]);
    let backends = Backends::new();
    let (a, stop_a) = backends.http_stoppable("a");
    let b = backends.http("b");
    let never = free_port();
    let listen = free_port();
    let both = |host: &str, first: u16, second: u16| {
        format!(
            "[[proxy.routes]]\nhostname = \"{host}\"\nbackends = [\"127.0.0.1:{first}\", \"127.0.0.1:{second}\"]\nmode = \"l7\"\nl7 = {{ certificate = \"site\" }}\n"
        )
    };
    let routes = [both("pair.l7.test", a, b), both("late.l7.test", never, b)].concat();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &l7_toml(&pki, listen, &[("site", &chain, &key)], &routes),
    );
    let proxy = dp.listen("public");
    let ca = pki.ca();
    let answers = |host: &str, n: usize| {
        (0..n)
            .map(|_| {
                let (code, body) = curl(proxy, &ca, host, "/", &[]);
                assert_eq!(code, 200, "{host}: {body}");
                body
            })
            .collect::<Vec<_>>()
    };
    let seen = answers("pair.l7.test", 8);
    assert!(
        seen.iter().any(|b| b.starts_with("backend a "))
            && seen.iter().any(|b| b.starts_with("backend b ")),
        "round robin reaches both backends: {seen:?}"
    );
    stop_a.abort();
    let seen = answers("pair.l7.test", 8);
    assert!(seen.iter().all(|b| b.starts_with("backend b ")), "{seen:?}");
    let seen = answers("late.l7.test", 4);
    assert!(seen.iter().all(|b| b.starts_with("backend b ")), "{seen:?}");
}
both_drivers!(two_backend_failover);
