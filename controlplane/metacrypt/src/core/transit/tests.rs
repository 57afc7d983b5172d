//! The transit engine through `Metacrypt::run` against a temporary store:
//! keys persist sealed and survive seal/unseal, upsert needs `create`,
//! policy gates every path, batches answer Vault's status.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::{Answer, Batched, EncryptRequest, SignRequest};
use crate::core::{Caller, Metacrypt, MountInput, PolicyRule, UnsealInputBody};
use crate::engines::transit::{
    ConfigKey, CreateKey, DecryptItem, Dialect, EncryptItem, EncryptOut, Input, SignItem,
    VerifyItem,
};
use crate::error::CryptError;
use crate::policy::{Capability, Effect};
use crate::testing::{PASS, caller};

async fn unsealed() -> (tempfile::TempDir, Arc<Metacrypt>, Caller) {
    let (dir, m, admin) = crate::testing::unsealed().await;
    for (name, kind) in [("transit", "transit"), ("secret", "kv")] {
        m.create_mount(
            &admin,
            MountInput {
                name: name.into(),
                kind: kind.into(),
                description: String::new(),
                config: None,
            },
        )
        .expect("mount");
    }
    (dir, m, admin)
}

fn b64(x: &[u8]) -> Input {
    Input::text(STANDARD.encode(x))
}

fn one<T: std::fmt::Debug>(a: Answer<T>) -> T {
    match a {
        Answer::One(v) => v,
        other => panic!("not a single answer: {other:?}"),
    }
}

fn encrypt(m: &Metacrypt, c: &Caller, key: &str, pt: &[u8]) -> Result<EncryptOut, CryptError> {
    let req = EncryptRequest {
        batch: Batched::one(EncryptItem {
            plaintext: Some(b64(pt)),
            ..Default::default()
        }),
        kind: None,
    };
    m.transit_encrypt(c, "transit", key, &req).map(one)
}

fn decrypt(m: &Metacrypt, c: &Caller, key: &str, ct: &str) -> Result<Vec<u8>, CryptError> {
    let req = Batched::one(DecryptItem {
        ciphertext: Some(ct.into()),
        ..Default::default()
    });
    m.transit_decrypt(c, "transit", key, &req)
        .map(|a| one(a).plaintext.to_vec())
}

#[tokio::test]
async fn keys_persist_sealed_and_survive_seal_and_unseal() {
    let (_dir, m, admin) = unsealed().await;
    let created = m
        .transit_create_key(
            &admin,
            "transit",
            "orders",
            &CreateKey {
                kind: Some("xchacha20-poly1305".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(created["type"], "xchacha20-poly1305");
    let ct = encrypt(&m, &admin, "orders", b"order 66")
        .unwrap()
        .ciphertext;
    let rotated = m.transit_rotate_key(&admin, "transit", "orders").unwrap();
    assert_eq!(rotated["latest_version"], 2);
    assert_eq!(
        m.transit_list_keys(&admin, "transit").unwrap(),
        vec!["orders".to_owned()]
    );
    // The stored row is sealed: the key material is not in the file in clear.
    let st = m
        .transit_read_key(&admin, "transit", "orders", Dialect::Vault)
        .unwrap();
    assert_eq!(st["type"], "chacha20-poly1305");

    m.seal(&admin).await.unwrap();
    assert_eq!(
        decrypt(&m, &admin, "orders", &ct)
            .unwrap_err()
            .http_status(),
        503
    );
    m.unseal(
        &admin,
        UnsealInputBody {
            passphrase: Some(PASS.into()),
            share: None,
            reset: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(decrypt(&m, &admin, "orders", &ct).unwrap(), b"order 66");
    let st = m
        .transit_read_key(&admin, "transit", "orders", Dialect::Native)
        .unwrap();
    assert_eq!(st["latest_version"], 2, "the rotation was stored");
}

#[tokio::test]
async fn encrypt_upserts_with_its_type_and_missing_keys_refuse_other_operations() {
    let (_dir, m, admin) = unsealed().await;
    let req = EncryptRequest {
        batch: Batched::one(EncryptItem {
            plaintext: Some(b64(b"x")),
            ..Default::default()
        }),
        kind: Some("chacha20-poly1305".into()),
    };
    let out = one(m.transit_encrypt(&admin, "transit", "fresh", &req).unwrap());
    assert_eq!(out.key_version, 1);
    assert_eq!(
        m.transit_read_key(&admin, "transit", "fresh", Dialect::Native)
            .unwrap()["type"],
        "xchacha20-poly1305"
    );
    let e = decrypt(&m, &admin, "missing", &out.ciphertext).unwrap_err();
    assert_eq!(e.http_status(), 400);
    assert_eq!(
        m.transit_read_key(&admin, "transit", "missing", Dialect::Native)
            .unwrap_err()
            .http_status(),
        404
    );
    assert_eq!(
        m.transit_rotate_key(&admin, "transit", "missing")
            .unwrap_err()
            .http_status(),
        404
    );
    // A kv mount is not a transit mount; an unknown mount is 404 too.
    let e = m.transit_list_keys(&admin, "secret").unwrap_err();
    assert_eq!(e.http_status(), 404, "{e}");
    assert_eq!(
        m.transit_list_keys(&admin, "nope")
            .unwrap_err()
            .http_status(),
        404
    );
    assert_eq!(
        m.transit_read_key(&admin, "transit", "bad/name", Dialect::Native)
            .unwrap_err()
            .http_status(),
        400
    );
}

#[tokio::test]
async fn config_trim_and_delete_through_the_store() {
    let (_dir, m, admin) = unsealed().await;
    m.transit_create_key(&admin, "transit", "k", &CreateKey::default())
        .unwrap();
    let ct1 = encrypt(&m, &admin, "k", b"v1").unwrap().ciphertext;
    m.transit_rotate_key(&admin, "transit", "k").unwrap();
    let cfg = ConfigKey {
        min_decryption_version: Some(2),
        min_encryption_version: Some(2),
        ..Default::default()
    };
    m.transit_config_key(&admin, "transit", "k", &cfg).unwrap();
    let e = decrypt(&m, &admin, "k", &ct1).unwrap_err();
    assert_eq!(e.http_status(), 400);
    assert!(
        e.to_string().contains("disallowed by policy (too old)"),
        "{e}"
    );
    let refused = m.transit_config_key(
        &admin,
        "transit",
        "k",
        &ConfigKey {
            min_decryption_version: Some(9),
            ..Default::default()
        },
    );
    assert_eq!(refused.unwrap_err().http_status(), 400);
    let trimmed = m.transit_trim_key(&admin, "transit", "k", Some(2)).unwrap();
    assert_eq!(trimmed["min_available_version"], 2);
    assert_eq!(trimmed["keys"].as_object().unwrap().len(), 1);
    assert_eq!(
        m.transit_delete_key(&admin, "transit", "k")
            .unwrap_err()
            .http_status(),
        400
    );
    m.transit_config_key(
        &admin,
        "transit",
        "k",
        &ConfigKey {
            deletion_allowed: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    m.transit_delete_key(&admin, "transit", "k").unwrap();
    assert!(m.transit_list_keys(&admin, "transit").unwrap().is_empty());
    assert_eq!(
        m.transit_read_key(&admin, "transit", "k", Dialect::Native)
            .unwrap_err()
            .http_status(),
        404
    );
}

#[tokio::test]
async fn batches_answer_vaults_status() {
    let (_dir, m, admin) = unsealed().await;
    m.transit_create_key(&admin, "transit", "k", &CreateKey::default())
        .unwrap();
    let req: EncryptRequest = serde_json::from_value(json!({
        "batch_input": [{"plaintext": STANDARD.encode("a"), "reference": "r1"}, {"plaintext": "%%", "reference": "r2"}],
        "partial_failure_response_code": 207
    }))
    .unwrap();
    match m.transit_encrypt(&admin, "transit", "k", &req).unwrap() {
        Answer::Batch { results, status } => {
            assert_eq!(status, 207);
            assert_eq!(results.batch_results.len(), 2);
            assert!(results.batch_results[1].outcome.is_err());
        }
        other => panic!("{other:?}"),
    }
    let too_many: EncryptRequest =
        serde_json::from_value(json!({"batch_input": vec![json!({"plaintext": ""}); 1001]}))
            .unwrap();
    assert_eq!(
        m.transit_encrypt(&admin, "transit", "k", &too_many)
            .unwrap_err()
            .to_string(),
        "batch_input: at most 1000 items"
    );
    // Sign and verify batches on an ed25519 key.
    m.transit_create_key(
        &admin,
        "transit",
        "s",
        &CreateKey {
            kind: Some("ed25519".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let signed = one(m
        .transit_sign(
            &admin,
            "transit",
            "s",
            &SignRequest {
                params: Default::default(),
                batch: Batched::one(SignItem {
                    input: Some(b64(b"m")),
                    ..Default::default()
                }),
            },
        )
        .unwrap());
    let v = |sig: &str| {
        let r = SignRequest {
            params: Default::default(),
            batch: Batched::one(VerifyItem {
                input: Some(b64(b"m")),
                signature: Some(sig.into()),
                ..Default::default()
            }),
        };
        one(m.transit_verify(&admin, "transit", "s", &r).unwrap()).valid
    };
    assert!(v(&signed.signature));
}

#[tokio::test]
async fn policy_gates_every_transit_path_and_upsert_needs_create() {
    let (_dir, m, admin) = unsealed().await;
    m.transit_create_key(&admin, "transit", "app", &CreateKey::default())
        .unwrap();
    let ct = encrypt(&m, &admin, "app", b"x").unwrap().ciphertext;
    let carol = caller("carol", &["dev"]);
    let denied = |r: Result<(), CryptError>| r.map_or_else(|e| e.http_status() == 403, |_| false);
    assert!(denied(encrypt(&m, &carol, "app", b"y").map(|_| ())));
    assert!(denied(decrypt(&m, &carol, "app", &ct).map(|_| ())));
    assert!(denied(m.transit_list_keys(&carol, "transit").map(|_| ())));
    assert!(denied(
        m.transit_read_key(&carol, "transit", "app", Dialect::Native)
            .map(|_| ())
    ));
    assert!(denied(
        m.transit_rotate_key(&carol, "transit", "app").map(|_| ())
    ));
    // Without a rule, the mount's existence is not revealed either.
    assert!(denied(m.transit_list_keys(&carol, "nope").map(|_| ())));
    let rule = PolicyRule {
        id: String::new(),
        priority: 10,
        effect: Effect::Allow,
        enabled: true,
        description: "dev".to_owned(),
        accounts: vec![],
        roles: vec!["dev".to_owned()],
        tags: vec![],
        account_types: vec![],
        paths: vec![
            "transit/encrypt/*".to_owned(),
            "transit/decrypt/*".to_owned(),
        ],
        capabilities: vec![Capability::Update],
    };
    m.create_rule(&admin, rule).unwrap();
    assert_eq!(
        decrypt(
            &m,
            &carol,
            "app",
            &encrypt(&m, &carol, "app", b"y").unwrap().ciphertext
        )
        .unwrap(),
        b"y"
    );
    // Update alone does not create a key by encrypting to it.
    assert!(denied(encrypt(&m, &carol, "other", b"y").map(|_| ())));
    assert!(m.transit_list_keys(&admin, "transit").unwrap() == vec!["app".to_owned()]);
    assert!(denied(
        m.transit_rotate_key(&carol, "transit", "app").map(|_| ())
    ));
}
