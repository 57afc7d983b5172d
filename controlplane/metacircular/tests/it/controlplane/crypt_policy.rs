//! Metacrypt policy end to end: an account without a matching rule gets 403
//! on every engine route and RPC; rules made with `mcctl crypt policy`
//! admit exactly what they name (deny wins, disabled rules do nothing);
//! `explain` names the deciding rule; a scoped token is narrowed further.

use serde_json::json;

use super::crypt::{PASSPHRASE, endpoints, example_body, example_path, mcctl, mcctl_json, start};

#[test]
fn crypt_policy_default_deny_on_every_engine_path_rules_explain_and_scoped_tokens() {
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
        Some(json!({"name": "secret", "type": "kv"})),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/secret/data/app/db",
        Some(&admin),
        Some(json!({"data": {"pw": "s3cret"}})),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/sys/mounts",
        Some(&admin),
        Some(json!({"name": "transit", "type": "transit"})),
    );
    assert_eq!(code, 200, "{body}");
    cp.create_user(&admin, "carol", "carol's long password");
    let carol = cp.token("carol", "carol's long password");

    // No rule names carol: 403 on every engine route and RPC, the same
    // answer for a mount that exists and one that does not.
    let mut swept = 0;
    let map = mc_metacrypt::methods::map();
    for (key, req) in map.entries() {
        if req != mc_metacrypt::methods::ENGINE {
            continue;
        }
        if map.is_vault(key) {
            // The Vault facade refuses in Vault's shape.
            let (method, route) = key.split_once(' ').expect("REST key");
            let body = matches!(method, "POST" | "PUT" | "PATCH").then(|| example_body(route));
            // The facade reads a route by its mount's type: kv routes on the kv
            // mount, transit routes on the transit mount.
            let kv = [
                "/data/",
                "/metadata",
                "/delete/",
                "/undelete/",
                "/destroy/",
                "/config",
            ]
            .iter()
            .any(|p| route.contains(p));
            let path = example_path(route);
            let path = if kv {
                path
            } else {
                path.replacen("/v1/secret/", "/v1/transit/", 1)
            };
            // Listing keys is Vault's LIST (GET with `list=true`); a plain GET there is 404.
            let path = if route.ends_with("/keys") {
                format!("{path}?list=true")
            } else {
                path
            };
            let answer = cp.call(method, &path, Some(&carol), body);
            assert_eq!(
                answer,
                (403, super::crypt::vault_errors("permission denied")),
                "{key} {path}"
            );
            swept += 1;
            continue;
        }
        if key.starts_with('/') {
            assert_eq!(
                cp.grpc_status(key, Some(&carol)),
                "7|permission%20denied",
                "{key}"
            );
        } else {
            let (method, route) = key.split_once(' ').expect("REST key");
            let body = matches!(method, "POST" | "PUT" | "PATCH").then(|| example_body(route));
            for path in [
                example_path(route),
                example_path(route).replace("secret", "nomount"),
            ] {
                let answer = cp.call(method, &path, Some(&carol), body.clone());
                assert_eq!(
                    answer,
                    (403, json!({"error": "permission denied"})),
                    "{key} {path}"
                );
            }
        }
        swept += 1;
    }
    assert!(swept >= 30, "{swept}");
    let (code, _) = cp.call("GET", "/v1/crypt/secret/data/app/db", Some(&admin), None);
    assert_eq!(code, 200, "the seeded rule admits admins");

    // A rule for role `user`: read under secret/data/app/.
    let eps = endpoints(dir.path(), &cp);
    mcctl_json(
        &eps,
        &["login", "--username", "admin", "--json"],
        &format!("{}\n", cp.password),
    );
    let policy = |args: &[&str]| {
        let mut all = vec!["crypt", "policy"];
        all.extend_from_slice(args);
        all.push("--json");
        mcctl_json(&eps, &all, "")
    };
    let rule = policy(&[
        "create",
        "--role",
        "user",
        "--path",
        "secret/data/app/*",
        "--capability",
        "read",
        "--priority",
        "10",
        "--description",
        "users read app secrets",
    ]);
    let id = rule["id"].as_str().expect("id").to_owned();
    let listed = policy(&["list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert_eq!(listed[0]["id"], id.as_str(), "by priority: {listed}");
    assert_eq!(listed[1]["id"], "r-admin", "{listed}");
    let table = mcctl(&eps, &["crypt", "policy", "list"], "");
    let text = String::from_utf8_lossy(&table.stdout);
    for needle in [
        id.as_str(),
        "roles=user",
        "secret/data/app/*",
        "read",
        "users read app secrets",
    ] {
        assert!(text.contains(needle), "{needle} in the table:\n{text}");
    }
    let (code, body) = cp.call("GET", "/v1/crypt/secret/data/app/db", Some(&carol), None);
    assert_eq!(
        (code, &body["data"]["pw"]),
        (200, &json!("s3cret")),
        "{body}"
    );
    let (code, _) = cp.call(
        "POST",
        "/v1/crypt/secret/data/app/db",
        Some(&carol),
        Some(json!({"data": {"pw": "mine"}})),
    );
    assert_eq!(code, 403, "read only");
    let (code, _) = cp.call(
        "GET",
        "/v1/crypt/secret/metadata/app/db",
        Some(&carol),
        None,
    );
    assert_eq!(code, 403, "metadata is another path");

    // Explain names the deciding rule, for carol as for anyone described.
    let e = policy(&[
        "explain",
        "secret/data/app/db",
        "read",
        "--username",
        "carol",
        "--role",
        "user",
    ]);
    assert_eq!(
        (e["decision"].as_str(), e["rule"].as_str()),
        (Some("allow"), Some(id.as_str()))
    );
    let e = policy(&["explain", "secret/data/app/db", "update", "--role", "user"]);
    assert_eq!(e["decision"], "default deny", "{e}");
    let bad = mcctl(&eps, &["crypt", "policy", "explain", "secret/x", "fly"], "");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("capability"),
        "named"
    );

    // A deny wins; disabled, it does nothing; bad rules are refused by field.
    let deny = policy(&[
        "create",
        "--effect",
        "deny",
        "--role",
        "user",
        "--path",
        "secret/data/app/db",
        "--priority",
        "500",
    ]);
    let deny_id = deny["id"].as_str().expect("id").to_owned();
    let (code, _) = cp.call("GET", "/v1/crypt/secret/data/app/db", Some(&carol), None);
    assert_eq!(code, 403, "deny wins");
    let updated = policy(&["update", &deny_id, "--disable"]);
    assert_eq!(updated["enabled"], false, "{updated}");
    assert_eq!(
        updated["paths"],
        json!(["secret/data/app/db"]),
        "other fields kept"
    );
    let (code, _) = cp.call("GET", "/v1/crypt/secret/data/app/db", Some(&carol), None);
    assert_eq!(code, 200, "disabled");
    let bad = mcctl(
        &eps,
        &[
            "crypt",
            "policy",
            "create",
            "--path",
            "a*b",
            "--capability",
            "read",
        ],
        "",
    );
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("paths[0]"),
        "named"
    );
    policy(&["delete", &deny_id]);
    let gone = mcctl(&eps, &["crypt", "policy", "get", &deny_id], "");
    assert!(!gone.status.success());

    // Scoped tokens: a system account allowed read and create by policy…
    let (code, ci) = cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(json!({"username": "ci", "type": "system"})),
    );
    assert_eq!(code, 201, "{ci}");
    let ci_id = ci["id"].as_str().expect("id").to_owned();
    policy(&[
        "create",
        "--account",
        "ci",
        "--path",
        "secret/*",
        "--capability",
        "read",
        "--capability",
        "create",
    ]);
    let issue = |scopes: serde_json::Value| {
        let (code, t) = cp.call(
            "POST",
            "/v1/iam/tokens",
            Some(&admin),
            Some(json!({"account_id": ci_id, "scopes": scopes})),
        );
        assert_eq!(code, 201, "{t}");
        t["token"].as_str().expect("token").to_owned()
    };
    let full = issue(json!([]));
    let (code, _) = cp.call(
        "POST",
        "/v1/crypt/secret/data/ci/one",
        Some(&full),
        Some(json!({"data": {"a": 1}})),
    );
    assert_eq!(code, 200, "unscoped: policy decides");
    // …narrowed by a token scoped to reading under app/…
    let narrow = issue(json!(["crypt:read:secret/data/app/*"]));
    let (code, _) = cp.call("GET", "/v1/crypt/secret/data/app/db", Some(&narrow), None);
    assert_eq!(code, 200);
    let (code, _) = cp.call("GET", "/v1/crypt/secret/data/ci/one", Some(&narrow), None);
    assert_eq!(code, 403, "outside the scope's path");
    let (code, _) = cp.call(
        "POST",
        "/v1/crypt/secret/data/ci/two",
        Some(&narrow),
        Some(json!({"data": {"a": 1}})),
    );
    assert_eq!(code, 403, "not the scope's capability");
    // …and a token scoped to another service never reaches Metacrypt.
    let other = issue(json!(["dns:write:zone"]));
    let (code, body) = cp.call("GET", "/v1/crypt/secret/data/app/db", Some(&other), None);
    assert_eq!(code, 403, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("crypt")),
        "{body}"
    );
}
