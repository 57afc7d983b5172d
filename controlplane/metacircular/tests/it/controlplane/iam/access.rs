//! Who may call what: every MCIAS route and RPC refuses an anonymous caller unless
//! it is public, and login and validate are rate-limited per address.

use super::*;

#[test]
fn every_route_and_rpc_refuses_anonymous_callers_unless_public() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "");
    let admin = cp.token("admin", &cp.password);
    let pw = "a user's long password";
    cp.call(
        "POST",
        "/v1/iam/accounts",
        Some(&admin),
        Some(serde_json::json!({"username": "user1", "password": pw, "roles": ["user"]})),
    );
    let user = cp.token("user1", pw);
    let map = mc_mcias::methods::map();
    let mut checked = 0;
    for (key, req) in map.entries() {
        if let Some(path) = key.strip_prefix('/').map(|_| key) {
            // gRPC: anonymous → UNAUTHENTICATED (16); admin-only with a user token → PERMISSION_DENIED (7).
            let anon = cp.grpc_status(path, None);
            match req {
                mc_service::auth::Requirement::Public => assert!(
                    !anon.contains("missing bearer token"),
                    "{path} is public: {anon}"
                ),
                _ => assert!(
                    anon.starts_with("16|"),
                    "{path} without credentials: {anon}"
                ),
            }
            if req == mc_service::auth::Requirement::Admin {
                assert!(
                    cp.grpc_status(path, Some(&user)).starts_with("7|"),
                    "{path} with a user token"
                );
            }
        } else {
            let (method, path) = key.split_once(' ').expect("REST key");
            let path = path.replace("{id}", "x").replace("{jti}", "x");
            let (code, body) = cp.call(method, &path, None, None);
            let ui_page = path.starts_with("/ui/")
                && !path.starts_with("/ui/login")
                && !path.starts_with("/ui/assets/");
            match req {
                // The token endpoint and userinfo authenticate by protocol
                // (client secret, SSO access token) and say so with 401.
                mc_service::auth::Requirement::Public
                    if path.starts_with("/oauth2/") && code == 401 =>
                {
                    assert!(body["error"].is_string(), "{key}: {body}");
                }
                // UI pages: the session is a cookie; without it, the login page.
                mc_service::auth::Requirement::Public if ui_page => {
                    assert_eq!(code, 303, "{key} without a session goes to the login page");
                    let cookie = format!("cookie: mc_session={user}");
                    let url = format!("{}{path}", cp.rest);
                    let (with_user, _) =
                        curl(&["--cacert", &cp.ca, "-X", method, "-H", &cookie, &url]);
                    if path.starts_with("/ui/admin") {
                        assert_eq!(with_user, 403, "{key} with a user session");
                    } else if method == "POST" {
                        assert_eq!(with_user, 403, "{key} without a CSRF token");
                    }
                }
                mc_service::auth::Requirement::Public => assert_ne!(code, 401, "{key} is public"),
                _ => assert_eq!(code, 401, "{key} without credentials"),
            }
            if req == mc_service::auth::Requirement::Admin {
                assert_eq!(
                    cp.call(method, &path, Some(&user), None).0,
                    403,
                    "{key} with a user token"
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 60, "{checked} entries");
    // A route the map does not know is refused to everyone, admin included.
    let (code, _) = cp.call("GET", "/v1/iam/nonexistent", Some(&admin), None);
    assert_eq!(code, 404);
    // gRPC health is public and answers.
    assert!(
        cp.grpc_status("/grpc.health.v1.Health/Check", None)
            .starts_with("0|")
    );
}

#[test]
fn login_and_validate_are_rate_limited_per_ip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "requests_per_minute_per_ip = 10\n");
    let mut limited = 0;
    for _ in 0..15 {
        let (code, _) = cp.call(
            "POST",
            "/v1/auth/validate",
            None,
            Some(serde_json::json!({"token": "x"})),
        );
        if code == 429 {
            limited += 1;
        }
    }
    assert_eq!(
        limited, 5,
        "the 11th to 15th requests in a minute are refused"
    );
    assert_eq!(cp.login("admin", &cp.password, None).0, 429);
}
