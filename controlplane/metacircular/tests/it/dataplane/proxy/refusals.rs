//! What the L4 proxy refuses: firewalled clients, clients over their rate
//! limit (then readmitted), slow, oversized and malformed ClientHellos, and
//! connections over a limit.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::ip;
use crate::peers::{Answer, Dataplane, Nginx, exchange, free_port, is_reset};

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
