//! MC-Proxy end to end: `mcd dataplane` with real clients (openssl s_client,
//! curl) and real backends (openssl s_server, nginx stream), on 127.0.0.0/8.
//! Every scenario runs on io_uring (where the kernel allows it) and on epoll.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::peers::{Answer, Dataplane, Nginx, exchange, free_port, is_reset, wait_port};

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A self-signed certificate for `names`, written as `<stem>.pem` / `<stem>.key`.
fn cert(dir: &Path, stem: &str, cn: &str, names: &[&str]) -> (String, String) {
    let pem = dir.join(format!("{stem}.pem"));
    let key = dir.join(format!("{stem}.key"));
    let san = names
        .iter()
        .map(|n| format!("DNS:{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&pem)
        .args([
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            &format!("subjectAltName={san}"),
        ])
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
    (pem.display().to_string(), key.display().to_string())
}

struct SServer(std::process::Child);

impl SServer {
    fn start(port: u16, pem: &str, key: &str) -> Self {
        let child = Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-cert",
                pem,
                "-key",
                key,
                "-www",
                "-quiet",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        wait_port(port);
        Self(child)
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl s_client` through the proxy; returns (success, output).
fn s_client(proxy: std::net::SocketAddr, servername: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &proxy.to_string(), "-brief"]);
    match servername {
        Some(s) => cmd.args(["-servername", s]),
        None => cmd.arg("-noservername"),
    };
    let out = cmd.stdin(Stdio::null()).output().expect("openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && text.contains("CONNECTION ESTABLISHED"),
        text,
    )
}

fn sni_routing_reaches_the_right_backend(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a_pem, a_key) = cert(dir.path(), "a", "backend-a", &["a.test"]);
    let (b_pem, b_key) = cert(dir.path(), "b", "backend-b", &["*.b.test", "x.y.b.test"]);
    let (pa, pb) = (free_port(), free_port());
    let _a = SServer::start(pa, &a_pem, &a_key);
    let _b = SServer::start(pb, &b_pem, &b_key);
    let listen = free_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n\
             [[proxy.routes]]\nhostname = \"a.test\"\nbackends = [\"127.0.0.1:{pa}\"]\n"
        ),
    );
    dp.ok(&[
        "proxy",
        "routes",
        "add",
        "*.b.test",
        "--backend",
        &format!("127.0.0.1:{pb}"),
    ]);
    let proxy = dp.listen("public");

    let (ok, text) = s_client(proxy, Some("a.test"));
    assert!(ok && text.contains("backend-a"), "{text}");
    let (ok, text) = s_client(proxy, Some("A.TeSt"));
    assert!(ok && text.contains("backend-a"), "case-insensitive: {text}");
    let (ok, text) = s_client(proxy, Some("x.y.b.test"));
    assert!(ok && text.contains("backend-b"), "wildcard: {text}");

    // curl verifies the backend's certificate for the name: the bytes went through untouched.
    let port = proxy.port();
    for (name, ca) in [("a.test", &a_pem), ("x.y.b.test", &b_pem)] {
        let (code, body) = crate::support::curl(&[
            "--cacert",
            ca,
            "--resolve",
            &format!("{name}:{port}:127.0.0.1"),
            &format!("https://{name}:{port}/"),
        ]);
        assert_eq!(code, 200, "{name}: {body}");
    }

    let (ok, text) = s_client(proxy, Some("unknown.test"));
    assert!(
        !ok && !text.contains("alert"),
        "unknown SNI must be a bare reset: {text}"
    );
    let (ok, text) = s_client(proxy, None);
    assert!(!ok, "no SNI without a default route must be reset: {text}");
    let raw = exchange(proxy, ip(1), b"", Some("unknown.test"));
    assert!(is_reset(&raw), "{raw:?}");

    let status = dp.status();
    let public = &status["listeners"][0];
    assert!(public["unrouted"].as_u64().unwrap_or(0) >= 3, "{status}");
    let routes = public["routes"].as_array().expect("routes");
    assert!(
        routes
            .iter()
            .all(|r| r["bytes_backend_to_client"].as_u64().unwrap_or(0) > 0),
        "{status}"
    );
    let listing = dp.ok(&["proxy", "routes", "list"]);
    assert!(
        listing.contains("config") && listing.contains("api"),
        "origins are visible: {listing}"
    );
}
both_drivers!(sni_routing_reaches_the_right_backend);

fn firewall_resets_blocked_clients(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mmdb = dir.path().join("geo.mmdb");
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../dataplane/firewall/tests/fixtures/make-mmdb.pl");
    let status = Command::new("perl")
        .arg(&script)
        .arg(&mmdb)
        .args(["127.0.0.0/8=FR", "127.0.0.4/32=CN"])
        .status()
        .expect("perl (scripts/test installs libmaxmind-db-writer-perl)");
    assert!(status.success(), "building the GeoIP fixture failed");
    let backend = free_port();
    let _nginx = Nginx::start(dir.path(), &[(backend, Answer::Text("hello"))]);
    let listen = free_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n\
             [[proxy.routes]]\nhostname = \"fw.test\"\nbackends = [\"127.0.0.1:{backend}\"]\n\
             [proxy.firewall]\nblock_ips = [\"127.0.0.2\"]\ngeoip_db = \"{}\"\n",
            mmdb.display()
        ),
    );
    dp.ok(&["proxy", "firewall", "add", "--cidr", "127.0.1.0/24"]);
    dp.ok(&["proxy", "firewall", "add", "--country", "cn"]);
    let proxy = dp.listen("public");

    assert_eq!(
        exchange(proxy, ip(1), b"", Some("fw.test")).expect("allowed"),
        b"hello"
    );
    for (source, reason) in [
        (ip(2), "ip"),
        (IpAddr::V4(Ipv4Addr::new(127, 0, 1, 9)), "cidr"),
        (ip(4), "country"),
    ] {
        let before = dp.blocks(reason);
        let r = exchange(proxy, source, b"", Some("fw.test"));
        assert!(is_reset(&r), "{source} must see ECONNRESET, got {r:?}");
        assert_eq!(dp.blocks(reason), before + 1, "{reason} counter");
    }
    let (code, metrics) = crate::support::curl(&[&dp.metrics]);
    assert_eq!(code, 200);
    assert!(
        metrics.contains("mc_proxy_blocks_total{reason=\"country\"} 1"),
        "{metrics}"
    );

    // The file owns its rules; the API may not remove them. Bad input changes nothing.
    let out = dp.mcctl(&["proxy", "firewall", "remove", "--ip", "127.0.0.2"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("config file"));
    for bad in [
        ["--cidr", "127.0.1.7/24"],
        ["--country", "ZZ"],
        ["--ip", "300.1.1.1"],
    ] {
        let out = dp.mcctl(&["proxy", "firewall", "add", bad[0], bad[1]]);
        assert!(!out.status.success(), "{bad:?} must be refused");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
    let list = dp.ok(&["--json", "proxy", "firewall", "list"]);
    let list: serde_json::Value = serde_json::from_str(&list).expect("json");
    assert_eq!(list["rules"].as_array().map(Vec::len), Some(3), "{list}");
    assert_eq!(list["geoip"]["database_type"], "GeoIP2-Country");

    // Lifting a block takes effect at once; a GeoIP reload keeps working.
    dp.ok(&["proxy", "firewall", "remove", "--country", "CN"]);
    assert_eq!(
        exchange(proxy, ip(4), b"", Some("fw.test")).expect("unblocked"),
        b"hello"
    );
    dp.ok(&["proxy", "geoip-reload"]);
}
both_drivers!(firewall_resets_blocked_clients);

fn rate_limit_resets_then_readmits(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = free_port();
    let _nginx = Nginx::start(dir.path(), &[(backend, Answer::Text("ok"))]);
    let listen = free_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n\
             [[proxy.routes]]\nhostname = \"rl.test\"\nbackends = [\"127.0.0.1:{backend}\"]\n"
        ),
    );
    dp.ok(&["proxy", "firewall", "limits", "--rate", "1", "--burst", "2"]);
    let proxy = dp.listen("public");
    let source = ip(9);
    assert_eq!(
        exchange(proxy, source, b"", Some("rl.test")).expect("1st"),
        b"ok"
    );
    assert_eq!(
        exchange(proxy, source, b"", Some("rl.test")).expect("2nd"),
        b"ok"
    );
    let third = exchange(proxy, source, b"", Some("rl.test"));
    assert!(is_reset(&third), "over the burst: {third:?}");
    // Another client is not affected.
    assert_eq!(
        exchange(proxy, ip(10), b"", Some("rl.test")).expect("other client"),
        b"ok"
    );
    assert!(dp.blocks("rate_limit") >= 1);
    // One token per second: after the window the client is admitted again.
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(
        exchange(proxy, source, b"", Some("rl.test")).expect("after the window"),
        b"ok"
    );

    // Connection limits are validated: a rate without a burst is refused.
    let out = dp.mcctl(&["proxy", "firewall", "limits", "--rate", "5"]);
    assert!(!out.status.success());
}
both_drivers!(rate_limit_resets_then_readmits);

fn proxy_protocol_carries_the_client_address(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pp_backend = free_port();
    let _nginx = Nginx::start(dir.path(), &[(pp_backend, Answer::ProxyAddr)]);
    let (edge, origin) = (free_port(), free_port());
    let dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "[[proxy.listeners]]\nname = \"edge\"\naddress = \"127.0.0.1:{edge}\"\n\
             [[proxy.listeners]]\nname = \"origin\"\naddress = \"127.0.0.1:{origin}\"\nproxy_protocol = \"any\"\ntrusted_proxies = [\"127.0.0.1/32\"]\n\
             [[proxy.routes]]\nlistener = \"edge\"\nhostname = \"pp.test\"\nbackends = [\"127.0.0.1:{origin}\"]\nsend_proxy_protocol = \"v2\"\n\
             [[proxy.routes]]\nlistener = \"origin\"\nhostname = \"pp.test\"\nbackends = [\"127.0.0.1:{pp_backend}\"]\nsend_proxy_protocol = \"v1\"\n"
        ),
    );
    let edge_addr = dp.listen("edge");
    let origin_addr = dp.listen("origin");

    // Edge → origin → nginx: the client address survives two hops (v2 then v1).
    let got = exchange(edge_addr, ip(7), b"", Some("pp.test")).expect("chain");
    assert_eq!(String::from_utf8_lossy(&got), "127.0.0.7");

    // A trusted peer's v1 and v2 headers are believed.
    let v1 = b"PROXY TCP4 198.51.100.9 127.0.0.1 40000 443\r\n";
    let got = exchange(origin_addr, ip(1), v1, Some("pp.test")).expect("v1 in");
    assert_eq!(String::from_utf8_lossy(&got), "198.51.100.9");
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[
        0x21, 0x11, 0, 12, 203, 0, 113, 5, 127, 0, 0, 1, 0x9c, 0x40, 0x01, 0xbb,
    ]);
    let got = exchange(origin_addr, ip(1), &v2, Some("pp.test")).expect("v2 in");
    assert_eq!(String::from_utf8_lossy(&got), "203.0.113.5");

    // An untrusted peer sending a header is reset, and counted.
    let before = dp.blocks("untrusted_proxy");
    let r = exchange(origin_addr, ip(8), v1, Some("pp.test"));
    assert!(is_reset(&r), "{r:?}");
    assert_eq!(dp.blocks("untrusted_proxy"), before + 1);
    // An untrusted peer without a header is a direct client (its own address is used).
    let got = exchange(origin_addr, ip(8), b"", Some("pp.test")).expect("direct client");
    assert_eq!(String::from_utf8_lossy(&got), "127.0.0.8");
    // A trusted peer that sends garbage instead of a header is reset.
    let r = exchange(
        origin_addr,
        ip(1),
        b"PROXY TCP9 nonsense\r\n",
        Some("pp.test"),
    );
    assert!(is_reset(&r), "{r:?}");
}
both_drivers!(proxy_protocol_carries_the_client_address);

/// Threads making connections for `load.test` back to back; each must get
/// `A` or `B` (the two nginx answers) through the proxy.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(proxy: std::net::SocketAddr, threads: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let threads = (0..threads)
            .map(|_| {
                let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match exchange(proxy, ip(1), b"", Some("load.test")) {
                            Ok(body) if body == b"A" || body == b"B" => {
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                            other => failures.lock().expect("lock").push(format!("{other:?}")),
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            done,
            failures,
            threads,
        }
    }

    /// Waits until `n` more connections succeeded.
    fn wait_for(&self, n: u64) {
        let target = self.done.load(Ordering::Relaxed) + n;
        while self.done.load(Ordering::Relaxed) < target {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the threads; returns (successes, failures).
    fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("load thread");
        }
        let failures = self.failures.lock().expect("lock").clone();
        (self.done.load(Ordering::Relaxed), failures)
    }
}

fn routes_change_under_load_without_failures(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (free_port(), free_port());
    let _nginx = Nginx::start(
        dir.path(),
        &[(a, Answer::Text("A")), (b, Answer::Text("B"))],
    );
    let listen = free_port();
    let mut dp = Dataplane::start(
        dir.path(),
        io,
        &format!("[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n"),
    );
    dp.ok(&[
        "proxy",
        "routes",
        "add",
        "load.test",
        "--backend",
        &format!("127.0.0.1:{a}"),
    ]);
    let proxy = dp.listen("public");

    let load = Load::start(proxy, 4);
    let wait_for = |n: u64| load.wait_for(n);
    wait_for(50);
    // Change the backend (--replace: it has a route): the very next
    // connection follows the new table.
    dp.ok(&[
        "proxy",
        "routes",
        "add",
        "load.test",
        "--replace",
        "--backend",
        &format!("127.0.0.1:{b}"),
    ]);
    assert_eq!(
        exchange(proxy, ip(1), b"", Some("load.test")).expect("after change"),
        b"B"
    );
    wait_for(50);
    // Unrelated routes come and go.
    for i in 0..10 {
        let host = format!("other{i}.test");
        dp.ok(&[
            "proxy",
            "routes",
            "add",
            &host,
            "--backend",
            &format!("127.0.0.1:{a}"),
        ]);
        assert_eq!(
            exchange(proxy, ip(1), b"", Some(&host)).expect("new route"),
            b"A"
        );
        dp.ok(&["proxy", "routes", "remove", &host]);
        assert!(is_reset(&exchange(proxy, ip(1), b"", Some(&host))));
    }
    wait_for(50);
    let (done, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "{} of {done} connections failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    eprintln!("{done} connections under load, 0 failed");

    // Bad input is refused with a message and changes nothing.
    let before = dp.ok(&["proxy", "routes", "list"]);
    for bad in [
        vec![
            "proxy",
            "routes",
            "add",
            "bad host",
            "--backend",
            "127.0.0.1:1",
        ],
        vec![
            "proxy",
            "routes",
            "add",
            "ok.test",
            "--backend",
            "127.0.0.1:0",
        ],
        vec![
            "proxy",
            "routes",
            "add",
            "a.*.test",
            "--backend",
            "127.0.0.1:1",
        ],
        vec![
            "proxy",
            "routes",
            "add",
            "ok.test",
            "--backend",
            "127.0.0.1:1",
            "--mode",
            "l7",
        ],
        vec![
            "proxy",
            "routes",
            "add",
            "ok.test",
            "--backend",
            "127.0.0.1:1",
            "--listener",
            "nope",
        ],
    ] {
        let out = dp.mcctl(&bad);
        assert!(!out.status.success(), "{bad:?} must fail");
        assert!(!out.stderr.is_empty(), "{bad:?} must say why");
    }
    assert_eq!(dp.ok(&["proxy", "routes", "list"]), before);

    // A restart keeps the routes (and their origin).
    dp.restart();
    let proxy = dp.listen("public");
    assert_eq!(
        exchange(proxy, ip(1), b"", Some("load.test")).expect("after restart"),
        b"B"
    );
    assert!(dp.ok(&["proxy", "routes", "list"]).contains("load.test"));
}
both_drivers!(routes_change_under_load_without_failures);

fn slow_oversized_and_malformed_hellos_are_reset(io: &str) {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = free_port();
    let _nginx = Nginx::start(dir.path(), &[(backend, Answer::Text("ok"))]);
    let listen = free_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "max_client_hello = 1024\n[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\nclient_hello_timeout = \"300ms\"\n\
             [[proxy.routes]]\nhostname = \"h.test\"\nbackends = [\"127.0.0.1:{backend}\"]\n"
        ),
    );
    let proxy = dp.listen("public");
    // A hello split into 1-byte writes still works.
    let hello = crate::peers::client_hello(Some("h.test"));
    let mut s = std::net::TcpStream::connect(proxy).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    for b in &hello {
        s.write_all(std::slice::from_ref(b)).expect("write");
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    assert_eq!(out, b"ok");
    // Slowloris: half a hello, then silence past the timeout.
    let mut s = std::net::TcpStream::connect(proxy).expect("connect");
    s.write_all(&hello[..hello.len() / 2]).expect("write");
    let mut buf = [0_u8; 8];
    let err = s.read(&mut buf).expect_err("reset after the timeout");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    // Not TLS, and a hello that declares more than the bound.
    let mut s = std::net::TcpStream::connect(proxy).expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    assert_eq!(
        s.read(&mut buf).expect_err("reset").kind(),
        std::io::ErrorKind::ConnectionReset
    );
    let mut s = std::net::TcpStream::connect(proxy).expect("connect");
    s.write_all(&[0x16, 0x03, 0x01, 0x3f, 0xff, 0x01, 0x00, 0x3f, 0xfb])
        .expect("write");
    assert_eq!(
        s.read(&mut buf).expect_err("reset").kind(),
        std::io::ErrorKind::ConnectionReset
    );
    assert!(dp.status()["client_hello_failures"].as_u64().unwrap_or(0) >= 3);
}
both_drivers!(slow_oversized_and_malformed_hellos_are_reset);

fn sigterm_stops_accepting_and_drains_open_connections(io: &str) {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    let backend_port = crate::peers::echo_backend();
    let listen = free_port();
    let mut dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n\
             [[proxy.routes]]\nhostname = \"echo.test\"\nbackends = [\"127.0.0.1:{backend_port}\"]\n"
        ),
    );
    let proxy = dp.listen("public");
    let hello = crate::peers::client_hello(Some("echo.test"));
    let mut open = std::net::TcpStream::connect(proxy).expect("connect");
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    open.write_all(&hello).expect("hello");
    let mut echoed = vec![0_u8; hello.len()];
    open.read_exact(&mut echoed).expect("echo of the hello");
    assert_eq!(echoed, hello, "L4 relays the exact bytes");

    let child = dp.child_id().expect("running");
    let pid = rustix::process::Pid::from_raw(child as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    // New connections are refused once the listeners close...
    let mut refused = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(proxy).is_err() {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(refused, "listener still accepting after SIGTERM");
    // ...while the open one keeps working, half-close included.
    open.write_all(b"still here").expect("write during drain");
    let mut buf = [0_u8; 10];
    open.read_exact(&mut buf).expect("echo during drain");
    assert_eq!(&buf, b"still here");
    open.shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let mut rest = Vec::new();
    open.read_to_end(&mut rest)
        .expect("backend's EOF arrives after our half-close");
    assert!(rest.is_empty());
    let status = dp.wait_exit();
    assert!(status.success(), "drained shutdown exits 0, got {status}");
}
both_drivers!(sigterm_stops_accepting_and_drains_open_connections);

fn connection_limits_reset_the_extra_connection(io: &str) {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    let backend_port = crate::peers::echo_backend();
    let listen = free_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n\
             [[proxy.routes]]\nhostname = \"cl.test\"\nbackends = [\"127.0.0.1:{backend_port}\"]\n"
        ),
    );
    dp.ok(&[
        "proxy", "firewall", "limits", "--per-ip", "1", "--total", "2",
    ]);
    let proxy = dp.listen("public");
    let hello = crate::peers::client_hello(Some("cl.test"));
    // A refused connection may be reset before or after the hello is written:
    // either way the result is an error.
    let open = |source: IpAddr| -> std::io::Result<std::net::TcpStream> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        socket.bind(&std::net::SocketAddr::new(source, 0).into())?;
        socket.connect(&proxy.into())?;
        let mut s: std::net::TcpStream = socket.into();
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(&hello)?;
        let mut echoed = vec![0_u8; hello.len()];
        s.read_exact(&mut echoed).map(|()| s)
    };
    let first = open(ip(21)).expect("first connection from .21");
    let second = open(ip(21));
    assert!(
        second.is_err(),
        "a second concurrent connection from one IP is reset"
    );
    assert_eq!(dp.blocks("conn_limit_ip"), 1);
    let other = open(ip(22)).expect("another client is admitted");
    assert!(open(ip(23)).is_err(), "the total limit (2) is reached");
    assert_eq!(dp.blocks("conn_limit_total"), 1);
    drop(first);
    drop(other);
    // Slots are released when connections end.
    let mut admitted = false;
    for _ in 0..100 {
        if open(ip(21)).is_ok() {
            admitted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        admitted,
        "the slot came back after the first connection closed"
    );
}
both_drivers!(connection_limits_reset_the_extra_connection);

/// `mcctl proxy routes import`: a whole table (10k routes) changes the API
/// routes in one snapshot while connections keep flowing; a bad table changes
/// nothing; `--replace --yes` removes what the table no longer lists.
fn route_table_import_is_atomic_under_load(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (free_port(), free_port());
    let _nginx = Nginx::start(
        dir.path(),
        &[(a, Answer::Text("A")), (b, Answer::Text("B"))],
    );
    let listen = free_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n\
             [[proxy.routes]]\nhostname = \"file.test\"\nbackends = [\"127.0.0.1:{a}\"]\n"
        ),
    );
    let table = |n: usize, backend: u16, extra: &[serde_json::Value]| {
        let mut routes: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                serde_json::json!({
                    "hostname": format!("svc{i}.table.test"),
                    "backends": [format!("127.0.0.1:{backend}")],
                })
            })
            .collect();
        routes.extend_from_slice(extra);
        let path = dir
            .path()
            .join(format!("table-{n}-{backend}-{}.json", extra.len()));
        std::fs::write(&path, serde_json::Value::Array(routes).to_string()).expect("table");
        path.display().to_string()
    };
    let load_route = |backend: u16| serde_json::json!({"hostname": "load.test", "backends": [format!("127.0.0.1:{backend}")]});
    let first = table(10_000, a, &[load_route(a)]);
    let out = dp.ok(&["proxy", "routes", "import", &first]);
    assert!(out.contains("10001 routes: 10001 added"), "{out}");
    let proxy = dp.listen("public");

    let load = Load::start(proxy, 3);
    let wait_for = |n: u64| load.wait_for(n);
    wait_for(30);
    // Swap to a different 10k table (every backend changes) and back, under load.
    let second = table(10_000, b, &[load_route(b)]);
    for (file, expect) in [(&second, b"B"), (&first, b"A"), (&second, b"B")] {
        let out = dp.ok(&["proxy", "routes", "import", file]);
        assert!(out.contains("10001 changed"), "{out}");
        assert_eq!(
            exchange(proxy, ip(1), b"", Some("load.test")).expect("after swap"),
            expect
        );
        wait_for(30);
    }
    let (done, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "{} of {done} failed: {:?}",
        failures.len(),
        failures.first()
    );

    // A bad entry refuses the whole table; a config-file route cannot be named.
    let bad = table(
        100,
        a,
        &[serde_json::json!({"hostname": "x.test", "backends": ["nowhere"]})],
    );
    let out = dp.mcctl(&["proxy", "routes", "import", &bad]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("routes[100].backends"),
        "{err}"
    );
    // An unknown enum spelling names the entry and the known values.
    let bad_mode = table(
        1,
        a,
        &[serde_json::json!({"hostname": "m.test", "backends": ["127.0.0.1:1"], "mode": "l5"})],
    );
    let out = dp.mcctl(&["proxy", "routes", "import", &bad_mode]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("routes[1].mode")
            && err.contains("unknown route mode `l5` (l4, l7)"),
        "{err}"
    );
    let owned = table(
        1,
        a,
        &[serde_json::json!({"hostname": "file.test", "backends": [format!("127.0.0.1:{a}")]})],
    );
    let out = dp.mcctl(&["proxy", "routes", "import", &owned]);
    assert!(!out.status.success(), "config-file routes stay the file's");
    assert_eq!(
        exchange(proxy, ip(1), b"", Some("load.test")).expect("unchanged"),
        b"B",
        "refused tables changed nothing"
    );
    // With --replace, a smaller table removes what it no longer lists; the
    // file's route stays.
    let small = table(10, a, &[]);
    let out = dp.ok(&["proxy", "routes", "import", "--replace", "--yes", &small]);
    assert!(out.contains("9991 removed"), "{out}");
    assert!(is_reset(&exchange(proxy, ip(1), b"", Some("load.test"))));
    assert_eq!(
        exchange(proxy, ip(1), b"", Some("file.test")).expect("file route"),
        b"A"
    );
}
both_drivers!(route_table_import_is_atomic_under_load);

/// A TCP backend that answers every connection with its name and closes;
/// dropping it closes the listener (connections are refused from then on).
struct NamedBackend {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl NamedBackend {
    fn start(name: &'static str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        // The replayed ClientHello first, then the answer.
                        let mut hello = [0_u8; 512];
                        let _ = conn.read(&mut hello);
                        let _ = conn.write_all(name.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { port, stop }
    }
}

impl Drop for NamedBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The listener closes when its thread sees the flag.
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Two backends behind one L4 route: connections are spread over both;
/// when one goes away every connection still reaches the other; a route
/// whose first backend was never up connects to the second.
fn two_backend_failover(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = NamedBackend::start("backend-a");
    let b = NamedBackend::start("backend-b");
    let never = free_port();
    let listen = free_port();
    let dp = Dataplane::start(
        dir.path(),
        io,
        &format!(
            "[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n\
             [[proxy.routes]]\nhostname = \"pair.test\"\nbackends = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"]\n\
             [[proxy.routes]]\nhostname = \"late.test\"\nbackends = [\"127.0.0.1:{never}\", \"127.0.0.1:{}\"]\n",
            a.port, b.port, b.port
        ),
    );
    let proxy = dp.listen("public");
    let answers = |host: &str, n: usize| {
        (0..n)
            .map(|_| {
                let out = exchange(proxy, ip(1), b"", Some(host)).expect("through the proxy");
                String::from_utf8_lossy(&out).into_owned()
            })
            .collect::<Vec<_>>()
    };
    let seen = answers("pair.test", 8);
    assert!(
        seen.iter().any(|s| s == "backend-a") && seen.iter().any(|s| s == "backend-b"),
        "round robin reaches both backends: {seen:?}"
    );
    drop(a);
    let seen = answers("pair.test", 8);
    assert!(seen.iter().all(|s| s == "backend-b"), "{seen:?}");
    let seen = answers("late.test", 4);
    assert!(seen.iter().all(|s| s == "backend-b"), "{seen:?}");
}
both_drivers!(two_backend_failover);
