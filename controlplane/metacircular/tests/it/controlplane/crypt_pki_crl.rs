//! Revocation reasons and the CRL refresh job end to end (`mcd
//! controlplane`, curl, mcctl, openssl): a reason given over REST (a name)
//! and over gRPC (`mcctl crypt pki revoke --reason`) appears in the CRL
//! entry (`openssl crl -text`) and in OCSP's revoked status (`openssl
//! ocsp`); certificateHold, removeFromCRL, 7 and codes above 10 are refused
//! with a message naming them and change nothing. With a one-minute
//! `crl_ttl` and a 55 s refresh margin, the CRL is re-signed (a higher
//! number, a later lastUpdate) with no call at all, by the jobs loop's
//! `pki crl refresh` task (listed in `sys/jobs`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::crypt::endpoints;
use super::crypt_pki::{ok, openssl, start_with_pki_mount};
use super::iam::Controlplane;

fn root_and_role(cp: &Controlplane, admin: &str) -> String {
    let root = ok(cp.call(
        "POST",
        "/v1/crypt/pki/root/generate",
        Some(admin),
        Some(json!({"common_name": "CRL Test Root"})),
    ));
    ok(cp.call(
        "POST",
        "/v1/crypt/pki/roles/web",
        Some(admin),
        Some(json!({"allowed_domains": ["example.test"], "allow_subdomains": true, "ttl": "1h"})),
    ));
    root["certificate"].as_str().expect("ca").to_owned()
}

fn issue(cp: &Controlplane, admin: &str, name: &str) -> Value {
    ok(cp.call(
        "POST",
        "/v1/crypt/pki/issue/web",
        Some(admin),
        Some(json!({"common_name": name})),
    ))
}

/// The public CRL as `openssl crl` prints `args`.
fn crl(cp: &Controlplane, d: &std::path::Path, args: &[&str]) -> String {
    let (_, pem) =
        crate::support::curl(&["--cacert", &cp.ca, &format!("{}/v1/pki/pki/crl", cp.rest)]);
    std::fs::write(d.join("pki-crl.pem"), pem).expect("crl");
    let mut all = vec!["crl", "-in", "pki-crl.pem", "-noout"];
    all.extend_from_slice(args);
    let (good, text) = openssl(d, &all);
    assert!(good, "{text}");
    text
}

#[test]
fn crypt_pki_revocation_reasons_in_crl_and_ocsp_and_bad_codes_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (cp, admin) = start_with_pki_mount(d);
    let ca = root_and_role(&cp, &admin);
    let a = issue(&cp, &admin, "a.example.test");
    let b = issue(&cp, &admin, "b.example.test");
    let serial = |v: &Value| v["serial"].as_str().expect("serial").to_owned();
    let (sa, sb) = (serial(&a), serial(&b));

    // REST, by name.
    let r = ok(cp.call(
        "POST",
        "/v1/crypt/pki/revoke",
        Some(&admin),
        Some(json!({"serial": sa, "reason": "keyCompromise"})),
    ));
    assert_eq!(r["reason"], "keyCompromise", "{r}");

    // Refused codes: 400 naming them, the certificate untouched.
    for (reason, says) in [
        (json!(6), "certificateHold"),
        (json!("certificateHold"), "certificateHold"),
        (json!(8), "removeFromCRL"),
        (json!(7), "not an RFC 5280"),
        (json!(11), "not an RFC 5280"),
    ] {
        let (code, body) = cp.call(
            "POST",
            "/v1/crypt/pki/revoke",
            Some(&admin),
            Some(json!({"serial": sb, "reason": reason})),
        );
        assert_eq!(code, 400, "{reason}: {body}");
        assert!(
            body["error"].as_str().unwrap_or_default().contains(says),
            "{body}"
        );
    }
    let rec = ok(cp.call(
        "GET",
        &format!("/v1/crypt/pki/certs/{sb}"),
        Some(&admin),
        None,
    ));
    assert!(rec["revoked_at"].is_null(), "{rec}");

    // gRPC through mcctl: a bad code is refused (non-zero, the reason named), then superseded.
    let eps = endpoints(d, &cp);
    let out = crate::support::run_mcctl(
        &eps,
        &["login", "--username", "admin"],
        &format!("{}\n", cp.password),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = crate::support::run_mcctl(
        &eps,
        &["crypt", "pki", "revoke", "pki", &sb, "--reason", "8"],
        "",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("removeFromCRL"),
        "{err}"
    );
    let out = crate::support::run_mcctl(
        &eps,
        &[
            "crypt",
            "pki",
            "revoke",
            "pki",
            &sb,
            "--reason",
            "superseded",
            "--json",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["reason"], "superseded", "{v}");

    // The CRL entries carry their reasons.
    let text = crl(&cp, d, &["-text"]);
    assert!(
        text.contains("Key Compromise") && text.contains("Superseded"),
        "{text}"
    );

    // OCSP's revoked status carries it too.
    std::fs::write(d.join("pki-ca.pem"), &ca).expect("ca");
    std::fs::write(
        d.join("pki-a.pem"),
        a["certificate"].as_str().expect("cert"),
    )
    .expect("a");
    let tls_ca = std::fs::read_to_string(&cp.ca).expect("tls ca");
    std::fs::write(d.join("pki-trust.pem"), format!("{ca}{tls_ca}")).expect("trust");
    let url = format!("{}/v1/pki/pki/ocsp", cp.rest);
    let (good, text) = openssl(
        d,
        &[
            "ocsp",
            "-issuer",
            "pki-ca.pem",
            "-cert",
            "pki-a.pem",
            "-url",
            &url,
            "-CAfile",
            "pki-trust.pem",
        ],
    );
    assert!(good && text.contains("pki-a.pem: revoked"), "{text}");
    assert!(text.contains("Reason: keyCompromise"), "{text}");
}

#[test]
fn crypt_pki_crl_is_refreshed_before_next_update_without_a_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (cp, admin) = start_with_pki_mount(d);
    // A margin at or above the CRL's lifetime is refused.
    let (code, body) = cp.call(
        "PATCH",
        "/v1/crypt/sys/mounts/pki",
        Some(&admin),
        Some(json!({"config": {"crl_ttl": "1m", "crl_refresh_margin": "1m"}})),
    );
    assert_eq!(code, 400, "{body}");
    ok(cp.call(
        "PATCH",
        "/v1/crypt/sys/mounts/pki",
        Some(&admin),
        Some(json!({"config": {"crl_ttl": "1m", "crl_refresh_margin": "55s"}})),
    ));
    root_and_role(&cp, &admin);
    let first = crl(&cp, d, &["-crlnumber", "-lastupdate"]);
    let number = |t: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix("crlNumber="))
            .map(|n| n.trim().to_owned())
            .unwrap_or_else(|| panic!("no number: {t}"))
    };
    let n0 = number(&first);
    // The job looks every 5 s and finds it due 5 s after signing.
    let deadline = Instant::now() + Duration::from_secs(60);
    let later = loop {
        let t = crl(&cp, d, &["-crlnumber", "-lastupdate"]);
        if number(&t) != n0 {
            break t;
        }
        assert!(Instant::now() < deadline, "the CRL was not refreshed: {t}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let last = |t: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix("lastUpdate="))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert_ne!(last(&later), last(&first), "{first} -> {later}");
    // Numbers are hex in openssl's output; the new one is larger.
    let hex = |s: String| u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex");
    assert!(hex(number(&later)) > hex(n0), "{first} -> {later}");
    // The refresh is a task of the one jobs loop, listed in sys/jobs.
    let jobs = ok(cp.call("GET", "/v1/crypt/sys/jobs", Some(&admin), None));
    let task = jobs["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "pki crl refresh"))
        .cloned()
        .unwrap_or_else(|| panic!("no pki crl refresh task: {jobs}"));
    assert!(
        task["outcome"]
            .as_str()
            .is_some_and(|o| o.starts_with("ok: "))
            && task["runs"].as_u64() > Some(0),
        "{task}"
    );
}
