//! Real peers and raw clients for the data-plane tests: a `mcd dataplane`
//! process, nginx stream servers as backends (one of them parses PROXY
//! headers itself), and a TCP client that sends a real ClientHello from any
//! 127/8 source address.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{mcctl, mcd};

pub(crate) use crate::ports::free_port;

/// A TLS ClientHello as rustls sends it, for `sni` (or none).
pub(crate) fn client_hello(sni: Option<&str>) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut config = config;
    let name = match sni {
        Some(s) => rustls::pki_types::ServerName::try_from(s.to_owned()).expect("name"),
        None => {
            config.enable_sni = false;
            rustls::pki_types::ServerName::try_from("no-sni.invalid").expect("name")
        }
    };
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("write_tls");
    }
    out
}

/// Connects to `proxy` from `source` (any 127/8 address), sends `prefix`
/// and a ClientHello for `sni`, and reads until the server closes.
pub(crate) fn exchange(
    proxy: SocketAddr,
    source: IpAddr,
    prefix: &[u8],
    sni: Option<&str>,
) -> std::io::Result<Vec<u8>> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    socket.connect_timeout(&proxy.into(), Duration::from_secs(5))?;
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut payload = prefix.to_vec();
    payload.extend_from_slice(&client_hello(sni));
    // A reset can already be waiting: a write error is the same answer.
    stream.write_all(&payload)?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out)?;
    Ok(out)
}

/// A TCP backend on 127.0.0.1 that echoes every connection until the
/// client closes; returns its port.
pub(crate) fn echo_backend() -> u16 {
    let backend = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = backend.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut conn in backend.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0_u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// True when the proxy answered with a TCP reset (and nothing else).
pub(crate) fn is_reset(r: &std::io::Result<Vec<u8>>) -> bool {
    matches!(r, Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe))
}

/// nginx with stream servers; each answers a fixed text or the PROXY source address.
pub(crate) struct Nginx {
    child: Child,
}

pub(crate) enum Answer {
    /// `return "<text>";`
    Text(&'static str),
    /// Expects a PROXY header (v1 or v2) and returns its source address.
    ProxyAddr,
}

impl Nginx {
    pub(crate) fn start(dir: &Path, servers: &[(u16, Answer)]) -> Self {
        let mut conf = String::from(
            "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n\
             daemon off; master_process off; worker_processes 1;\n\
             error_log stderr error; pid nginx.pid;\n\
             events { worker_connections 1024; }\nstream {\n",
        );
        for (port, answer) in servers {
            match answer {
                Answer::Text(t) => conf.push_str(&format!("  server {{ listen 127.0.0.1:{port}; return \"{t}\"; }}\n")),
                Answer::ProxyAddr => conf.push_str(&format!(
                    "  server {{ listen 127.0.0.1:{port} proxy_protocol; return \"$proxy_protocol_addr\"; }}\n"
                )),
            }
        }
        conf.push_str("}\n");
        let prefix = dir.join("nginx");
        std::fs::create_dir_all(prefix.join("logs")).expect("nginx dir");
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("nginx.conf");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf_path)
            .stderr(Stdio::inherit())
            .spawn()
            .expect(
                "nginx is installed (scripts/test installs nginx-light and libnginx-mod-stream)",
            );
        let me = Self { child };
        for (port, _) in servers {
            wait_port(*port);
        }
        me
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `mcd dataplane` process with its own data dir and an endpoints file for mcctl.
pub(crate) struct Dataplane {
    child: Option<Child>,
    pub(crate) config: PathBuf,
    pub(crate) endpoints: PathBuf,
    pub(crate) metrics: String,
    /// When set, stderr goes to this file and the access log is on.
    pub(crate) log: Option<PathBuf>,
    /// The `io_uring` config value: `auto` or `off`.
    io_uring: String,
}

impl Dataplane {
    /// `proxy_toml` is appended after the generated `[proxy]` header.
    pub(crate) fn start(dir: &Path, io_uring: &str, proxy_toml: &str) -> Self {
        let d = dir.display();
        let metrics = free_port();
        let config = dir.join("dataplane.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{d}\"\n[admin]\nsocket = \"{d}/dp.sock\"\nmetrics = \"127.0.0.1:{metrics}\"\ndrain = \"2s\"\n\
                 [runtime]\nworkers = 2\nio_uring = \"{io_uring}\"\n[log]\nlevel = \"warn\"\n[proxy]\nshutdown_timeout = \"2s\"\n{proxy_toml}"
            ),
        )
        .expect("config");
        let endpoints = dir.join("endpoints.json");
        std::fs::write(
            &endpoints,
            serde_json::json!({
                "dataplane": {"admin_socket": format!("{d}/dp.sock")},
                "proxy": {"admin_socket": format!("{d}/dp.sock")},
            })
            .to_string(),
        )
        .expect("endpoints");
        let mut me = Self {
            child: None,
            config,
            endpoints,
            metrics: format!("http://127.0.0.1:{metrics}/metrics"),
            log: None,
            io_uring: io_uring.to_owned(),
        };
        me.restart();
        me
    }

    /// [`Self::start`], with stderr written to `<dir>/dataplane.log` and
    /// info-level access-log lines (`MC_LOG_LEVEL` overrides the file).
    pub(crate) fn start_logged(dir: &Path, io_uring: &str, proxy_toml: &str) -> Self {
        let mut me = Self::start(dir, io_uring, proxy_toml);
        me.log = Some(dir.join("dataplane.log"));
        me.restart();
        me
    }

    /// (Re)starts the process on the same config and data dir and waits until it is ready.
    pub(crate) fn restart(&mut self) {
        self.stop();
        let mut cmd = Command::new(mcd());
        cmd.arg("dataplane")
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::piped());
        match &self.log {
            Some(path) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("log file");
                cmd.stderr(Stdio::from(f))
                    .env("MC_LOG_LEVEL", "warn,mc_proxy::access=info");
            }
            None => {
                cmd.stderr(Stdio::inherit());
            }
        }
        let child = cmd.spawn().expect("spawn mcd dataplane");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.mcctl(&["status"]);
            if out.status.success() {
                self.assert_driver();
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("mcd dataplane exited during start-up: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "mcd dataplane never became ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The driver the process reports is the one its config asked for: with
    /// `auto` on a host that allows io_uring (this test process can set up
    /// a ring), io_uring; a silent fallback to epoll there fails the test.
    fn assert_driver(&self) {
        let out = self.ok(&["--json", "status"]);
        let rows: serde_json::Value = serde_json::from_str(&out).expect("status json");
        let driver = rows
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["component"] == "dataplane"))
            .and_then(|r| r["details"]["io_driver"].as_str())
            .unwrap_or_else(|| panic!("no io_driver in {out}"))
            .to_owned();
        let expected = match (
            self.io_uring.as_str(),
            mc_rt::driver::uring_unavailable_reason(),
        ) {
            ("off", _) => "epoll",
            (_, None) => "io_uring",
            (_, Some(reason)) => {
                eprintln!("io_uring is unavailable to this test ({reason}): expecting epoll");
                "epoll"
            }
        };
        assert_eq!(
            driver, expected,
            "io_uring = {:?} ran on {driver}",
            self.io_uring
        );
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = rustix::process::Pid::from_raw(c.id() as i32).expect("pid");
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub(crate) fn child_id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits (bounded) for the process to exit on its own.
    pub(crate) fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "mcd dataplane did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn mcctl(&self, args: &[&str]) -> std::process::Output {
        Command::new(mcctl())
            .arg("--endpoints")
            .arg(&self.endpoints)
            .args(args)
            .output()
            .expect("run mcctl")
    }

    /// Runs mcctl and asserts success.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.mcctl(args);
        assert!(
            out.status.success(),
            "mcctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The `proxy status --json` document.
    pub(crate) fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["--json", "proxy", "status"])).expect("status json")
    }

    pub(crate) fn listen(&self, listener: &str) -> SocketAddr {
        let status = self.status();
        status["listeners"]
            .as_array()
            .and_then(|ls| ls.iter().find(|l| l["name"] == listener))
            .and_then(|l| l["address"].as_str())
            .and_then(|a| a.parse().ok())
            .expect("listener address")
    }

    pub(crate) fn blocks(&self, reason: &str) -> u64 {
        self.status()["blocks"][reason].as_u64().unwrap_or(0)
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        self.stop();
    }
}
