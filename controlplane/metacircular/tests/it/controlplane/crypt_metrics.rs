//! Metacrypt's Prometheus metrics on the control plane's `/metrics` (admin
//! token, curl): after engine requests (ok and refused), a refused and an
//! accepted unseal, and a DEK rotation, the counters and gauges moved, and
//! `promtool check metrics` accepts the page.

use std::time::{Duration, Instant};

use serde_json::json;

use super::crypt::{PASSPHRASE, init, mount, start, unseal};
use super::iam::Controlplane;

fn scrape(cp: &Controlplane, admin: &str) -> String {
    let auth = format!("authorization: Bearer {admin}");
    let url = format!("{}/metrics", cp.rest);
    let (code, text) = crate::support::curl(&["--cacert", &cp.ca, "-H", &auth, &url]);
    assert_eq!(code, 200, "{text}");
    text
}

/// The value of the sample `series` (name and labels exactly; a sample
/// without labels may carry `{}`), 0 when absent.
fn value(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(series)?;
            rest.strip_prefix("{}").unwrap_or(rest).strip_prefix(' ')
        })
        .map_or(0, |v| v.trim().parse::<f64>().map_or(0, |f| f as u64))
}

#[test]
fn crypt_metrics_count_requests_unseals_jobs_and_seal_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = start(dir.path());
    let admin = cp.token("admin", &cp.password);
    let before = scrape(&cp, &admin);
    assert_eq!(value(&before, "mc_metacrypt_initialized"), 0, "{before}");
    assert_eq!(value(&before, "mc_metacrypt_sealed"), 1, "{before}");
    let ok = |(code, body): (u16, serde_json::Value)| {
        assert!(code == 200 || code == 201 || code == 204, "{code} {body}");
        body
    };
    init(&cp, &admin);
    // One refused and one accepted unseal.
    ok(cp.call("POST", "/v1/crypt/sys/seal", Some(&admin), None));
    let (code, _) = unseal(
        &cp,
        &admin,
        json!({"passphrase": "not the passphrase at all"}),
    );
    assert_eq!(code, 403);
    ok(unseal(&cp, &admin, json!({"passphrase": PASSPHRASE})));
    // Engine requests: kv writes and reads, a missing path, transit encrypt.
    mount(&cp, &admin, json!({"name": "secret", "type": "kv"}));
    mount(&cp, &admin, json!({"name": "transit", "type": "transit"}));
    for i in 0..3 {
        ok(cp.call(
            "POST",
            "/v1/crypt/secret/data/app",
            Some(&admin),
            Some(json!({"data": {"i": i}})),
        ));
    }
    ok(cp.call("GET", "/v1/crypt/secret/data/app", Some(&admin), None));
    let (code, _) = cp.call("GET", "/v1/crypt/secret/data/none", Some(&admin), None);
    assert_eq!(code, 404);
    ok(cp.call(
        "POST",
        "/v1/crypt/transit/keys/k",
        Some(&admin),
        Some(json!({})),
    ));
    ok(cp.call(
        "POST",
        "/v1/crypt/transit/encrypt/k",
        Some(&admin),
        Some(json!({"plaintext": "aGk="})),
    ));
    // A DEK rotation: the rewrap job runs and is counted.
    ok(cp.call(
        "POST",
        "/v1/crypt/sys/mounts/secret/rotate-dek",
        Some(&admin),
        None,
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let t = scrape(&cp, &admin);
        if value(&t, "mc_metacrypt_job_runs_total{job=\"rewrap secret\"}") > 0 {
            break t;
        }
        assert!(Instant::now() < deadline, "no rewrap run counted: {t}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let req = |engine: &str, op: &str, outcome: &str| {
        value(
            &text,
            &format!(
                "mc_metacrypt_requests_total{{engine=\"{engine}\",op=\"{op}\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    assert_eq!(req("kv", "data", "ok"), 4, "{text}");
    assert_eq!(req("kv", "data", "not_found"), 1, "{text}");
    assert_eq!(req("transit", "encrypt", "ok"), 1, "{text}");
    assert_eq!(value(&text, "mc_metacrypt_initialized"), 1);
    assert_eq!(value(&text, "mc_metacrypt_sealed"), 0);
    assert_eq!(
        value(
            &text,
            "mc_metacrypt_unseal_attempts_total{result=\"denied\"}"
        ),
        1,
        "{text}"
    );
    assert_eq!(
        value(&text, "mc_metacrypt_unseal_attempts_total{result=\"ok\"}"),
        1,
        "{text}"
    );
    assert_eq!(
        value(&text, "mc_metacrypt_unseal_failures_total"),
        1,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "mc_metacrypt_job_failures_total{job=\"rewrap secret\"}"
        ),
        0
    );
    // Sealed again: the gauge follows, and engine requests count as sealed.
    ok(cp.call("POST", "/v1/crypt/sys/seal", Some(&admin), None));
    let (code, _) = cp.call("GET", "/v1/crypt/secret/data/app", Some(&admin), None);
    assert_eq!(code, 503);
    let sealed = scrape(&cp, &admin);
    assert_eq!(value(&sealed, "mc_metacrypt_sealed"), 1, "{sealed}");
    let (good, complaints) = crate::dataplane::ops::promtool(&sealed);
    assert!(good, "promtool check metrics:\n{complaints}\n{sealed}");
}
