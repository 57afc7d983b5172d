//! The web UI in a real browser: headless Chromium (Debian's `chromium`)
//! driven by playwright-core from `tests/ui/` (scripts/test runs `npm ci`
//! there) against a running MCIAS, on https://localhost (the dev CA's
//! certificate names localhost and 127.0.0.1).

use std::time::Instant;

use super::Controlplane;

#[test]
fn chromium_signs_in_with_totp_creates_an_account_asks_the_policy_tester_and_uses_passkeys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "");
    // Taken now: once the browser has enrolled TOTP, logins need a code.
    let admin = cp.token("admin", &cp.password);
    let base = cp.rest.replace("127.0.0.1", "localhost");
    let profile = dir.path().join("chromium-profile");
    let started = Instant::now();
    crate::support::browser_test(
        "ui.test.mjs",
        &[base.as_ref(), cp.password.as_ref(), profile.as_os_str()],
    );
    let took = started.elapsed();
    eprintln!("Chromium UI test: {took:?} (node + browser start included)");

    // What the browser did is what the API sees.
    let (code, body) = cp.call("GET", "/v1/iam/accounts/bob", Some(&admin), None);
    assert_eq!(
        (code, body["roles"][0].as_str()),
        (200, Some("user")),
        "{body}"
    );
    let (_, audit) = cp.call("GET", "/v1/iam/audit?limit=1000", Some(&admin), None);
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    let passkey_logins = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| {
            e["action"] == "auth.login"
                && e["result"] == "ok"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("via=passkey="))
        })
        .count();
    assert_eq!(
        passkey_logins, 2,
        "admin passwordless, bob after his password"
    );
    for a in [
        "mfa.totp.confirm",
        "accounts.create",
        "policy.create",
        "auth.logout",
    ] {
        assert!(actions.contains(&a), "audit lacks {a}: {actions:?}");
    }
}
