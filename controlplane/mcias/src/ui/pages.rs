//! The page frame and the shared pieces of every UI page: security headers
//! (CSP, no-store, nosniff, no-referrer), the layout with the CSRF token,
//! the bare pages before a session (errors, login, second factor), form
//! parsing and how an operation's outcome is shown.

use super::*;

pub(super) fn head(title: &str, csrf: &str) -> Markup {
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
pub(super) fn page(user: &UiUser, title: &str, status: StatusCode, content: Markup) -> Response {
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

pub(super) fn csrf(user: &UiUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.csrf); }
}

/// A bare page (no session): errors and the login forms.
pub(super) fn bare(title: &str, status: StatusCode, content: Markup) -> Response {
    bare_with(title, status, "", content)
}

fn bare_with(title: &str, status: StatusCode, csrf: &str, content: Markup) -> Response {
    with_headers(
        status,
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, csrf))
                body { main { h1 { (title) } (content) } }
            }
        },
    )
}

/// A sign-in page: `content` gets a fresh login token (the form field
/// `csrf`, also the page's `csrf-token` for the passkey script), and the
/// response sets it as the `__Host-mc_login` cookie (double submit: a
/// cross-site page can neither read nor set that cookie).
fn sign_in_page(title: &str, status: StatusCode, content: impl FnOnce(&str) -> Markup) -> Response {
    let token = crate::core::random_token(18).unwrap_or_default();
    let mut r = bare_with(title, status, &token, content(&token));
    let cookie = format!("{LOGIN_COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    bare("Error", status, html! { p.error #error { (message) } })
}

/// Only local paths are followed after login: anything else is `/ui/`.
/// See [`local_path`].
pub(super) fn safe_return(r: &str) -> String {
    local_path(r).unwrap_or_else(|| "/ui/".to_owned())
}

/// `r` as a path on this origin, or `None`.
///
/// Browsers strip tabs and newlines from URLs and read `\` as `/`, so
/// `/\t/evil` or `/\\evil` lands on another host: control characters and
/// backslashes are refused anywhere, also once or twice percent-decoded
/// (`%09`, `%5c`), as is a path that starts with `//` before or after
/// decoding (`%2f%2f`). What is left is resolved against an origin and must
/// stay on it; the answer is the resolved path and query (so `/..//evil`
/// cannot become `//evil`), never `r` itself.
pub(super) fn local_path(r: &str) -> Option<String> {
    use webauthn_rs::prelude::Url;
    const BASE: &str = "https://origin.invalid/";
    if r.len() > 4096 || !r.starts_with('/') {
        return None;
    }
    let mut layer = r.to_owned();
    for _ in 0..3 {
        let path = layer.split(['?', '#']).next().unwrap_or_default();
        if layer.chars().any(|c| c.is_control() || c == '\\') || path.starts_with("//") {
            return None;
        }
        let next = pct_decode(&layer);
        if next == layer {
            break;
        }
        layer = next;
    }
    let base = Url::parse(BASE).ok()?;
    let url = base.join(r).ok()?;
    if url.origin() != base.origin() {
        return None;
    }
    let path = url.path();
    if !path.starts_with('/') || path.starts_with("//") || path.contains('\\') {
        return None;
    }
    Some(match url.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    })
}

/// One round of percent-decoding (invalid escapes stay as they are).
fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
    sign_in_page("Sign in", status, |token| {
        html! {
            @if !message.is_empty() { p.error #error { (message) } }
            form.box method="post" action="/ui/login" {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="return_to" value=(safe_return(return_to));
                label { "Username" input name="username" autocomplete="username" required autofocus; }
                label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" #login { "Sign in" }
            }
            (passkey_login_button())
        }
    })
}

pub(super) fn passkey_login_button() -> Markup {
    html! {
        p { button type="button" #passkey-login { "Sign in with a passkey" } }
        p.error #passkey-error {}
    }
}

/// After a right password, for an account whose second factor is a passkey.
pub(super) fn passkey_page(username: &str, return_to: &str) -> Response {
    sign_in_page("Second factor", StatusCode::UNAUTHORIZED, |_| {
        html! {
            p #passkey-required { "This account signs in with its passkey." }
            input type="hidden" name="username" value=(username);
            input type="hidden" name="return_to" value=(safe_return(return_to));
            (passkey_login_button())
        }
    })
}

pub(super) fn totp_page(
    username: &str,
    nonce: &str,
    return_to: &str,
    error: Option<&str>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    sign_in_page("Second factor", status, |token| {
        html! {
            @if let Some(e) = error { p.error #error { (e) } }
            form.box method="post" action="/ui/login/totp" {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="username" value=(username);
                input type="hidden" name="nonce" value=(nonce);
                input type="hidden" name="return_to" value=(safe_return(return_to));
                label { "Authenticator code" input name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus; }
                button type="submit" #verify { "Verify" }
            }
        }
    })
}

/// An operation's outcome as a page: `ok` on success, the error otherwise.
pub(super) fn outcome<T>(
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
pub(super) struct UiForm<T>(pub(super) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for UiForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match Form::<T>::from_request(req, state).await {
            Ok(Form(v)) => Ok(Self(v)),
            Err(e) => Err(error_page(StatusCode::BAD_REQUEST, &e.body_text())),
        }
    }
}

pub(super) fn list(s: &str) -> Vec<String> {
    s.split([',', ' '])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------- profile

pub(super) fn note<T>(r: &Result<T, IamError>, ok: &str) -> (StatusCode, Markup) {
    match r {
        Ok(_) => (StatusCode::OK, html! { p.ok #note { (ok) } }),
        Err(e) => (e.status(), html! { p.error #error { (e.to_string()) } }),
    }
}
