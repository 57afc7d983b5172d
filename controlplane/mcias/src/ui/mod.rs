//! The server-rendered web UI under `/ui/` (maud templates, htmx for the
//! policy tester), and the login page SSO sends browsers to.
//!
//! The browser session is an ordinary MCIAS session token in the cookie
//! `mc_session` (`HttpOnly; Secure; SameSite=Strict; Path=/`); logout
//! revokes it. [`guard`] is the one place that resolves the session
//! (pages redirect to the login page without one), refuses non-admins on
//! `/ui/admin/…` and checks the CSRF token of every POST: an HMAC of the
//! session's `jti` under a per-process key, sent as the form field `csrf`
//! or the header `X-CSRF-Token`. The login forms come before any session
//! and are the only POSTs without it.

mod csrf;

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

use crate::core::sso::ClientInput;
use crate::core::{Caller, LoginInput, Mcias, NewAccount};
use crate::error::IamError;
use crate::policy::{Effect, Rule};

pub const COOKIE: &str = "mc_session";
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

/// The session token from the `mc_session` cookie.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn with_headers(status: StatusCode, markup: Markup) -> Response {
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

fn head(title: &str, csrf: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            @if !csrf.is_empty() { meta name="csrf-token" content=(csrf); }
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false}"#;
            title { (title) " · MCIAS" }
            link rel="stylesheet" href="/ui/assets/style.css";
            script src="/ui/assets/htmx.min.js" {}
            script src="/ui/assets/passkey.js" defer {}
        }
    }
}

/// A full page for a signed-in user.
fn page(user: &UiUser, title: &str, status: StatusCode, content: Markup) -> Response {
    let admin = user.principal.is_admin();
    with_headers(
        status,
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, &user.csrf))
                body hx-headers=(format!(r#"{{"X-CSRF-Token":"{}"}}"#, user.csrf)) {
                    header {
                        strong { "MCIAS" }
                        a href="/ui/" { "Profile" }
                        @if admin {
                            a href="/ui/admin/accounts" { "Accounts" }
                            a href="/ui/admin/policy" { "Policy" }
                            a href="/ui/admin/tester" { "Policy tester" }
                            a href="/ui/admin/sso" { "SSO clients" }
                            a href="/ui/admin/audit" { "Audit" }
                        }
                        form method="post" action="/ui/logout" {
                            (csrf(user))
                            span { "Signed in as " b #whoami { (user.principal.username) } " " }
                            button type="submit" { "Log out" }
                        }
                    }
                    main { h1 { (title) } (content) }
                }
            }
        },
    )
}

fn csrf(user: &UiUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.csrf); }
}

/// A bare page (no session): errors and the login forms.
fn bare(title: &str, status: StatusCode, content: Markup) -> Response {
    with_headers(
        status,
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, ""))
                body { main { h1 { (title) } (content) } }
            }
        },
    )
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    bare("Error", status, html! { p.error #error { (message) } })
}

/// Only local paths are followed after login.
fn safe_return(r: &str) -> &str {
    if r.starts_with('/') && !r.starts_with("//") && !r.starts_with("/\\") && r.len() <= 4096 {
        r
    } else {
        "/ui/"
    }
}

/// Loads `to` again from this origin (see `oidc::authorize`).
pub fn reload_page(to: &str) -> Response {
    with_headers(
        StatusCode::OK,
        html! {
            (DOCTYPE)
            html lang="en" {
                head { meta http-equiv="refresh" content=(format!("0;url={}", safe_return(to))); }
                body { a href=(safe_return(to)) { "Continue" } }
            }
        },
    )
}

pub fn login_page(return_to: &str, error: Option<(StatusCode, &str)>) -> Response {
    let (status, message) = error.unwrap_or((StatusCode::OK, ""));
    bare(
        "Sign in",
        status,
        html! {
            @if !message.is_empty() { p.error #error { (message) } }
            form.box method="post" action="/ui/login" {
                input type="hidden" name="return_to" value=(safe_return(return_to));
                label { "Username" input name="username" autocomplete="username" required autofocus; }
                label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" #login { "Sign in" }
            }
            (passkey_login_button())
        },
    )
}

fn passkey_login_button() -> Markup {
    html! {
        p { button type="button" #passkey-login { "Sign in with a passkey" } }
        p.error #passkey-error {}
    }
}

/// After a right password, for an account whose second factor is a passkey.
fn passkey_page(username: &str, return_to: &str) -> Response {
    bare(
        "Second factor",
        StatusCode::UNAUTHORIZED,
        html! {
            p #passkey-required { "This account signs in with its passkey." }
            input type="hidden" name="username" value=(username);
            input type="hidden" name="return_to" value=(safe_return(return_to));
            (passkey_login_button())
        },
    )
}

fn totp_page(username: &str, nonce: &str, return_to: &str, error: Option<&str>) -> Response {
    bare(
        "Second factor",
        if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        html! {
            @if let Some(e) = error { p.error #error { (e) } }
            form.box method="post" action="/ui/login/totp" {
                input type="hidden" name="username" value=(username);
                input type="hidden" name="nonce" value=(nonce);
                input type="hidden" name="return_to" value=(safe_return(return_to));
                label { "Authenticator code" input name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus; }
                button type="submit" #verify { "Verify" }
            }
        },
    )
}

fn session_cookie_header(token: &str) -> String {
    format!("{COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/")
}

fn signed_in(token: &str, return_to: &str) -> Response {
    let mut r = Redirect::to(safe_return(return_to)).into_response();
    if let Ok(v) = HeaderValue::from_str(&session_cookie_header(token)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
struct ReturnQuery {
    #[serde(default)]
    return_to: String,
}

async fn login_form(Query(q): Query<ReturnQuery>) -> Response {
    login_page(&q.return_to, None)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    nonce: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    return_to: String,
}

fn source(s: Option<Extension<SourceAddr>>) -> Option<std::net::IpAddr> {
    s.map(|Extension(SourceAddr(ip))| ip)
}

async fn login(
    State(iam): State<Arc<Mcias>>,
    s: Option<Extension<SourceAddr>>,
    f: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = f else {
        return login_page("/ui/", Some((StatusCode::BAD_REQUEST, "bad form")));
    };
    let caller = Caller {
        principal: None,
        source: source(s),
    };
    let second = !f.nonce.is_empty();
    let input = LoginInput {
        username: f.username.clone(),
        password: f.password.clone(),
        totp_code: second.then(|| f.code.clone()),
        totp_nonce: second.then(|| f.nonce.clone()),
        service_name: None,
        tags: Vec::new(),
    };
    let result = iam.login(&caller, input).await;
    match result {
        Ok(session) => signed_in(&session.token, &f.return_to),
        Err(IamError::TotpRequired { nonce, .. }) => {
            totp_page(&f.username, &nonce, &f.return_to, None)
        }
        Err(IamError::PasskeyRequired) => passkey_page(&f.username, &f.return_to),
        Err(e) if second => {
            // A used nonce cannot be retried: back to the password.
            login_page(&f.return_to, Some((e.status(), &e.to_string())))
        }
        Err(e) => login_page(&f.return_to, Some((e.status(), &e.to_string()))),
    }
}

/// The one place UI sessions, admin pages and CSRF tokens are checked.
pub async fn guard(
    State((iam, csrf)): State<(Arc<Mcias>, Arc<Csrf>)>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
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
    if req.method() == Method::POST {
        let header_token = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
            return error_page(StatusCode::PAYLOAD_TOO_LARGE, "form too large");
        };
        let form_token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .ok()
            .and_then(|v| v.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v));
        let ok = header_token
            .or(form_token)
            .is_some_and(|t| csrf.verify(&user.principal.jti, &t));
        if !ok {
            return error_page(StatusCode::FORBIDDEN, "missing or wrong CSRF token");
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(user);
    next.run(req).await
}

async fn logout(State(iam): State<Arc<Mcias>>, Extension(u): Extension<UiUser>) -> Response {
    if let Err(e) = iam.logout(&u.caller()) {
        return error_page(e.status(), &e.to_string());
    }
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "mc_session=; Max-Age=0; HttpOnly; Secure; SameSite=Strict; Path=/",
        ),
    );
    r
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

#[derive(Deserialize)]
struct PasskeyLoginJson {
    challenge_id: String,
    credential: serde_json::Value,
    #[serde(default)]
    return_to: String,
}

/// The end of a passkey sign-in from the login page: sets the session cookie.
async fn login_passkey(
    State(iam): State<Arc<Mcias>>,
    s: Option<Extension<SourceAddr>>,
    b: Result<axum::Json<PasskeyLoginJson>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let b = match b {
        Ok(axum::Json(b)) => b,
        Err(e) => return IamError::invalid("body", e.body_text()).into_response(),
    };
    let caller = Caller {
        principal: None,
        source: source(s),
    };
    match iam.finish_passkey_login(&caller, &b.challenge_id, &b.credential.to_string()) {
        Ok(session) => {
            let mut r = axum::Json(serde_json::json!({"redirect": safe_return(&b.return_to)}))
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&session_cookie_header(&session.token)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct PasskeyBeginJson {
    password: String,
}

async fn passkey_begin(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    b: Result<axum::Json<PasskeyBeginJson>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(axum::Json(b)) = b else {
        return IamError::invalid("body", "expected {\"password\"}").into_response();
    };
    let c = u.caller();
    match iam.begin_passkey_registration(&c, &b.password).await {
        Ok((id, options)) => {
            axum::Json(serde_json::json!({"challenge_id": id, "options": options})).into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct PasskeyFinishJson {
    challenge_id: String,
    credential: serde_json::Value,
    #[serde(default)]
    name: String,
}

async fn passkey_finish(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    b: Result<axum::Json<PasskeyFinishJson>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let b = match b {
        Ok(axum::Json(b)) => b,
        Err(e) => return IamError::invalid("body", e.body_text()).into_response(),
    };
    match iam.finish_passkey_registration(
        &u.caller(),
        &b.challenge_id,
        &b.credential.to_string(),
        &b.name,
    ) {
        Ok(k) => (StatusCode::CREATED, axum::Json(serde_json::json!(k))).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn passkey_remove(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    Path(id): Path<String>,
) -> Response {
    let r = iam.remove_passkey(&u.caller(), "", &id);
    outcome(&u, "Passkeys", r, |()| {
        html! { p.ok #note { "Passkey removed. " a href="/ui/" { "Back to the profile" } } }
    })
}

fn asset(kind: &'static str, body: &'static str) -> Response {
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

/// An operation's outcome as a page: `ok` on success, the error otherwise.
fn outcome<T>(
    user: &UiUser,
    title: &str,
    r: Result<T, IamError>,
    ok: impl FnOnce(T) -> Markup,
) -> Response {
    match r {
        Ok(v) => page(user, title, StatusCode::OK, ok(v)),
        Err(e) => page(
            user,
            title,
            e.status(),
            html! { p.error #error { (e.to_string()) } },
        ),
    }
}

/// A form body; a malformed one is a 400 page (and changes nothing).
struct UiForm<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for UiForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match Form::<T>::from_request(req, state).await {
            Ok(Form(v)) => Ok(Self(v)),
            Err(e) => Err(error_page(StatusCode::BAD_REQUEST, &e.body_text())),
        }
    }
}

fn list(s: &str) -> Vec<String> {
    s.split([',', ' '])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------- profile

async fn profile(State(iam): State<Arc<Mcias>>, Extension(u): Extension<UiUser>) -> Response {
    let account = iam
        .account(&u.principal.account_id)
        .and_then(|a| Ok((iam.list_passkeys(&u.caller(), "")?, a)));
    outcome(&u, "Profile", account, |(keys, a)| {
        html! {
            table {
                tr { th { "Username" } td #username { (a.username) } }
                tr { th { "Roles" } td { (a.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")) } }
                tr { th { "Tags" } td { (a.tags.join(", ")) } }
                tr { th { "TOTP" } td #totp-status { @if a.totp_enabled { "enabled" } @else { "off" } } }
            }
            h2 { "Change password" }
            form.box method="post" action="/ui/password" {
                (csrf(&u))
                label { "Current password" input name="old_password" type="password" required; }
                label { "New password" input name="new_password" type="password" required; }
                button type="submit" { "Change password" }
            }
            h2 { "Passkeys" }
            table #passkeys {
                tr { th { "Name" } th { "Created (unix)" } th { "Last used" } th {} }
                @for k in &keys {
                    tr { td.name { (k.name) } td { (k.created_at) } td { (k.last_used) }
                         td { form method="post" action=(format!("/ui/passkeys/{}/remove", k.id)) {
                             (csrf(&u)) button type="submit" { "Remove" } } } }
                }
            }
            div.box {
                label { "Password" input name="passkey_password" type="password"; }
                label { "Name" input name="passkey_name" value="passkey"; }
                button type="button" #passkey-add { "Add a passkey" }
                p.error #passkey-error {}
            }
            @if !a.totp_enabled {
                h2 { "Authenticator app (TOTP)" }
                form.box method="post" action="/ui/totp/enroll" {
                    (csrf(&u))
                    label { "Password" input name="password" type="password" required; }
                    button type="submit" #totp-enroll { "Set up TOTP" }
                }
            }
        }
    })
}

#[derive(Deserialize)]
struct PasswordForm {
    old_password: String,
    new_password: String,
}

async fn change_password(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    UiForm(f): UiForm<PasswordForm>,
) -> Response {
    let c = u.caller();
    let r = iam
        .change_password(&c, &f.old_password, &f.new_password)
        .await;
    outcome(&u, "Change password", r, |()| {
        html! { p.ok { "Password changed. Every earlier session is revoked: " a href="/ui/login" { "sign in again" } "." } }
    })
}

#[derive(Deserialize)]
struct SecretForm {
    password: String,
}

async fn totp_enroll(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    UiForm(f): UiForm<SecretForm>,
) -> Response {
    let c = u.caller();
    let r = iam.totp_enroll(&c, &f.password).await;
    outcome(&u, "Set up TOTP", r, |(secret, url)| {
        html! {
            p { "Add this to your authenticator app, then confirm with a current code." }
            table {
                tr { th { "Secret" } td { code #totp-secret { (secret) } } }
                tr { th { "otpauth URI" } td { code #totp-uri { (url) } } }
            }
            form.box method="post" action="/ui/totp/confirm" {
                (csrf(&u))
                label { "Code" input name="code" inputmode="numeric" required; }
                button type="submit" #totp-confirm { "Confirm" }
            }
        }
    })
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
}

async fn totp_confirm(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    UiForm(f): UiForm<CodeForm>,
) -> Response {
    let r = iam.totp_confirm(&u.caller(), &f.code);
    outcome(&u, "Set up TOTP", r, |()| {
        html! { p.ok #totp-done { "TOTP is on: sign-ins now ask for a code." } }
    })
}

// ---------------------------------------------------------------- accounts

fn accounts_table(iam: &Mcias, u: &UiUser) -> Result<Markup, IamError> {
    let accounts = iam.list_accounts()?;
    Ok(html! {
        table #accounts {
            tr { th { "Username" } th { "Type" } th { "Status" } th { "Roles" } th { "TOTP" } th { "Actions" } }
            @for a in &accounts {
                tr data-username=(a.username) {
                    td { (a.username) }
                    td { (a.account_type.as_str()) }
                    td.status { (a.status.as_str()) }
                    td { (a.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")) }
                    td { @if a.totp_enabled { "yes" } @else { "no" } }
                    td {
                        form method="post" action=(format!("/ui/admin/accounts/{}/status", a.id)) {
                            (csrf(u))
                            @if a.status.as_str() == "active" {
                                input type="hidden" name="status" value="disabled";
                                button type="submit" { "Disable" }
                            } @else {
                                input type="hidden" name="status" value="active";
                                button type="submit" { "Enable" }
                            }
                        }
                        form method="post" action=(format!("/ui/admin/accounts/{}/roles", a.id)) {
                            (csrf(u))
                            input name="roles" size="12" value=(a.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(","));
                            button type="submit" { "Set roles" }
                        }
                    }
                }
            }
        }
    })
}

fn accounts_page(iam: &Mcias, u: &UiUser, status: StatusCode, note: Markup) -> Response {
    match accounts_table(iam, u) {
        Ok(table) => page(
            u,
            "Accounts",
            status,
            html! {
                (note)
                (table)
                h2 { "Create an account" }
                form.box method="post" action="/ui/admin/accounts" #create-account {
                    (csrf(u))
                    label { "Username" input name="username" required; }
                    label { "Type" select name="type" { option value="human" { "human" } option value="system" { "system" } } }
                    label { "Password (humans)" input name="password" type="password"; }
                    label { "Roles" select name="role" {
                        option value="user" { "user" } option value="admin" { "admin" }
                        option value="guest" { "guest" } option value="" { "(none)" } } }
                    label { "Tags (comma-separated)" input name="tags"; }
                    button type="submit" { "Create" }
                }
            },
        ),
        Err(e) => error_page(e.status(), &e.to_string()),
    }
}

async fn accounts(State(iam): State<Arc<Mcias>>, Extension(u): Extension<UiUser>) -> Response {
    accounts_page(&iam, &u, StatusCode::OK, html! {})
}

#[derive(Deserialize)]
struct CreateAccountForm {
    username: String,
    #[serde(default, rename = "type")]
    account_type: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    tags: String,
}

fn note<T>(r: &Result<T, IamError>, ok: &str) -> (StatusCode, Markup) {
    match r {
        Ok(_) => (StatusCode::OK, html! { p.ok #note { (ok) } }),
        Err(e) => (e.status(), html! { p.error #error { (e.to_string()) } }),
    }
}

async fn create_account(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    UiForm(f): UiForm<CreateAccountForm>,
) -> Response {
    let input = NewAccount {
        username: f.username.clone(),
        account_type: f.account_type,
        password: f.password,
        roles: list(&f.role),
        tags: list(&f.tags),
    };
    let c = u.caller();
    let r = iam.create_account(&c, input).await;
    let (status, n) = note(&r, &format!("Created account {}", f.username));
    accounts_page(&iam, &u, status, n)
}

#[derive(Deserialize)]
struct StatusForm {
    status: String,
}

async fn account_status(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    Path(id): Path<String>,
    UiForm(f): UiForm<StatusForm>,
) -> Response {
    let r = iam.set_status(&u.caller(), &id, &f.status);
    let (status, n) = note(&r, "Status changed");
    accounts_page(&iam, &u, status, n)
}

#[derive(Deserialize)]
struct RolesForm {
    #[serde(default)]
    roles: String,
}

async fn account_roles(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    Path(id): Path<String>,
    UiForm(f): UiForm<RolesForm>,
) -> Response {
    let r = iam.set_roles(&u.caller(), &id, &list(&f.roles));
    let (status, n) = note(&r, "Roles changed");
    accounts_page(&iam, &u, status, n)
}

// ------------------------------------------------------------------ policy

fn policy_page(iam: &Mcias, u: &UiUser, status: StatusCode, note: Markup) -> Response {
    let rules = match iam.rules() {
        Ok(r) => r,
        Err(e) => return error_page(e.status(), &e.to_string()),
    };
    let j = |v: &[String]| v.join(", ");
    page(
        u,
        "Policy rules",
        status,
        html! {
            (note)
            table #rules {
                tr { th { "Priority" } th { "Effect" } th { "Description" } th { "Roles" } th { "Services" } th { "Tags" } th { "Actions" } th {} }
                @for r in &rules {
                    tr {
                        td { (r.priority) }
                        td { (if r.effect == Effect::Allow { "allow" } else { "deny" }) }
                        td { (r.description) }
                        td { (r.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")) }
                        td { (j(&r.service_names)) }
                        td { (j(&r.required_tags)) }
                        td { (j(&r.actions)) }
                        td { form method="post" action=(format!("/ui/admin/policy/{}/delete", r.id)) {
                            (csrf(u)) button type="submit" { "Delete" } } }
                    }
                }
            }
            h2 { "Add a rule" }
            form.box method="post" action="/ui/admin/policy" #create-rule {
                (csrf(u))
                label { "Priority" input name="priority" type="number" value="100" required; }
                label { "Effect" select name="effect" { option value="deny" { "deny" } option value="allow" { "allow" } } }
                label { "Description" input name="description"; }
                label { "Roles (comma-separated)" input name="roles"; }
                label { "Service names" input name="service_names"; }
                label { "Required tags" input name="required_tags"; }
                label { "Actions" input name="actions" value="auth:login"; }
                button type="submit" { "Add rule" }
            }
        },
    )
}

async fn policy(State(iam): State<Arc<Mcias>>, Extension(u): Extension<UiUser>) -> Response {
    policy_page(&iam, &u, StatusCode::OK, html! {})
}

#[derive(Deserialize)]
struct RuleForm {
    priority: i32,
    effect: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    roles: String,
    #[serde(default)]
    service_names: String,
    #[serde(default)]
    required_tags: String,
    #[serde(default)]
    actions: String,
}

async fn create_rule(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    UiForm(f): UiForm<RuleForm>,
) -> Response {
    let rule = (|| -> Result<Rule, IamError> {
        Ok(Rule {
            id: String::new(),
            priority: f.priority,
            effect: match f.effect.as_str() {
                "allow" => Effect::Allow,
                "deny" => Effect::Deny,
                _ => return Err(IamError::invalid("effect", "allow or deny")),
            },
            description: f.description.clone(),
            roles: list(&f.roles)
                .iter()
                .map(|r| crate::model::Role::parse(r))
                .collect::<Result<_, _>>()?,
            account_types: vec![],
            account_ids: vec![],
            service_names: list(&f.service_names),
            required_tags: list(&f.required_tags),
            actions: list(&f.actions),
            not_before: 0,
            expires_at: 0,
            enabled: true,
        })
    })();
    let r = rule.and_then(|rule| iam.create_rule(&u.caller(), rule, false));
    let (status, n) = note(&r, "Rule added");
    policy_page(&iam, &u, status, n)
}

async fn delete_rule(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    Path(id): Path<String>,
) -> Response {
    let r = iam.delete_rule(&u.caller(), &id);
    let (status, n) = note(&r, "Rule deleted");
    policy_page(&iam, &u, status, n)
}

// ------------------------------------------------------------ policy tester

async fn tester(Extension(u): Extension<UiUser>) -> Response {
    page(
        &u,
        "Policy tester",
        StatusCode::OK,
        html! {
            form.box hx-post="/ui/admin/tester" hx-target="#result" method="post" action="/ui/admin/tester" #tester {
                (csrf(&u))
                label { "Account (username or id)" input name="account" required; }
                label { "Service name" input name="service_name"; }
                label { "Tags (comma-separated)" input name="tags"; }
                label { "Action" input name="action" value="auth:login"; }
                button type="submit" #explain { "Explain" }
            }
            div #result {}
        },
    )
}

#[derive(Deserialize)]
struct TesterForm {
    account: String,
    #[serde(default)]
    service_name: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    action: String,
}

async fn tester_run(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    headers: HeaderMap,
    UiForm(f): UiForm<TesterForm>,
) -> Response {
    let r = iam.explain(
        &f.account,
        &f.service_name,
        &list(&f.tags),
        &f.action,
        0,
        None,
    );
    let (status, fragment) = match r {
        Ok(d) => (
            StatusCode::OK,
            html! {
                div data-service=(f.service_name) {
                p #decision { (if d.effect == Effect::Allow { "ALLOW" } else { "DENY" }) }
                p { "Deciding rule: " code #rule { (if d.rule_id.is_empty() { "default deny" } else { d.rule_id.as_str() }) } }
                table {
                    tr { th { "Rule" } th { "Priority" } th { "Effect" } th { "Matched" } th { "First mismatch" } }
                    @for t in &d.trace {
                        tr { td { (t.rule_id) } td { (t.priority) }
                             td { (if t.effect == Effect::Allow { "allow" } else { "deny" }) }
                             td { (t.matched) } td { (t.mismatch) } }
                    }
                }
                }
            },
        ),
        Err(e) => (e.status(), html! { p.error #error { (e.to_string()) } }),
    };
    if headers.contains_key("hx-request") {
        // htmx swaps 2xx only: errors are shown with 200 in the fragment.
        return with_headers(StatusCode::OK, fragment);
    }
    page(&u, "Policy tester", status, fragment)
}

// -------------------------------------------------------------- SSO clients

fn sso_page(iam: &Mcias, u: &UiUser, status: StatusCode, note: Markup) -> Response {
    let clients = match iam.sso_clients() {
        Ok(c) => c,
        Err(e) => return error_page(e.status(), &e.to_string()),
    };
    page(
        u,
        "SSO clients",
        status,
        html! {
            (note)
            table #clients {
                tr { th { "Client id" } th { "Name" } th { "Redirect URIs" } th { "Tags" } th { "id_token alg" } th { "Enabled" } th {} }
                @for c in &clients {
                    tr {
                        td { (c.client_id) } td { (c.name) } td { (c.redirect_uris.join(" ")) }
                        td { (c.tags.join(", ")) } td { (c.id_token_signed_response_alg) } td { (c.enabled) }
                        td { form method="post" action=(format!("/ui/admin/sso/{}/delete", c.client_id)) {
                            (csrf(u)) button type="submit" { "Delete" } } }
                    }
                }
            }
            h2 { "Register a client" }
            form.box method="post" action="/ui/admin/sso" {
                (csrf(u))
                label { "Client id (empty: generated)" input name="client_id"; }
                label { "Name" input name="name"; }
                label { "Redirect URIs (space-separated, exact)" input name="redirect_uris" required size="50"; }
                label { "Tags" input name="tags"; }
                label { "id_token algorithm" select name="alg" { option value="RS256" { "RS256" } option value="EdDSA" { "EdDSA" } } }
                button type="submit" { "Register" }
            }
        },
    )
}

async fn sso(State(iam): State<Arc<Mcias>>, Extension(u): Extension<UiUser>) -> Response {
    sso_page(&iam, &u, StatusCode::OK, html! {})
}

#[derive(Deserialize)]
struct ClientForm {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    alg: String,
}

async fn sso_create(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    UiForm(f): UiForm<ClientForm>,
) -> Response {
    let input = ClientInput {
        client_id: f.client_id,
        name: f.name,
        redirect_uris: list(&f.redirect_uris),
        tags: list(&f.tags),
        enabled: Some(true),
        id_token_signed_response_alg: f.alg,
    };
    let (status, n) = match iam.create_sso_client(&u.caller(), input) {
        Ok((c, secret)) => (
            StatusCode::OK,
            html! { p.ok #note { "Registered " (c.client_id) ". Its secret, shown once: " code #client-secret { (secret) } } },
        ),
        Err(e) => (e.status(), html! { p.error #error { (e.to_string()) } }),
    };
    sso_page(&iam, &u, status, n)
}

async fn sso_delete(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    Path(id): Path<String>,
) -> Response {
    let r = iam.delete_sso_client(&u.caller(), &id);
    let (status, n) = note(&r, "Client deleted");
    sso_page(&iam, &u, status, n)
}

// ------------------------------------------------------------------- audit

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    page: usize,
}

async fn audit(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let p = q.page.min(1000 / AUDIT_PAGE);
    let r = iam.audit_log(1000, "", "");
    outcome(&u, "Audit log", r, |events| {
        let shown: Vec<_> = events
            .iter()
            .skip(p * AUDIT_PAGE)
            .take(AUDIT_PAGE)
            .collect();
        let more = events.len() > (p + 1) * AUDIT_PAGE;
        html! {
            table #audit {
                tr { th { "#" } th { "At (unix)" } th { "Actor" } th { "Action" } th { "Target" } th { "Source" } th { "Result" } th { "Detail" } }
                @for e in &shown {
                    tr { td { (e.seq) } td { (e.at) } td { (e.actor) } td { (e.action) } td { (e.target) }
                         td { (e.source_ip) } td { (e.result) } td { (e.detail) } }
                }
            }
            p {
                @if p > 0 { a href=(format!("/ui/admin/audit?page={}", p - 1)) { "← newer" } " " }
                @if more { a href=(format!("/ui/admin/audit?page={}", p + 1)) { "older →" } }
            }
        }
    })
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
        assert_eq!(session_cookie(&h), Some("tok"));
        assert_eq!(
            safe_return("/oauth2/authorize?x=1"),
            "/oauth2/authorize?x=1"
        );
        for bad in ["https://evil", "//evil", "/\\evil", ""] {
            assert_eq!(safe_return(bad), "/ui/");
        }
        assert!(session_cookie_header("t").contains("HttpOnly; Secure; SameSite=Strict; Path=/"));
    }
}
