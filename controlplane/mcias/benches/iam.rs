//! Logins per second (bounded by Argon2id at the configured cost) and token
//! validations per second: MCIAS's own verifier (signature + store lookups)
//! and the cached verifier other services put in front of it.
//!
//! `cargo bench -p mc-mcias`; the per-iteration time converts to a rate.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use mc_mcias::core::{Caller, LoginInput};
use mc_mcias::{McAuthConfig, Mcias};
use mc_service::auth::{CachedVerifier, TokenVerifier};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = McAuthConfig {
        issuer: "https://bench.invalid".into(),
        requests_per_minute_per_ip: u32::MAX,
        ..McAuthConfig::default()
    };
    let (iam, boot) = Mcias::open(dir.path(), config).expect("open");
    let boot = boot.expect("bootstrap");
    let iam = Arc::new(iam);
    let login = || LoginInput {
        username: boot.username.clone(),
        password: boot.password.clone(),
        ..LoginInput::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("rt");
    let mut g = c.benchmark_group("mcias");
    g.sample_size(20);
    g.bench_function("login (Argon2id m=19MiB t=2 p=1 + token + audit)", |b| {
        b.iter(|| {
            black_box(
                runtime
                    .block_on(iam.login(&Caller::default(), login()))
                    .expect("login"),
            )
        })
    });
    let token = runtime
        .block_on(iam.login(&Caller::default(), login()))
        .expect("login")
        .token;
    g.sample_size(100);
    g.bench_function("validate, uncached (Ed25519 verify + store reads)", |b| {
        b.iter(|| black_box(iam.verify(&token).expect("valid")))
    });
    let cached = CachedVerifier::new(
        mc_mcias::LocalVerifier::new(iam.clone()),
        std::time::Duration::from_secs(30),
        10_000,
    );
    g.bench_function("validate, cached (SHA-256 + map lookup)", |b| {
        b.iter(|| black_box(runtime.block_on(cached.verify(&token)).expect("valid")))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
