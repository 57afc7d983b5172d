//! The user engine against a temporary store: keys on first use, encrypt to
//! another account, only the recipient decrypts (admins and the sender
//! included), rotation keeps old messages readable, refusals name fields.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::core::{MountInput, UserDecrypt, UserEncrypt};
use crate::error::CryptError;
use crate::testing::caller;

fn enc(to: &str, text: &str) -> UserEncrypt {
    UserEncrypt {
        to: to.to_owned(),
        plaintext: STANDARD.encode(text),
    }
}

fn dec(ct: &str) -> UserDecrypt {
    UserDecrypt {
        ciphertext: ct.to_owned(),
    }
}

#[tokio::test]
async fn only_the_recipient_decrypts_and_rotation_keeps_old_messages() {
    let (_d, m, admin) = crate::testing::unsealed().await;
    m.create_mount(
        &admin,
        MountInput {
            name: "user".to_owned(),
            kind: "user".to_owned(),
            description: String::new(),
            config: None,
        },
    )
    .expect("mount");
    // The seeded rule admits role admin everywhere: policy is not what
    // stops the sender or a third admin below.
    let (alice, bob, carol) = (
        caller("alice", &["admin"]),
        caller("bob", &["admin"]),
        caller("carol", &["admin"]),
    );
    let r = m.user_own_key(&bob, "user");
    assert!(matches!(r, Err(CryptError::NotFound(_))), "{r:?}");
    // Encrypting to an account without a key: 404 naming the fix.
    let r = m.user_encrypt(&alice, "user", &enc("bob", "hi"));
    assert!(
        matches!(&r, Err(CryptError::NotFound(msg)) if msg.contains("mcctl crypt user init")),
        "{r:?}"
    );
    let bob_key = m.user_init_key(&bob, "user").expect("init");
    assert_eq!(bob_key.latest_version, 1);
    assert_eq!(
        m.user_init_key(&bob, "user").expect("again"),
        bob_key,
        "idempotent"
    );
    // Alice's key is made on her first encrypt; by username or by id.
    let sent = m
        .user_encrypt(&alice, "user", &enc("bob", "for bob"))
        .expect("encrypt");
    assert_eq!(
        (sent.recipient_id.as_str(), sent.key_version),
        ("id-bob", 1)
    );
    let by_id = m
        .user_encrypt(&alice, "user", &enc("id-bob", "by id"))
        .expect("by id");
    assert_eq!(
        m.user_own_key(&alice, "user")
            .expect("alice")
            .latest_version,
        1
    );

    let out = m
        .user_decrypt(&bob, "user", &dec(&sent.ciphertext))
        .expect("bob");
    assert_eq!(STANDARD.decode(&out.plaintext).expect("b64"), b"for bob");
    assert_eq!(
        (out.sender_id.as_str(), out.sender_username.as_str()),
        ("id-alice", "alice")
    );
    assert!(
        m.user_decrypt(&bob, "user", &dec(&by_id.ciphertext))
            .is_ok()
    );
    for who in [&alice, &carol, &admin] {
        let r = m.user_decrypt(who, "user", &dec(&sent.ciphertext));
        assert!(matches!(r, Err(CryptError::Forbidden(_))), "{r:?}");
    }

    // Rotation: new messages use v2, the v1 message still opens.
    let rotated = m.user_rotate_key(&bob, "user").expect("rotate");
    assert_eq!(rotated.latest_version, 2);
    assert_eq!(rotated.versions.len(), 2);
    let v2 = m
        .user_encrypt(&alice, "user", &enc("bob", "after"))
        .expect("v2");
    assert_eq!(v2.key_version, 2);
    assert!(m.user_decrypt(&bob, "user", &dec(&v2.ciphertext)).is_ok());
    assert!(m.user_decrypt(&bob, "user", &dec(&sent.ciphertext)).is_ok());
    let public = m.user_public_key(&carol, "user", "bob").expect("public");
    assert_eq!(public, rotated);
    let shown = serde_json::to_string(&public).expect("json");
    assert!(!shown.contains("private"), "{shown}");

    // An altered ciphertext, a bad one, bad base64: 400 naming the field.
    let mut bent = sent.ciphertext.clone();
    let last = bent.pop().expect("char");
    bent.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [bent.as_str(), "vault:v1:AAAA", "mcuser:v1:!!"] {
        let r = m.user_decrypt(&bob, "user", &dec(bad));
        assert!(
            matches!(&r, Err(CryptError::Invalid(i)) if i.to_string().contains("ciphertext")),
            "{bad}: {r:?}"
        );
    }
    let r = m.user_encrypt(
        &alice,
        "user",
        &UserEncrypt {
            to: "bob".into(),
            plaintext: "%%".into(),
        },
    );
    assert!(
        matches!(&r, Err(CryptError::Invalid(i)) if i.to_string().contains("plaintext")),
        "{r:?}"
    );

    // No rule for dave: 403 before anything else, on every operation.
    let dave = caller("dave", &[]);
    for r in [
        m.user_init_key(&dave, "user").map(|_| ()),
        m.user_own_key(&dave, "user").map(|_| ()),
        m.user_public_key(&dave, "user", "bob").map(|_| ()),
        m.user_encrypt(&dave, "user", &enc("bob", "x")).map(|_| ()),
        m.user_decrypt(&dave, "user", &dec(&sent.ciphertext))
            .map(|_| ()),
    ] {
        assert!(matches!(r, Err(CryptError::Forbidden(_))), "{r:?}");
    }
    // A user mount takes no config.
    let r = m.create_mount(
        &admin,
        MountInput {
            name: "user2".to_owned(),
            kind: "user".to_owned(),
            description: String::new(),
            config: Some(json!({"x": 1})),
        },
    );
    assert!(matches!(r, Err(CryptError::Invalid(_))), "{r:?}");
    // Sealed: 503 first.
    m.seal(&admin).await.expect("seal");
    let r = m.user_decrypt(&bob, "user", &dec(&sent.ciphertext));
    assert!(matches!(r, Err(CryptError::Unavailable(s)) if s == "sealed"));
}
