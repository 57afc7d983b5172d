//! `mcctl proxy status`: version, workers, I/O driver, counters and blocks.

use std::collections::HashMap;

use mc_proto::proxy::v1 as pb;
use serde::Serialize;

use super::{Client, refused};
use crate::enums::name_or;
use crate::output::Out;

#[derive(Serialize)]
struct StatusView {
    version: String,
    uptime_seconds: u64,
    pid: u32,
    started_at_unix_ms: u64,
    executable: String,
    workers: u32,
    io_driver: String,
    io_driver_reason: String,
    snapshot_generation: u64,
    blocks: HashMap<String, u64>,
    client_hello_failures: u64,
    listeners: Vec<ListenerView>,
}

#[derive(Serialize)]
struct ListenerView {
    name: String,
    address: String,
    connections_total: u64,
    connections_active: u64,
    unrouted: u64,
    routes: Vec<RouteView>,
}

#[derive(Serialize)]
struct RouteView {
    hostname: String,
    connections_total: u64,
    connections_active: u64,
    bytes_client_to_backend: u64,
    bytes_backend_to_client: u64,
    backend_connect_failures: u64,
    responses: HashMap<String, u64>,
    policy_blocks: u64,
    backends: Vec<BackendView>,
}

#[derive(Serialize)]
struct BackendView {
    address: String,
    up: bool,
    /// `check` (its active check fails) or `ejected`; absent when up.
    #[serde(skip_serializing_if = "String::is_empty")]
    down_reason: String,
    /// Ejected: when it is tried again (unix seconds).
    #[serde(skip_serializing_if = "is_zero")]
    retry_at_unix: i64,
    weight: u32,
    outstanding: u32,
    ejections: u64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn view(s: pb::GetStatusResponse) -> StatusView {
    StatusView {
        io_driver: name_or::<pb::IoDriver>(s.io_driver, "?"),
        version: s.version,
        uptime_seconds: s.uptime_seconds,
        pid: s.pid,
        started_at_unix_ms: s.started_at_unix_ms,
        executable: s.executable,
        workers: s.workers,
        io_driver_reason: s.io_driver_reason,
        snapshot_generation: s.snapshot_generation,
        blocks: s.blocks,
        client_hello_failures: s.client_hello_failures,
        listeners: s.listeners.into_iter().map(listener_view).collect(),
    }
}

fn listener_view(l: pb::ListenerStats) -> ListenerView {
    ListenerView {
        name: l.name,
        address: l.address,
        connections_total: l.connections_total,
        connections_active: l.connections_active,
        unrouted: l.unrouted,
        routes: l
            .routes
            .into_iter()
            .map(|r| RouteView {
                hostname: r.hostname,
                connections_total: r.connections_total,
                connections_active: r.connections_active,
                bytes_client_to_backend: r.bytes_client_to_backend,
                bytes_backend_to_client: r.bytes_backend_to_client,
                backend_connect_failures: r.backend_connect_failures,
                responses: r.responses,
                policy_blocks: r.policy_blocks,
                backends: r
                    .backends
                    .into_iter()
                    .map(|b| BackendView {
                        address: b.address,
                        up: b.up,
                        down_reason: b.down_reason,
                        retry_at_unix: b.retry_at_unix,
                        weight: b.weight,
                        outstanding: b.outstanding,
                        ejections: b.ejections,
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub(super) async fn run(c: &mut Client, out: Out) -> anyhow::Result<()> {
    let s = c
        .get_status(pb::GetStatusRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    let s = view(s);
    out.show(&s, || human(&s))
}

fn human(s: &StatusView) {
    println!(
        "version {}  uptime {}s  workers {}  io {}{}",
        s.version,
        s.uptime_seconds,
        s.workers,
        s.io_driver,
        if s.io_driver_reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", s.io_driver_reason)
        }
    );
    println!(
        "pid {}  started {} (unix ms)  executable {}",
        s.pid, s.started_at_unix_ms, s.executable
    );
    println!(
        "snapshot generation {}  client hello failures {}",
        s.snapshot_generation, s.client_hello_failures
    );
    let mut blocks: Vec<_> = s.blocks.iter().filter(|(_, v)| **v > 0).collect();
    blocks.sort();
    if !blocks.is_empty() {
        let blocks: Vec<_> = blocks.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("blocks: {}", blocks.join(" "));
    }
    for l in &s.listeners {
        println!(
            "listener {} on {}: {} connections ({} open), {} unrouted",
            l.name, l.address, l.connections_total, l.connections_active, l.unrouted
        );
        for r in &l.routes {
            let backends: Vec<_> = r.backends.iter().map(backend_line).collect();
            println!(
                "  {} → {}: {} connections ({} open), {} B up, {} B down, {} connect failures",
                r.hostname,
                backends.join(", "),
                r.connections_total,
                r.connections_active,
                r.bytes_client_to_backend,
                r.bytes_backend_to_client,
                r.backend_connect_failures
            );
        }
    }
}

/// `10.0.0.5:443 (down: ejected) w=3 out=2 ej=1`: only what is not the default.
fn backend_line(b: &BackendView) -> String {
    let mut s = b.address.clone();
    if !b.up {
        let why = if b.down_reason.is_empty() {
            "down".to_owned()
        } else {
            format!("down: {}", b.down_reason)
        };
        s.push_str(&format!(" ({why})"));
    }
    if b.weight > 1 {
        s.push_str(&format!(" w={}", b.weight));
    }
    if b.outstanding > 0 {
        s.push_str(&format!(" out={}", b.outstanding));
    }
    if b.ejections > 0 {
        s.push_str(&format!(" ejections={}", b.ejections));
    }
    s
}
