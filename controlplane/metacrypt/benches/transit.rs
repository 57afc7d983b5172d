//! Transit core without HTTP or store: encrypt and decrypt of a 64-byte
//! plaintext (aes256-gcm, xchacha20-poly1305), sign (ed25519, ecdsa-p256,
//! rsa-2048) and verify. Not run in CI; `cargo bench -p mc-metacrypt --bench transit`.

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, criterion_group, criterion_main};
use mc_metacrypt::fuzzing::transit::{
    CreateKey, DecryptItem, EncryptItem, Input, KeyState, SignItem, SignParams, TransitKey,
    VerifyItem,
};

fn key(kind: &str) -> TransitKey {
    let req = CreateKey {
        kind: Some(kind.into()),
        ..Default::default()
    };
    TransitKey::load(KeyState::create("bench", &req, 1_700_000_000).expect("create")).expect("load")
}

fn bench(c: &mut Criterion) {
    let plaintext = Input::text(STANDARD.encode([0x42u8; 64]));
    for kind in ["aes256-gcm", "xchacha20-poly1305"] {
        let k = key(kind);
        let item = EncryptItem {
            plaintext: Some(plaintext.clone()),
            ..Default::default()
        };
        c.bench_function(&format!("encrypt/{kind}/64B"), |b| {
            b.iter(|| black_box(k.encrypt(black_box(&item)).expect("encrypt")))
        });
        let ct = k.encrypt(&item).expect("encrypt").ciphertext;
        let d = DecryptItem {
            ciphertext: Some(ct),
            ..Default::default()
        };
        c.bench_function(&format!("decrypt/{kind}/64B"), |b| {
            b.iter(|| black_box(k.decrypt(black_box(&d)).expect("decrypt")))
        });
    }
    let p = SignParams::default();
    for kind in ["ed25519", "ecdsa-p256", "rsa-2048"] {
        let k = key(kind);
        let item = SignItem {
            input: Some(plaintext.clone()),
            ..Default::default()
        };
        c.bench_function(&format!("sign/{kind}/64B"), |b| {
            b.iter(|| black_box(k.sign(&p, black_box(&item)).expect("sign")))
        });
        let sig = k.sign(&p, &item).expect("sign").signature;
        let v = VerifyItem {
            input: Some(plaintext.clone()),
            signature: Some(sig),
            ..Default::default()
        };
        c.bench_function(&format!("verify/{kind}/64B"), |b| {
            b.iter(|| black_box(k.verify(&p, black_box(&v)).expect("verify")))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
