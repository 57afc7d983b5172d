//! mc-wire: ClientHello/SNI parsing and PROXY protocol v1/v2 parse + encode.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mc_bench::{client_hello, fragment_records};
use mc_wire::client_hello::{self as ch, DEFAULT_MAX_LEN};
use mc_wire::proxy_protocol::{self as pp, Accept};

fn bench_client_hello(c: &mut Criterion) {
    let hello = client_hello("app.bench.example.com");
    let split = fragment_records(&hello, 64);
    let parsed = match ch::parse(&hello, DEFAULT_MAX_LEN) {
        Ok(ch::Parse::Complete(h)) => h,
        other => panic!("the rustls ClientHello must parse: {other:?}"),
    };
    assert_eq!(parsed.server_name.as_deref(), Some("app.bench.example.com"));
    assert!(matches!(
        ch::parse(&split, DEFAULT_MAX_LEN),
        Ok(ch::Parse::Complete(_))
    ));
    eprintln!(
        "rustls ClientHello: {} bytes in one record; {} bytes in {} records",
        hello.len(),
        split.len(),
        (hello.len() - 5).div_ceil(64)
    );

    let mut g = c.benchmark_group("client_hello");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_rustls_one_record", |b| {
        b.iter(|| ch::parse(black_box(&hello), DEFAULT_MAX_LEN))
    });
    g.bench_function("parse_rustls_64b_records", |b| {
        b.iter(|| ch::parse(black_box(&split), DEFAULT_MAX_LEN))
    });
    // What a worker pays per read while the ClientHello is still arriving.
    let half = &hello[..hello.len() / 2];
    g.bench_function("parse_incomplete_half", |b| {
        b.iter(|| ch::parse(black_box(half), DEFAULT_MAX_LEN))
    });
    g.finish();
}

fn bench_proxy_protocol(c: &mut Criterion) {
    let src4: SocketAddr = "203.0.113.7:51234".parse().expect("addr");
    let dst4: SocketAddr = "192.0.2.1:443".parse().expect("addr");
    let src6: SocketAddr = "[2001:db8::7]:51234".parse().expect("addr");
    let dst6: SocketAddr = "[2001:db8::1]:443".parse().expect("addr");

    let mut v1_4 = Vec::new();
    pp::encode_v1(src4, dst4, &mut v1_4);
    let mut v1_6 = Vec::new();
    pp::encode_v1(src6, dst6, &mut v1_6);
    let mut v2_4 = Vec::new();
    pp::encode_v2(src4, dst4, &mut v2_4);
    let mut v2_6 = Vec::new();
    pp::encode_v2(src6, dst6, &mut v2_6);
    // The header is followed by the ClientHello in real traffic.
    let hello = client_hello("app.example.com");
    let with_hello = |h: &[u8]| [h, &hello[..]].concat();
    let inputs = [
        ("parse_v1_tcp4", with_hello(&v1_4), Accept::Any),
        ("parse_v1_tcp6", with_hello(&v1_6), Accept::Any),
        ("parse_v2_tcp4", with_hello(&v2_4), Accept::Any),
        ("parse_v2_tcp6", with_hello(&v2_6), Accept::Any),
    ];
    for (name, buf, accept) in &inputs {
        assert!(
            matches!(pp::parse(buf, *accept), Ok(pp::Parse::Complete { .. })),
            "{name} must parse"
        );
    }

    let mut g = c.benchmark_group("proxy_protocol");
    g.throughput(Throughput::Elements(1));
    for (name, buf, accept) in &inputs {
        g.bench_function(*name, |b| b.iter(|| pp::parse(black_box(buf), *accept)));
    }
    let mut out = Vec::with_capacity(128);
    g.bench_function("encode_v1_tcp4", |b| {
        b.iter(|| {
            out.clear();
            pp::encode_v1(black_box(src4), black_box(dst4), &mut out);
            out.len()
        })
    });
    g.bench_function("encode_v1_tcp6", |b| {
        b.iter(|| {
            out.clear();
            pp::encode_v1(black_box(src6), black_box(dst6), &mut out);
            out.len()
        })
    });
    g.bench_function("encode_v2_tcp4", |b| {
        b.iter(|| {
            out.clear();
            pp::encode_v2(black_box(src4), black_box(dst4), &mut out);
            out.len()
        })
    });
    g.bench_function("encode_v2_tcp6", |b| {
        b.iter(|| {
            out.clear();
            pp::encode_v2(black_box(src6), black_box(dst6), &mut out);
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_client_hello, bench_proxy_protocol);
criterion_main!(benches);
