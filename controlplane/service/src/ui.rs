//! What every web UI of the platform shares (MCIAS's `/ui/`, Metacrypt's
//! `/ui/crypt/`): the session cookie, the guard's checks, CSRF tokens,
//! security headers and the htmx/CSS assets.
//!
//! The browser session is an ordinary MCIAS session token in the cookie
//! `__Host-mc_session` (`HttpOnly; Secure; SameSite=Strict; Path=/`; the
//! legacy `mc_session` is still read). MCIAS signs in and out; every UI
//! resolves the cookie with [`check`], which is the one place that refuses
//! a POST whose `Sec-Fetch-Site`/`Origin` say cross-site, redirects to the
//! sign-in page without a session, refuses non-admins on admin pages and
//! checks the CSRF token of every POST (form field `csrf` or header
//! `X-CSRF-Token`): an HMAC of the session's `jti` under a per-process key
//! that each UI holds for itself ([`Csrf`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use maud::Markup;

use crate::auth::{Principal, SourceAddr, TokenVerifier};
use crate::caller::Caller;

/// The session cookie (set by MCIAS's sign-in page).
pub const COOKIE: &str = "__Host-mc_session";
/// The session cookie of earlier versions: read, never set.
pub const LEGACY_COOKIE: &str = "mc_session";
/// The largest form a UI reads.
pub const MAX_FORM: usize = 64 * 1024;
/// The strict CSP of every page: scripts and styles from this origin only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";
/// htmx, served by each UI under its own `assets/` path.
pub const HTMX: &str = include_str!("../assets/htmx.min.js");
/// The one stylesheet.
pub const STYLE: &str = include_str!("../assets/style.css");

/// The signed-in user of a UI request, put in the request's extensions by [`check`].
#[derive(Clone)]
pub struct UiUser {
    pub principal: Principal,
    pub csrf: String,
    pub source: Option<std::net::IpAddr>,
}

impl UiUser {
    /// The core's caller for this user: the same value the REST handlers pass.
    pub fn caller(&self) -> Caller {
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

/// A cookie's value (the first non-empty one of that name).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
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
pub fn same_origin(req: &Request) -> bool {
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
/// rebuilt with its body; `Err` when the body exceeds [`MAX_FORM`].
pub async fn posted_token(req: Request) -> Result<(Request, Option<String>), Refused> {
    let header_token = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return Err(Refused::TooLarge);
    };
    let form_token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|v| v.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v));
    Ok((
        Request::from_parts(parts, Body::from(bytes)),
        header_token.or(form_token),
    ))
}

/// Why [`check`] refused a request; each UI renders it as its own page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    CrossSite,
    TooLarge,
    /// No valid session: sign in, then come back to this local path.
    SignIn {
        return_to: String,
    },
    NotAdmin,
    Csrf,
}

impl Refused {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            _ => StatusCode::FORBIDDEN,
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Self::CrossSite => "cross-site request refused",
            Self::TooLarge => "form too large",
            Self::SignIn { .. } => "sign in first",
            Self::NotAdmin => "this page needs the admin role",
            Self::Csrf => "missing or wrong CSRF token",
        }
    }

    /// MCIAS's sign-in page, coming back to `return_to` afterwards.
    pub fn sign_in_url(return_to: &str) -> String {
        format!("/ui/login?return_to={}", pct(return_to))
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn pct(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The session checks every UI page passes (see the module header):
/// `verify` turns the cookie's token into a principal (signature, expiry,
/// revocation); `admin_only` says whether the path is an admin page. On
/// success the request (rebuilt when its body was read) carries a
/// [`UiUser`] in its extensions.
pub async fn check<F, Fut>(
    req: Request,
    verify: F,
    csrf: &Csrf,
    admin_only: bool,
) -> Result<Request, Refused>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Option<Principal>>,
{
    let post = req.method() == Method::POST;
    if post && !same_origin(&req) {
        return refuse(req, Refused::CrossSite).await;
    }
    let token = session_cookie(req.headers()).map(str::to_owned);
    let principal = match token {
        Some(t) => verify(t).await,
        None => None,
    };
    let Some(principal) = principal else {
        let return_to = if req.method() == Method::GET {
            req.uri()
                .path_and_query()
                .map_or("/ui/", |p| p.as_str())
                .to_owned()
        } else {
            "/ui/".to_owned()
        };
        return refuse(req, Refused::SignIn { return_to }).await;
    };
    if admin_only && !principal.is_admin() {
        return refuse(req, Refused::NotAdmin).await;
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
        let (rebuilt, token) = posted_token(req).await?;
        if !token.is_some_and(|t| csrf.verify(&user.principal.jti, &t)) {
            return Err(Refused::Csrf);
        }
        req = rebuilt;
    }
    req.extensions_mut().insert(user);
    Ok(req)
}

/// Refuses after reading (and dropping) a small body, so an HTTP/2 client
/// sees the answer and a clean end of stream rather than a reset.
async fn refuse(req: Request, refused: Refused) -> Result<Request, Refused> {
    crate::body::drain_refused(req).await;
    Err(refused)
}

/// [`check`] with a [`TokenVerifier`] (what services other than MCIAS have).
pub async fn check_with(
    req: Request,
    verifier: &Arc<dyn TokenVerifier>,
    csrf: &Csrf,
    admin_only: bool,
) -> Result<Request, Refused> {
    let v = verifier.clone();
    check(
        req,
        |t| async move { v.verify(&t).await.ok() },
        csrf,
        admin_only,
    )
    .await
}

/// A page with the UI's security headers: the strict CSP, `no-store`,
/// `nosniff`, `no-referrer`.
pub fn with_headers(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, axum::response::Html(markup.into_string())).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// What every page of one UI shares: its product name, where its assets
/// are served and its navigation (label, href, shown to admins only).
pub struct Chrome {
    pub product: &'static str,
    /// The path its `htmx.min.js` and `style.css` are served under.
    pub assets: &'static str,
    pub nav: &'static [(&'static str, &'static str, bool)],
}

impl Chrome {
    fn head(&self, title: &str, csrf: &str) -> Markup {
        maud::html! {
            head {
                meta charset="utf-8";
                @if !csrf.is_empty() { meta name="csrf-token" content=(csrf); }
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false}"#;
                title { (title) " · " (self.product) }
                link rel="stylesheet" href=(format!("{}/style.css", self.assets));
                script src=(format!("{}/htmx.min.js", self.assets)) {}
            }
        }
    }

    /// A full page for a signed-in user, with [`with_headers`].
    pub fn page(
        &self,
        user: &UiUser,
        title: &str,
        status: StatusCode,
        content: Markup,
    ) -> Response {
        let admin = user.principal.is_admin();
        with_headers(
            status,
            maud::html! {
                (maud::DOCTYPE)
                html lang="en" {
                    (self.head(title, &user.csrf))
                    body hx-headers=(format!(r#"{{"X-CSRF-Token":"{}"}}"#, user.csrf)) {
                        header {
                            strong { (self.product) }
                            @for (label, href, admin_only) in self.nav {
                                @if admin || !admin_only { a href=(href) { (label) } }
                            }
                            a href="/ui/" { "Account" }
                            span { "Signed in as " b #whoami { (user.principal.username) } }
                        }
                        main { h1 { (title) } (content) }
                    }
                }
            },
        )
    }

    /// A page without a session: the guard's refusals.
    pub fn error_page(&self, status: StatusCode, message: &str) -> Response {
        with_headers(
            status,
            maud::html! {
                (maud::DOCTYPE)
                html lang="en" {
                    (self.head("Error", ""))
                    body { main { h1 { "Error" } p.error #error { (message) } } }
                }
            },
        )
    }
}

/// The middleware body of a UI other than MCIAS's: [`check`] with
/// `verifier` (none: nobody is signed in); a missing session redirects to
/// MCIAS's sign-in page, any other refusal is `chrome`'s error page.
pub async fn guard(
    req: Request,
    next: axum::middleware::Next,
    verifier: Option<Arc<dyn TokenVerifier>>,
    csrf: &Csrf,
    admin_only: bool,
    chrome: &Chrome,
) -> Response {
    let verify = |t: String| async move {
        match verifier {
            Some(v) => v.verify(&t).await.ok(),
            None => None,
        }
    };
    match check(req, verify, csrf, admin_only).await {
        Ok(req) => next.run(req).await,
        Err(Refused::SignIn { return_to }) => {
            axum::response::Redirect::to(&Refused::sign_in_url(&return_to)).into_response()
        }
        Err(e) => chrome.error_page(e.status(), e.message()),
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(user: &UiUser) -> Markup {
    maud::html! { input type="hidden" name="csrf" value=(user.csrf); }
}

/// A static asset (cached for a year: the bytes are part of the binary).
pub fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// No randomness for a key.
#[derive(Debug, thiserror::Error)]
#[error("no randomness for the CSRF key")]
pub struct NoRandomness;

/// A UI's CSRF key: HMAC-SHA256 of the session's `jti` under a key made at
/// start (per process and per UI; never stored), so a token is bound to one
/// session and one UI, and a restart invalidates every form in flight.
pub struct Csrf(Option<aws_lc_rs::hmac::Key>);

impl Csrf {
    /// A fresh random key.
    pub fn new() -> Result<Self, NoRandomness> {
        use aws_lc_rs::rand::SecureRandom;
        let mut k = zeroize::Zeroizing::new([0_u8; 32]);
        aws_lc_rs::rand::SystemRandom::new()
            .fill(k.as_mut_slice())
            .map_err(|_| NoRandomness)?;
        Ok(Self(Some(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            k.as_slice(),
        ))))
    }

    /// No key: no token verifies (what a UI falls back to without randomness).
    pub fn refusing() -> Self {
        Self(None)
    }

    /// A fresh key, else (logged) one that refuses every form.
    pub fn new_or_refusing(ui: &str) -> Self {
        Self::new().unwrap_or_else(|e| {
            tracing::error!(error = %e, ui, "no CSRF key: the web UI refuses every form");
            Self::refusing()
        })
    }

    /// The CSRF token of the session `jti`.
    pub fn token(&self, jti: &str) -> String {
        self.0
            .as_ref()
            .map(|k| B64.encode(aws_lc_rs::hmac::sign(k, jti.as_bytes())))
            .unwrap_or_default()
    }

    /// Whether `token` is the CSRF token of the session `jti`.
    pub fn verify(&self, jti: &str, token: &str) -> bool {
        let Some(key) = &self.0 else {
            return false;
        };
        B64.decode(token)
            .is_ok_and(|t| aws_lc_rs::hmac::verify(key, jti.as_bytes(), &t).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_the_session_and_the_key() {
        let a = Csrf::new().expect("key");
        let b = Csrf::new().expect("key");
        let t = a.token("jti-1");
        assert!(a.verify("jti-1", &t));
        assert!(!a.verify("jti-2", &t), "another session");
        assert!(!b.verify("jti-1", &t), "another process");
        assert!(!a.verify("jti-1", "not base64!"));
        let none = Csrf::refusing();
        assert!(!none.verify("jti-1", &none.token("jti-1")));
    }

    #[test]
    fn cookies() {
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
        assert_eq!(pct("/ui/crypt/?a=b c"), "%2Fui%2Fcrypt%2F%3Fa%3Db%20c");
    }
}
