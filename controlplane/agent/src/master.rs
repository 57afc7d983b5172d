//! Registration and heartbeats to the MCP master (`[master]`): the agent
//! calls `RegisterNode` with its own token (account `agent-<node>`; the
//! master takes the node name from it), retrying with backoff, then
//! `Heartbeat` with this node's load at the interval the master returned.
//! A heartbeat refused as "not registered" (the master lost its row)
//! registers again. The loop ends with the process's shutdown.

use std::sync::Arc;
use std::time::Duration;

use mc_kit::shutdown::Shutdown;
use mc_proto::deploy::v1 as pb;
use pb::master_client::MasterClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::agent::Agent;
use crate::config::MasterSection;

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Heartbeats never come faster than this, whatever the master says.
const MIN_INTERVAL: Duration = Duration::from_millis(500);

fn channel(cfg: &MasterSection) -> Result<Channel, String> {
    let ca = std::fs::read(&cfg.ca_cert).map_err(|e| format!("master.ca_cert: {e}"))?;
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if !cfg.server_name.is_empty() {
        tls = tls.domain_name(cfg.server_name.clone());
    }
    Ok(Endpoint::from_shared(cfg.grpc.clone())
        .map_err(|e| format!("master.grpc: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .tls_config(tls)
        .map_err(|e| format!("master.ca_cert: {e}"))?
        .connect_lazy())
}

fn req<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Ok(v) = format!("Bearer {token}").parse() {
        r.metadata_mut().insert("authorization", v);
    }
    r
}

/// This node's load: the 1-minute load average (cores busy), memory from
/// `/proc/meminfo`, free space of the data dir's file system, and the
/// containers the agent runs.
fn load(agent: &Agent) -> pb::NodeLoad {
    let cpu = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            .saturating_mul(1024)
    };
    let total = kib("MemTotal:");
    let disk_free = rustix::fs::statvfs(&agent.cfg.data_dir)
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
        .unwrap_or(0);
    pb::NodeLoad {
        cpu,
        memory_used_bytes: total.saturating_sub(kib("MemAvailable:")),
        memory_total_bytes: total,
        disk_free_bytes: disk_free,
        containers: crate::store::container_count(&agent.store).unwrap_or(0),
    }
}

/// Registers until it succeeds; returns the heartbeat interval.
async fn register(
    client: &mut MasterClient<Channel>,
    agent: &Agent,
    cfg: &MasterSection,
    shutdown: &mut Shutdown,
) -> Option<Duration> {
    let mut backoff = Duration::from_millis(500);
    loop {
        let r = pb::RegisterNodeRequest {
            role: pb::NodeRole::Worker.into(),
            address: cfg.address.clone(),
            arch: std::env::consts::ARCH.to_owned(),
            agent_version: mc_kit::version::VERSION.to_owned(),
        };
        match client.register_node(req(r, &agent.token)).await {
            Ok(resp) => {
                let resp = resp.into_inner();
                if resp.node != agent.cfg.node {
                    tracing::warn!(master_says = %resp.node, config = %agent.cfg.node,
                        "the master knows this node by its token's name, not `node`");
                }
                tracing::info!(node = %resp.node, interval = resp.heartbeat_interval_seconds,
                    "registered with the master");
                let every = Duration::from_secs(u64::from(resp.heartbeat_interval_seconds));
                return Some(every.max(MIN_INTERVAL));
            }
            Err(s) => tracing::warn!(code = ?s.code(), error = %s.message(),
                "registering with the master failed; retrying"),
        }
        tokio::select! {
            () = shutdown.wait() => return None,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The registration and heartbeat loop, until shutdown.
pub(crate) fn spawn(agent: Arc<Agent>, cfg: MasterSection, mut shutdown: Shutdown) {
    tokio::spawn(async move {
        let channel = match channel(&cfg) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot reach the master: no registration");
                return;
            }
        };
        let mut client = MasterClient::new(channel);
        'register: loop {
            let Some(every) = register(&mut client, &agent, &cfg, &mut shutdown).await else {
                return;
            };
            loop {
                tokio::select! {
                    () = shutdown.wait() => return,
                    () = tokio::time::sleep(every) => {}
                }
                let hb = pb::HeartbeatRequest {
                    load: Some(load(&agent)),
                };
                match client.heartbeat(req(hb, &agent.token)).await {
                    Ok(_) => {}
                    Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                        tracing::warn!(error = %s.message(), "the master forgot this node");
                        continue 'register;
                    }
                    Err(s) => tracing::warn!(code = ?s.code(), error = %s.message(),
                        "heartbeat failed"),
                }
            }
        }
    });
}
