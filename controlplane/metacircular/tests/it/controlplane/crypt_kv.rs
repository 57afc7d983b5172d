//! Metacrypt mounts and the kv engine end to end (`mcd controlplane`, curl
//! and `mcctl crypt mounts|kv`, which speaks gRPC): versions, CAS, patch,
//! delete/undelete/destroy, metadata, list; then after a restart every
//! engine route and RPC (and mounts, policy) answers sealed, byte for byte,
//! and after unseal the secrets decrypt again.

use serde_json::{Value, json};

use super::crypt::{PASSPHRASE, endpoints, example_path, mcctl, mcctl_json, start, state};
use mc_service::auth::Requirement;

fn fails_with(out: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a failure: {err}");
    assert!(err.contains(needle), "{needle:?} not in: {err}");
}

/// The routes the barrier itself answers while sealed (status, init, unseal, seal).
fn barrier_own(key: &str) -> bool {
    [
        "/v1/crypt/sys/status",
        "/v1/crypt/sys/init",
        "/v1/crypt/sys/unseal",
        "/v1/crypt/sys/seal",
        "/mc.crypt.v1.Barrier/Status",
        "/mc.crypt.v1.Barrier/Init",
        "/mc.crypt.v1.Barrier/Unseal",
        "/mc.crypt.v1.Barrier/Seal",
    ]
    .iter()
    .any(|r| key.ends_with(r))
}

#[test]
fn crypt_kv_with_mcctl_and_rest_then_every_engine_route_answers_sealed_after_restart() {
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
    let eps = endpoints(dir.path(), &cp);
    mcctl_json(
        &eps,
        &["login", "--username", "admin", "--json"],
        &format!("{}\n", cp.password),
    );
    let crypt = |args: &[&str]| {
        let mut all = vec!["crypt"];
        all.extend_from_slice(args);
        all.push("--json");
        mcctl_json(&eps, &all, "")
    };
    let crypt_fails = |args: &[&str], needle: &str| {
        let mut all = vec!["crypt"];
        all.extend_from_slice(args);
        fails_with(&mcctl(&eps, &all, ""), needle);
    };

    // Mounts: create (engine config validated), list, reserved names refused.
    let m = crypt(&[
        "mounts",
        "create",
        "secret",
        "--type",
        "kv",
        "--config",
        r#"{"max_versions":3}"#,
    ]);
    assert_eq!(
        (m["type"].as_str(), m["config"]["max_versions"].as_u64()),
        (Some("kv"), Some(3)),
        "{m}"
    );
    crypt_fails(
        &["mounts", "create", "sys", "--type", "kv"],
        "name: sys is reserved",
    );
    crypt_fails(
        &["mounts", "create", "x", "--type", "nope"],
        "type: one of kv",
    );
    crypt_fails(
        &[
            "mounts",
            "create",
            "y",
            "--type",
            "kv",
            "--config",
            r#"{"max_versions":500}"#,
        ],
        "config.max_versions",
    );
    let list = crypt(&["mounts", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // Versions and check-and-set.
    let v = crypt(&[
        "kv", "put", "secret", "app/db", "user=app", "pw=one", "--cas", "0",
    ]);
    assert_eq!(v["version"], 1, "{v}");
    crypt_fails(
        &["kv", "put", "secret", "app/db", "pw=x", "--cas", "0"],
        "check-and-set parameter did not match the current version",
    );
    for (i, pw) in ["two", "three", "four"].iter().enumerate() {
        let v = crypt(&[
            "kv",
            "put",
            "secret",
            "app/db",
            "user=app",
            &format!("pw={pw}"),
        ]);
        assert_eq!(v["version"], i as u64 + 2, "{v}");
    }
    let got = crypt(&["kv", "get", "secret", "app/db"]);
    assert_eq!(got["data"], json!({"user": "app", "pw": "four"}), "{got}");
    crypt_fails(
        &["kv", "get", "secret", "app/db", "--version", "1"],
        "no version 1",
    );
    let meta = crypt(&["kv", "metadata", "secret", "app/db"]);
    assert_eq!(
        (
            meta["current_version"].as_u64(),
            meta["oldest_version"].as_u64()
        ),
        (Some(4), Some(2)),
        "max_versions 3 keeps 2..4: {meta}"
    );
    // REST reads the same secret; a merge patch keeps the other keys.
    let (code, body) = cp.call("GET", "/v1/crypt/secret/data/app/db", Some(&admin), None);
    assert_eq!((code, &body["data"]["pw"]), (200, &json!("four")), "{body}");
    let (code, body) = cp.call(
        "PATCH",
        "/v1/crypt/secret/data/app/db",
        Some(&admin),
        Some(json!({"data": {"pw": "five", "user": null}})),
    );
    assert_eq!((code, &body["version"]), (200, &json!(5)), "{body}");
    let got = crypt(&["kv", "get", "secret", "app/db"]);
    assert_eq!(got["data"], json!({"pw": "five"}), "{got}");

    // Soft delete, undelete, destroy.
    crypt(&["kv", "delete", "secret", "app/db"]);
    let (code, body) = cp.call("GET", "/v1/crypt/secret/data/app/db", Some(&admin), None);
    assert_eq!((code, &body["data"]), (404, &Value::Null), "{body}");
    assert!(
        body["metadata"]["deletion_time"].as_i64() > Some(0),
        "{body}"
    );
    crypt(&["kv", "undelete", "secret", "app/db", "--versions", "5"]);
    assert_eq!(
        crypt(&["kv", "get", "secret", "app/db"])["data"]["pw"],
        "five"
    );
    crypt(&["kv", "destroy", "secret", "app/db", "--versions", "4,5"]);
    let got = crypt(&["kv", "get", "secret", "app/db"]);
    assert_eq!(
        (&got["data"], &got["metadata"]["destroyed"]),
        (&Value::Null, &json!(true)),
        "{got}"
    );

    // Metadata settings, list, and bad input named.
    crypt(&["kv", "put", "secret", "app/web/key", "k=v"]);
    crypt(&["kv", "put", "secret", "top", "k=v"]);
    let meta = crypt(&[
        "kv",
        "metadata",
        "secret",
        "top",
        "--cas-required",
        "true",
        "--custom",
        "owner=ops",
    ]);
    assert_eq!(meta["custom_metadata"], json!({"owner": "ops"}), "{meta}");
    crypt_fails(
        &["kv", "put", "secret", "top", "k=w"],
        "check-and-set parameter required",
    );
    assert_eq!(crypt(&["kv", "list", "secret"]), json!(["app/", "top"]));
    assert_eq!(
        crypt(&["kv", "list", "secret", "app/"]),
        json!(["db", "web/"])
    );
    crypt_fails(
        &["kv", "put", "secret", "a/../b", "k=v"],
        "path: no . or .. segments",
    );
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/secret/data/x",
        Some(&admin),
        Some(json!({"data": "not an object"})),
    );
    assert_eq!(code, 400, "{body}");
    crypt_fails(&["kv", "get", "secret", "x"], "no secret at x");

    // A restart is sealed: every engine, mount and policy route and RPC
    // answers exactly the sealed answer (no mount, path or name in it).
    drop(cp);
    let cp = start(dir.path());
    let admin = cp.token("admin", &cp.password);
    assert_eq!(state(&cp), "sealed");
    let mut swept = 0;
    let map = mc_metacrypt::methods::map();
    for (key, req) in map.entries() {
        if barrier_own(key) || req == Requirement::Public {
            continue;
        }
        if map.is_vault(key) {
            // The Vault facade: Vault's one sealed answer (its unseal and seal answer as Vault's do).
            if key.ends_with(" /v1/sys/unseal") || key.ends_with(" /v1/sys/seal") {
                continue;
            }
            let (method, route) = key.split_once(' ').expect("REST key");
            let body =
                matches!(method, "POST" | "PUT" | "PATCH").then(|| json!({"data": {"a": 1}}));
            let answer = cp.call(method, &example_path(route), Some(&admin), body);
            assert_eq!(
                answer,
                (503, super::crypt::vault_errors("Vault is sealed")),
                "{key}"
            );
            swept += 1;
            continue;
        }
        if key.starts_with('/') {
            assert_eq!(cp.grpc_status(key, Some(&admin)), "14|sealed", "{key}");
        } else {
            let (method, route) = key.split_once(' ').expect("REST key");
            let body =
                matches!(method, "POST" | "PUT" | "PATCH").then(|| json!({"data": {"a": 1}}));
            let answer = cp.call(method, &example_path(route), Some(&admin), body);
            assert_eq!(answer, (503, json!({"error": "sealed"})), "{key}");
        }
        swept += 1;
    }
    assert!(swept >= 50, "{swept} routes and RPCs swept");

    // Unsealed again, the data decrypts; deleting the mount deletes it all.
    let eps = endpoints(dir.path(), &cp);
    mcctl_json(
        &eps,
        &["login", "--username", "admin", "--json"],
        &format!("{}\n", cp.password),
    );
    mcctl_json(
        &eps,
        &["crypt", "unseal", "--json"],
        &format!("{PASSPHRASE}\n"),
    );
    let got = mcctl_json(
        &eps,
        &["crypt", "kv", "get", "secret", "app/web/key", "--json"],
        "",
    );
    assert_eq!(got["data"], json!({"k": "v"}), "{got}");
    mcctl_json(&eps, &["crypt", "mounts", "delete", "secret", "--json"], "");
    fails_with(
        &mcctl(&eps, &["crypt", "kv", "get", "secret", "app/web/key"], ""),
        "no mount named secret",
    );
    mcctl_json(
        &eps,
        &[
            "crypt", "mounts", "create", "secret", "--type", "kv", "--json",
        ],
        "",
    );
    fails_with(
        &mcctl(&eps, &["crypt", "kv", "get", "secret", "app/web/key"], ""),
        "no secret",
    );
}
