//! Metacrypt's user engine end to end with real MCIAS accounts, `mcctl`
//! (one token file per account) and curl: alice encrypts to bob, bob
//! decrypts and learns it came from alice, alice (the sender), carol and the
//! admin are refused; an account without a rule gets 403; rotation keeps old
//! messages readable; sealed, every surface answers 503/UNAVAILABLE, and
//! after unseal the stored keys still open the message.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::crypt::{PASSPHRASE, endpoints, mcctl, mcctl_json, start, unseal};
use super::iam::Controlplane;

/// An endpoints file in its own directory, with `token` saved beside it
/// (where `mcctl login` saves it), so each account has its own mcctl.
fn as_account(dir: &Path, cp: &Controlplane, name: &str, token: &str) -> PathBuf {
    let home = dir.join(format!("mcctl-{name}"));
    std::fs::create_dir_all(&home).expect("dir");
    let eps = endpoints(&home, cp);
    std::fs::write(home.join("mcctl-token"), token).expect("token");
    eps
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn crypt_user_encrypt_to_another_account_only_the_recipient_decrypts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = start(dir.path());
    let admin = cp.token("admin", &cp.password);
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/sys/init",
        Some(&admin),
        Some(json!({"passphrase": PASSPHRASE})),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/sys/mounts",
        Some(&admin),
        Some(json!({"name": "user", "type": "user"})),
    );
    assert_eq!(code, 200, "{body}");
    let mut eps = std::collections::BTreeMap::new();
    let mut tokens = std::collections::BTreeMap::new();
    for name in ["alice", "bob", "carol", "dave"] {
        let password = format!("{name}'s long password");
        cp.create_user(&admin, name, &password);
        let token = cp.token(name, &password);
        eps.insert(name, as_account(dir.path(), &cp, name, &token));
        tokens.insert(name, token);
    }
    let admin_eps = as_account(dir.path(), &cp, "admin", &admin);
    // alice, bob and carol may use the mount; dave is named by no rule.
    mcctl_json(
        &admin_eps,
        &[
            "crypt",
            "policy",
            "create",
            "--account",
            "alice",
            "--account",
            "bob",
            "--account",
            "carol",
            "--path",
            "user/*",
            "--capability",
            "read",
            "--capability",
            "create",
            "--capability",
            "update",
            "--json",
        ],
        "",
    );

    // bob has no key yet: encrypting to him names the fix.
    let refused = mcctl(
        &eps["alice"],
        &["crypt", "user", "encrypt", "--to", "bob"],
        "hi",
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("mcctl crypt user init"),
        "{}",
        stderr(&refused)
    );
    let bob_key = mcctl_json(&eps["bob"], &["crypt", "user", "init", "--json"], "");
    assert_eq!(bob_key["username"], "bob", "{bob_key}");
    assert_eq!(bob_key["latest_version"], 1, "{bob_key}");
    let bob_id = bob_key["account_id"].as_str().expect("id").to_owned();

    // alice encrypts to bob (her key is made on first use).
    let sent = mcctl_json(
        &eps["alice"],
        &["crypt", "user", "encrypt", "--to", "bob", "--json"],
        "meet at noon",
    );
    let ct = sent["ciphertext"].as_str().expect("ciphertext").to_owned();
    assert!(ct.starts_with("mcuser:v1:"), "{ct}");
    assert_eq!(sent["recipient_id"], bob_id.as_str(), "{sent}");
    let opened = mcctl(&eps["bob"], &["crypt", "user", "decrypt", &ct], "");
    assert!(opened.status.success(), "{}", stderr(&opened));
    assert_eq!(String::from_utf8_lossy(&opened.stdout), "meet at noon");
    assert!(
        stderr(&opened).contains("from alice"),
        "{}",
        stderr(&opened)
    );

    // The sender, a third account and the admin cannot decrypt it.
    for who in ["alice", "carol"] {
        let r = mcctl(&eps[who], &["crypt", "user", "decrypt", &ct], "");
        assert!(!r.status.success(), "{who} decrypted");
        assert!(
            stderr(&r).contains("only the recipient"),
            "{who}: {}",
            stderr(&r)
        );
        assert!(r.stdout.is_empty(), "{who}");
    }
    for token in [&tokens["carol"], &admin] {
        let (code, body) = cp.call(
            "POST",
            "/v1/crypt/user/decrypt",
            Some(token),
            Some(json!({"ciphertext": ct})),
        );
        assert_eq!(code, 403, "{body}");
    }
    // By REST, bob reads the plaintext (base64) and the sender.
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/user/decrypt",
        Some(&tokens["bob"]),
        Some(json!({"ciphertext": ct})),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["plaintext"], "bWVldCBhdCBub29u", "{body}");
    assert_eq!(body["sender_username"], "alice", "{body}");

    // Public keys are readable; no private half is ever answered.
    let (code, body) = cp.call(
        "GET",
        "/v1/crypt/user/public/bob",
        Some(&tokens["carol"]),
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert!(!body.to_string().contains("private"), "{body}");
    assert_eq!(
        body["versions"][0]["public_key"],
        bob_key["versions"][0]["public_key"]
    );

    // Bad input: 400 naming the field, nothing changes.
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/user/encrypt",
        Some(&tokens["alice"]),
        Some(json!({"to": "bob", "plaintext": "not base64!"})),
    );
    assert_eq!(
        (
            code,
            body["error"].as_str().map(|e| e.contains("plaintext"))
        ),
        (400, Some(true))
    );
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/user/decrypt",
        Some(&tokens["bob"]),
        Some(json!({"ciphertext": "mcuser:v1:AAAA"})),
    );
    assert_eq!(
        (
            code,
            body["error"].as_str().map(|e| e.contains("ciphertext"))
        ),
        (400, Some(true))
    );

    // dave: no rule, 403 on REST, gRPC and mcctl alike.
    let (code, body) = cp.call("POST", "/v1/crypt/user/self", Some(&tokens["dave"]), None);
    assert_eq!((code, body), (403, json!({"error": "permission denied"})));
    assert_eq!(
        cp.grpc_status(
            "/mc.crypt.v1.UserCrypto/CreateOwnKey",
            Some(&tokens["dave"])
        ),
        "7|permission%20denied"
    );
    let r = mcctl(&eps["dave"], &["crypt", "user", "init"], "");
    assert!(
        !r.status.success() && stderr(&r).contains("permission denied"),
        "{}",
        stderr(&r)
    );

    // Rotation: v2 for new messages, the v1 message still opens.
    let rotated = mcctl_json(&eps["bob"], &["crypt", "user", "rotate", "--json"], "");
    assert_eq!(rotated["latest_version"], 2, "{rotated}");
    let v2 = mcctl_json(
        &eps["alice"],
        &["crypt", "user", "encrypt", "--to", &bob_id, "--json"],
        "second",
    );
    assert_eq!(v2["key_version"], 2, "{v2}");
    let old = mcctl_json(
        &eps["bob"],
        &["crypt", "user", "decrypt", &ct, "--json"],
        "",
    );
    assert_eq!(old["plaintext"], "bWVldCBhdCBub29u", "{old}");

    // Sealed: 503 on REST, UNAVAILABLE on gRPC, mcctl says so; no name leaks.
    let (code, _) = cp.call("POST", "/v1/crypt/sys/seal", Some(&admin), None);
    assert_eq!(code, 200);
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/user/decrypt",
        Some(&tokens["bob"]),
        Some(json!({"ciphertext": ct})),
    );
    assert_eq!((code, body), (503, json!({"error": "sealed"})));
    assert_eq!(
        cp.grpc_status("/mc.crypt.v1.UserCrypto/Decrypt", Some(&tokens["bob"])),
        "14|sealed"
    );
    let r = mcctl(&eps["bob"], &["crypt", "user", "decrypt", &ct], "");
    assert!(
        !r.status.success() && stderr(&r).contains("sealed"),
        "{}",
        stderr(&r)
    );
    let (code, body) = unseal(&cp, &admin, json!({"passphrase": PASSPHRASE}));
    assert_eq!(code, 200, "{body}");
    let again = mcctl(&eps["bob"], &["crypt", "user", "decrypt", &ct], "");
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        "meet at noon",
        "{}",
        stderr(&again)
    );
}
