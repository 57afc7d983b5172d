//! Root key rekey end to end (`mcctl crypt rekey`, secrets on stdin, and
//! REST): with a passphrase slot and a 2-of-3 Shamir slot, a rekey needs
//! both materials (missing shares and a wrong passphrase are refused and
//! change nothing), then gives a new root key and MEK; after a restart the
//! same passphrase unseals, and after a seal two of the same shares do;
//! KV secrets and a transit ciphertext made before still read; audited.

use serde_json::{Value, json};

use super::crypt::{
    PASSPHRASE, endpoints, mcctl, mcctl_init_shamir, mcctl_json, mcctl_login, mount, start, state,
    unseal,
};
use super::iam::Controlplane;

fn ok(answer: (u16, Value)) -> Value {
    assert!(
        answer.0 == 200 || answer.0 == 201,
        "{} {}",
        answer.0,
        answer.1
    );
    answer.1
}

fn versions(cp: &Controlplane, admin: &str) -> (u64, Vec<Value>) {
    let audit = ok(cp.call(
        "GET",
        "/v1/crypt/sys/audit?action=barrier.rekey",
        Some(admin),
        None,
    ));
    let rows = audit["events"].as_array().cloned().unwrap_or_default();
    (rows.len() as u64, rows)
}

fn reads_back(cp: &Controlplane, admin: &str, ciphertext: &str) {
    let secret = ok(cp.call("GET", "/v1/crypt/secret/data/app", Some(admin), None));
    assert_eq!(secret["data"], json!({"pw": "kept"}), "{secret}");
    let plain = ok(cp.call(
        "POST",
        "/v1/crypt/transit/decrypt/k",
        Some(admin),
        Some(json!({"ciphertext": ciphertext})),
    ));
    assert_eq!(plain["plaintext"], "aGVsbG8=", "{plain}");
}

#[test]
fn crypt_root_rekey_keeps_every_slot_opening_across_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = start(dir.path());
    let eps = endpoints(dir.path(), &cp);
    mcctl_login(&eps, &cp);
    let (_, shares) = mcctl_init_shamir(&eps, 3, 2, true);
    let admin = cp.token("admin", &cp.password);
    mount(&cp, &admin, json!({"name": "secret", "type": "kv"}));
    mount(&cp, &admin, json!({"name": "transit", "type": "transit"}));
    ok(cp.call(
        "POST",
        "/v1/crypt/secret/data/app",
        Some(&admin),
        Some(json!({"data": {"pw": "kept"}})),
    ));
    ok(cp.call(
        "POST",
        "/v1/crypt/transit/keys/k",
        Some(&admin),
        Some(json!({})),
    ));
    let ct = ok(cp.call(
        "POST",
        "/v1/crypt/transit/encrypt/k",
        Some(&admin),
        Some(json!({"plaintext": "aGVsbG8="})),
    ))["ciphertext"]
        .as_str()
        .expect("ciphertext")
        .to_owned();

    // Missing shares (a Shamir slot exists): refused by name, nothing written.
    let out = mcctl(
        &eps,
        &["crypt", "rekey", "--json"],
        &format!("{PASSPHRASE}\n"),
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success() && err.contains("shares"), "{err}");
    // A wrong passphrase with good shares: refused, audited as denied.
    let out = mcctl(
        &eps,
        &["crypt", "rekey", "--with-shares", "2", "--json"],
        &format!("not the passphrase\n{}\n{}\n", shares[0], shares[1]),
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success() && err.contains("wrong passphrase"),
        "{err}"
    );
    let (n, rows) = versions(&cp, &admin);
    assert_eq!(n, 1, "{rows:?}");
    assert_eq!(rows[0]["result"], "denied");

    let done = mcctl_json(
        &eps,
        &["crypt", "rekey", "--with-shares", "2", "--json"],
        &format!("{PASSPHRASE}\n{}\n{}\n", shares[2], shares[0]),
    );
    assert_eq!(done["root_version"], 2, "{done}");
    assert!(done["mek_version"].as_u64() >= Some(2), "{done}");
    reads_back(&cp, &admin, &ct);
    let (_, rows) = versions(&cp, &admin);
    assert!(
        rows.iter().any(|r| r["result"] == "ok"
            && r["detail"]
                .as_str()
                .is_some_and(|d| d.contains("root_version=2"))),
        "{rows:?}"
    );

    // After a restart, the same passphrase unseals and everything reads.
    drop(cp);
    let cp = start(dir.path());
    let admin = cp.token("admin", &cp.password);
    assert_eq!(state(&cp), "sealed");
    ok(unseal(&cp, &admin, json!({"passphrase": PASSPHRASE})));
    reads_back(&cp, &admin, &ct);
    // Sealed again, two of the same shares unseal.
    ok(cp.call("POST", "/v1/crypt/sys/seal", Some(&admin), None));
    ok(unseal(&cp, &admin, json!({"share": shares[1]})));
    ok(unseal(&cp, &admin, json!({"share": shares[2]})));
    assert_eq!(state(&cp), "unsealed");
    reads_back(&cp, &admin, &ct);
}
