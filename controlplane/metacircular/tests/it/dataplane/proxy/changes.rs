//! Changes while traffic flows: routes edited and whole tables imported
//! under load without a failed connection, and the drain on SIGTERM.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::ip;
use crate::peers::{Answer, Dataplane, Nginx, exchange, free_port, is_reset};

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
