//! Firewall hot-path benchmarks: compiled-table build and lookup at 100k
//! CIDRs, GeoIP lookup and country expansion, rate-limit check, connection
//! acquire/release. `cargo bench -p mc-firewall`.
//!
//! The GeoIP database is a real MaxMind DB written at start by
//! `tests/fixtures/make-mmdb.pl` (Debian package `libmaxmind-db-writer-perl`).

use std::hint::black_box;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use mc_firewall::{
    CompiledFirewall, ConnectionLimiter, ConnectionLimiterConfig, CountryCode, FirewallRules,
    GeoIp, RateLimiter, RateLimiterConfig,
};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/make-mmdb.pl");
const CIDRS: usize = 100_000;
/// Lookup addresses cycled through (power of two).
const PROBES: usize = 1 << 14;

/// Deterministic pseudo-random numbers (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn v4(&mut self) -> Ipv4Addr {
        Ipv4Addr::from(self.next() as u32)
    }

    fn v6(&mut self) -> Ipv6Addr {
        // Global unicast 2000::/3, like real peers.
        let bits = (u128::from(self.next()) << 64) | u128::from(self.next());
        Ipv6Addr::from((bits >> 3) | (1 << 125))
    }
}

/// 100k random CIDRs: 80% IPv4 (/12../32, mostly /24 and /32), 20% IPv6 (/16../64).
fn random_rules(rng: &mut Rng) -> FirewallRules {
    let mut rules = FirewallRules::default();
    for i in 0..CIDRS {
        let net = if i % 5 == 4 {
            let len = 16 + (rng.next() % 49) as u8;
            IpNet::V6(Ipv6Net::new(rng.v6(), len).expect("valid prefix").trunc())
        } else {
            // Like real block lists: mostly /24s and single hosts.
            let len = match rng.next() % 50 {
                0 => 12 + (rng.next() % 5) as u8,
                1..=9 => 17 + (rng.next() % 7) as u8,
                10..=19 => 32,
                _ => 24,
            };
            IpNet::V4(Ipv4Net::new(rng.v4(), len).expect("valid prefix").trunc())
        };
        rules.cidrs.push(net);
    }
    rules
}

/// A real MaxMind DB of `networks` random IPv4 /24s and IPv6 /48s spread
/// over 20 countries.
fn make_geoip(rng: &mut Rng, dir: &std::path::Path, networks: usize) -> GeoIp {
    const COUNTRIES: [&str; 20] = [
        "US", "CN", "DE", "FR", "GB", "JP", "BR", "IN", "RU", "NL", "KR", "IT", "ES", "CA", "AU",
        "SE", "PL", "UA", "TR", "VN",
    ];
    let mut specs = String::new();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < networks {
        let net = if seen.len() % 4 == 3 {
            IpNet::V6(Ipv6Net::new(rng.v6(), 48).expect("valid prefix").trunc())
        } else {
            let a = rng.v4();
            // Skip space the writer aliases or reserves for IPv6 mapping.
            if a.octets()[0] == 0 {
                continue;
            }
            IpNet::V4(Ipv4Net::new(a, 24).expect("valid prefix").trunc())
        };
        if let IpNet::V6(n) = net {
            let top = n.network().segments()[0];
            if top == 0x2001 || top == 0x2002 {
                continue;
            }
        }
        if seen.insert(net) {
            let cc = COUNTRIES[(rng.next() % 20) as usize];
            specs.push_str(&format!("{net}={cc}\n"));
        }
    }
    let out = dir.join("bench.mmdb");
    let mut child = Command::new("perl")
        .arg(SCRIPT)
        .arg(&out)
        .arg("-")
        .stdin(Stdio::piped())
        .spawn()
        .expect("run perl (install libmaxmind-db-writer-perl, or run scripts/test)");
    child
        .stdin
        .take()
        .expect("perl stdin")
        .write_all(specs.as_bytes())
        .expect("write specs to make-mmdb.pl");
    let status = child.wait().expect("wait for make-mmdb.pl");
    assert!(
        status.success(),
        "make-mmdb.pl failed: {status} (is libmaxmind-db-writer-perl installed?)"
    );
    GeoIp::open(&out).expect("open the bench database")
}

fn bench_compiled(c: &mut Criterion) {
    let mut rng = Rng(42);
    let rules = random_rules(&mut rng);

    let started = Instant::now();
    let fw = CompiledFirewall::build(&rules, None);
    eprintln!(
        "build of {CIDRS} CIDRs: {:?} ({} IPv4 + {} IPv6 ranges)",
        started.elapsed(),
        fw.stats().v4_ranges,
        fw.stats().v6_ranges
    );

    let mut group = c.benchmark_group("compiled");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("build_100k_cidrs", |b| {
        b.iter(|| CompiledFirewall::build(black_box(&rules), None))
    });
    group.finish();

    // Probes: half drawn inside blocked CIDRs (hits), half random (mostly misses).
    let v4: Vec<IpAddr> = (0..PROBES)
        .map(|i| match (i % 2, rules.cidrs[i * 5 % CIDRS]) {
            (0, IpNet::V4(n)) => IpAddr::V4(Ipv4Addr::from(
                u32::from(n.network()) | (rng.next() as u32 & !u32::from(n.netmask())),
            )),
            _ => IpAddr::V4(rng.v4()),
        })
        .collect();
    let v6: Vec<IpAddr> = (0..PROBES).map(|_| IpAddr::V6(rng.v6())).collect();
    let hits = v4.iter().filter(|a| fw.check(**a).is_some()).count();
    eprintln!("IPv4 probes blocked: {hits}/{PROBES}");

    let mut group = c.benchmark_group("compiled");
    for (name, probes) in [("check_100k_cidrs_v4", &v4), ("check_100k_cidrs_v6", &v6)] {
        group.bench_function(name, |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = i.wrapping_add(1);
                fw.check(black_box(probes[i & (PROBES - 1)]))
            })
        });
    }
    group.finish();
}

fn bench_geoip(c: &mut Criterion) {
    let mut rng = Rng(7);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = make_geoip(&mut rng, dir.path(), 20_000);
    let probes: Vec<IpAddr> = (0..PROBES)
        .map(|i| {
            if i % 4 == 3 {
                IpAddr::V6(rng.v6())
            } else {
                IpAddr::V4(rng.v4())
            }
        })
        .collect();
    let rules = FirewallRules {
        countries: ["CN", "RU", "DE", "FR", "BR"]
            .iter()
            .map(|c| CountryCode::parse(c).expect("valid code"))
            .collect(),
        cidrs: random_rules(&mut rng).cidrs,
        ips: Vec::new(),
    };
    let fw = CompiledFirewall::build(&rules, Some(&db));
    eprintln!(
        "100k CIDRs + 5 countries of a 20k-network GeoIP database: {:?}",
        fw.stats()
    );

    let mut group = c.benchmark_group("geoip");
    group.bench_function("country_lookup", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            db.country(black_box(probes[i & (PROBES - 1)]))
        })
    });
    group.bench_function("compiled_check_100k_cidrs_5_countries", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            fw.check(black_box(probes[i & (PROBES - 1)]))
        })
    });
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("build_100k_cidrs_5_countries", |b| {
        b.iter(|| CompiledFirewall::build(black_box(&rules), Some(&db)))
    });
    group.finish();
}

fn bench_limits(c: &mut Criterion) {
    let mut rng = Rng(9);
    let limiter = RateLimiter::new(RateLimiterConfig {
        rate_per_sec: 10.0,
        burst: 20,
        ..RateLimiterConfig::default()
    })
    .expect("valid limiter");
    let now = limiter.epoch() + Duration::from_secs(1);
    let many: Vec<IpAddr> = (0..PROBES).map(|_| IpAddr::V4(rng.v4())).collect();
    let hot: IpAddr = "198.51.100.7".parse().expect("address");

    let mut group = c.benchmark_group("limits");
    group.bench_function("rate_check_distinct_ips", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            limiter.check(black_box(many[i & (PROBES - 1)]), now)
        })
    });
    group.bench_function("rate_check_one_ip_refused", |b| {
        b.iter(|| limiter.check(black_box(hot), now))
    });
    let conns = ConnectionLimiter::new(ConnectionLimiterConfig {
        max_per_ip: 100,
        max_total: 1_000_000,
        ..ConnectionLimiterConfig::default()
    })
    .expect("valid limiter");
    group.bench_function("conn_acquire_release", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            drop(conns.try_acquire(black_box(many[i & (PROBES - 1)])))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_compiled, bench_geoip, bench_limits);
criterion_main!(benches);
