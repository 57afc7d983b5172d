//! mc-proxy: SNI route lookup in a 10k-route table (exact and wildcard),
//! the same with 10 path rules per route,
//! building a 10k-route snapshot, the cost of loading and publishing it
//! through `ArcSwap`, and one backend pick per balancing policy.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Cache};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mc_bench::Rng;
use mc_proxy::firewall::{FirewallState, Limits};
use mc_proxy::model::{
    Backend, DEFAULT_CLIENT_HELLO_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    HostPattern, ListenerSpec, Origin, ProxyProtocolIn, ProxyProtocolOut, RouteMode, RouteSpec,
};
use mc_proxy::snapshot::{self, Snapshot};
use mc_proxy::table::{PathTable, RouteTable};

const ROUTES: usize = 10_000;
/// Lookup names cycled through (power of two).
const PROBES: usize = 1 << 12;

fn table(patterns: impl Iterator<Item = String>) -> RouteTable<usize> {
    let mut t = RouteTable::default();
    for (i, p) in patterns.enumerate() {
        t.insert(&HostPattern::parse(&p).expect("valid pattern"), Arc::new(i));
    }
    t
}

fn bench_lookup(c: &mut Criterion) {
    let mut rng = Rng(3);
    let exact = table((0..ROUTES).map(|i| format!("svc{i}.example.com")));
    let wild = table((0..ROUTES).map(|i| format!("*.svc{i}.example.com")));
    // Half exact, half wildcard, as a node with many tenants might have.
    let mixed = table((0..ROUTES).map(|i| {
        if i % 2 == 0 {
            format!("svc{i}.example.com")
        } else {
            format!("*.svc{i}.example.com")
        }
    }));
    let pick = |rng: &mut Rng| rng.next_u64() as usize % ROUTES;
    let exact_hits: Vec<String> = (0..PROBES)
        .map(|_| format!("svc{}.example.com", pick(&mut rng)))
        .collect();
    let misses: Vec<String> = (0..PROBES)
        .map(|_| format!("nope{}.example.org", pick(&mut rng)))
        .collect();
    let wild_hits: Vec<String> = (0..PROBES)
        .map(|_| format!("api.svc{}.example.com", pick(&mut rng)))
        .collect();
    let deep_wild_hits: Vec<String> = (0..PROBES)
        .map(|_| format!("a.b.c.svc{}.example.com", pick(&mut rng)))
        .collect();
    let mixed_hits: Vec<String> = (0..PROBES)
        .map(|_| {
            let i = pick(&mut rng);
            if i % 2 == 0 {
                format!("svc{i}.example.com")
            } else {
                format!("www.svc{i}.example.com")
            }
        })
        .collect();
    assert!(exact_hits.iter().all(|n| exact.lookup(n).is_some()));
    assert!(wild_hits.iter().all(|n| wild.lookup(n).is_some()));
    assert!(deep_wild_hits.iter().all(|n| wild.lookup(n).is_some()));
    assert!(mixed_hits.iter().all(|n| mixed.lookup(n).is_some()));
    assert!(misses.iter().all(|n| mixed.lookup(n).is_none()));

    let mut g = c.benchmark_group("route_lookup_10k");
    g.throughput(Throughput::Elements(1));
    let cases: [(&str, &RouteTable<usize>, &Vec<String>); 6] = [
        ("exact_hit", &exact, &exact_hits),
        ("exact_miss", &exact, &misses),
        ("wildcard_hit", &wild, &wild_hits),
        ("wildcard_hit_3_extra_labels", &wild, &deep_wild_hits),
        ("mixed_hit", &mixed, &mixed_hits),
        ("mixed_miss", &mixed, &misses),
    ];
    for (name, t, probes) in cases {
        g.bench_function(name, |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = i.wrapping_add(1);
                t.lookup(black_box(&probes[i & (PROBES - 1)])).is_some()
            })
        });
    }
    g.finish();
}

/// Ten path rules of a route, as an application might have them.
const PATHS: [&str; 10] = [
    "/",
    "/api/",
    "/api/v1/",
    "/api/v2/",
    "/static/",
    "/img/",
    "/user/",
    "/admin/",
    "/ws/",
    "/.well-known/",
];

/// A looked-up route as the proxy uses it: something it reads on every hit
/// (its own backends) beside its path rules.
struct HeldRoute {
    backends: usize,
    paths: PathTable<usize>,
}

/// What 10k routes × 10 path rules cost over the SNI lookup alone: the same
/// table and names, then the path's rule (longest prefix).
/// - `host_only`: the SNI lookup, result not read (a bare hash probe);
/// - `host_then_route`: the SNI lookup and the read of the route that every
///   hit is followed by (today's lookup as the proxy uses it);
/// - `host_and_path`: the SNI lookup, then the path rule (cold route);
/// - `path_on_held_route`: the path rule on a route the connection already
///   holds — what each request on an open connection costs.
fn bench_path_lookup(c: &mut Criterion) {
    let mut rng = Rng(5);
    let mut t = RouteTable::default();
    for i in 0..ROUTES {
        let paths: PathTable<usize> = PATHS
            .iter()
            .enumerate()
            .map(|(j, p)| (Box::from(*p), j))
            .collect();
        let h = HostPattern::parse(&format!("svc{i}.example.com")).expect("valid pattern");
        t.insert(&h, Arc::new(HeldRoute { backends: i, paths }));
    }
    let paths = [
        "/api/v1/users/42?full=1",
        "/static/css/app.css",
        "/index.html",
        "/ws/chat",
    ];
    let probes: Vec<(String, &str)> = (0..PROBES)
        .map(|k| {
            let i = rng.next_u64() as usize % ROUTES;
            (format!("svc{i}.example.com"), paths[k % paths.len()])
        })
        .collect();
    assert!(
        probes
            .iter()
            .all(|(h, p)| t.lookup(h).and_then(|r| r.paths.lookup(p)).is_some())
    );
    let held = t.lookup("svc42.example.com").expect("route 42").clone();
    let mut g = c.benchmark_group("route_lookup_10k_x10_paths");
    g.throughput(Throughput::Elements(1));
    g.bench_function("host_only", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            let (h, _) = &probes[i & (PROBES - 1)];
            t.lookup(black_box(h)).is_some()
        })
    });
    g.bench_function("host_then_route", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            let (h, _) = &probes[i & (PROBES - 1)];
            t.lookup(black_box(h)).map(|r| r.backends)
        })
    });
    g.bench_function("host_and_path", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            let (h, p) = &probes[i & (PROBES - 1)];
            t.lookup(black_box(h))
                .and_then(|r| r.paths.lookup(black_box(p)))
                .map(|(_, v)| *v)
        })
    });
    g.bench_function("path_on_held_route", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            let p = paths[i & 3];
            held.paths.lookup(black_box(p)).map(|(_, v)| *v)
        })
    });
    g.finish();
}

fn specs(routes: usize) -> (Vec<ListenerSpec>, Vec<RouteSpec>) {
    let listener = ListenerSpec {
        name: "public".into(),
        address: "127.0.0.1:443".parse().expect("addr"),
        proxy_protocol: ProxyProtocolIn::Off,
        trusted_proxies: Vec::new(),
        default_route: None,
        client_hello_timeout: DEFAULT_CLIENT_HELLO_TIMEOUT,
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        idle_timeout: DEFAULT_IDLE_TIMEOUT,
        min_tls: Default::default(),
        kind: Default::default(),
        origin: Origin::AdminApi,
    };
    let routes = (0..routes)
        .map(|i| RouteSpec {
            listener: "public".into(),
            hostname: HostPattern::parse(&if i % 4 == 3 {
                format!("*.svc{i}.example.com")
            } else {
                format!("svc{i}.example.com")
            })
            .expect("valid pattern"),
            mode: RouteMode::L4,
            l7: None,
            // IP literals: building never resolves names.
            backends: vec![
                Backend::parse(&format!(
                    "10.{}.{}.{}:8443",
                    i >> 16,
                    (i >> 8) & 255,
                    i & 255
                ))
                .expect("backend"),
            ],
            send_proxy_protocol: ProxyProtocolOut::Off,
            connect_timeout: None,
            idle_timeout: None,
            origin: Origin::AdminApi,
            balance: Default::default(),
            health_check: None,
            plain_http: Default::default(),
        })
        .collect();
    (vec![listener], routes)
}

fn firewall() -> Arc<FirewallState> {
    Arc::new(FirewallState::build(&[], Limits::default(), None, None).expect("empty firewall"))
}

fn bench_snapshot(c: &mut Criterion) {
    let (listeners, routes) = specs(ROUTES);
    let fw = firewall();
    let workers = 2;
    let previous = snapshot::build(1, workers, &listeners, &routes, fw.clone(), None);
    assert_eq!(previous.listeners["public"].routes.len(), ROUTES);

    let mut g = c.benchmark_group("snapshot_10k_routes");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("build_fresh", |b| {
        b.iter(|| snapshot::build(2, workers, black_box(&listeners), &routes, fw.clone(), None))
    });
    // The admin path after one change: runtime state carried over from the previous snapshot.
    g.bench_function("build_from_previous", |b| {
        b.iter(|| {
            snapshot::build(
                2,
                workers,
                black_box(&listeners),
                &routes,
                fw.clone(),
                Some(&previous),
            )
        })
    });
    // Publishing: store a new snapshot (dropping the old one when nobody holds it).
    let swap = ArcSwap::from_pointee(snapshot::build(
        1,
        workers,
        &listeners,
        &routes,
        fw.clone(),
        None,
    ));
    // The swap itself: the old snapshot is returned, and criterion drops it
    // outside the timed section.
    g.bench_function("arcswap_swap_only", |b| {
        b.iter_batched(
            || {
                Arc::new(snapshot::build(
                    3,
                    workers,
                    &listeners,
                    &routes,
                    fw.clone(),
                    None,
                ))
            },
            |next| swap.swap(next),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("arcswap_store_and_drop_old", |b| {
        b.iter_batched(
            || {
                Arc::new(snapshot::build(
                    3,
                    workers,
                    &listeners,
                    &routes,
                    fw.clone(),
                    None,
                ))
            },
            |next| swap.store(next),
            BatchSize::LargeInput,
        )
    });
    g.finish();

    // What a worker pays per connection to get the current snapshot.
    let small = ArcSwap::from_pointee(snapshot::build(1, workers, &listeners, &routes, fw, None));
    let mut g = c.benchmark_group("snapshot_load");
    g.throughput(Throughput::Elements(1));
    g.bench_function("arcswap_load_guard", |b| {
        b.iter(|| black_box(small.load()).generation)
    });
    g.bench_function("arcswap_load_full", |b| {
        b.iter(|| black_box(small.load_full()).generation)
    });
    let mut cache: Cache<&ArcSwap<Snapshot>, Arc<Snapshot>> = Cache::new(&small);
    g.bench_function("arcswap_cache_load", |b| {
        b.iter(|| black_box(cache.load()).generation)
    });
    g.finish();
}

/// One backend pick per policy over 3 and 16 backends (weights 1-3, or all
/// equal for `hash_eq`; no backend down): what a connection or request pays on top of the lookup.
fn bench_picker(c: &mut Criterion) {
    use mc_proxy::BenchPicker;
    use mc_proxy::model::{Balance, BalancePolicy};
    use std::net::{IpAddr, Ipv4Addr};
    let clients: Vec<IpAddr> = (0..PROBES as u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)))
        .collect();
    let mut group = c.benchmark_group("picker");
    group.throughput(Throughput::Elements(1));
    for n in [3usize, 16] {
        let backends: Vec<Backend> = (0..n)
            .map(|i| Backend::parse(&format!("10.1.0.{}:8080", i + 1)).expect("backend"))
            .collect();
        // `hash_eq`: equal weights, where the pick ranks by the raw hash.
        for (name, policy, spread) in [
            ("rr", BalancePolicy::Rr, 3),
            ("least", BalancePolicy::Least, 3),
            ("hash", BalancePolicy::Hash, 3),
            ("hash_eq", BalancePolicy::Hash, 1),
        ] {
            let balance = Balance {
                policy,
                weights: (0..n).map(|i| 1 + (i % spread) as u32).collect(),
                ..Balance::default()
            };
            let picker = BenchPicker::new(&backends, &balance);
            let mut i = 0usize;
            group.bench_function(format!("{name}_{n}"), |b| {
                b.iter(|| {
                    i = (i + 1) & (PROBES - 1);
                    black_box(picker.pick(black_box(clients[i])))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_lookup,
    bench_path_lookup,
    bench_snapshot,
    bench_picker
);
criterion_main!(benches);
