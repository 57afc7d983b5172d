//! Starting binaries and the dev platform for tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub(crate) fn mcd() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mcd"))
}

/// `mcctl`, built by cargo with this test (same package as `mcd`).
pub(crate) fn mcctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mcctl"))
}

/// `mcctl --endpoints FILE ARGS…` with `stdin` piped in (not a terminal) and
/// no token from the environment: its exit status and output.
pub(crate) fn run_mcctl(endpoints: &Path, args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(mcctl());
    cmd.arg("--endpoints")
        .arg(endpoints)
        .args(args)
        .env_remove("MC_TOKEN");
    run_with_stdin(cmd, stdin)
}

/// Runs `cmd` with `stdin` written to it, collecting stdout and stderr.
pub(crate) fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    child.wait_with_output().expect("wait")
}

pub(crate) fn run(bin: &Path, args: &[&str], cwd: &Path) -> Output {
    Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env_remove("MC_ENDPOINTS")
        .output()
        .expect("run binary")
}

pub(crate) fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed (scripts/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    match code.trim().parse() {
        Ok(code) if code != 0 => (code, body.to_owned()),
        // No answer: what curl said is the only clue a failed run leaves.
        _ => (
            0,
            format!("curl: {}", String::from_utf8_lossy(&out.stderr).trim()),
        ),
    }
}

/// A JSON REST call with curl: `token` as bearer, `body` as JSON; the
/// status and the parsed reply (`Null` when it is not JSON).
pub(crate) fn rest_call(
    base: &str,
    ca: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let url = format!("{base}{path}");
    let auth = token.map(|t| format!("authorization: Bearer {t}"));
    let data = body.map(|b| b.to_string());
    let mut args = vec!["--cacert", ca, "-X", method, &url];
    if let Some(a) = &auth {
        args.extend(["-H", a]);
    }
    if let Some(d) = &data {
        args.extend(["-H", "content-type: application/json", "--data", d]);
    }
    let (code, text) = curl(&args);
    let body = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(_) if code == 0 => serde_json::Value::String(text),
        Err(_) => serde_json::Value::Null,
    };
    (code, body)
}

/// A gRPC call to `base` (an https URL) with an empty message, verified
/// against `ca`; returns `grpc-status|grpc-message`.
pub(crate) fn grpc_status(base: &str, ca: &str, path: &str, token: Option<&str>) -> String {
    let url = format!("{base}{path}");
    // A file of this call's own: a shared path raced with parallel tests
    // (a truncated frame read as "Missing request message").
    let frame = tempfile::NamedTempFile::new().expect("frame file");
    std::fs::write(frame.path(), [0_u8; 5]).expect("frame");
    let data = format!("@{}", frame.path().display());
    let auth = token.map(|t| format!("authorization: Bearer {t}"));
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--http2",
        "--cacert",
        ca,
        "-X",
        "POST",
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
    ])
    .args([
        "--data-binary",
        &data,
        "-o",
        "/dev/null",
        "-w",
        "%header{grpc-status}|%header{grpc-message}",
    ]);
    if let Some(a) = &auth {
        cmd.args(["-H", a]);
    }
    let out = cmd.arg(&url).output().expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running `mcd dev`, stopped with SIGKILL if a test fails before stopping it.
pub(crate) struct Dev {
    pub(crate) child: Child,
    pub(crate) data_dir: PathBuf,
    pub(crate) endpoints: serde_json::Value,
}

impl Dev {
    /// Starts `mcd dev` in `cwd` (with `--data-dir` when given) and waits until it says ready.
    ///
    /// A fresh `mcd dev` picks free loopback ports and binds them a moment later; with
    /// tests running in parallel another process can take one in between. Such a start
    /// (fresh data dir, "in use" in its log) is retried with a new data dir, up to three
    /// times; any other failure panics with the tail of mcd's log.
    pub(crate) fn start(cwd: &Path, data_dir: Option<&Path>) -> Self {
        let dir = data_dir.map_or_else(|| cwd.join(".mc-dev"), Path::to_path_buf);
        let fresh = !dir.exists();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::try_start(cwd, data_dir, attempt) {
                Ok(dev) => return dev,
                Err(log) if fresh && attempt < 3 && log.contains("in use") => {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                Err(log) => panic!("mcd dev never reported ready; its log ends:\n{log}"),
            }
        }
    }

    fn try_start(cwd: &Path, data_dir: Option<&Path>, attempt: u32) -> Result<Self, String> {
        let log_path = cwd.join(format!("mcd-dev-start-{attempt}.log"));
        let log = std::fs::File::create(&log_path).expect("mcd dev log");
        let mut cmd = Command::new(mcd());
        cmd.arg("dev")
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(d) = data_dir {
            cmd.arg("--data-dir").arg(d);
        }
        let mut child = cmd.spawn().expect("spawn mcd dev");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(path) = line.strip_prefix("endpoints: ") {
                    let _ = tx.send(path.to_owned());
                }
            }
        });
        let path = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(p) => PathBuf::from(p),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                return Err(lines[lines.len().saturating_sub(30)..].join("\n"));
            }
        };
        let endpoints: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("endpoints.json"))
                .expect("json");
        let data_dir = path.parent().expect("data dir").to_owned();
        Ok(Self {
            child,
            data_dir,
            endpoints,
        })
    }

    pub(crate) fn ca(&self) -> String {
        self.endpoints["ca_cert"]
            .as_str()
            .expect("ca_cert")
            .to_owned()
    }

    /// Sends `signal` and waits (bounded, as a hang guard) for the exit; returns status and time taken.
    pub(crate) fn stop(
        mut self,
        signal: rustix::process::Signal,
    ) -> (std::process::ExitStatus, Duration) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        let started = Instant::now();
        rustix::process::kill_process(pid, signal).expect("signal");
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, started.elapsed());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "mcd dev did not exit after {signal:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny HTTP/1.1 backend on 127.0.0.1: every request gets `200` with
/// `body` and `Connection: close`. Returns its port; it serves until the
/// test process ends.
pub(crate) fn http_backend(body: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind backend");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 65536 {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// Runs `tests/ui/<script>` with node (headless Chromium through
/// playwright-core) and `args`; its one JSON line, after asserting it
/// succeeded and said `{"ok": true}`.
pub(crate) fn browser_test(script: &str, args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    assert!(
        ui.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: scripts/test runs `npm ci` in {}",
        ui.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "chromium is not installed: scripts/test installs it (apt-get install chromium)"
    );
    let out = Command::new("node")
        .arg(ui.join(script))
        .args(args)
        .current_dir(&ui)
        .output()
        .expect("node (scripts/test installs nodejs)");
    assert!(
        out.status.success(),
        "browser test {script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(result["ok"], true, "{result}");
    result
}
