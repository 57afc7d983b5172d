use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use super::*;
use crate::rules::LimitReason;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rate(rate_per_sec: f64, burst: u32, table_size: usize) -> RateLimiter {
    RateLimiter::new(RateLimiterConfig {
        rate_per_sec,
        burst,
        table_size,
    })
    .unwrap()
}

fn at(limiter: &RateLimiter, ms: u64) -> Instant {
    limiter.epoch() + Duration::from_millis(ms)
}

#[test]
fn client_keys() {
    // IPv4 and its mapped form are one client; an IPv6 /64 is one client.
    assert_eq!(
        client_key(ip("192.0.2.1")),
        client_key(ip("::ffff:192.0.2.1"))
    );
    assert_ne!(client_key(ip("192.0.2.1")), client_key(ip("192.0.2.2")));
    assert_eq!(
        client_key(ip("2001:db8:1:2::1")),
        client_key(ip("2001:db8:1:2:ffff::9"))
    );
    assert_ne!(
        client_key(ip("2001:db8:1:2::1")),
        client_key(ip("2001:db8:1:3::1"))
    );
    // No IPv4 client equals any IPv6 /64.
    assert_ne!(client_key(ip("0.0.0.0")), client_key(ip("::")));
}

#[test]
fn burst_then_refused_then_admitted_after_the_interval() {
    let limiter = rate(10.0, 3, 1024); // one every 100 ms, 3 at once
    let a = ip("198.51.100.7");
    for i in 0..3 {
        assert!(limiter.check(a, at(&limiter, 1000)), "burst #{i}");
    }
    assert!(!limiter.check(a, at(&limiter, 1000)));
    assert!(!limiter.check(a, at(&limiter, 1099)));
    // The wait a refusal names is exactly what admits the next attempt.
    assert_eq!(
        limiter.check_wait(a, at(&limiter, 1040)),
        Err(std::time::Duration::from_millis(60))
    );
    // Other clients are unaffected.
    assert!(limiter.check(ip("198.51.100.8"), at(&limiter, 1000)));
    // One interval later, exactly one more.
    assert!(limiter.check(a, at(&limiter, 1100)));
    assert!(!limiter.check(a, at(&limiter, 1100)));
    // Refused attempts cost nothing: hammering does not push the next slot out.
    for _ in 0..1000 {
        assert!(!limiter.check(a, at(&limiter, 1150)));
    }
    assert!(limiter.check(a, at(&limiter, 1200)));
    // Idle for 3 intervals: the full burst is back, and no more.
    for i in 0..3 {
        assert!(limiter.check(a, at(&limiter, 1500)), "refilled #{i}");
    }
    assert!(!limiter.check(a, at(&limiter, 1500)));
}

#[test]
fn ipv6_is_limited_per_64_and_mapped_as_ipv4() {
    let limiter = rate(1.0, 1, 1024);
    assert!(limiter.check(ip("2001:db8:0:1::1"), at(&limiter, 0)));
    assert!(!limiter.check(ip("2001:db8:0:1::2"), at(&limiter, 0)));
    assert!(limiter.check(ip("2001:db8:0:2::1"), at(&limiter, 0)));
    assert!(limiter.check(ip("192.0.2.1"), at(&limiter, 0)));
    assert!(!limiter.check(ip("::ffff:192.0.2.1"), at(&limiter, 0)));
}

#[test]
fn rate_zero_is_off_and_set_rate_applies_in_place() {
    let limiter = RateLimiter::new(RateLimiterConfig::default()).unwrap();
    assert_eq!(limiter.table_size(), DEFAULT_TABLE_SIZE);
    let a = ip("192.0.2.1");
    for _ in 0..10_000 {
        assert!(limiter.check(a, at(&limiter, 0)));
    }
    limiter.set_rate(1.0, 2).unwrap();
    assert!(limiter.check(a, at(&limiter, 0)));
    assert!(limiter.check(a, at(&limiter, 0)));
    assert!(!limiter.check(a, at(&limiter, 0)));
    // A bad setting changes nothing.
    assert!(limiter.set_rate(f64::NAN, 2).is_err());
    assert!(!limiter.check(a, at(&limiter, 0)));
}

#[test]
fn invalid_settings_are_refused() {
    let bad = |rate_per_sec, burst, table_size| {
        RateLimiter::new(RateLimiterConfig {
            rate_per_sec,
            burst,
            table_size,
        })
        .unwrap_err()
    };
    assert!(matches!(bad(-1.0, 1, 16), LimitConfigError::Rate { .. }));
    assert!(matches!(
        bad(f64::INFINITY, 1, 16),
        LimitConfigError::Rate { .. }
    ));
    assert!(matches!(bad(1001.0, 1, 16), LimitConfigError::Rate { .. }));
    assert!(matches!(
        bad(5.0, 0, 16),
        LimitConfigError::Burst { burst: 0 }
    ));
    assert!(matches!(
        bad(5.0, 100_001, 16),
        LimitConfigError::Burst { .. }
    ));
    let err = bad(5.0, 1, 1000);
    assert!(err.to_string().contains("table size 1000"), "{err}");
    assert!(matches!(bad(5.0, 1, 8), LimitConfigError::TableSize { .. }));
    let err = ConnectionLimiter::new(ConnectionLimiterConfig {
        table_size: 3,
        ..ConnectionLimiterConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("connection limiter"), "{err}");
}

#[test]
fn a_million_distinct_clients_do_not_grow_memory_or_refuse_newcomers() {
    let limiter = rate(1.0, 2, 1 << 12);
    let before = limiter.table_size();
    let now = at(&limiter, 10);
    // Every first connection of a new client is admitted, however full the
    // table is; the table itself never changes size.
    for i in 0..1_000_000u32 {
        let a = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i));
        assert!(limiter.check(a, now), "client {i}");
    }
    for i in 0..100_000u64 {
        let a = IpAddr::V6(Ipv6Addr::from(
            (0x2001_0db8_u128 << 96) | (u128::from(i) << 64),
        ));
        assert!(limiter.check(a, now), "client v6 {i}");
    }
    assert_eq!(limiter.table_size(), before);
    // After the flood, a single hot client is still limited.
    let hot = ip("203.0.113.9");
    let later = at(&limiter, 5000);
    assert!(limiter.check(hot, later));
    assert!(limiter.check(hot, later));
    assert!(!limiter.check(hot, later));
}

#[test]
fn concurrent_checks_never_exceed_burst_plus_rate_times_t() {
    const THREADS: usize = 4;
    const BURST: u64 = 5;
    const INTERVAL_MS: u64 = 10; // 100 per second
    const SPAN_MS: u64 = 2000;
    let limiter = rate(100.0, BURST as u32, 1 << 16);
    let hot = ip("198.51.100.1");
    let start = Barrier::new(THREADS);
    let admitted: u64 = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (limiter, start) = (&limiter, &start);
                s.spawn(move || {
                    start.wait();
                    let mut n = 0u64;
                    for ms in 0..SPAN_MS {
                        // Several attempts per simulated millisecond, plus
                        // traffic from other clients sharing the table.
                        for _ in 0..4 {
                            n += u64::from(limiter.check(hot, at(limiter, ms)));
                        }
                        let other = IpAddr::V4(Ipv4Addr::from(((t as u32) << 24) | ms as u32));
                        limiter.check(other, at(limiter, ms));
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    // GCRA bound over [0, SPAN_MS): burst + one per full interval.
    let bound = BURST + (SPAN_MS - 1) / INTERVAL_MS;
    assert!(admitted <= bound, "admitted {admitted} > {bound}");
    // And the limiter was not stingy either: each thread alone covers the
    // whole span, so together they reach the bound.
    assert_eq!(admitted, bound);
}

#[test]
fn connection_caps_per_client_and_total() {
    let limiter = ConnectionLimiter::new(ConnectionLimiterConfig {
        max_per_ip: 2,
        max_total: 3,
        table_size: 1024,
    })
    .unwrap();
    let a = ip("192.0.2.1");
    let b = ip("2001:db8::1");
    let g1 = limiter.try_acquire(a).unwrap();
    let g2 = limiter.try_acquire(a).unwrap();
    assert_eq!(
        limiter.try_acquire(a).unwrap_err(),
        LimitReason::ConnLimitIp
    );
    assert_eq!(limiter.count(a), 2);
    let g3 = limiter.try_acquire(b).unwrap();
    assert_eq!(limiter.total(), 3);
    // Same /64 as b: per-client cap not reached, total is.
    assert_eq!(
        limiter.try_acquire(ip("2001:db8::2")).unwrap_err(),
        LimitReason::ConnLimitTotal
    );
    // A refusal counted nothing.
    assert_eq!((limiter.total(), limiter.count(b)), (3, 1));
    drop(g1);
    assert_eq!((limiter.total(), limiter.count(a)), (2, 1));
    let g4 = limiter.try_acquire(ip("2001:db8::2")).unwrap();
    assert_eq!(limiter.count(b), 2);
    drop((g2, g3, g4));
    assert_eq!(
        (limiter.total(), limiter.count(a), limiter.count(b)),
        (0, 0, 0)
    );
}

#[test]
fn connection_limits_zero_is_unlimited_and_set_limits_keeps_counts() {
    let limiter = ConnectionLimiter::new(ConnectionLimiterConfig::default()).unwrap();
    assert_eq!(limiter.table_size(), DEFAULT_TABLE_SIZE);
    let a = ip("192.0.2.1");
    let guards: Vec<_> = (0..1000).map(|_| limiter.try_acquire(a).unwrap()).collect();
    assert_eq!((limiter.total(), limiter.count(a)), (1000, 1000));
    limiter.set_limits(1000, 0);
    assert_eq!(
        limiter.try_acquire(a).unwrap_err(),
        LimitReason::ConnLimitIp
    );
    limiter.set_limits(0, 1000);
    assert_eq!(
        limiter.try_acquire(a).unwrap_err(),
        LimitReason::ConnLimitTotal
    );
    // A clone shares the counters.
    let clone = limiter.clone();
    drop(guards);
    assert_eq!(clone.total(), 0);
    assert!(clone.try_acquire(a).is_ok());
}

#[test]
fn concurrent_acquire_never_exceeds_caps() {
    let limiter = ConnectionLimiter::new(ConnectionLimiterConfig {
        max_per_ip: 10,
        max_total: 25,
        table_size: 1024,
    })
    .unwrap();
    let clients = [ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")];
    std::thread::scope(|s| {
        for t in 0..4 {
            let limiter = &limiter;
            s.spawn(move || {
                let mut held = Vec::new();
                for i in 0..20_000 {
                    if let Ok(g) = limiter.try_acquire(clients[(i + t) % 3]) {
                        held.push(g);
                    }
                    assert!(limiter.total() <= 25);
                    if held.len() > 4 {
                        drop(held.remove(0));
                    }
                }
            });
        }
    });
    assert_eq!(limiter.total(), 0);
}

#[test]
fn labels_match_indexes() {
    use crate::rules::{BLOCK_LABELS, Reason};
    let fr = crate::CountryCode::parse("FR").unwrap();
    for r in [Reason::Ip, Reason::Cidr, Reason::Country(fr)] {
        assert_eq!(BLOCK_LABELS[r.index()], r.label());
    }
    for r in [
        LimitReason::RateLimit,
        LimitReason::ConnLimitIp,
        LimitReason::ConnLimitTotal,
    ] {
        assert_eq!(BLOCK_LABELS[r.index()], r.label());
    }
}
