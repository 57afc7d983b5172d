//! The server-rendered web UI under `/ui/` (maud templates, htmx for the
//! policy tester), and the login page SSO sends browsers to.
//!
//! The session cookie, the guard's session/admin/CSRF checks, [`Csrf`], the
//! security headers and the htmx/CSS assets are `mc_service::ui`'s, shared
//! with the other services' UIs; [`guard`] adds what only MCIAS has: the
//! sign-in forms, which come before any session: their token is a random
//! value the page also sets as the `__Host-mc_login` cookie (double submit).
//! Admin pages live under `/ui/admin/…`.
//!
//! `login` signs in and out, `profile` is the user's own page,
//! `admin` the admin pages, `pages` the frame they share; the CSRF key
//! is a [`Csrf`] held here (MCIAS's own) and not in the core.

mod admin;
mod login;
mod pages;
mod profile;

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use maud::{DOCTYPE, Markup, html};
use mc_service::auth::SourceAddr;
use mc_service::ui::{
    LEGACY_COOKIE, Refused, asset, cookie, posted_token, same_origin, with_headers,
};
use serde::Deserialize;

pub use mc_service::ui::{COOKIE, Csrf, UiUser, session_cookie};
pub use pages::{error_page, login_page, reload_page};

use admin::*;
use login::*;
use pages::*;
use profile::*;

use crate::core::sso::ClientInput;
use crate::core::{Caller, LoginInput, Mcias, NewAccount};
use crate::error::IamError;
use crate::policy::{Effect, Rule};

/// The sign-in forms' token (see [`pages::login_page`]).
const LOGIN_COOKIE: &str = "__Host-mc_login";
const HTMX: &str = mc_service::ui::HTMX;
const STYLE: &str = mc_service::ui::STYLE;
const PASSKEY_JS: &str = include_str!("../../assets/passkey.js");
const AUDIT_PAGE: usize = 50;

/// The one place UI sessions, admin pages and CSRF tokens are checked.
pub async fn guard(
    State((iam, csrf)): State<(Arc<Mcias>, Arc<Csrf>)>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let post = req.method() == Method::POST;
    if post && !same_origin(&req) {
        return error_page(StatusCode::FORBIDDEN, "cross-site request refused");
    }
    if path.starts_with("/ui/login") && post {
        let expected = cookie(req.headers(), LOGIN_COOKIE).map(str::to_owned);
        let (req, presented) = match posted_token(req).await {
            Ok(r) => r,
            Err(e) => return error_page(e.status(), e.message()),
        };
        let ok = matches!((expected, presented), (Some(e), Some(p))
            if aws_lc_rs::constant_time::verify_slices_are_equal(e.as_bytes(), p.as_bytes()).is_ok());
        if !ok {
            let e = (
                StatusCode::FORBIDDEN,
                "the sign-in form expired: sign in again",
            );
            return login_page("/ui/", Some(e));
        }
        return next.run(req).await;
    }
    if path.starts_with("/ui/login") || path.starts_with("/ui/assets/") {
        return next.run(req).await;
    }
    let verify = |t: String| {
        let p = iam.verify(&t).ok();
        async move { p }
    };
    match mc_service::ui::check(req, verify, &csrf, path.starts_with("/ui/admin")).await {
        Ok(req) => next.run(req).await,
        Err(Refused::SignIn { return_to }) => Redirect::to(&format!(
            "/ui/login?return_to={}",
            crate::core::sso::pct(&return_to)
        ))
        .into_response(),
        Err(e) => error_page(e.status(), e.message()),
    }
}

async fn htmx_js() -> Response {
    asset("text/javascript; charset=utf-8", HTMX)
}

async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn passkey_js() -> Response {
    asset("text/javascript; charset=utf-8", PASSKEY_JS)
}

/// The UI routes, behind [`guard`].
///
/// The CSRF key is made here, once per process (and per router).
pub fn router(iam: Arc<Mcias>) -> Router {
    // No randomness: every POST is refused (403) rather than signed with a guessable key.
    let csrf = Arc::new(Csrf::new_or_refusing("mcias"));
    Router::new()
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/login/totp", post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/assets/htmx.min.js", get(htmx_js))
        .route("/ui/assets/style.css", get(style_css))
        .route("/ui/assets/passkey.js", get(passkey_js))
        .route("/ui/login/passkey", post(login_passkey))
        .route("/ui/passkeys/begin", post(passkey_begin))
        .route("/ui/passkeys/finish", post(passkey_finish))
        .route("/ui/passkeys/{id}/remove", post(passkey_remove))
        .route("/ui/", get(profile))
        .route("/ui/password", post(change_password))
        .route("/ui/totp/enroll", post(totp_enroll))
        .route("/ui/totp/confirm", post(totp_confirm))
        .route("/ui/admin/accounts", get(accounts).post(create_account))
        .route("/ui/admin/accounts/{id}/status", post(account_status))
        .route("/ui/admin/accounts/{id}/roles", post(account_roles))
        .route("/ui/admin/policy", get(policy).post(create_rule))
        .route("/ui/admin/policy/{id}/delete", post(delete_rule))
        .route("/ui/admin/tester", get(tester).post(tester_run))
        .route("/ui/admin/sso", get(sso).post(sso_create))
        .route("/ui/admin/sso/{id}/delete", post(sso_delete))
        .route("/ui/admin/audit", get(audit))
        .layer(axum::middleware::from_fn_with_state(
            (iam.clone(), csrf),
            guard,
        ))
        .with_state(iam)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_return_paths() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; mc_session=tok; b=2"),
        );
        assert_eq!(session_cookie(&h), Some("tok"), "the legacy name");
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("mc_session=old; __Host-mc_session=new"),
        );
        assert_eq!(session_cookie(&h), Some("new"));
        assert_eq!(
            safe_return("/oauth2/authorize?x=1"),
            "/oauth2/authorize?x=1"
        );
        assert_eq!(
            safe_return("/oauth2/authorize?redirect_uri=https%3A%2F%2Frp%2Fcb&state=a%20b"),
            "/oauth2/authorize?redirect_uri=https%3A%2F%2Frp%2Fcb&state=a%20b"
        );
        assert_eq!(safe_return("/ui/admin/../audit"), "/ui/audit");
        // A path on this origin, however odd: nothing to refuse.
        assert_eq!(safe_return("/./%2f/evil"), "/%2f/evil");
        for bad in [
            "https://evil",
            "//evil",
            "/\\evil",
            "",
            "evil",
            "/\t/evil.example",
            "/%09/evil.example",
            "/\n/evil.example",
            "/%0a/evil.example",
            "/\r\n/evil",
            "/ui/\\..\\\\evil",
            "/%5c/evil",
            "/%5C%5Cevil",
            "/%2f%2fevil",
            "/%2F/evil",
            "/%252f%252fevil",
            "/..//evil",
            "/ui/../..//evil",
            "https:evil",
            "/\u{7f}x",
        ] {
            assert_eq!(safe_return(bad), "/ui/", "{bad:?}");
        }
        let c = session_cookie_header("t");
        assert!(c.starts_with("__Host-mc_session=t;"), "{c}");
        assert!(
            c.contains("HttpOnly; Secure; SameSite=Strict; Path=/"),
            "{c}"
        );
        assert!(!c.to_ascii_lowercase().contains("domain"), "{c}");
    }
}
