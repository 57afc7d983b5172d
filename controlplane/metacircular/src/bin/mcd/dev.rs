//! `mcd dev`: the data plane and the control plane on loopback, supervised
//! from one terminal.
//!
//! First run: creates `<data-dir>` (0700), the dev CA (`ca.pem`), loopback
//! certificates, and one config file per process with free 127.0.0.1 ports.
//! Every run: starts `mcd controlplane` and `mcd dataplane` as child
//! processes on those configs, waits until each reports ready on its admin
//! socket, sets up the dev PKI ([`crate::dev_pki`]: the dev CA as the root of
//! Metacrypt's `dev-pki` mount, which issues the control plane's certificate),
//! writes `<data-dir>/endpoints.json` and prints the endpoints. On
//! SIGINT/SIGTERM it stops the children (SIGTERM, then SIGKILL at the
//! deadline) and exits 0; if a child dies on its own, it stops the rest and
//! exits non-zero. Children also exit when the supervisor's pipe closes, so
//! none outlives a killed supervisor.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mc_service::tls::DevCa;
use serde_json::json;
use tokio::process::{Child, Command};

/// Children get this long to drain; the supervisor's deadline is a bit
/// longer, and the whole shutdown stays under five seconds.
const CHILD_DRAIN: &str = "3s";
const STOP_DEADLINE: Duration = Duration::from_millis(4500);
const READY_TIMEOUT: Duration = Duration::from_secs(60);

struct Layout {
    data_dir: PathBuf,
    run_dir: PathBuf,
    controlplane_config: PathBuf,
    dataplane_config: PathBuf,
    endpoints: PathBuf,
}

impl Layout {
    fn new(data_dir: &Path) -> anyhow::Result<Self> {
        let data_dir = std::path::absolute(data_dir)
            .with_context(|| format!("data dir {}", data_dir.display()))?;
        Ok(Self {
            run_dir: data_dir.join("run"),
            controlplane_config: data_dir.join("controlplane.toml"),
            dataplane_config: data_dir.join("dataplane.toml"),
            endpoints: data_dir.join("endpoints.json"),
            data_dir,
        })
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free loopback port")?;
    Ok(l.local_addr()?.port())
}

/// A loopback port free for both TCP and UDP (DNS serves both on one port).
fn free_dns_port() -> anyhow::Result<u16> {
    for _ in 0..32 {
        let port = free_port()?;
        if std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no loopback port is free for both TCP and UDP")
}

fn private_dir(path: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod {}", path.display()))
}

/// Writes a generated config readable by its owner only (0600, from the
/// first byte): configs can hold secrets (TSIG keys, once the operator adds
/// them), and the data dir is not the only way in.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    // The umask may have cleared bits, never added any; make it exact.
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod {}", path.display()))
}

/// Writes the dev configs once; later runs reuse (and may be edited by) the operator.
fn prepare(layout: &Layout) -> anyhow::Result<()> {
    private_dir(&layout.data_dir)?;
    private_dir(&layout.run_dir)?;
    let ca = DevCa::load_or_create(&layout.data_dir)?;
    let tls_dir = layout.data_dir.join("tls");
    private_dir(&tls_dir)?;
    if !tls_dir.join("controlplane.pem").is_file() {
        ca.issue(&tls_dir, "controlplane", &["localhost", "127.0.0.1"])?;
    }
    let d = layout.data_dir.display();
    let r = layout.run_dir.display();
    let t = tls_dir.display();
    if !layout.controlplane_config.is_file() {
        let text = format!(
            "# mcd dev: control plane. Generated once; edit freely.\n\
             data_dir = \"{d}\"\n\n\
             [server]\n\
             rest = \"127.0.0.1:{rest}\"\n\
             grpc = \"127.0.0.1:{grpc}\"\n\
             metrics = \"127.0.0.1:{metrics}\"\n\
             admin_socket = \"{r}/controlplane.sock\"\n\
             drain = \"{CHILD_DRAIN}\"\n\n\
             [tls]\n\
             cert = \"{t}/controlplane.pem\"\n\
             key = \"{t}/controlplane-key.pem\"\n\n\
             [log]\n\
             level = \"info\"\n\n\
             # Dev only: Metacrypt initialises with a random passphrase kept in\n\
             # this file (0600) and unseals from it at every start.\n\
             [metacrypt]\n\
             dev_passphrase_file = \"{crypt_pass}\"\n",
            crypt_pass = mc_controlplane::metacrypt_dev_passphrase_path(&layout.data_dir).display(),
            rest = free_port()?,
            grpc = free_port()?,
            metrics = free_port()?,
        );
        write_private(&layout.controlplane_config, &text)?;
    }
    if !layout.dataplane_config.is_file() {
        let text = format!(
            "# mcd dev: data plane. Generated once; edit freely.\n\
             data_dir = \"{d}\"\n\n\
             [admin]\n\
             socket = \"{r}/dataplane.sock\"\n\
             metrics = \"127.0.0.1:{metrics}\"\n\
             drain = \"{CHILD_DRAIN}\"\n\n\
             [runtime]\n\
             workers = 2\n\
             io_uring = \"auto\"\n\n\
             [proxy]\n\
             shutdown_timeout = \"{CHILD_DRAIN}\"\n\
             # L7 certificates must lead to one of these: the dev CA\n\
             # (`mcctl dev cert` issues from it) and the system bundle.\n\
             certificate_authorities = {authorities}\n\n\
             [[proxy.listeners]]\n\
             name = \"public\"\n\
             address = \"127.0.0.1:{proxy}\"\n\n\
             [dns]\n\
             listen = [\"127.0.0.1:{dns}\"]\n\
             shutdown_timeout = \"{CHILD_DRAIN}\"\n\n\
             [log]\n\
             level = \"info\"\n",
            authorities = toml_strings(&dev_authorities(&layout.data_dir)),
            metrics = free_port()?,
            proxy = free_port()?,
            dns = free_dns_port()?,
        );
        write_private(&layout.dataplane_config, &text)?;
    }
    Ok(())
}

/// What the dev data plane trusts for L7 chains and TLS backends: the dev CA
/// first, then the system bundle when there is one (so real certificates
/// still verify).
fn dev_authorities(data_dir: &Path) -> Vec<PathBuf> {
    let mut v = vec![data_dir.join("ca.pem")];
    let system = Path::new(SYSTEM_CA_BUNDLE);
    if system.is_file() {
        v.push(system.to_owned());
    }
    v
}

/// Debian's bundle, the proxy's own default when it is not configured.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A TOML array of strings: a JSON array of strings is one (JSON's string
/// escapes are a subset of TOML basic strings').
fn toml_strings(paths: &[PathBuf]) -> String {
    let items: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    serde_json::to_string(&items).unwrap_or_else(|_| "[]".to_owned())
}

fn config_error(e: mc_kit::config::ConfigError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn endpoints(layout: &Layout) -> anyhow::Result<serde_json::Value> {
    let cp: mc_controlplane::ControlplaneConfig =
        mc_kit::config::load(&layout.controlplane_config).map_err(config_error)?;
    let dp: mc_dataplane::DataplaneConfig =
        mc_kit::config::load(&layout.dataplane_config).map_err(config_error)?;
    let https = |a: SocketAddr| format!("https://{a}");
    let mut endpoints = json!({
        "controlplane": {
            "rest": https(cp.server.rest),
            "grpc": https(cp.server.grpc),
            "health": format!("{}/healthz", https(cp.server.rest)),
            // Anonymous on its own address; on the REST port it needs an admin token.
            "metrics": match cp.server.metrics {
                Some(m) => format!("http://{m}/metrics"),
                None => format!("{}/metrics", https(cp.server.rest)),
            },
            "admin_socket": cp.server.admin_socket,
        },
        "dataplane": {
            "health": format!("http://{}/healthz", dp.admin.metrics),
            "metrics": format!("http://{}/metrics", dp.admin.metrics),
            "admin_socket": dp.admin.socket,
        },
        "proxy": {
            "listen": dp.proxy.listeners.first().map(|l| l.address.to_string()),
            "admin_socket": dp.admin.socket,
            "metrics": format!("http://{}/metrics", dp.admin.metrics),
        },
        "dns": {
            "listen": dp.dns.listen.first().map(ToString::to_string),
            "admin_socket": dp.admin.socket,
        },
        "ca_cert": layout.data_dir.join("ca.pem"),
        "data_dir": layout.data_dir,
    });
    // Each hosted service's URLs under its key (MCIAS: `iam`).
    for (key, urls) in mc_controlplane::service_endpoints(&cp) {
        endpoints[key] = json!(urls);
    }
    Ok(endpoints)
}

struct Proc {
    name: &'static str,
    child: Child,
    socket: PathBuf,
}

fn spawn(
    name: &'static str,
    config: &Path,
    socket: PathBuf,
    env: &[(&str, String)],
) -> anyhow::Result<Proc> {
    let exe = std::env::current_exe().context("locating mcd")?;
    let child = Command::new(exe)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg(name)
        .arg("--config")
        .arg(config)
        .arg("--exit-with-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting mcd {name}"))?;
    Ok(Proc {
        name,
        child,
        socket,
    })
}

async fn wait_ready(procs: &mut [Proc]) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    for p in procs.iter_mut() {
        loop {
            if let Some(status) = p.child.try_wait()? {
                bail!("mcd {} exited during start-up ({status})", p.name);
            }
            if let Ok(mut client) = mc_shell::admin::connect(&p.socket).await
                && let Ok(s) = client.status(mc_proto::admin::v1::StatusRequest {}).await
                && s.get_ref().ready
            {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "mcd {} did not become ready within {READY_TIMEOUT:?}",
                    p.name
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

async fn stop(procs: &mut [Proc]) {
    for p in procs.iter() {
        if let Some(pid) = p
            .child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(id as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
    let deadline = tokio::time::Instant::now() + STOP_DEADLINE;
    for p in procs.iter_mut() {
        match tokio::time::timeout_at(deadline, p.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => eprintln!("mcd dev: {} exited with {status}", p.name),
            Ok(Err(e)) => eprintln!("mcd dev: waiting for {}: {e}", p.name),
            Err(_) => {
                eprintln!("mcd dev: {} did not stop in time; killing it", p.name);
                let _ = p.child.kill().await;
            }
        }
    }
}

/// [`crate::dev_pki::ensure`] for this layout, as the bootstrap admin.
async fn dev_pki_wait(
    layout: &Layout,
    cp: &mc_controlplane::ControlplaneConfig,
    endpoints: &serde_json::Value,
    pid: Option<u32>,
) -> anyhow::Result<serde_json::Value> {
    let creds = &endpoints["bootstrap"];
    let (Some(username), Some(password)) = (creds["username"].as_str(), creds["password"].as_str())
    else {
        bail!("no bootstrap credentials");
    };
    let (ca_cert, ca_key) = (
        layout.data_dir.join("ca.pem"),
        layout.data_dir.join("ca-key.pem"),
    );
    let tls_dir = layout.data_dir.join("tls");
    let target = crate::dev_pki::Target {
        grpc: cp.server.grpc,
        ca_cert: &ca_cert,
        ca_key: &ca_key,
        tls_cert: &cp.tls.cert,
        tls_key: &cp.tls.key,
        username,
        password,
        pid,
        manage_tls: cp.tls.cert == tls_dir.join("controlplane.pem")
            && cp.tls.key == tls_dir.join("controlplane-key.pem"),
    };
    tokio::time::timeout(Duration::from_secs(90), crate::dev_pki::ensure(&target))
        .await
        .context("timed out")?
}

pub(crate) fn run(data_dir: &Path) -> anyhow::Result<ExitCode> {
    let layout = Layout::new(data_dir)?;
    prepare(&layout)?;
    let endpoints = endpoints(&layout)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(supervise(&layout, endpoints))
}

async fn supervise(layout: &Layout, mut endpoints: serde_json::Value) -> anyhow::Result<ExitCode> {
    let mut signal = Box::pin(mc_kit::shutdown::signal());
    let cp: mc_controlplane::ControlplaneConfig =
        mc_kit::config::load(&layout.controlplane_config).map_err(config_error)?;
    let dp: mc_dataplane::DataplaneConfig =
        mc_kit::config::load(&layout.dataplane_config).map_err(config_error)?;
    let bootstrap_file = mc_controlplane::bootstrap_path(&cp.data_dir);
    let first_run = !bootstrap_file.exists();
    let crypt_file = cp
        .metacrypt
        .dev_passphrase_file
        .clone()
        .filter(|f| !f.exists());
    let mut procs = Vec::new();
    procs.push(spawn(
        "controlplane",
        &layout.controlplane_config,
        cp.server.admin_socket.clone(),
        &[],
    )?);
    // A data dir made before `mcd dev` wrote `certificate_authorities` gets
    // the same trust through the environment; a value in the file wins.
    let mut dp_env = Vec::new();
    if dp.proxy.certificate_authorities.is_none() {
        dp_env.push((
            "MC_PROXY_CERTIFICATE_AUTHORITIES",
            toml_strings(&dev_authorities(&layout.data_dir)),
        ));
    }
    procs.push(spawn(
        "dataplane",
        &layout.dataplane_config,
        dp.admin.socket,
        &dp_env,
    )?);

    let started = Instant::now();
    tokio::select! {
        r = wait_ready(&mut procs) => if let Err(e) = r {
            stop(&mut procs).await;
            return Err(e);
        },
        s = &mut signal => {
            eprintln!("mcd dev: {} during start-up; stopping", s.unwrap_or("signal"));
            stop(&mut procs).await;
            return Ok(ExitCode::SUCCESS);
        }
    }

    // MCIAS wrote the first admin's credentials when it created its store.
    if let Ok(creds) = fs::read_to_string(&bootstrap_file)
        && let Ok(creds) = serde_json::from_str::<serde_json::Value>(&creds)
    {
        if first_run {
            println!(
                "bootstrap admin: {} / {} (shown once; kept 0600 in {})",
                creds["username"].as_str().unwrap_or_default(),
                creds["password"].as_str().unwrap_or_default(),
                bootstrap_file.display()
            );
        }
        endpoints["bootstrap"] = creds;
    }
    // The dev PKI: Metacrypt issues the control plane's certificate.
    let pki_wait = dev_pki_wait(
        layout,
        &cp,
        &endpoints,
        procs.first().and_then(|p| p.child.id()),
    );
    tokio::select! {
        r = pki_wait => match r {
            Ok(info) => endpoints["dev_pki"] = info,
            Err(e) => eprintln!("mcd dev: no dev PKI ({e:#}); the control plane keeps its first certificate (same CA)"),
        },
        s = &mut signal => {
            eprintln!("mcd dev: {} during start-up; stopping", s.unwrap_or("signal"));
            stop(&mut procs).await;
            return Ok(ExitCode::SUCCESS);
        }
    }
    // Metacrypt wrote its dev passphrase when it created its store.
    if let Some(file) = crypt_file
        && let Ok(pass) = fs::read_to_string(&file)
    {
        println!(
            "metacrypt dev passphrase: {} (shown once; kept 0600 in {}; dev only)",
            pass.trim(),
            file.display()
        );
    }
    let text = serde_json::to_string_pretty(&endpoints)?;
    let tmp = layout.endpoints.with_extension("json.tmp");
    // 0600 from creation: it carries the bootstrap credentials.
    let _ = fs::remove_file(&tmp);
    write_private(&tmp, &text)?;
    fs::rename(&tmp, &layout.endpoints)?;
    println!(
        "Metacircular dev platform ready in {:.1}s ({})",
        started.elapsed().as_secs_f64(),
        mc_kit::version::VERSION
    );
    // The console shows the credentials only on the first run; the file keeps them.
    let mut shown = endpoints.clone();
    if let Some(o) = shown.as_object_mut() {
        o.remove("bootstrap");
    }
    println!("{}", serde_json::to_string_pretty(&shown)?);
    println!("endpoints: {}", layout.endpoints.display());
    println!(
        "try: curl --cacert {} {}",
        layout.data_dir.join("ca.pem").display(),
        endpoints["controlplane"]["health"]
            .as_str()
            .unwrap_or_default()
    );
    println!("stop with Ctrl-C");

    let exited = 'watch: loop {
        tokio::select! {
            s = &mut signal => {
                eprintln!("mcd dev: {}; stopping", s.unwrap_or("signal"));
                break 'watch None;
            }
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                for p in procs.iter_mut() {
                    if let Some(status) = p.child.try_wait()? {
                        break 'watch Some((p.name, status));
                    }
                }
            }
        }
    };
    stop(&mut procs).await;
    match exited {
        None => Ok(ExitCode::SUCCESS),
        Some((name, status)) => {
            eprintln!("mcd dev: {name} exited unexpectedly ({status}); stopped the platform");
            Ok(ExitCode::FAILURE)
        }
    }
}
