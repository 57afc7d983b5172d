//! mc-dns, outside criterion: what the precompiled answer table adds to a
//! snapshot, and a fixed query loop to count instructions per query.
//!
//! `cargo bench -p mc-bench --bench dns_driver` prints, for a 1,000-name and
//! a 100,000-name zone, the table's heap bytes (from its own capacities),
//! the RSS growth of the whole published state and the time to build the
//! table (what a publish adds).
//!
//! `MCNS_DRIVE=fast|process MCNS_QUERIES=n target/release/deps/dns_driver-…`
//! instead answers the dnsperf mix (60 % A, 20 % NXDOMAIN, 20 % NODATA)
//! over a 1,000-name zone n times through one path, for
//! `valgrind --tool=callgrind`: the difference between two query counts,
//! divided by their difference, is the instructions per query.

use std::hint::black_box;
use std::time::Instant;

use mc_dns::fuzzing::{
    fast_reply, published_with_hosts, rebuild_wire_table, reply, wire_table_size,
};

/// Resident set size of this process, in KiB (Linux).
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4
}

/// A query for `name`/`qtype` with an EDNS OPT record (as resolvers send).
fn query(name: &str, qtype: u16) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name.split('.') {
        q.push(u8::try_from(label.len()).expect("label"));
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    q
}

fn drive(path: &str, n: usize) {
    let p = published_with_hosts(1_000);
    let queries: Vec<Vec<u8>> = (0..1_000)
        .map(|i| {
            let h = (i * 7919) % 1_000;
            match i % 5 {
                0..=2 => query(&format!("h{h}.f.test"), 1),
                3 => query(&format!("nx{h}.f.test"), 1),
                _ => query(&format!("h{h}.f.test"), 28),
            }
        })
        .collect();
    let fast = path == "fast";
    for q in queries.iter().cycle().take(n) {
        let r = if fast {
            fast_reply(&p, black_box(q)).or_else(|| reply(&p, q))
        } else {
            reply(&p, black_box(q))
        };
        black_box(r);
    }
}

fn main() {
    if let Ok(path) = std::env::var("MCNS_DRIVE") {
        let n = std::env::var("MCNS_QUERIES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10_000);
        drive(&path, n);
        return;
    }
    for hosts in [1_000, 99_990] {
        let before = rss_kib();
        let started = Instant::now();
        let p = published_with_hosts(hosts);
        let state = started.elapsed();
        let after = rss_kib();
        let (names, table) = wire_table_size(&p);
        let started = Instant::now();
        let rebuilt = rebuild_wire_table(&p);
        let build = started.elapsed();
        assert_eq!(rebuilt, names);
        println!(
            "dns_driver: {hosts} hosts: table {names} names, {} KiB ({:.0} B/name); \
             published state RSS +{} KiB, built in {:.0} ms (zones + table); \
             table alone {:.1} ms ({:.2} µs/name)",
            table / 1024,
            table as f64 / names as f64,
            after.saturating_sub(before),
            state.as_secs_f64() * 1e3,
            build.as_secs_f64() * 1e3,
            build.as_secs_f64() * 1e6 / names as f64,
        );
        drop(p);
    }
}
