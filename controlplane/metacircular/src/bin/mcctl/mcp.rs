//! `mcctl deploy|undeploy|ps|status|nodes|node|stop|start|restart|logs`:
//! MCP over `mc.deploy.v1.Master` (human admins); snapshots and migrate
//! are in `mcp_data`, `sync` in `mcp_sync`. `deploy` reads a service
//! definition (TOML, validated here and again by the master) and shows a
//! spinner on a terminal (stderr, so `--json` stays clean); a deploy or an
//! action that did not succeed prints its steps and exits non-zero.

use anyhow::{Context, bail};
use clap::Args;
use mc_master::spec::{MAX_FILE, ServiceDef};
use mc_proto::deploy::v1 as pb;
use pb::master_client::MasterClient;
use serde::Serialize;

use crate::endpoints::Endpoints;
use crate::enums::name_or;
use crate::iam::client::{Authed, authed, refused};
use crate::output::{Col, Out, Table, row, spinner, utc};

/// `mcctl logs`.
#[derive(Args)]
pub(crate) struct LogsArgs {
    service: String,
    /// Keep printing new lines until interrupted.
    #[arg(short, long)]
    follow: bool,
    /// Lines of history (at most 10000).
    #[arg(long, default_value_t = 100)]
    tail: u32,
    /// The component (default: the first).
    #[arg(long, default_value = "")]
    component: String,
}

/// Stop, start or restart.
#[derive(Clone, Copy)]
pub(crate) enum Action {
    Stop,
    Start,
    Restart,
}

pub(crate) async fn client(e: &Endpoints) -> anyhow::Result<MasterClient<Authed>> {
    let (ch, b) = authed(e).await?;
    Ok(MasterClient::with_interceptor(ch, b))
}

#[derive(Serialize)]
pub(crate) struct StepView {
    step: String,
    success: bool,
    message: String,
}

const STEPS: Table = Table(&[
    Col::left("STEP", 18),
    Col::left("OK", 6),
    Col::left("MESSAGE", 0),
]);

pub(crate) fn step_views(steps: Vec<pb::StepResult>) -> Vec<StepView> {
    steps
        .into_iter()
        .map(|s| StepView {
            step: s.step,
            success: s.success,
            message: s.message,
        })
        .collect()
}

pub(crate) fn print_steps(steps: &[StepView]) {
    STEPS.print(
        steps
            .iter()
            .map(|s| row![s.step, if s.success { "ok" } else { "FAILED" }, s.message]),
    );
}

#[derive(Serialize)]
struct DeployView {
    service: String,
    node: String,
    success: bool,
    dry_run: bool,
    steps: Vec<StepView>,
}

pub(crate) async fn deploy(
    e: &Endpoints,
    out: Out,
    file: &std::path::Path,
    dry_run: bool,
) -> anyhow::Result<()> {
    use std::io::Read;
    let f = std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
    let mut text = String::new();
    f.take(MAX_FILE as u64 + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", file.display()))?;
    let def =
        ServiceDef::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let mut c = client(e).await?;
    let bar = spinner(format!("deploying {}", def.name));
    let r = c
        .deploy(pb::DeployRequest {
            spec: Some(def.to_proto()),
            dry_run,
        })
        .await;
    bar.finish_and_clear();
    let r = r.map_err(refused)?.into_inner();
    let view = DeployView {
        service: def.name,
        node: r.node,
        success: r.success,
        dry_run,
        steps: step_views(r.steps),
    };
    let verb = if dry_run { "would deploy" } else { "deployed" };
    out.show(&view, || {
        print_steps(&view.steps);
        if view.success {
            println!("{verb} {} on {}", view.service, view.node);
        }
    })?;
    if !view.success {
        bail!("deploying {} failed (steps above)", view.service);
    }
    Ok(())
}

#[derive(Serialize)]
struct ActionView {
    service: String,
    action: &'static str,
    success: bool,
    steps: Vec<StepView>,
}

fn finish(out: Out, view: &ActionView) -> anyhow::Result<()> {
    out.show(view, || {
        print_steps(&view.steps);
        if view.success {
            println!("{}: {} done", view.service, view.action);
        }
    })?;
    if !view.success {
        bail!("{} {} failed (steps above)", view.action, view.service);
    }
    Ok(())
}

pub(crate) async fn undeploy(
    e: &Endpoints,
    out: Out,
    service: String,
    purge: bool,
) -> anyhow::Result<()> {
    let r = client(e)
        .await?
        .undeploy(pb::UndeployRequest {
            service: service.clone(),
            purge,
        })
        .await
        .map_err(refused)?
        .into_inner();
    let view = ActionView {
        service,
        action: "undeploy",
        success: r.success,
        steps: step_views(r.steps),
    };
    finish(out, &view)
}

pub(crate) async fn act(e: &Endpoints, out: Out, service: String, a: Action) -> anyhow::Result<()> {
    let mut c = client(e).await?;
    let req = pb::ServiceActionRequest {
        service: service.clone(),
    };
    let (action, r) = match a {
        Action::Stop => ("stop", c.stop_service(req).await),
        Action::Start => ("start", c.start_service(req).await),
        Action::Restart => ("restart", c.restart_service(req).await),
    };
    let r = r.map_err(refused)?.into_inner();
    let view = ActionView {
        service,
        action,
        success: r.success,
        steps: step_views(r.steps),
    };
    finish(out, &view)
}

#[derive(Serialize)]
struct ComponentView {
    name: String,
    image: String,
    state: String,
    ports: std::collections::BTreeMap<String, u32>,
    started_at_unix: i64,
    restarts: u32,
    healthy: bool,
    flapping: bool,
    recent_restarts: u32,
}

#[derive(Serialize)]
struct StatusView {
    service: String,
    node: String,
    deployed_at_unix: i64,
    components: Vec<ComponentView>,
    drift: Vec<String>,
}

impl From<pb::ServiceStatus> for StatusView {
    fn from(s: pb::ServiceStatus) -> Self {
        Self {
            service: s.service,
            node: s.node,
            deployed_at_unix: s.deployed_at_unix,
            components: s
                .components
                .into_iter()
                .map(|c| ComponentView {
                    name: c.name,
                    image: c.image,
                    state: name_or::<pb::ContainerState>(c.state, "unknown"),
                    ports: c.ports.into_iter().collect(),
                    started_at_unix: c.started_at_unix,
                    restarts: c.restarts,
                    healthy: c.healthy,
                    flapping: c.flapping,
                    recent_restarts: c.recent_restarts,
                })
                .collect(),
            drift: s.drift,
        }
    }
}

const PS: Table = Table(&[
    Col::left("SERVICE", 14),
    Col::left("NODE", 10),
    Col::left("COMPONENT", 10),
    Col::left("STATE", 8),
    Col::left("HEALTHY", 7),
    Col::left("PORTS", 16),
    Col::left("IMAGE", 0),
]);

fn ports(p: &std::collections::BTreeMap<String, u32>) -> String {
    let v: Vec<String> = p.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    if v.is_empty() {
        "-".to_owned()
    } else {
        v.join(",")
    }
}

fn ps_rows(s: &StatusView) -> Vec<Vec<String>> {
    if s.components.is_empty() {
        return vec![row![s.service, s.node, "-", "unknown", "-", "-", "-"]];
    }
    s.components
        .iter()
        .map(|c| {
            row![
                s.service,
                s.node,
                c.name,
                if c.flapping {
                    format!("{} (flapping)", c.state)
                } else {
                    c.state.clone()
                },
                if c.healthy { "yes" } else { "no" },
                ports(&c.ports),
                c.image
            ]
        })
        .collect()
}

pub(crate) async fn ps(e: &Endpoints, out: Out, node: String) -> anyhow::Result<()> {
    let r = client(e)
        .await?
        .list_services(pb::ListServicesRequest { node })
        .await
        .map_err(refused)?
        .into_inner();
    let views: Vec<StatusView> = r.services.into_iter().map(StatusView::from).collect();
    out.show(&views, || PS.print(views.iter().flat_map(ps_rows)))
}

pub(crate) async fn status(e: &Endpoints, out: Out, service: String) -> anyhow::Result<()> {
    let r = client(e)
        .await?
        .get_service_status(pb::GetServiceStatusRequest { service })
        .await
        .map_err(refused)?
        .into_inner();
    let view = StatusView::from(r);
    out.show(&view, || {
        println!("service:  {}", view.service);
        println!("node:     {}", view.node);
        println!("deployed: {}", utc(view.deployed_at_unix));
        PS.print(ps_rows(&view));
        for d in &view.drift {
            println!("drift: {d}");
        }
    })
}

#[derive(Serialize)]
struct NodeView {
    name: String,
    role: String,
    address: String,
    health: String,
    last_heartbeat_unix: i64,
    containers: u32,
    cpu: f64,
    memory_used_bytes: u64,
    memory_total_bytes: u64,
    disk_free_bytes: u64,
    agent_version: String,
    arch: String,
    /// The master's last probe since the node's heartbeats stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    probe: Option<ProbeView>,
}

#[derive(Serialize)]
struct ProbeView {
    at_unix: i64,
    ok: bool,
    message: String,
}

const NODES: Table = Table(&[
    Col::left("NODE", 12),
    Col::left("ROLE", 7),
    Col::left("HEALTH", 10),
    Col::right("CONTAINERS", 10),
    Col::right("CPU", 6),
    Col::left("ADDRESS", 22).gap(2),
    Col::left("LAST HEARTBEAT", 0),
]);

async fn node_views(e: &Endpoints) -> anyhow::Result<Vec<NodeView>> {
    let r = client(e)
        .await?
        .list_nodes(pb::ListNodesRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    let views: Vec<NodeView> = r
        .nodes
        .into_iter()
        .map(|n| {
            let l = n.load.unwrap_or_default();
            NodeView {
                name: n.name,
                role: name_or::<pb::NodeRole>(n.role, "unknown"),
                address: n.address,
                health: name_or::<pb::NodeHealth>(n.health, "unknown"),
                last_heartbeat_unix: n.last_heartbeat_unix,
                containers: l.containers,
                cpu: l.cpu,
                memory_used_bytes: l.memory_used_bytes,
                memory_total_bytes: l.memory_total_bytes,
                disk_free_bytes: l.disk_free_bytes,
                agent_version: n.agent_version,
                arch: n.arch,
                probe: n.probe.map(|p| ProbeView {
                    at_unix: p.at_unix,
                    ok: p.ok,
                    message: p.message,
                }),
            }
        })
        .collect();
    Ok(views)
}

/// `mcctl nodes` and `mcctl node list`.
pub(crate) async fn nodes(e: &Endpoints, out: Out) -> anyhow::Result<()> {
    let views = node_views(e).await?;
    out.show(&views, || {
        NODES.print(views.iter().map(|n| {
            row![
                n.name,
                n.role,
                n.health,
                n.containers,
                format!("{:.2}", n.cpu),
                n.address,
                utc(n.last_heartbeat_unix)
            ]
        }));
    })
}

#[derive(Serialize)]
struct LineView<'a> {
    line: &'a str,
}

/// Without `--follow`, `--json` prints one array; with it, one JSON object
/// per line (the stream has no end to wait for).
pub(crate) async fn logs(e: &Endpoints, out: Out, a: LogsArgs, json: bool) -> anyhow::Result<()> {
    if a.tail > 10_000 {
        bail!("--tail: at most 10000");
    }
    let mut stream = client(e)
        .await?
        .service_logs(pb::ServiceLogsRequest {
            service: a.service,
            component: a.component,
            tail: a.tail,
            follow: a.follow,
        })
        .await
        .map_err(refused)?
        .into_inner();
    let mut lines = Vec::new();
    while let Some(l) = stream.message().await.map_err(refused)? {
        match (a.follow, json) {
            (true, true) => println!("{}", serde_json::to_string(&LineView { line: &l.line })?),
            (_, false) => println!("{}", l.line),
            (false, true) => lines.push(l.line),
        }
    }
    if !a.follow && json {
        out.show(&lines, || {})?;
    }
    Ok(())
}

/// `mcctl node status NAME`: one node, its load and the last probe.
pub(crate) async fn node_status(e: &Endpoints, out: Out, name: String) -> anyhow::Result<()> {
    let views = node_views(e).await?;
    let Some(n) = views.into_iter().find(|n| n.name == name) else {
        bail!("no registered node is named {name}");
    };
    out.show(&n, || {
        println!("node:           {}", n.name);
        println!("role:           {}", n.role);
        println!("health:         {}", n.health);
        println!("address:        {}", n.address);
        println!("last heartbeat: {}", utc(n.last_heartbeat_unix));
        if let Some(p) = &n.probe {
            let result = if p.ok { "serving" } else { "failed" };
            println!(
                "probe:          {result}: {} ({})",
                p.message,
                utc(p.at_unix)
            );
        }
        println!("containers:     {}", n.containers);
        println!("cpu:            {:.2}", n.cpu);
        println!(
            "memory:         {} of {} bytes",
            n.memory_used_bytes, n.memory_total_bytes
        );
        println!("disk free:      {} bytes", n.disk_free_bytes);
        println!("agent:          {} ({})", n.agent_version, n.arch);
    })
}
