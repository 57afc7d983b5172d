//! The Podman driver: the `podman` CLI through `tokio::process`.
//!
//! Invariants: every command carries the global flags (`--runtime runc
//! --cgroup-manager cgroupfs`, and the configured `--root/--runroot/--tmpdir`),
//! so an agent only ever sees its own storage; every command has a deadline
//! and its captured output is bounded; arguments are passed as argv (never
//! through a shell); secrets never appear in argv (registry credentials go
//! through a 0600 authfile).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::config::PodmanSection;

/// Most bytes kept of a command's stdout or stderr.
const MAX_OUTPUT: u64 = 1 << 20;
/// Longest log line passed on (longer ones are cut).
const MAX_LOG_LINE: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PodmanError {
    #[error("cannot run {binary}: {source}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("podman {what}: no such {kind} `{name}`")]
    NotFound {
        what: &'static str,
        kind: &'static str,
        name: String,
    },
    #[error("podman {what} failed ({status}): {stderr}")]
    Failed {
        what: &'static str,
        status: String,
        stderr: String,
    },
    #[error("podman {what} took longer than {secs} s")]
    Timeout { what: &'static str, secs: u64 },
    #[error("podman {what}: unexpected output: {output}")]
    Output { what: &'static str, output: String },
}

/// What `podman run` gets for one container.
#[derive(Debug, Clone)]
pub(crate) struct RunSpec {
    pub(crate) name: String,
    pub(crate) image: String,
    pub(crate) command: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    /// `(host_path, container_path, read_only)`.
    pub(crate) volumes: Vec<(PathBuf, String, bool)>,
    /// `(address, host_port, container_port)`.
    pub(crate) ports: Vec<(std::net::IpAddr, u16, u16)>,
    pub(crate) labels: BTreeMap<String, String>,
}

/// A container as `podman inspect` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inspect {
    pub(crate) id: String,
    /// `running`, `exited`, `created`, `paused`…
    pub(crate) status: String,
    pub(crate) started_at_unix: i64,
    pub(crate) restarts: u32,
    pub(crate) image: String,
}

impl Inspect {
    pub(crate) fn running(&self) -> bool {
        self.status == "running"
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Podman {
    binary: PathBuf,
    global: Vec<OsString>,
    nofile: u32,
    nproc: u32,
    restart: String,
    tls_verify: bool,
    cert_dir: Option<PathBuf>,
    timeout: Duration,
}

struct Output {
    stdout: String,
}

impl Podman {
    pub(crate) fn new(cfg: &PodmanSection) -> Self {
        let mut global: Vec<OsString> = [
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        for (flag, dir) in [
            ("--root", &cfg.root),
            ("--runroot", &cfg.runroot),
            ("--tmpdir", &cfg.tmpdir),
        ] {
            if let Some(d) = dir {
                global.push(flag.into());
                global.push(d.into());
            }
        }
        Self {
            binary: cfg.binary.clone(),
            global,
            nofile: cfg.nofile,
            nproc: cfg.nproc,
            restart: cfg.restart.clone(),
            tls_verify: cfg.registry_tls_verify,
            cert_dir: cfg.registry_cert_dir.clone(),
            timeout: cfg.command_timeout.get(),
        }
    }

    fn command(&self, args: &[OsString]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.args(&self.global)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    fn spawn(&self, args: &[OsString]) -> Result<Child, PodmanError> {
        self.command(args)
            .spawn()
            .map_err(|source| PodmanError::Spawn {
                binary: self.binary.display().to_string(),
                source,
            })
    }

    /// Runs one command to completion; a non-zero exit is `Failed` (or
    /// `NotFound` when podman says "no such").
    async fn run(
        &self,
        what: &'static str,
        name: &str,
        args: Vec<OsString>,
    ) -> Result<Output, PodmanError> {
        let mut child = self.spawn(&args)?;
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(PodmanError::Output {
                what,
                output: "no pipes".to_owned(),
            });
        };
        let work = async {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            let (mut out, mut err) = (out.take(MAX_OUTPUT), err.take(MAX_OUTPUT));
            let (a, b, status) = tokio::join!(
                out.read_to_end(&mut stdout),
                err.read_to_end(&mut stderr),
                child.wait()
            );
            let _ = (a, b);
            (status, stdout, stderr)
        };
        let (status, stdout, stderr) =
            tokio::time::timeout(self.timeout, work)
                .await
                .map_err(|_| PodmanError::Timeout {
                    what,
                    secs: self.timeout.as_secs(),
                })?;
        let status = status.map_err(|source| PodmanError::Spawn {
            binary: self.binary.display().to_string(),
            source,
        })?;
        let stderr = String::from_utf8_lossy(&stderr).trim().to_owned();
        if !status.success() {
            let lower = stderr.to_ascii_lowercase();
            if lower.contains("no such container") || lower.contains("no such object") {
                return Err(PodmanError::NotFound {
                    what,
                    kind: "container",
                    name: name.to_owned(),
                });
            }
            if lower.contains("image not known") || lower.contains("no such image") {
                return Err(PodmanError::NotFound {
                    what,
                    kind: "image",
                    name: name.to_owned(),
                });
            }
            return Err(PodmanError::Failed {
                what,
                status: status.to_string(),
                stderr,
            });
        }
        Ok(Output {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
        })
    }

    pub(crate) async fn image_exists(&self, image: &str) -> Result<bool, PodmanError> {
        let args = os(&["image", "exists", image]);
        match self.run("image exists", image, args).await {
            Ok(_) => Ok(true),
            // Exit 1 without a message: not present.
            Err(PodmanError::Failed { stderr, .. }) if stderr.is_empty() => Ok(false),
            Err(PodmanError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Pulls `image`, authenticating with `authfile` when given.
    pub(crate) async fn pull(
        &self,
        image: &str,
        authfile: Option<&std::path::Path>,
    ) -> Result<(), PodmanError> {
        let mut args = os(&["pull", "--quiet"]);
        args.push(format!("--tls-verify={}", self.tls_verify).into());
        if let Some(d) = &self.cert_dir {
            args.push("--cert-dir".into());
            args.push(d.into());
        }
        if let Some(f) = authfile {
            args.push("--authfile".into());
            args.push(f.into());
        }
        args.push(image.into());
        self.run("pull", image, args).await.map(|_| ())
    }

    /// Creates and starts a container; returns its id.
    pub(crate) async fn run_container(&self, spec: &RunSpec) -> Result<String, PodmanError> {
        let mut args = os(&["run", "--detach", "--name", &spec.name]);
        args.push(format!("--ulimit=nofile={0}:{0}", self.nofile).into());
        args.push(format!("--ulimit=nproc={0}:{0}", self.nproc).into());
        args.push(format!("--restart={}", self.restart).into());
        for (k, v) in &spec.labels {
            args.push(format!("--label={k}={v}").into());
        }
        for (k, v) in &spec.env {
            args.push("--env".into());
            args.push(format!("{k}={v}").into());
        }
        for (host, container, ro) in &spec.volumes {
            let mut v = OsString::from(host);
            v.push(format!(":{container}{}", if *ro { ":ro" } else { "" }));
            args.push("--volume".into());
            args.push(v);
        }
        for (addr, host, container) in &spec.ports {
            let addr = match addr {
                std::net::IpAddr::V6(a) => format!("[{a}]"),
                std::net::IpAddr::V4(a) => a.to_string(),
            };
            args.push(format!("--publish={addr}:{host}:{container}").into());
        }
        args.push(spec.image.as_str().into());
        args.extend(spec.command.iter().map(OsString::from));
        let out = self.run("run", &spec.image, args).await?;
        let id = out.stdout.trim().lines().last().unwrap_or("").to_owned();
        if id.is_empty() {
            return Err(PodmanError::Output {
                what: "run",
                output: out.stdout,
            });
        }
        Ok(id)
    }

    pub(crate) async fn stop(&self, name: &str, grace: Duration) -> Result<(), PodmanError> {
        let t = grace.as_secs().to_string();
        self.run("stop", name, os(&["stop", "--time", &t, name]))
            .await
            .map(|_| ())
    }

    pub(crate) async fn start(&self, name: &str) -> Result<(), PodmanError> {
        self.run("start", name, os(&["start", name]))
            .await
            .map(|_| ())
    }

    pub(crate) async fn restart(&self, name: &str, grace: Duration) -> Result<(), PodmanError> {
        let t = grace.as_secs().to_string();
        self.run("restart", name, os(&["restart", "--time", &t, name]))
            .await
            .map(|_| ())
    }

    /// Freezes the container's processes (the cgroup freezer).
    pub(crate) async fn pause(&self, name: &str) -> Result<(), PodmanError> {
        self.run("pause", name, os(&["pause", name]))
            .await
            .map(|_| ())
    }

    pub(crate) async fn unpause(&self, name: &str) -> Result<(), PodmanError> {
        self.run("unpause", name, os(&["unpause", name]))
            .await
            .map(|_| ())
    }

    pub(crate) async fn rename(&self, from: &str, to: &str) -> Result<(), PodmanError> {
        self.run("rename", from, os(&["rename", from, to]))
            .await
            .map(|_| ())
    }

    /// Removes a container, running or not; a missing one is not an error.
    pub(crate) async fn remove(&self, name: &str) -> Result<(), PodmanError> {
        match self
            .run("rm", name, os(&["rm", "--force", "--time", "5", name]))
            .await
        {
            Ok(_) | Err(PodmanError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `None` when there is no such container.
    pub(crate) async fn inspect(&self, name: &str) -> Result<Option<Inspect>, PodmanError> {
        let format =
            "{{.ID}}|{{.State.Status}}|{{.State.StartedAt.Unix}}|{{.RestartCount}}|{{.ImageName}}";
        let args = os(&["inspect", "--type", "container", "--format", format, name]);
        let out = match self.run("inspect", name, args).await {
            Ok(o) => o,
            Err(PodmanError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        parse_inspect(out.stdout.trim())
            .map(Some)
            .ok_or(PodmanError::Output {
                what: "inspect",
                output: out.stdout,
            })
    }

    /// Names of the containers carrying `label=value`.
    pub(crate) async fn list(&self, label: &str) -> Result<Vec<String>, PodmanError> {
        let filter = format!("label={label}");
        let args = os(&["ps", "--all", "--filter", &filter, "--format", "{{.Names}}"]);
        let out = self.run("ps", label, args).await?;
        Ok(out
            .stdout
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// The last `tail` lines of a container's log (stdout and stderr),
    /// then new ones while `follow`, sent to `tx` until it closes.
    pub(crate) async fn logs(
        &self,
        name: &str,
        tail: u32,
        follow: bool,
        tx: tokio::sync::mpsc::Sender<String>,
    ) -> Result<(), PodmanError> {
        let t = tail.to_string();
        let mut args = os(&["logs", "--tail", &t]);
        if follow {
            args.push("--follow".into());
        }
        args.push(name.into());
        let mut cmd = self.command(&args);
        // One stream: podman writes the container's stderr to its own stderr.
        let mut child = cmd.spawn().map_err(|source| PodmanError::Spawn {
            binary: self.binary.display().to_string(),
            source,
        })?;
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            return Ok(());
        };
        let forward = |r: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                       tx: tokio::sync::mpsc::Sender<String>| async move {
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(mut line)) = lines.next_line().await {
                if line.len() > MAX_LOG_LINE {
                    let mut cut = MAX_LOG_LINE;
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    line.truncate(cut);
                }
                if tx.send(line).await.is_err() {
                    break;
                }
            }
        };
        let a = forward(Box::new(out), tx.clone());
        let b = forward(Box::new(err), tx.clone());
        tokio::select! {
            _ = async { tokio::join!(a, b) } => {}
            () = tx.closed() => {}
        }
        let _ = child.start_kill();
        let _ = child.wait().await;
        Ok(())
    }
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// `id|status|started_unix|restarts|image`.
fn parse_inspect(line: &str) -> Option<Inspect> {
    let mut it = line.splitn(5, '|');
    let id = it.next()?.to_owned();
    let status = it.next()?.to_owned();
    let started_at_unix = it.next()?.parse::<i64>().ok()?;
    let restarts = it.next()?.parse().ok()?;
    let image = it.next()?.to_owned();
    (!id.is_empty()).then_some(Inspect {
        id,
        status,
        // Go's zero time (never started) is year 1.
        started_at_unix: started_at_unix.max(0),
        restarts,
        image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_line_parses_and_garbage_does_not() {
        let i = parse_inspect("abc|running|1796644307|2|localhost/bb:1").expect("parse");
        assert_eq!(
            i,
            Inspect {
                id: "abc".into(),
                status: "running".into(),
                started_at_unix: 1_796_644_307,
                restarts: 2,
                image: "localhost/bb:1".into()
            }
        );
        assert!(i.running());
        assert_eq!(
            parse_inspect("abc|created|-62135596800|0|x:1")
                .expect("never started")
                .started_at_unix,
            0
        );
        for bad in [
            "",
            "abc",
            "abc|running|x|0|i",
            "|running|1|0|i",
            "a|b|1|-1|i",
        ] {
            assert!(parse_inspect(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn global_flags_select_runc_cgroupfs_and_the_configured_storage() {
        let cfg = PodmanSection {
            root: Some("/t/root".into()),
            runroot: Some("/t/run".into()),
            ..PodmanSection::default()
        };
        let p = Podman::new(&cfg);
        let g: Vec<String> = p
            .global
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            g,
            [
                "--runtime",
                "runc",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
                "--root",
                "/t/root",
                "--runroot",
                "/t/run"
            ]
        );
    }
}
