//! The firewall as MC-Proxy runs it per accepted connection: one lookup in
//! the compiled table of 100k CIDRs, then the per-IP rate limiter and the
//! connection limiter (`mc_proxy::firewall::FirewallState::admit`), plus the
//! mc-firewall parts on their own.
//!
//! GeoIP lookups and the table build with countries need a MaxMind DB
//! fixture and live in mc-firewall's own bench: `cargo bench -p mc-firewall`.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use mc_bench::Rng;
use mc_firewall::{RateLimiter, RateLimiterConfig};
use mc_proxy::firewall::{FirewallRule, FirewallState, Limits, RuleTarget};
use mc_proxy::model::Origin;

const CIDRS: usize = 100_000;
const PROBES: usize = 1 << 14;

/// 100k block rules: 80% IPv4 (mostly /24 and /32), 20% IPv6 (/16../64).
fn rules(rng: &mut Rng) -> Vec<FirewallRule> {
    (0..CIDRS)
        .map(|i| {
            let net = if i % 5 == 4 {
                let len = 16 + (rng.next_u64() % 49) as u8;
                IpNet::V6(Ipv6Net::new(rng.v6(), len).expect("prefix").trunc())
            } else {
                let len = match rng.next_u64() % 50 {
                    0 => 12 + (rng.next_u64() % 5) as u8,
                    1..=9 => 17 + (rng.next_u64() % 7) as u8,
                    10..=19 => 32,
                    _ => 24,
                };
                IpNet::V4(Ipv4Net::new(rng.v4(), len).expect("prefix").trunc())
            };
            FirewallRule {
                target: RuleTarget::Cidr(net),
                comment: String::new(),
                origin: Origin::AdminApi,
            }
        })
        .collect()
}

fn bench_admit(c: &mut Criterion) {
    let mut rng = Rng(11);
    let rules = rules(&mut rng);
    let limits = Limits {
        rate_per_second: 1000,
        burst: 100_000,
        max_connections_per_ip: 256,
        max_connections_total: 1_000_000,
    };
    let started = Instant::now();
    let state = FirewallState::build(&rules, limits, None, None).expect("valid limits");
    eprintln!(
        "FirewallState::build with {CIDRS} CIDRs: {:?}",
        started.elapsed()
    );
    let open = FirewallState::build(&rules, Limits::default(), None, None).expect("valid");

    let v4: Vec<IpAddr> = (0..PROBES).map(|_| IpAddr::V4(rng.v4())).collect();
    let v6: Vec<IpAddr> = (0..PROBES).map(|_| IpAddr::V6(rng.v6())).collect();
    let blocked = v4
        .iter()
        .filter(|a| state.compiled.check(**a).is_some())
        .count();
    eprintln!("random IPv4 probes inside a blocked CIDR: {blocked}/{PROBES}");

    let mut g = c.benchmark_group("firewall_100k_cidrs");
    g.throughput(Throughput::Elements(1));
    for (name, probes) in [("compiled_check_v4", &v4), ("compiled_check_v6", &v6)] {
        g.bench_function(name, |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = i.wrapping_add(1);
                state
                    .compiled
                    .check(black_box(probes[i & (PROBES - 1)]))
                    .is_some()
            })
        });
    }
    // The whole per-connection decision, limits off (table only + connection slot).
    g.bench_function("admit_v4_no_limits", |b| {
        let mut i = 0usize;
        let now = Instant::now();
        b.iter(|| {
            i = i.wrapping_add(1);
            open.admit(black_box(v4[i & (PROBES - 1)]), now).is_ok()
        })
    });
    // With the rate limiter and connection limits on (the guard is dropped at once).
    g.bench_function("admit_v4_rate_and_conn_limits", |b| {
        let mut i = 0usize;
        let now = Instant::now() + Duration::from_secs(1);
        b.iter(|| {
            i = i.wrapping_add(1);
            state.admit(black_box(v4[i & (PROBES - 1)]), now).is_ok()
        })
    });
    g.finish();

    g = c.benchmark_group("firewall_build");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("state_build_100k_cidrs", |b| {
        b.iter(|| FirewallState::build(black_box(&rules), Limits::default(), None, None))
    });
    g.finish();
}

fn bench_rate_limiter(c: &mut Criterion) {
    let mut rng = Rng(5);
    let limiter = RateLimiter::new(RateLimiterConfig {
        rate_per_sec: 20.0,
        burst: 40,
        ..RateLimiterConfig::default()
    })
    .expect("valid limiter");
    let now = limiter.epoch() + Duration::from_secs(1);
    let many: Vec<IpAddr> = (0..PROBES).map(|_| IpAddr::V4(rng.v4())).collect();
    let hot: IpAddr = "198.51.100.7".parse().expect("addr");

    let mut g = c.benchmark_group("rate_limiter");
    g.throughput(Throughput::Elements(1));
    g.bench_function("check_distinct_ips", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            limiter.check(black_box(many[i & (PROBES - 1)]), now)
        })
    });
    g.bench_function("check_one_ip_over_limit", |b| {
        b.iter(|| limiter.check(black_box(hot), now))
    });
    g.finish();
}

criterion_group!(benches, bench_admit, bench_rate_limiter);
criterion_main!(benches);
