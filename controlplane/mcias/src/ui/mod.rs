//! The server-rendered web UI under `/ui/` (maud templates, htmx for the
//! policy tester), and the login page SSO sends browsers to.
//!
//! The browser session is an ordinary MCIAS session token in the cookie
//! `__Host-mc_session` (`HttpOnly; Secure; SameSite=Strict; Path=/`, no
//! Domain: the prefix makes browsers refuse it from a sibling host or over
//! http); the cookie of earlier versions, `mc_session`, is still read so
//! sessions survive an upgrade (until they expire; logout clears both).
//! Logout revokes the session. [`guard`] is the one place that resolves
//! the session (pages redirect to the login page without one), refuses
//! non-admins on `/ui/admin/…` and checks every POST: a browser's
//! `Sec-Fetch-Site` and `Origin`, when sent, must say same origin; then
//! the CSRF token: an HMAC of the session's `jti` under a per-process key,
//! sent as the form field `csrf` or the header `X-CSRF-Token`. The sign-in
//! forms come before any session: their token is a random value the page
//! also sets as the `__Host-mc_login` cookie (double submit).
//!
//! `login` signs in and out, `profile` is the user's own page,
//! `admin` the admin pages, `pages` the frame they share; the CSRF key
//! is [`Csrf`], held here and not in the core.

mod admin;
mod csrf;
mod login;
mod pages;
mod profile;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use maud::{DOCTYPE, Markup, html};
use mc_service::auth::{Principal, SourceAddr};
use serde::Deserialize;

pub use csrf::Csrf;
pub use pages::{error_page, login_page, reload_page};

use admin::*;
use login::*;
use pages::*;
use profile::*;

use crate::core::sso::ClientInput;
use crate::core::{Caller, LoginInput, Mcias, NewAccount};
use crate::error::IamError;
use crate::policy::{Effect, Rule};

pub const COOKIE: &str = "__Host-mc_session";
/// The session cookie of earlier versions: read, never set.
const LEGACY_COOKIE: &str = "mc_session";
/// The sign-in forms' token (see [`pages::login_page`]).
const LOGIN_COOKIE: &str = "__Host-mc_login";
const MAX_FORM: usize = 64 * 1024;
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";
const HTMX: &str = include_str!("../../assets/htmx.min.js");
const STYLE: &str = include_str!("../../assets/style.css");
const PASSKEY_JS: &str = include_str!("../../assets/passkey.js");
const AUDIT_PAGE: usize = 50;

/// The signed-in user of a UI request, put there by [`guard`].
#[derive(Clone)]
pub struct UiUser {
    pub principal: Principal,
    pub csrf: String,
    pub source: Option<std::net::IpAddr>,
}

impl UiUser {
    fn caller(&self) -> Caller {
        Caller {
            principal: Some(self.principal.clone()),
            source: self.source,
        }
    }
}

/// The session token from the session cookie (or the legacy one).
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE).or_else(|| cookie(headers, LEGACY_COOKIE))
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Whether a browser says the request comes from this origin. Browsers
/// send `Sec-Fetch-Site` and `Origin` with every POST; a value other than
/// this origin is a cross-site request. `Origin: null` (what Chromium sends
/// under our `Referrer-Policy: no-referrer`, and what a sandboxed frame
/// sends) passes only with `Sec-Fetch-Site: same-origin`. Neither header
/// (curl, scripts) passes here and must still bring the CSRF token.
fn same_origin(req: &Request) -> bool {
    let h = req.headers();
    let site = h.get("sec-fetch-site").map(|v| v.as_bytes());
    if site.is_some_and(|s| s != b"same-origin") {
        return false;
    }
    let Some(origin) = h.get(header::ORIGIN) else {
        return true;
    };
    if origin.as_bytes() == b"null" {
        return site == Some(b"same-origin".as_slice());
    }
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    let origin = origin.to_str().unwrap_or_default();
    host.is_some_and(|host| {
        origin
            .strip_prefix("https://")
            .is_some_and(|o| o.eq_ignore_ascii_case(host))
    })
}

/// The CSRF token a POST brings (header, else form field), and the request
/// rebuilt with its body.
async fn posted_token(req: Request) -> Result<(Request, Option<String>), Response> {
    let header_token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return Err(error_page(StatusCode::PAYLOAD_TOO_LARGE, "form too large"));
    };
    let form_token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|v| v.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v));
    Ok((
        Request::from_parts(parts, Body::from(bytes)),
        header_token.or(form_token),
    ))
}

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
            Err(e) => return e,
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
    let principal = session_cookie(req.headers()).and_then(|t| iam.verify(t).ok());
    let Some(principal) = principal else {
        let back = req
            .uri()
            .path_and_query()
            .map_or("/ui/", |p| p.as_str())
            .to_owned();
        let target = if req.method() == Method::GET {
            back
        } else {
            "/ui/".to_owned()
        };
        return Redirect::to(&format!(
            "/ui/login?return_to={}",
            crate::core::sso::pct(&target)
        ))
        .into_response();
    };
    if path.starts_with("/ui/admin") && !principal.is_admin() {
        return error_page(StatusCode::FORBIDDEN, "this page needs the admin role");
    }
    let user = UiUser {
        csrf: csrf.token(&principal.jti),
        source: req
            .extensions()
            .get::<SourceAddr>()
            .map(|SourceAddr(ip)| *ip),
        principal,
    };
    let mut req = req;
    if post {
        let (rebuilt, token) = match posted_token(req).await {
            Ok(r) => r,
            Err(e) => return e,
        };
        if !token.is_some_and(|t| csrf.verify(&user.principal.jti, &t)) {
            return error_page(StatusCode::FORBIDDEN, "missing or wrong CSRF token");
        }
        req = rebuilt;
    }
    req.extensions_mut().insert(user);
    next.run(req).await
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
    let csrf = match Csrf::new() {
        Ok(c) => Arc::new(c),
        // No randomness: every POST is refused (403) rather than signed with a guessable key.
        Err(e) => {
            tracing::error!(error = %e, "no CSRF key: the web UI refuses every form");
            Arc::new(Csrf::refusing())
        }
    };
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
