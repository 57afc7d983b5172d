//! L4 routing: SNI picks the backend, the PROXY protocol carries the
//! client address, and a route with two backends fails over.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{SServer, cert, ip, s_client};
use crate::peers::{Answer, Dataplane, Nginx, exchange, free_port, is_reset};

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

/// A TCP backend that answers every connection with its name and closes;
/// dropping it closes the listener (connections are refused from then on).
pub(super) struct NamedBackend {
    pub(super) port: u16,
    stop: Arc<AtomicBool>,
}

impl NamedBackend {
    pub(super) fn start(name: &'static str) -> Self {
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
