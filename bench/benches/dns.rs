//! mc-dns: one UDP query answered from a 10k-record zone the way a worker
//! does it (decode → lookup → encode), per answer kind, and the decode alone;
//! then the dnsperf mix (60 % A, 20 % NXDOMAIN, 20 % NODATA) over a
//! 1,000-name zone through `process` and through the wire-level fast path
//! (precompiled answers), in the same run.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mc_dns::fuzzing::{fast_reply, published_with_hosts, reply};

/// A query for `name`/`qtype` with an EDNS OPT record (as resolvers send).
fn query(name: &str, qtype: u16) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name.trim_end_matches('.').split('.') {
        q.push(u8::try_from(label.len()).expect("label"));
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    q
}

fn bench_answers(c: &mut Criterion) {
    let p = published_with_hosts(10_000);
    let cases = [
        ("a_hit", query("h7777.f.test", 1)),
        ("nxdomain", query("nope7777.f.test", 1)),
        ("nodata", query("h7777.f.test", 28)),
        ("cname_chase", query("alias.f.test", 1)),
        ("wildcard", query("x.w.f.test", 16)),
        ("referral", query("a.sub.f.test", 1)),
    ];
    for (name, q) in &cases {
        let r = reply(&p, q).unwrap_or_else(|| panic!("{name}: no reply"));
        assert_eq!(&r[..2], &q[..2], "{name}: id echoed");
    }
    let mut g = c.benchmark_group("dns_answer_10k_zone");
    g.throughput(Throughput::Elements(1));
    for (name, q) in &cases {
        g.bench_function(*name, |b| b.iter(|| reply(&p, black_box(q))));
    }
    g.finish();

    let mut g = c.benchmark_group("dns_decode");
    g.throughput(Throughput::Elements(1));
    let q = query("h7777.f.test", 1);
    g.bench_function("query_with_edns", |b| {
        b.iter(|| mc_dns::message::parse(black_box(&q), 1232))
    });
    g.finish();
}

/// The loadtest/compare query mix: 60 % A on existing names, 20 % NXDOMAIN,
/// 20 % NODATA (AAAA on an A-only name), spread over the zone's names.
fn mix(hosts: usize, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let h = (i * 7919) % hosts;
            match i % 5 {
                0..=2 => query(&format!("h{h}.f.test"), 1),
                3 => query(&format!("nx{h}.f.test"), 1),
                _ => query(&format!("h{h}.f.test"), 28),
            }
        })
        .collect()
}

fn bench_mix(c: &mut Criterion) {
    let p = published_with_hosts(1_000);
    let queries = mix(1_000, 1_000);
    for q in &queries {
        let fast = fast_reply(&p, q).expect("the fast path answers the whole mix");
        assert_eq!(Some(fast), reply(&p, q), "fast path bytes == process bytes");
    }
    let mut g = c.benchmark_group("dns_mix_1k_zone");
    g.throughput(Throughput::Elements(queries.len() as u64));
    g.bench_function("process", |b| {
        b.iter(|| {
            for q in &queries {
                black_box(reply(&p, black_box(q)));
            }
        })
    });
    // What the UDP loop does: the fast path, `process` when it declines.
    g.bench_function("fast_path", |b| {
        b.iter(|| {
            for q in &queries {
                black_box(fast_reply(&p, black_box(q)).or_else(|| reply(&p, q)));
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("dns_publish");
    g.sample_size(10);
    g.bench_function("wire_table_1k_names", |b| {
        b.iter(|| mc_dns::fuzzing::rebuild_wire_table(black_box(&p)))
    });
    g.finish();
}

criterion_group!(benches, bench_answers, bench_mix);
criterion_main!(benches);
