//! kv `delete_version_after` end to end (`mcd controlplane`, curl, `mcctl
//! crypt kv`, the Vault facade with `X-Vault-Token`): a version written
//! under a short delay reads as deleted once it passed, and the `kv
//! expiry` task of the jobs loop (listed in `sys/jobs`) destroys it, with
//! its audit row; the facade takes and answers the field in Vault's form.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::crypt::{CONFIG, endpoints, init, mcctl_json, mcctl_login, mount};
use super::iam::Controlplane;
use crate::support::curl;

/// Polls `f` (every 200 ms, at most 60 s) until it returns `Some`.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn crypt_kv_delete_version_after_reads_deleted_then_the_job_destroys_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let cp = Controlplane::start(d, &format!("{CONFIG}kv_expiry_check = \"1s\"\n"));
    let admin = cp.token("admin", &cp.password);
    init(&cp, &admin);
    // A mount whose versions expire after an hour; beyond ten years is refused.
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/sys/mounts",
        Some(&admin),
        Some(json!({"name": "secret", "type": "kv", "config": {"delete_version_after": 400_000_000u64}})),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("delete_version_after")),
        "{body}"
    );
    mount(
        &cp,
        &admin,
        json!({"name": "secret", "type": "kv", "config": {"delete_version_after": 3600}}),
    );

    // The path shortens it to 2 s with mcctl (gRPC).
    let eps = endpoints(d, &cp);
    mcctl_login(&eps, &cp);
    let meta = mcctl_json(
        &eps,
        &[
            "crypt",
            "kv",
            "metadata",
            "secret",
            "app/db",
            "--delete-version-after",
            "2s",
            "--json",
        ],
        "",
    );
    assert_eq!(meta["delete_version_after"], 2, "{meta}");
    let (code, v1) = cp.call(
        "POST",
        "/v1/crypt/secret/data/app/db",
        Some(&admin),
        Some(json!({"data": {"pw": "one"}})),
    );
    assert_eq!(code, 200, "{v1}");
    let (created, deletion) = (
        v1["created_time"].as_i64().expect("created"),
        v1["deletion_time"].as_i64().expect("deletion"),
    );
    assert_eq!(deletion, created + 2, "{v1}");
    // Once the deletion time passed, the version reads as deleted…
    let deleted = wait_for("the version to read as deleted", || {
        let (code, body) = cp.call("GET", "/v1/crypt/secret/data/app/db", Some(&admin), None);
        (code == 404).then_some(body)
    });
    assert_eq!(deleted["data"], Value::Null, "{deleted}");
    // …and the kv expiry task destroys it.
    wait_for("the version to be destroyed", || {
        let (code, body) = cp.call("GET", "/v1/crypt/secret/data/app/db", Some(&admin), None);
        (code == 404 && body["metadata"]["destroyed"] == true).then_some(())
    });
    let (code, jobs) = cp.call("GET", "/v1/crypt/sys/jobs", Some(&admin), None);
    assert_eq!(code, 200, "{jobs}");
    let task = jobs["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["name"] == "kv expiry")
        .cloned()
        .unwrap_or_else(|| panic!("no kv expiry task: {jobs}"));
    assert!(
        task["outcome"]
            .as_str()
            .is_some_and(|o| o.starts_with("ok: ")),
        "{task}"
    );

    // The Vault facade takes Vault's durations and answers in Go's form.
    let vault = |method: &str, path: &str, body: Option<Value>| {
        let url = format!("{}/v1/{path}", cp.rest);
        let token = format!("X-Vault-Token: {admin}");
        let mut args = vec![
            "--cacert",
            cp.ca.as_str(),
            "-X",
            method,
            "-H",
            token.as_str(),
        ];
        let text = body.map(|b| b.to_string());
        if let Some(t) = &text {
            args.extend(["-H", "content-type: application/json", "--data", t.as_str()]);
        }
        args.push(url.as_str());
        let (code, out) = curl(&args);
        (
            code,
            serde_json::from_str::<Value>(&out).unwrap_or(Value::Null),
        )
    };
    let (code, body) = vault(
        "POST",
        "secret/metadata/other",
        Some(json!({"delete_version_after": "1h30m"})),
    );
    assert_eq!(code, 204, "{body}");
    let (code, body) = vault("GET", "secret/metadata/other", None);
    assert_eq!(
        (code, body["data"]["delete_version_after"].clone()),
        (200, json!("1h30m0s")),
        "{body}"
    );
    let (code, body) = vault("GET", "secret/config", None);
    assert_eq!(
        (code, body["data"]["delete_version_after"].clone()),
        (200, json!("1h0m0s")),
        "{body}"
    );
    let (code, body) = vault(
        "POST",
        "secret/metadata/other",
        Some(json!({"delete_version_after": "soon"})),
    );
    assert_eq!(code, 400, "{body}");

    // Audited: the destroy names the jobs' principal and the reason, found
    // by action over REST and by actor with mcctl (gRPC).
    let (code, audit) = cp.call(
        "GET",
        "/v1/crypt/sys/audit?action=kv.destroy",
        Some(&admin),
        None,
    );
    assert_eq!(code, 200, "{audit}");
    let rows = audit["events"].as_array().cloned().unwrap_or_default();
    assert!(
        !rows.is_empty()
            && rows.iter().all(|e| e["action"] == "kv.destroy"
                && e["actor"] == "metacrypt-jobs"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("delete_version_after"))),
        "{audit}"
    );
    let listed = mcctl_json(
        &eps,
        &[
            "crypt",
            "audit",
            "--actor",
            "metacrypt-jobs",
            "--since",
            "1h",
            "--json",
        ],
        "",
    );
    assert!(
        listed["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["action"] == "kv.destroy")),
        "{listed}"
    );
    let (code, body) = cp.call("GET", "/v1/crypt/sys/audit?limit=5000", Some(&admin), None);
    assert_eq!(
        (code, body["error"].clone()),
        (400, json!("limit: 1 to 1000")),
        "{body}"
    );
}
