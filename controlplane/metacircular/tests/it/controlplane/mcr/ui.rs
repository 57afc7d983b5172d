//! MCR's web UI: every route's guard swept with curl (anonymous → sign-in,
//! a user's session → 403 on admin pages and on any POST without the CSRF
//! token), then headless Chromium driven by playwright-core
//! (`tests/ui/registry.test.mjs`) browses a repository pushed with skopeo
//! and starts a dry GC run; what it started is what the API lists.

use super::Registry;
use super::gc::{copy_in, one_image};
use crate::support::curl;

#[test]
fn chromium_browses_repositories_and_starts_gc_and_the_guard_holds_on_every_route() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let reg = Registry::start(d);
    let layout = one_image(d, "ui", 1);
    copy_in(&reg, d, &layout, "apps/ui:latest");
    let cp = &reg.cp;
    let admin = cp.token("admin", &cp.password);
    let bob_password = "bob's long enough password";
    cp.create_user(&admin, "bob", bob_password);
    let bob = cp.token("bob", bob_password);

    let mut swept = 0;
    for (method, path) in mc_mcr::ui::ROUTES {
        let (code, _) = cp.call(method, path, None, None);
        if path.starts_with("/ui/registry/assets/") {
            assert_eq!(code, 200, "{method} {path}");
            continue;
        }
        assert_eq!(code, 303, "{method} {path} without a session");
        let cookie = format!("cookie: __Host-mc_session={bob}");
        let url = format!("{}{path}?name=apps/ui", cp.rest);
        let (with_user, _) = curl(&["--cacert", &cp.ca, "-X", method, "-H", &cookie, &url]);
        if path.starts_with("/ui/registry/admin/") || *method == "POST" {
            assert_eq!(with_user, 403, "{method} {path} with a user session");
        } else {
            assert_eq!(with_user, 200, "{method} {path} with a user session");
        }
        swept += 1;
    }
    assert_eq!(swept, 4);

    let base = cp.rest.replace("127.0.0.1", "localhost");
    let profile = d.join("chromium-profile");
    crate::support::browser_test(
        "registry.test.mjs",
        &[
            base.as_ref(),
            cp.password.as_ref(),
            bob_password.as_ref(),
            "apps/ui".as_ref(),
            "latest".as_ref(),
            profile.as_os_str(),
        ],
    );

    // The run the browser started is the API's.
    let (code, runs) = cp.call("GET", "/v1/registry/gc", Some(&admin), None);
    assert_eq!(code, 200, "{runs}");
    assert_eq!(runs["runs"][0]["dry_run"], true, "{runs}");
    assert_eq!(runs["runs"][0]["by"], "admin", "{runs}");
}
