use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;

fn backends(n: usize) -> Vec<Backend> {
    (0..n)
        .map(|i| Backend::parse(&format!("10.0.{}.{}:80", i / 250, i % 250 + 1)).expect("backend"))
        .collect()
}

fn set(n: usize, weights: &[u32], policy: BalancePolicy, prev: Option<&BackendSet>) -> BackendSet {
    let balance = Balance {
        policy,
        ..Balance::default()
    };
    BackendSet::with_resolver(
        &backends(n),
        |i| weights.get(i).copied().unwrap_or(1),
        &balance,
        prev,
        |b: &Backend| b.socket_addr().into_iter().collect::<Vec<SocketAddr>>(),
    )
}

fn first(s: &BackendSet, key: u64, now: u64) -> usize {
    let o = s.order_at(key, now);
    let b = o.all().next().expect("a backend");
    s.backends
        .iter()
        .position(|x| std::ptr::eq(x, b))
        .expect("member")
}

#[test]
fn weighted_round_robin_is_exact_over_a_cycle_and_interleaved() {
    let s = set(3, &[5, 1, 1], BalancePolicy::Rr, None);
    let picks: Vec<usize> = (0..7).map(|_| first(&s, 0, 10)).collect();
    assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 5);
    // Smooth: the heavy backend never takes more than two in a row here.
    assert!(
        picks.windows(3).all(|w| !w.iter().all(|&i| i == 0)),
        "{picks:?}"
    );
}

#[test]
fn down_backends_are_skipped_and_come_last() {
    for policy in [BalancePolicy::Rr, BalancePolicy::Least, BalancePolicy::Hash] {
        let s = set(3, &[], policy, None);
        s.backends[1].mark_down(10);
        for k in 0..50u64 {
            let o = s.order_at(key_of(&k.to_le_bytes()), 11);
            let up: Vec<_> = o.up().map(|b| b.backend.to_string()).collect();
            assert_eq!(up.len(), 2, "{policy:?}");
            assert!(!up.contains(&s.backends[1].backend.to_string()));
            let all: Vec<_> = o.all().collect();
            assert_eq!(all.len(), 3);
            assert!(std::ptr::eq(all[2], &s.backends[1]), "down last");
        }
    }
}

#[test]
fn least_outstanding_prefers_the_idle_backend_by_weight() {
    let s = set(3, &[1, 1, 2], BalancePolicy::Least, None);
    let _a = s.backends[0].in_flight();
    let _b = s.backends[2].in_flight();
    // Loads (with one more) per weight: 2/1, 1/1, 2/2.
    let picks: Vec<usize> = (0..6).map(|_| first(&s, 0, 10)).collect();
    assert!(picks.iter().all(|&i| i == 1 || i == 2), "{picks:?}");
    assert!(
        picks.contains(&1) && picks.contains(&2),
        "ties rotate: {picks:?}"
    );
    let _c = s.backends[1].in_flight();
    assert_eq!(first(&s, 0, 10), 2, "2/2 beats 2/1");
}

#[test]
fn hashing_moves_only_the_removed_backends_clients() {
    let s = set(5, &[], BalancePolicy::Hash, None);
    let keys: Vec<u64> = (0..2000u32).map(|k| key_of(&k.to_le_bytes())).collect();
    let before: Vec<String> = keys
        .iter()
        .map(|&k| s.backends[first(&s, k, 10)].backend.to_string())
        .collect();
    let fewer = {
        let mut b = backends(5);
        b.remove(2);
        BackendSet::with_resolver(
            &b,
            |_| 1,
            &Balance {
                policy: BalancePolicy::Hash,
                ..Balance::default()
            },
            Some(&s),
            |b: &Backend| b.socket_addr().into_iter().collect(),
        )
    };
    let removed = s.backends[2].backend.to_string();
    for (k, was) in keys.iter().zip(&before) {
        let now = fewer.backends[first(&fewer, *k, 10)].backend.to_string();
        if *was != removed {
            assert_eq!(&now, was, "a client of a kept backend moved");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Over whole cycles, each backend gets exactly its weight's share.
    #[test]
    fn round_robin_respects_weights(weights in prop::collection::vec(1u32..=20, 1..16), cycles in 1usize..4) {
        let s = set(weights.len(), &weights, BalancePolicy::Rr, None);
        let total: u32 = weights.iter().sum();
        let mut counts = vec![0u32; weights.len()];
        for _ in 0..(total as usize * cycles) {
            counts[first(&s, 0, 10)] += 1;
        }
        for (c, w) in counts.iter().zip(&weights) {
            prop_assert_eq!(*c as usize, *w as usize * cycles);
        }
    }

    /// The same backends in a new set (a table swap) pick alike for every key.
    #[test]
    fn hashing_is_stable_across_swaps(n in 1usize..16, keys in prop::collection::vec(any::<u64>(), 1..64), weights in prop::collection::vec(1u32..=5, 16)) {
        let a = set(n, &weights, BalancePolicy::Hash, None);
        let b = set(n, &weights, BalancePolicy::Hash, Some(&a));
        let fresh = set(n, &weights, BalancePolicy::Hash, None);
        for k in keys {
            prop_assert_eq!(first(&a, k, 10), first(&b, k, 10));
            prop_assert_eq!(first(&a, k, 10), first(&fresh, k, 10));
        }
    }

    /// With equal weights the shortcut rank (the raw hash) orders backends
    /// exactly as the rendezvous score does, for any common weight.
    #[test]
    fn equal_weight_rank_orders_like_the_score(n in 2usize..16, w in 1u32..=5, keys in prop::collection::vec(any::<u64>(), 1..64)) {
        let s = set(n, &vec![w; n], BalancePolicy::Hash, None);
        prop_assert!(s.equal_weights);
        for k in keys {
            let mut by_rank: Vec<usize> = (0..n).collect();
            by_rank.sort_by_key(|i| std::cmp::Reverse(rank(k, &s.backends[*i], true)));
            let mut by_score: Vec<usize> = (0..n).collect();
            by_score.sort_by(|a, b| score(k, &s.backends[*b]).total_cmp(&score(k, &s.backends[*a])));
            prop_assert_eq!(by_rank, by_score);
        }
    }

    /// Hashing spreads keys by weight (loosely: within 25 % of the share).
    #[test]
    fn hashing_respects_weights(w0 in 1u32..=4, w1 in 1u32..=4) {
        let s = set(2, &[w0, w1], BalancePolicy::Hash, None);
        let n = 4000u32;
        let zero = (0..n).filter(|k| first(&s, key_of(&k.to_le_bytes()), 10) == 0).count() as f64;
        let want = f64::from(n) * f64::from(w0) / f64::from(w0 + w1);
        prop_assert!((zero - want).abs() < want * 0.25, "{zero} vs {want}");
    }

    /// Whatever is down, every policy offers exactly the up backends first.
    #[test]
    fn only_up_backends_come_first(down in prop::collection::vec(any::<bool>(), 1..16), policy in prop::sample::select(vec![BalancePolicy::Rr, BalancePolicy::Least, BalancePolicy::Hash])) {
        let s = set(down.len(), &[], policy, None);
        for (b, d) in s.backends.iter().zip(&down) {
            if *d { b.mark_down(10); }
        }
        let o = s.order_at(7, 11);
        let up = o.up().count();
        prop_assert_eq!(up, down.iter().filter(|d| !**d).count());
        prop_assert!(o.up().all(|b| b.is_up(11)));
        prop_assert_eq!(o.all().count(), down.len());
    }
}
