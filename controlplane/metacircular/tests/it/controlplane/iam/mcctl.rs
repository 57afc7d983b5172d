//! `mcctl` against a real `mcd controlplane`: `--json` on every `iam`
//! command, and unknown enum spellings refused before anything is sent.

use super::Controlplane;

/// `mcctl --json` for every `iam` command and login/whoami/logout: one JSON
/// document on stdout with the documented fields; enum values (roles, effects)
/// in the CLI's spelling; an unknown role or effect fails with a message.
#[test]
fn mcctl_iam_json_and_unknown_enum_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "");
    let endpoints = dir.path().join("endpoints.json");
    std::fs::write(
        &endpoints,
        serde_json::json!({"controlplane": {"grpc": cp.grpc, "rest": cp.rest}, "ca_cert": cp.ca})
            .to_string(),
    )
    .expect("endpoints");
    let mcctl = |args: &[&str], stdin: &str| crate::support::run_mcctl(&endpoints, args, stdin);
    let json = |args: &[&str], stdin: &str| -> serde_json::Value {
        let out = mcctl(args, stdin);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    };
    let fails_with = |args: &[&str], stdin: &str, needles: &[&str]| {
        let out = mcctl(args, stdin);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{args:?} must fail");
        for n in needles {
            assert!(err.contains(n), "{args:?}: `{n}` not in {err}");
        }
    };

    let login = json(
        &["--json", "login", "--username", "admin"],
        &format!("{}\n", cp.password),
    );
    assert!(login["expires_at_unix"].as_i64() > Some(0), "{login}");
    assert!(
        login["token_file"]
            .as_str()
            .is_some_and(|p| p.ends_with("mcctl-token")),
        "{login}"
    );
    let me = json(&["whoami", "--json"], "");
    assert_eq!(me["username"], "admin", "{me}");
    assert_eq!(me["roles"], serde_json::json!(["admin"]), "{me}");

    // Accounts: roles are read in any case and printed in the CLI's spelling.
    let gina = json(
        &[
            "--json", "iam", "accounts", "create", "gina", "--role", "USER", "--tag", "ops",
        ],
        "gina's long password\n",
    );
    assert_eq!(gina["username"], "gina", "{gina}");
    assert_eq!(gina["type"], "human", "{gina}");
    assert_eq!(gina["status"], "active", "{gina}");
    assert_eq!(gina["roles"], serde_json::json!(["user"]), "{gina}");
    assert_eq!(gina["tags"], serde_json::json!(["ops"]), "{gina}");
    let id = gina["id"].as_str().expect("id").to_owned();
    let list = json(&["--json", "iam", "accounts", "list"], "");
    assert!(
        list.as_array()
            .is_some_and(|l| l.iter().any(|a| a["id"] == id.as_str())),
        "{list}"
    );
    let got = json(&["--json", "iam", "accounts", "get", &id], "");
    assert_eq!(got["username"], "gina", "{got}");
    let roles = json(
        &["--json", "iam", "accounts", "roles", &id, "Guest", "user"],
        "",
    );
    // The server keeps roles in enum order.
    assert_eq!(
        roles["roles"],
        serde_json::json!(["user", "guest"]),
        "{roles}"
    );
    let disabled = json(&["--json", "iam", "accounts", "disable", &id], "");
    assert_eq!(disabled["status"], "disabled", "{disabled}");

    // Tokens for a system account.
    let ci = json(
        &["--json", "iam", "accounts", "create", "ci", "--system"],
        "",
    );
    assert_eq!(ci["type"], "system", "{ci}");
    let ci_id = ci["id"].as_str().expect("id").to_owned();
    let issued = json(
        &[
            "--json",
            "iam",
            "tokens",
            "issue",
            &ci_id,
            "--description",
            "build",
        ],
        "",
    );
    assert!(
        issued["token"].as_str().is_some_and(|t| !t.is_empty()),
        "{issued}"
    );
    let tokens = json(
        &["--json", "iam", "tokens", "list", "--account", &ci_id],
        "",
    );
    assert_eq!(tokens[0]["description"], "build", "{tokens}");
    let jti = tokens[0]["jti"].as_str().expect("jti").to_owned();
    assert_eq!(
        json(&["--json", "iam", "tokens", "revoke", &jti], "")["revoked"],
        jti.as_str()
    );

    // A scoped token: the scopes are in the token and listed with it; a
    // malformed scope is refused with the field named, and nothing is issued.
    let scoped = json(
        &[
            "--json",
            "iam",
            "tokens",
            "issue",
            &ci_id,
            "--scope",
            "dns:write:zone",
            "--scope",
            "mcr:push:repo/*",
            "--description",
            "scoped",
        ],
        "",
    );
    assert_eq!(
        scoped["scopes"],
        serde_json::json!(["dns:write:zone", "mcr:push:repo/*"]),
        "{scoped}"
    );
    fails_with(
        &["iam", "tokens", "issue", &ci_id, "--scope", "Not A Scope"],
        "",
        &["scopes", "Not A Scope"],
    );
    let tokens = json(
        &["--json", "iam", "tokens", "list", "--account", &ci_id],
        "",
    );
    let listed = tokens
        .as_array()
        .expect("tokens")
        .iter()
        .filter(|t| t["description"] == "scoped")
        .collect::<Vec<_>>();
    assert_eq!(listed.len(), 1, "{tokens}");
    assert_eq!(listed[0]["scopes"], scoped["scopes"], "{tokens}");
    assert_eq!(
        tokens.as_array().map(Vec::len),
        Some(1),
        "the refused issue added nothing: {tokens}"
    );

    // Policy: effects and roles spelled as the CLI spells them.
    let rule = json(
        &[
            "--json",
            "iam",
            "policy",
            "add",
            "--effect",
            "deny",
            "--priority",
            "5",
            "--role",
            "guest",
            "--service",
            "nothing",
        ],
        "",
    );
    assert_eq!(rule["effect"], "deny", "{rule}");
    assert_eq!(rule["roles"], serde_json::json!(["guest"]), "{rule}");
    let rules = json(&["--json", "iam", "policy", "list"], "");
    assert!(
        rules
            .as_array()
            .is_some_and(|l| l.iter().any(|r| r["id"] == rule["id"])),
        "{rules}"
    );
    let explain = json(
        &[
            "--json",
            "iam",
            "policy",
            "explain",
            "admin",
            "--service",
            "mcr",
        ],
        "",
    );
    assert_eq!(explain["decision"], "allow", "{explain}");
    assert!(explain["trace"].is_array(), "{explain}");
    let rule_id = rule["id"].as_str().expect("rule id").to_owned();
    assert_eq!(
        json(&["--json", "iam", "policy", "remove", &rule_id], "")["removed"],
        rule_id.as_str()
    );

    // The rest: audit, SSO clients, passkeys, key rotation.
    let audit = json(&["--json", "iam", "audit", "--limit", "5"], "");
    assert!(
        audit
            .as_array()
            .is_some_and(|l| !l.is_empty() && l[0]["action"].is_string()),
        "{audit}"
    );
    let created = json(
        &[
            "--json",
            "iam",
            "sso",
            "create",
            "wiki",
            "--redirect-uri",
            "https://wiki.example.net/cb",
        ],
        "",
    );
    assert!(
        created["client_secret"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{created}"
    );
    assert_eq!(
        created["client"]["id_token_signed_response_alg"], "RS256",
        "{created}"
    );
    let clients = json(&["--json", "iam", "sso", "list"], "");
    assert!(
        clients
            .as_array()
            .is_some_and(|l| l.iter().any(|c| c["client_id"] == "wiki")),
        "{clients}"
    );
    let keys = json(&["--json", "iam", "passkeys", "list", "--account", &id], "");
    assert_eq!(keys, serde_json::json!([]));
    let kid = json(&["--json", "iam", "rotate-key"], "");
    assert!(kid["kid"].as_str().is_some_and(|k| !k.is_empty()), "{kid}");

    // Unknown enum values: a clear message and a non-zero exit, nothing sent.
    fails_with(
        &["iam", "accounts", "create", "hal", "--role", "wizard"],
        "hal's long password\n",
        &["unknown role `wizard`", "admin, user, guest"],
    );
    fails_with(
        &["--json", "iam", "accounts", "roles", &id, "root"],
        "",
        &["unknown role `root`"],
    );
    fails_with(
        &[
            "iam",
            "policy",
            "add",
            "--effect",
            "maybe",
            "--priority",
            "1",
        ],
        "",
        &["maybe", "allow", "deny"],
    );
    let out = mcctl(&["--json", "iam", "accounts", "list"], "");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        !list
            .as_array()
            .is_some_and(|l| l.iter().any(|a| a["username"] == "hal")),
        "refused before anything was created"
    );
    assert_eq!(json(&["--json", "logout"], "")["logged_out"], true);
}
