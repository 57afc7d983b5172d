//! Backend health end to end, beyond `balance`: a route's own ejection
//! times (a short ejection readmits a restarted backend without an active
//! check), slow start (the readmitted backend's share grows), and active
//! checks over TLS (L4: a backend that accepts TCP but not TLS is down) and
//! gRPC health (L7 h2c: NOT_SERVING takes a backend out, SERVING brings it
//! back). Both I/O drivers, curl and real tonic health servers.

use std::time::{Duration, Instant};

use super::Site;
use super::backends::Backends;
use super::balance::{backend, requests, tally};

fn count(answers: &[String], name: &str) -> usize {
    answers.iter().filter(|a| *a == name).count()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn short_ejection_readmits_and_slow_start_ramps_up(io: &str) {
    let site = Site::new();
    let backends = Backends::new();
    let ports: Vec<u16> = (0..2).map(|_| crate::ports::free_port()).collect();
    let mut handles: Vec<_> = ["one", "two"]
        .iter()
        .zip(&ports)
        .map(|(n, p)| backends.http_at(n, *p, Duration::ZERO))
        .collect();
    let (dp, proxy) = site.start(io, "");
    let two = format!("127.0.0.1:{}", ports[1]);
    let out = super::add_l7(
        &dp,
        "ss.l7.test",
        ports[0],
        &[
            "--backend",
            &two,
            "--slow-start",
            "6s",
            "--ejection-base",
            "300ms",
            "--ejection-max",
            "600ms",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let listed = dp.ok(&["--json", "proxy", "routes", "list"]);
    assert!(
        listed.contains("slow start 6000ms, ejection 300ms-600ms"),
        "{listed}"
    );
    let ca = site.pki.ca();
    let get = |n: usize| requests(proxy, &ca, "ss.l7.test", "127.0.0.1", n, &[]);
    let t = tally(&get(20));
    assert_eq!(t.len(), 2, "both serve: {t:?}");

    // Killed: its failed connects eject it (requests go to the other).
    handles[1].abort();
    wait_until("never ejected", || {
        get(4);
        backend(&dp, "ss.l7.test", &two)["ejections"].as_u64() > Some(0)
    });
    // Back: an ejection of at most 600 ms ends without an active check (the
    // default, 10 s doubling per ejection in a row, would not within 30 s of
    // repeated failures), and its first answers come at a low share.
    handles[1] = backends.http_at("two", ports[1], Duration::ZERO);
    let mut early = Vec::new();
    wait_until("never readmitted", || {
        early = get(10);
        early.iter().any(|a| a == "two")
    });
    early.extend(get(40));
    std::thread::sleep(Duration::from_secs(7));
    let late = get(50);
    for a in early.iter().chain(&late) {
        assert!(
            !a.starts_with("ERR"),
            "a request failed: {early:?} {late:?}"
        );
    }
    let (e, l) = (count(&early, "two"), count(&late, "two"));
    eprintln!(
        "readmitted backend: {e} of {} early, {l} of 50 later",
        early.len()
    );
    assert!(
        e * 50 < l * early.len(),
        "its share grows: {e}/{} then {l}/50",
        early.len()
    );
    assert!(l >= 15, "full share after slow start: {l}/50");
    drop(handles);
}
both_drivers!(short_ejection_readmits_and_slow_start_ramps_up);

fn tls_and_grpc_health_checks(io: &str) {
    let site = Site::new();
    let b = Backends::new();
    let (chain, key, _) = site.pki.leaf("tlsb", &["tlsb.test"]);
    let tls_backend = b.https("tls", &chain, &key);
    let not_tls = b.http("plain");
    // Two gRPC health servers; the second starts NOT_SERVING.
    let grpc: Vec<_> = (0..2)
        .map(|_| {
            let (health, service) = mc_shell::health::Health::new("backend");
            let listener =
                b.rt.block_on(tokio::net::TcpListener::bind((
                    "127.0.0.1",
                    crate::ports::free_port(),
                )))
                .expect("bind");
            let port = listener.local_addr().expect("addr").port();
            b.rt.spawn(
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
            );
            (health, port)
        })
        .collect();
    b.rt.block_on(grpc[0].0.set_ready());
    b.rt.block_on(grpc[1].0.set_draining());
    let (dp, _proxy) = site.start(io, "");
    let check = [
        "--check-interval",
        "200ms",
        "--check-timeout",
        "150ms",
        "--check-rise",
        "1",
        "--check-fall",
        "1",
    ];
    let (tls_addr, plain_addr) = (
        format!("127.0.0.1:{tls_backend}"),
        format!("127.0.0.1:{not_tls}"),
    );
    let mut tls_route = vec!["proxy", "routes", "add", "tlsb.test"];
    tls_route.extend(["--backend", &tls_addr, "--backend", &plain_addr]);
    tls_route.extend(["--health-check", "tls"]);
    tls_route.extend(check);
    dp.ok(&tls_route);
    let g1 = format!("127.0.0.1:{}", grpc[1].1);
    let mut grpc_route = vec!["--backend", &g1, "--backend-protocol", "h2c"];
    grpc_route.extend(["--health-check", "grpc"]);
    grpc_route.extend(check);
    let out = super::add_l7(&dp, "grpc.l7.test", grpc[0].1, &grpc_route);
    assert!(out.status.success(), "{out:?}");

    // TLS: the backend that accepts TCP but speaks no TLS is down by its
    // check; the TLS one is up.
    let state = |host: &str, addr: &str| {
        let v = backend(&dp, host, addr);
        (
            v["up"].as_bool(),
            v["down_reason"].as_str().map(str::to_owned),
        )
    };
    wait_until("the non-TLS backend never failed its TLS check", || {
        state("tlsb.test", &plain_addr) == (Some(false), Some("check".into()))
    });
    assert_eq!(state("tlsb.test", &tls_addr).0, Some(true));

    // gRPC: NOT_SERVING is down, SERVING up; flipping it brings it back.
    wait_until("NOT_SERVING never taken out", || {
        state("grpc.l7.test", &g1) == (Some(false), Some("check".into()))
    });
    let g0 = format!("127.0.0.1:{}", grpc[0].1);
    assert_eq!(state("grpc.l7.test", &g0).0, Some(true));
    b.rt.block_on(grpc[1].0.set_ready());
    wait_until("SERVING never readmitted", || {
        state("grpc.l7.test", &g1).0 == Some(true)
    });
    b.rt.block_on(grpc[0].0.set_draining());
    wait_until("the first never taken out", || {
        state("grpc.l7.test", &g0).0 == Some(false)
    });
}
both_drivers!(tls_and_grpc_health_checks);
