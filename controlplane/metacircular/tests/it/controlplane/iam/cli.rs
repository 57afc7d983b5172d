//! `mcctl` drives MCIAS with a saved token (login, whoami, accounts, logout).

use super::*;

#[test]
fn mcctl_drives_mcias_with_a_saved_token() {
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
    let out = mcctl(&["whoami"], "");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("mcctl login"));
    let out = mcctl(
        &["login", "--username", "admin"],
        &format!("{}\n", cp.password),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token_file = dir.path().join("mcctl-token");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&token_file)
            .expect("token")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let out = mcctl(
        &["iam", "accounts", "create", "dave", "--role", "user"],
        "dave's long password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mcctl(&["iam", "accounts", "list"], "");
    assert!(String::from_utf8_lossy(&out.stdout).contains("dave"));
    let out = mcctl(
        &["iam", "accounts", "create", "eve", "--role", "wizard"],
        "eve's long password\n",
    );
    assert!(!out.status.success(), "unknown role refused");
    let out = mcctl(
        &["iam", "policy", "explain", "dave", "--service", "mcr"],
        "",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("ALLOW"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // SSO clients over gRPC.
    let out = mcctl(
        &[
            "iam",
            "sso",
            "create",
            "grafana",
            "--redirect-uri",
            "https://grafana.example.net/login",
            "--tag",
            "ops",
        ],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains("client_secret: "),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mcctl(
        &[
            "iam",
            "sso",
            "update",
            "grafana",
            "--redirect-uri",
            "https://grafana.example.net/cb",
            "--id-token-alg",
            "EdDSA",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mcctl(&["iam", "sso", "list"], "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("grafana")
            && text.contains("EdDSA")
            && text.contains("https://grafana.example.net/cb"),
        "{text}"
    );
    let out = mcctl(
        &[
            "iam",
            "sso",
            "create",
            "bad",
            "--redirect-uri",
            "http://grafana.example.net/cb",
        ],
        "",
    );
    assert!(
        !out.status.success(),
        "plain http to a non-loopback host is refused"
    );
    let out = mcctl(&["iam", "sso", "delete", "grafana"], "");
    assert!(out.status.success());
    let out = mcctl(&["logout"], "");
    assert!(out.status.success());
    assert!(!token_file.exists());
}
