//! The MCP agent end to end: `mcd controlplane` (MCIAS: the tokens),
//! `mcd dataplane` (MC-Proxy: the route), `mcd agent` driving real root
//! Podman (runc, cgroupfs, the test's own `--root/--runroot`), a workload
//! image built from local files (a static busybox serving a file, `podman
//! import`ed into the agent's storage), real curl through the proxy, and a
//! tonic client holding the `mcp-master` token. Loopback only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mc_proto::deploy::v1 as pb;
use pb::agent_client::AgentClient;
use tonic::transport::Channel;

use crate::controlplane::iam::Controlplane;
use crate::dataplane::l7::{Pki, l7_toml};
use crate::peers::{Dataplane, free_port};

mod cutover;
mod data;
mod footprint;
mod front_door;
mod master;
mod mcdoc;
mod ops;
mod recover;
mod sweep;

/// The workload's hostname (its certificate is named the same).
pub(crate) const HOST: &str = "web.svc.test";

/// One node: control plane, data plane, agent, and the tokens of each kind
/// of caller.
pub(crate) struct Node {
    agent: Option<Child>,
    _dp: Dataplane,
    pub(crate) _cp: Controlplane,
    pub(crate) grpc: String,
    pub(crate) ca: String,
    pub(crate) pki_ca: String,
    pub(crate) proxy: SocketAddr,
    pub(crate) master: String,
    pub(crate) admin: String,
    pub(crate) user: String,
    pub(crate) other_agent: String,
    /// This node's own `agent-test` token.
    pub(crate) agent_token: String,
    /// The registry (MCR on the control plane's REST port) and its CA dir.
    pub(crate) registry: String,
    pub(crate) registry_certs: PathBuf,
    pub(crate) admin_password: String,
    /// `http://127.0.0.1:PORT` of `/healthz` and `/metrics`.
    pub(crate) ops: String,
    podman_args: Vec<String>,
    dir: PathBuf,
    config: PathBuf,
}

pub(crate) fn system_token(cp: &Controlplane, admin: &str, name: &str) -> String {
    let (code, body) = cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(admin),
        Some(serde_json::json!({"username": name, "type": "system"})),
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = cp.call(
        "POST",
        "/v1/iam/tokens",
        Some(admin),
        Some(serde_json::json!({"account_id": name, "description": "agent test"})),
    );
    assert_eq!(code, 201, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

/// The control plane's `[mcp]` section: `nodes` on the allowlist, the
/// master's token file (`<cp_dir>/mcp-token`, written by the caller) and
/// the agents' CA (the control plane's dev CA) in `cp_dir`, 1 s heartbeats.
pub(crate) fn mcp_section(cp_dir: &Path, nodes: &[&str]) -> String {
    let dev_ca = mc_service::tls::DevCa::load_or_create(cp_dir).expect("ca");
    let nodes: Vec<String> = nodes.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "\n[mcp]\nnodes = [{}]\ntoken_file = \"{}/mcp-token\"\nagent_ca = \"{}\"\n\
         agent_server_name = \"localhost\"\nzone = \"svc.test\"\nheartbeat_interval = \"1s\"\n",
        nodes.join(", "),
        cp_dir.display(),
        dev_ca.cert_path.display()
    )
}

/// Starts `mcd agent --config config`.
pub(crate) fn spawn_agent(config: &Path) -> Child {
    Command::new(crate::support::mcd())
        .args(["agent", "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn mcd agent")
}

/// What `agent_files` wrote for one agent.
pub(crate) struct AgentFiles {
    pub(crate) config: PathBuf,
    pub(crate) grpc: String,
    pub(crate) metrics: u16,
    pub(crate) podman_args: Vec<String>,
    pub(crate) registry_certs: PathBuf,
}

/// An agent's TLS certificate (from the control plane's dev CA in
/// `cp_dir`), registry CA dir and config in `ag` (its token already in
/// `ag/token`): node `node`, its own Podman storage, data root and port
/// range, containers published on `publish`, routes through `dp_dir`'s
/// data plane, the master on `cp`.
pub(crate) fn agent_files(
    ag: &Path,
    node: &str,
    cp_dir: &Path,
    cp: &Controlplane,
    dp_dir: &Path,
    publish: &str,
) -> AgentFiles {
    let tls = mc_service::tls::DevCa::load_or_create(cp_dir)
        .expect("ca")
        .issue(ag, "agent", &["localhost", "127.0.0.1"])
        .expect("agent cert");
    let registry_certs = ag.join("certs");
    std::fs::create_dir_all(&registry_certs).expect("certs");
    std::fs::copy(&cp.ca, registry_certs.join("ca.crt")).expect("ca.crt");
    let d = ag.display();
    let podman_args = vec![
        "--runtime".to_owned(),
        "runc".to_owned(),
        "--cgroup-manager".to_owned(),
        "cgroupfs".to_owned(),
        "--events-backend".to_owned(),
        "file".to_owned(),
        "--root".to_owned(),
        format!("{d}/podman/root"),
        "--runroot".to_owned(),
        format!("{d}/podman/run"),
        "--tmpdir".to_owned(),
        format!("{d}/podman/tmp"),
    ];
    let grpc_port = free_port();
    let metrics = free_port();
    let first = free_port();
    let config = ag.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{d}/data\"\nnode = \"{node}\"\n[server]\ngrpc = \"127.0.0.1:{grpc_port}\"\nadmin_socket = \"{d}/agent.sock\"\nmetrics = \"127.0.0.1:{metrics}\"\ndrain = \"1s\"\n\
             [tls]\ncert = \"{}\"\nkey = \"{}\"\n[log]\nlevel = \"info\"\n\
             [mcias]\ngrpc = \"{}\"\nca_cert = \"{}\"\nissuer = \"{}\"\ntoken_file = \"{d}/token\"\nserver_name = \"localhost\"\n\
             [podman]\nroot = \"{d}/podman/root\"\nrunroot = \"{d}/podman/run\"\ntmpdir = \"{d}/podman/tmp\"\nregistry_cert_dir = \"{d}/certs\"\n\
             [ports]\nfirst = {first}\nlast = {}\npublish = \"{publish}\"\n[proxy]\nadmin_socket = \"{}/dp.sock\"\n\
             [services]\nroot = \"{d}/srv\"\ndrain_delay = \"1s\"\nhealth_timeout = \"10s\"\nwatch_interval = \"1s\"\n\
             [master]\ngrpc = \"{}\"\nca_cert = \"{}\"\nserver_name = \"localhost\"\n",
            tls.cert.display(),
            tls.key.display(),
            cp.grpc,
            cp.ca,
            cp.rest,
            first + 199,
            dp_dir.display(),
            cp.grpc,
            cp.ca,
        ),
    )
    .expect("agent config");
    AgentFiles {
        config,
        grpc: format!("https://127.0.0.1:{grpc_port}"),
        metrics,
        podman_args,
        registry_certs,
    }
}

impl Node {
    pub(crate) fn start(dir: &Path) -> Self {
        let cp_dir = dir.join("cp");
        let dp_dir = dir.join("dp");
        let ag = dir.join("agent");
        for d in [&cp_dir, &dp_dir, &ag] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        // The master: this node on its allowlist, its token written below
        // (read at each call), the agents' CA the control plane's dev CA.
        let cp = Controlplane::start(&cp_dir, &mcp_section(&cp_dir, &["test", "second"]));
        let admin = cp.token("admin", &cp.password);
        let master = system_token(&cp, &admin, "mcp-master");
        std::fs::write(cp_dir.join("mcp-token"), &master).expect("mcp token");
        let own = system_token(&cp, &admin, "agent-test");
        let other_agent = system_token(&cp, &admin, "agent-other");
        cp.create_user(&admin, "gina", "gina's long enough password");
        let user = cp.token("gina", "gina's long enough password");

        let pki = Pki::new(&dp_dir);
        let (chain, key, _) = pki.leaf("web", &[HOST]);
        let listen = free_port();
        let dp = Dataplane::start(
            &dp_dir,
            "off",
            &l7_toml(&pki, listen, &[(HOST, &chain, &key)], ""),
        );

        std::fs::write(ag.join("token"), &own).expect("token");
        let files = agent_files(&ag, "test", &cp_dir, &cp, &dp_dir, "127.0.0.1");
        let mut me = Self {
            agent: None,
            registry: cp.rest.trim_start_matches("https://").to_owned(),
            registry_certs: files.registry_certs,
            admin_password: cp.password.clone(),
            ops: format!("http://127.0.0.1:{}", files.metrics),
            config: files.config,
            proxy: SocketAddr::from(([127, 0, 0, 1], listen)),
            pki_ca: pki.ca(),
            _dp: dp,
            grpc: files.grpc,
            ca: cp.ca.clone(),
            _cp: cp,
            master,
            admin,
            user,
            other_agent,
            agent_token: own,
            podman_args: files.podman_args,
            dir: ag,
        };
        me.start_agent();
        me
    }

    /// (Re)starts `mcd agent` on the same config and waits until it answers.
    pub(crate) fn start_agent(&mut self) {
        if let Some(mut a) = self.agent.take() {
            let _ = a.kill();
            let _ = a.wait();
        }
        self.agent = Some(spawn_agent(&self.config));
        self.wait_ready();
    }

    /// Kills the agent (SIGKILL).
    pub(crate) fn kill_agent(&mut self) {
        if let Some(mut a) = self.agent.take() {
            let _ = a.kill();
            let _ = a.wait();
        }
    }

    /// Until HealthCheck answers the master (TLS, token verification and
    /// the container runtime all work).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.block(|mut c, t| async move {
                c.health_check(req(pb::HealthCheckRequest {}, &t)).await
            });
            match r {
                Ok(info) if info.get_ref().name == "test" => return,
                other => assert!(
                    Instant::now() < deadline,
                    "mcd agent never became ready: {other:?}"
                ),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs `f` with a connected client and the master's token.
    pub(crate) fn block<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce(AgentClient<Channel>, String) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            let ca = std::fs::read(&self.ca).expect("ca");
            let tls = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(ca))
                .domain_name("localhost");
            let channel = tonic::transport::Endpoint::from_shared(self.grpc.clone())
                .expect("url")
                .tls_config(tls)
                .expect("tls")
                .connect_lazy();
            f(AgentClient::new(channel), self.master.clone()).await
        })
    }

    /// `podman` on the agent's own storage.
    pub(crate) fn podman(&self, args: &[&str]) -> std::process::Output {
        Command::new("podman")
            .args(&self.podman_args)
            .args(args)
            .output()
            .expect("podman is installed (scripts/test installs it)")
    }

    /// Builds `localhost/mcp-test/web:<version>` from local files (a static
    /// busybox and an index page naming the version) into the agent's storage.
    pub(crate) fn image(&self, version: u32) -> String {
        let root = self.dir.join(format!("rootfs{version}"));
        std::fs::create_dir_all(root.join("bin")).expect("mkdir");
        std::fs::create_dir_all(root.join("www")).expect("mkdir");
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static");
        std::fs::write(root.join("www/index.html"), format!("web v{version}\n")).expect("page");
        let tar = self.dir.join(format!("rootfs{version}.tar"));
        let st = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("tar");
        assert!(st.success());
        let tag = format!("localhost/mcp-test/web:{version}");
        let out = self.podman(&[
            "import",
            "--change",
            "CMD [\"/bin/busybox\",\"httpd\",\"-f\",\"-p\",\"8080\",\"-h\",\"/www\"]",
            &tar.display().to_string(),
            &tag,
        ]);
        assert!(
            out.status.success(),
            "podman import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tag
    }

    /// Waits (bounded) until the proxy serves `body`: MC-Proxy keeps a
    /// backend that refused connections marked down for a while.
    pub(crate) fn wait_serving(&self, body: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.get() != (200, body.to_owned()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
        }
        assert_eq!(self.get(), (200, body.to_owned()));
    }

    /// GET / through MC-Proxy for [`HOST`] with the chain verified.
    pub(crate) fn get(&self) -> (u16, String) {
        crate::dataplane::l7::curl(self.proxy, &self.pki_ca, HOST, "/", &[])
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut a) = self.agent.take() {
            let _ = a.kill();
            let _ = a.wait();
        }
        // Containers of this test only (its own storage).
        let _ = self.podman(&["rm", "--all", "--force", "--time", "0"]);
    }
}

/// A request carrying `token` as its bearer.
pub(crate) fn req<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    r
}

/// The workload: busybox httpd on `$PORT`, saying which version starts.
pub(crate) fn web(image: &str, health_path: &str, timeout: u32) -> pb::ApplyServiceRequest {
    pb::ApplyServiceRequest {
        spec: Some(pb::ServiceSpec {
            name: "web".into(),
            components: vec![pb::Component {
                name: "app".into(),
                image: image.into(),
                command: vec![
                    "/bin/busybox".into(),
                    "sh".into(),
                    "-c".into(),
                    format!("echo {image} starting; exec /bin/busybox httpd -f -p $PORT -h /www"),
                ],
                volumes: vec!["data:/data".into()],
                routes: vec![pb::ServiceRoute {
                    name: "http".into(),
                    container_port: 0,
                    mode: pb::RouteMode::L7.into(),
                    hostname: HOST.into(),
                    public: false,
                }],
                health: Some(pb::HealthProbe {
                    probe: Some(pb::health_probe::Probe::HttpPath(health_path.into())),
                    timeout_seconds: timeout,
                }),
                ..pb::Component::default()
            }],
            ..pb::ServiceSpec::default()
        }),
        zone: "svc.test".into(),
    }
}
