//! `mcctl dns status`: version, listen addresses, responses, cache, upstreams.

use std::collections::HashMap;

use mc_proto::dns::v1 as pb;
use serde::Serialize;

use super::{Client, refused};
use crate::enums::name_or;
use crate::output::Out;

#[derive(Serialize)]
struct StatusView {
    version: String,
    uptime_seconds: u64,
    workers: u32,
    io_driver: String,
    io_driver_reason: String,
    snapshot_generation: u64,
    listen: Vec<String>,
    zones: u32,
    responses: HashMap<String, u64>,
    cache_entries: u64,
    cache_hits: u64,
    cache_misses: u64,
    rrl_dropped: u64,
    malformed: u64,
    upstreams: Vec<UpstreamView>,
}

#[derive(Serialize)]
struct UpstreamView {
    address: String,
    queries: u64,
    failures: u64,
    timeouts: u64,
}

fn view(s: pb::GetStatusResponse) -> StatusView {
    StatusView {
        io_driver: name_or::<pb::IoDriver>(s.io_driver, "?"),
        version: s.version,
        uptime_seconds: s.uptime_seconds,
        workers: s.workers,
        io_driver_reason: s.io_driver_reason,
        snapshot_generation: s.snapshot_generation,
        listen: s.listen,
        zones: s.zones,
        responses: s.responses,
        cache_entries: s.cache_entries,
        cache_hits: s.cache_hits,
        cache_misses: s.cache_misses,
        rrl_dropped: s.rrl_dropped,
        malformed: s.malformed,
        upstreams: s
            .upstreams
            .into_iter()
            .map(|u| UpstreamView {
                address: u.address,
                queries: u.queries,
                failures: u.failures,
                timeouts: u.timeouts,
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
        "version {}  uptime {}s  workers {}  io {}",
        s.version, s.uptime_seconds, s.workers, s.io_driver
    );
    println!(
        "listen {}  zones {}  snapshot generation {}",
        if s.listen.is_empty() {
            "(not serving)".to_owned()
        } else {
            s.listen.join(", ")
        },
        s.zones,
        s.snapshot_generation
    );
    let mut responses: Vec<_> = s.responses.iter().filter(|(_, v)| **v > 0).collect();
    responses.sort();
    let responses: Vec<_> = responses.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("responses: {}", responses.join(" "));
    println!(
        "cache: {} entries, {} hits, {} misses; rrl dropped {}; malformed {}",
        s.cache_entries, s.cache_hits, s.cache_misses, s.rrl_dropped, s.malformed
    );
    for u in &s.upstreams {
        println!(
            "upstream {}: {} queries, {} failures, {} timeouts",
            u.address, u.queries, u.failures, u.timeouts
        );
    }
}
