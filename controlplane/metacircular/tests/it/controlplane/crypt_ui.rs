//! Metacrypt's web UI in a real browser: headless Chromium driven by
//! playwright-core (`tests/ui/crypt.test.mjs`) against `mcd controlplane`
//! on https://localhost: the dev admin initialises, unseals, mounts, writes
//! and reads a kv secret, creates and edits a policy rule, seals and
//! unseals; a user without a matching rule gets the 403 page.

use super::crypt::{PASSPHRASE, start};
use crate::support::curl;

#[test]
fn chromium_drives_the_metacrypt_ui_kv_policy_seal_and_a_users_403() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = start(dir.path());
    let admin = cp.token("admin", &cp.password);
    let bob_password = "bob's long enough password";
    cp.create_user(&admin, "bob", bob_password);
    let bob = cp.token("bob", bob_password);

    // Every UI route: anonymous → the sign-in page; with a user's session,
    // admin pages are 403 and every POST without the CSRF token is 403.
    let mut swept = 0;
    for (method, route) in mc_metacrypt::ui::ROUTES {
        let path = route
            .replace("{mount}", "secret")
            .replace("{name}", "k")
            .replace("{id}", "r-1");
        let (code, _) = cp.call(method, &path, None, None);
        if path.starts_with("/ui/crypt/assets/") {
            assert_eq!(code, 200, "{method} {path}");
            continue;
        }
        assert_eq!(code, 303, "{method} {path} without a session");
        let cookie = format!("cookie: __Host-mc_session={bob}");
        let url = format!("{}{path}", cp.rest);
        let (with_user, _) = curl(&["--cacert", &cp.ca, "-X", method, "-H", &cookie, &url]);
        if path.starts_with("/ui/crypt/admin/") || *method == "POST" {
            assert_eq!(with_user, 403, "{method} {path} with a user session");
        }
        swept += 1;
    }
    assert!(swept >= 20, "{swept}");

    let base = cp.rest.replace("127.0.0.1", "localhost");
    let profile = dir.path().join("chromium-profile");
    crate::support::browser_test(
        "crypt.test.mjs",
        &[
            base.as_ref(),
            cp.password.as_ref(),
            bob_password.as_ref(),
            PASSPHRASE.as_ref(),
            profile.as_os_str(),
        ],
    );

    // What the browser did is what the API sees.
    let (code, body) = cp.call("GET", "/v1/crypt/secret/data/app/db", Some(&admin), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["pw"], "<b>s3cret</b>", "{body}");
    let (code, body) = cp.call("GET", "/v1/crypt/sys/policy", Some(&admin), None);
    assert_eq!(code, 200, "{body}");
    let text = body.to_string();
    assert!(text.contains("team reads, edited"), "{body}");
    assert!(text.contains("secret/data/team/*"), "{body}");
    let (code, _) = cp.call("GET", "/v1/crypt/secret/data/app/db", Some(&bob), None);
    assert_eq!(code, 403, "the API refuses bob as the UI did");
}
