//! DEK rotation per mount end to end (`mcd controlplane`, curl and
//! `mcctl crypt`): KV secrets and transit keys written under version 1,
//! `rotate-dek` over REST and `mcctl … --wait` (gRPC), everything read back
//! before and after the rewrap job and after a restart; then kill -9 in the
//! middle of a long rewrap: the job resumes after unseal where its cursor
//! was, and nothing is lost.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::crypt::{CONFIG, PASSPHRASE, endpoints, mcctl_json, state, unseal};
use super::iam::Controlplane;

fn start(dir: &std::path::Path, extra: &str) -> Controlplane {
    Controlplane::start(dir, &format!("{CONFIG}{extra}"))
}

fn ok(cp: &Controlplane, admin: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let (code, out) = cp.call(method, path, Some(admin), body);
    assert_eq!(code, 200, "{method} {path}: {out}");
    out
}

fn setup(cp: &Controlplane, admin: &str) {
    ok(
        cp,
        admin,
        "POST",
        "/v1/crypt/sys/init",
        Some(json!({"passphrase": PASSPHRASE})),
    );
    for (name, kind) in [("secret", "kv"), ("transit", "transit")] {
        ok(
            cp,
            admin,
            "POST",
            "/v1/crypt/sys/mounts",
            Some(json!({"name": name, "type": kind})),
        );
    }
}

fn jobs(cp: &Controlplane, admin: &str) -> Value {
    ok(cp, admin, "GET", "/v1/crypt/sys/jobs", None)
}

fn job<'a>(v: &'a Value, mount: &str) -> Option<&'a Value> {
    v["jobs"]
        .as_array()
        .and_then(|a| a.iter().find(|j| j["mount"] == mount))
}

fn ring(v: &Value, mount: &str) -> Value {
    v["rings"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["mount"] == mount))
        .map(|r| r["versions"].clone())
        .unwrap_or(Value::Null)
}

/// Polls `sys/jobs` until `done` holds (a bound, not a timing assertion).
fn wait_for(cp: &Controlplane, admin: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let v = jobs(cp, admin);
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write_all(cp: &Controlplane, admin: &str, n: u64) {
    for i in 0..n {
        ok(
            cp,
            admin,
            "POST",
            &format!("/v1/crypt/secret/data/app/{i:04}"),
            Some(json!({"data": {"n": i}})),
        );
    }
}

fn read_all(cp: &Controlplane, admin: &str, n: u64) {
    for i in 0..n {
        let body = ok(
            cp,
            admin,
            "GET",
            &format!("/v1/crypt/secret/data/app/{i:04}"),
            None,
        );
        assert_eq!(body["data"]["n"], json!(i), "{body}");
    }
}

#[test]
fn crypt_dek_rotation_rewraps_kv_and_transit_and_survives_restart() {
    // The periodic tasks on short intervals, to see them run in mcd.
    const TASKS: &str = "count_flush = \"200ms\"\ntransit_rotation_check = \"200ms\"\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = start(dir.path(), TASKS);
    let admin = cp.token("admin", &cp.password);
    setup(&cp, &admin);
    write_all(&cp, &admin, 12);
    let ct = ok(
        &cp,
        &admin,
        "POST",
        "/v1/crypt/transit/encrypt/orders",
        Some(json!({"plaintext": "b3JkZXIgNjY="})),
    )["ciphertext"]
        .clone();
    let decrypt = |cp: &Controlplane, admin: &str| {
        ok(
            cp,
            admin,
            "POST",
            "/v1/crypt/transit/decrypt/orders",
            Some(json!({"ciphertext": ct})),
        )["plaintext"]
            .clone()
    };
    assert_eq!(ring(&jobs(&cp, &admin), "secret"), json!([1]));

    // Bad input: an unknown mount is 404 and changes nothing.
    let (code, body) = cp.call(
        "POST",
        "/v1/crypt/sys/mounts/nope/rotate-dek",
        Some(&admin),
        None,
    );
    assert_eq!(code, 404, "{body}");

    // REST: transit's DEK; mcctl (gRPC): kv's, following the job to its end.
    let r = ok(
        &cp,
        &admin,
        "POST",
        "/v1/crypt/sys/mounts/transit/rotate-dek",
        None,
    );
    assert_eq!(
        (r["mount"].as_str(), r["dek_version"].as_u64()),
        (Some("transit"), Some(2))
    );
    let home = dir.path().join("mcctl");
    std::fs::create_dir_all(&home).expect("dir");
    let eps = endpoints(&home, &cp);
    std::fs::write(home.join("mcctl-token"), &admin).expect("token");
    let r = mcctl_json(
        &eps,
        &[
            "crypt",
            "mounts",
            "rotate-dek",
            "secret",
            "--wait",
            "--json",
        ],
        "",
    );
    assert_eq!(
        (
            r["dek_version"].as_u64(),
            r["rows"].as_u64(),
            r["rewrap"].as_str()
        ),
        (Some(2), Some(24), Some("done")),
        "{r}"
    );
    // A write after the rotation and every older row read back.
    ok(
        &cp,
        &admin,
        "POST",
        "/v1/crypt/secret/data/app/0012",
        Some(json!({"data": {"n": 12}})),
    );
    read_all(&cp, &admin, 13);
    assert_eq!(decrypt(&cp, &admin), json!("b3JkZXIgNjY="));
    let v = wait_for(&cp, &admin, "both jobs end", |v| {
        v["jobs"].as_array().is_some_and(Vec::is_empty)
    });
    assert_eq!(ring(&v, "secret"), json!([2]), "{v}");
    assert_eq!(ring(&v, "transit"), json!([2]), "{v}");
    let listed = mcctl_json(&eps, &["crypt", "jobs", "--json"], "");
    let rewrap = listed["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "rewrap secret"))
        .cloned()
        .unwrap_or(Value::Null);
    assert!(
        rewrap["outcome"]
            .as_str()
            .is_some_and(|o| o.starts_with("ok: version 2: 24 rows resealed")),
        "{listed}"
    );

    // The periodic tasks ran on their timers, and said how it went.
    let v = wait_for(&cp, &admin, "the tasks run", |v| {
        v["tasks"].as_array().is_some_and(|t| {
            t.iter()
                .filter(|t| t["runs"].as_u64().unwrap_or(0) >= 2)
                .count()
                >= 2
        })
    });
    let outcome = |name: &str| {
        v["tasks"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == name))
            .map(|t| t["outcome"].as_str().unwrap_or("").to_owned())
            .unwrap_or_default()
    };
    assert!(outcome("transit count flush").starts_with("ok: "), "{v}");
    assert_eq!(
        outcome("transit auto-rotate"),
        "ok: 1 keys checked, 0 rotated",
        "{v}"
    );

    // After a restart (sealed) only version 2 exists, and everything opens.
    drop(cp);
    let cp = start(dir.path(), "");
    let admin = cp.token("admin", &cp.password);
    let (code, body) = cp.call("GET", "/v1/crypt/sys/jobs", Some(&admin), None);
    assert_eq!((code, body), (503, json!({"error": "sealed"})));
    let (code, body) = unseal(&cp, &admin, json!({"passphrase": PASSPHRASE}));
    assert_eq!(code, 200, "{body}");
    read_all(&cp, &admin, 13);
    assert_eq!(decrypt(&cp, &admin), json!("b3JkZXIgNjY="));
    assert_eq!(ring(&jobs(&cp, &admin), "secret"), json!([2]));
}

#[test]
fn crypt_kill_9_during_a_rewrap_resumes_after_unseal_and_loses_nothing() {
    // Small batches with a pause between them: the job takes long enough
    // to be killed in its middle.
    const SLOW: &str = "rewrap_batch_rows = 10\nrewrap_pause = \"150ms\"\n";
    const N: u64 = 250;
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = start(dir.path(), SLOW);
    let admin = cp.token("admin", &cp.password);
    setup(&cp, &admin);
    write_all(&cp, &admin, N);
    let r = ok(
        &cp,
        &admin,
        "POST",
        "/v1/crypt/sys/mounts/secret/rotate-dek",
        None,
    );
    assert_eq!(r["rows"], json!(2 * N), "{r}");
    let v = wait_for(&cp, &admin, "the job is under way", |v| {
        job(v, "secret").is_some_and(|j| j["rows_scanned"].as_u64().unwrap_or(0) >= 60)
    });
    let seen = job(&v, "secret").expect("job")["rows_scanned"]
        .as_u64()
        .unwrap_or(0);
    assert!(seen < 2 * N, "killed before the end: {v}");
    drop(cp); // SIGKILL

    let cp = start(dir.path(), SLOW);
    let admin = cp.token("admin", &cp.password);
    assert_eq!(state(&cp), "sealed");
    let (code, body) = unseal(&cp, &admin, json!({"passphrase": PASSPHRASE}));
    assert_eq!(code, 200, "{body}");
    // The cursor survived: the job goes on from where it was, not from 0.
    let v = jobs(&cp, &admin);
    let j = job(&v, "secret").expect("the job is still there");
    assert!(
        j["rows_scanned"].as_u64().unwrap_or(0) >= seen,
        "resumed at or after {seen}: {v}"
    );
    assert_eq!(j["target_version"], 2, "{v}");
    assert_eq!(ring(&v, "secret"), json!([1, 2]), "{v}");
    let v = wait_for(&cp, &admin, "the job ends", |v| job(v, "secret").is_none());
    assert_eq!(ring(&v, "secret"), json!([2]), "{v}");
    read_all(&cp, &admin, N);
}
