//! Zero-downtime upgrade: `mcd dataplane --upgrade` takes the running data
//! plane's sockets while clients keep connecting (new TLS connections through
//! an L4 and an L7 route, long HTTP/2 streams, dig against MCNS), three times,
//! alternating between two binary paths; and a successor that gives up, or a
//! second upgrade during one, changes nothing.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::backends::Backends;
use super::{Site, curl, route};
use crate::dataplane::dns::free_dns_port;
use crate::peers::Dataplane;

/// A successor process, stopped (SIGTERM, then waited for) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id())
            && let Some(pid) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let _ = self.0.wait();
    }
}

fn successor(exe: &std::path::Path, dp: &Dataplane) -> Running {
    Running(
        Command::new(exe)
            .arg("dataplane")
            .arg("--config")
            .arg(&dp.config)
            .arg("--upgrade")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the successor"),
    )
}

/// Waits until `mcctl proxy status` names process `pid`; returns the status.
fn wait_for_pid(dp: &Dataplane, pid: u32) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = dp.mcctl(&["--json", "proxy", "status"]);
        if out.status.success()
            && let Ok(s) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            && s["pid"] == pid
        {
            return s;
        }
        assert!(Instant::now() < deadline, "process {pid} never took over");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Open connections of `host`'s route, as the serving process counts them.
fn route_active(status: &serde_json::Value, host: &str) -> u64 {
    status["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["routes"].as_array().into_iter().flatten())
        .filter(|r| r["hostname"] == host)
        .filter_map(|r| r["connections_active"].as_u64())
        .sum()
}

fn dig_ok(port: u16) -> bool {
    let out = Command::new("dig")
        .args([
            "+short",
            "+tries=1",
            "+time=5",
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "www.up.test",
            "A",
        ])
        .output()
        .expect("dig is installed (scripts/test installs dnsutils)");
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "192.0.2.1"
}

fn upgrade_under_load(io: &str) {
    let site = Site::new();
    let b = Backends::new();
    let plain = b.http("l7");
    let (chain, key, _) = site.pki.leaf("l4", &["p.l7.test", "q.l7.test"]);
    let tls = b.https("l4", &chain, &key);
    let dns = free_dns_port();
    let routes = format!(
        "{}{}\
         [[proxy.routes]]\nhostname = \"p.l7.test\"\nbackends = [\"127.0.0.1:{tls}\"]\n\
         [[proxy.routes]]\nhostname = \"q.l7.test\"\nbackends = [\"127.0.0.1:{tls}\"]\n\
         [dns]\nlisten = [\"127.0.0.1:{dns}\"]\n\
         [[dns.zones]]\nname = \"up.test\"\nrecords = [\"www A 192.0.2.1\"]\n",
        route("a.l7.test", plain, "certificate = \"site\""),
        route("s.l7.test", plain, "certificate = \"site\""),
    );
    let (mut dp, proxy) = site.start(io, &routes);
    let ca = site.pki.ca();
    // State the admin API changed must survive every upgrade.
    super::add_l7(&dp, "api.l7.test", plain, &[]);
    let copy = site.dir.path().join("mcd-next");
    std::fs::copy(crate::support::mcd(), &copy).expect("copy mcd");

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut loops = Vec::new();
    // Four loops of new TLS connections: two through L7, two through L4.
    for (i, host) in ["a.l7.test", "p.l7.test", "api.l7.test", "p.l7.test"]
        .into_iter()
        .enumerate()
    {
        let (stop, ok, failures, ca) = (stop.clone(), ok.clone(), failures.clone(), ca.clone());
        loops.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (code, body) = curl(proxy, &ca, host, &format!("/n{i}"), &[]);
                if code == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures
                        .lock()
                        .expect("lock")
                        .push(format!("{host}: {code} {body}"));
                }
            }
        }));
    }
    let digs = Arc::new(AtomicU64::new(0));
    {
        let (stop, digs, failures) = (stop.clone(), digs.clone(), failures.clone());
        loops.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if dig_ok(dns) {
                    digs.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.lock().expect("lock").push("dig failed".into());
                }
            }
        }));
    }

    let original = crate::support::mcd();
    let mut current: Option<Running> = None;
    for round in 0..3 {
        let exe = if round % 2 == 0 {
            copy.clone()
        } else {
            original.clone()
        };
        // Long HTTP/2 streams through L7 and L4, open on the old process.
        let streams: Vec<_> = [("s.l7.test", "l7"), ("q.l7.test", "l4")]
            .into_iter()
            .map(|(host, what)| {
                let ca = ca.clone();
                std::thread::spawn(move || {
                    let got = curl(proxy, &ca, host, "/slow?ms=1500", &["--http2"]);
                    (what, got)
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = dp.status();
            if route_active(&s, "s.l7.test") >= 1 && route_active(&s, "q.l7.test") >= 1 {
                break;
            }
            assert!(Instant::now() < deadline, "the long streams never opened");
            std::thread::sleep(Duration::from_millis(20));
        }
        let next = successor(&exe, &dp);
        let status = wait_for_pid(&dp, next.0.id());
        assert_eq!(
            status["executable"].as_str(),
            Some(exe.display().to_string().as_str()),
            "{status}"
        );
        // The old process drains and exits 0.
        match current.take() {
            None => assert!(dp.wait_exit().success(), "the first process failed"),
            Some(mut old) => {
                let status = old.0.wait().expect("wait");
                assert!(status.success(), "round {round}: the old process: {status}");
            }
        }
        for s in streams {
            let (what, (code, body)) = s.join().expect("stream");
            assert_eq!(
                (code, body.as_str()),
                (200, "slow"),
                "{what} stream, round {round}"
            );
        }
        current = Some(next);
    }
    let before = ok.load(Ordering::Relaxed);
    // The last process serves on (the loops keep going a moment after the
    // last takeover), with the API's route.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ok.load(Ordering::Relaxed) < before + 8 {
        assert!(
            Instant::now() < deadline,
            "no request after the last upgrade"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.join().expect("loop");
    }
    let failures = failures.lock().expect("lock");
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
    assert!(digs.load(Ordering::Relaxed) > 0, "no dig ran");
    let listed = dp.ok(&["proxy", "routes", "list"]);
    assert!(listed.contains("api.l7.test"), "{listed}");
    drop(current);
}

both_drivers!(upgrade_under_load);

/// A successor that connects and gives up before asking for the stores, or
/// a second upgrade while one runs: the running process changes nothing.
fn abandoned_and_concurrent_upgrades_change_nothing(io: &str) {
    let site = Site::new();
    let b = Backends::new();
    let plain = b.http("l7");
    let (dp, proxy) = site.start(io, &route("a.l7.test", plain, "certificate = \"site\""));
    let ca = site.pki.ca();
    let pid = dp.status()["pid"].as_u64().expect("pid");
    let socket = site.dir.path().join("dp.upgrade.sock");
    // A fake successor: says hello and receives the sockets, then holds on.
    let fake = mc_rt::handover::Channel::connect(&socket).expect("connect");
    fake.set_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    fake.send(br#"{"op":"hello","version":1,"pid":1}"#, &[])
        .expect("hello");
    let mut sockets = 0;
    loop {
        let (bytes, fds) = fake.recv().expect("sockets");
        sockets += fds.len();
        let msg: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(msg["op"], "sockets", "{msg}");
        if msg["last"] == true {
            break;
        }
    }
    // Two per listener (two workers), the admin socket and the metrics listener.
    assert_eq!(sockets, 4);
    // A second upgrade meanwhile is refused, and says why.
    let out = Command::new(crate::support::mcd())
        .arg("dataplane")
        .arg("--config")
        .arg(&dp.config)
        .arg("--upgrade")
        .stdin(Stdio::null())
        .output()
        .expect("second upgrade");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another upgrade is in progress"), "{err}");
    // The fake successor goes away before `release`.
    drop(fake);
    // Still the same process, serving, and its store still takes changes.
    assert_eq!(dp.status()["pid"].as_u64(), Some(pid));
    let (code, _) = curl(proxy, &ca, "a.l7.test", "/", &[]);
    assert_eq!(code, 200);
    let added = super::add_l7(&dp, "later.l7.test", plain, &[]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let (code, _) = curl(proxy, &ca, "later.l7.test", "/", &[]);
    assert_eq!(code, 200);
    // A successor whose config does not load never reaches the running one.
    let bad = site.dir.path().join("bad.toml");
    std::fs::write(&bad, "data_dir = 3\n").expect("bad config");
    let out = Command::new(crate::support::mcd())
        .args(["dataplane", "--upgrade", "--config"])
        .arg(&bad)
        .output()
        .expect("bad upgrade");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(dp.status()["pid"].as_u64(), Some(pid));
}

both_drivers!(abandoned_and_concurrent_upgrades_change_nothing);
