//! Metacrypt's web UI under `/ui/crypt/` (maud pages, htmx for the policy
//! explain tester), on `mc_service::ui`: the MCIAS session cookie, the same
//! guard (sign-in redirect, admin pages, same-origin and CSRF checks on
//! every POST) with Metacrypt's own CSRF key, the strict CSP and headers.
//!
//! Invariants: pages call `core/` only, the same operations as the REST
//! handlers, with the session's principal as the caller, so the barrier and
//! policy apply to the UI exactly as to the API (sealed is a 503 notice,
//! a refused path a 403 page). Pages under `/ui/crypt/admin/` (init, unseal,
//! seal, mounts, policy) need the admin role, as the `sys` API does. Every
//! value is escaped by maud; a secret's value is shown only in answer to a
//! CSRF-checked POST and never cached (`no-store` on every page).
//!
//! `sys` has the status, init, unseal, seal and mounts pages, `kv` the KV
//! browser, `keys` the transit keys (metadata only), `ssh` the SSH CA
//! (read-only), `policy` the rules, `audit` the audit log and `slots` the
//! slot changes and root key rekey (admin), `user` the user engine (own
//! key, encrypt to an account, decrypt).

mod audit;
mod keys;
mod kv;
mod policy;
mod slots;
mod ssh;
mod sys;
#[cfg(test)]
mod tests;
mod user;

use std::sync::Arc;

use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use mc_service::ui::{Chrome, Csrf, UiUser, asset, csrf_field};

use crate::core::Metacrypt;
use crate::error::CryptError;

/// Every UI route (all `Public` in the method map: [`guard`] checks the session).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/ui/crypt/"),
    ("GET", "/ui/crypt/assets/htmx.min.js"),
    ("GET", "/ui/crypt/assets/style.css"),
    ("POST", "/ui/crypt/admin/init"),
    ("POST", "/ui/crypt/admin/unseal"),
    ("POST", "/ui/crypt/admin/seal"),
    ("GET", "/ui/crypt/admin/mounts"),
    ("POST", "/ui/crypt/admin/mounts"),
    ("POST", "/ui/crypt/admin/mounts/{name}/delete"),
    ("POST", "/ui/crypt/admin/mounts/{name}/rotate-dek"),
    ("GET", "/ui/crypt/admin/policy"),
    ("POST", "/ui/crypt/admin/policy"),
    ("GET", "/ui/crypt/admin/policy/{id}"),
    ("POST", "/ui/crypt/admin/policy/{id}"),
    ("POST", "/ui/crypt/admin/policy/{id}/delete"),
    ("POST", "/ui/crypt/admin/explain"),
    ("GET", "/ui/crypt/admin/audit"),
    ("GET", "/ui/crypt/admin/slots"),
    ("POST", "/ui/crypt/admin/slots/passphrase"),
    ("POST", "/ui/crypt/admin/slots/reshare"),
    ("POST", "/ui/crypt/admin/slots/remove"),
    ("POST", "/ui/crypt/admin/slots/rekey"),
    ("GET", "/ui/crypt/keys"),
    ("GET", "/ui/crypt/keys/{mount}"),
    ("GET", "/ui/crypt/keys/{mount}/{name}"),
    ("GET", "/ui/crypt/ssh"),
    ("GET", "/ui/crypt/ssh/{mount}"),
    ("GET", "/ui/crypt/kv"),
    ("GET", "/ui/crypt/kv/{mount}"),
    ("POST", "/ui/crypt/kv/{mount}/read"),
    ("POST", "/ui/crypt/kv/{mount}/write"),
    ("POST", "/ui/crypt/kv/{mount}/delete"),
    ("POST", "/ui/crypt/kv/{mount}/undelete"),
    ("POST", "/ui/crypt/kv/{mount}/destroy"),
    ("GET", "/ui/crypt/user"),
    ("GET", "/ui/crypt/user/{mount}"),
    ("POST", "/ui/crypt/user/{mount}/init"),
    ("POST", "/ui/crypt/user/{mount}/rotate"),
    ("POST", "/ui/crypt/user/{mount}/encrypt"),
    ("POST", "/ui/crypt/user/{mount}/decrypt"),
];

#[derive(Clone)]
struct Ui {
    m: Arc<Metacrypt>,
    csrf: Arc<Csrf>,
}

/// The session checks of `mc_service::ui`, with Metacrypt's CSRF key and
/// MCIAS's verifier (no verifier: nobody is signed in).
async fn guard(State(ui): State<Ui>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/ui/crypt/assets/") {
        return next.run(req).await;
    }
    let admin = req.uri().path().starts_with("/ui/crypt/admin/");
    let verifier = ui.m.ui_verifier.get().cloned();
    mc_service::ui::guard(req, next, verifier, &ui.csrf, admin, &CHROME).await
}

/// The UI routes, behind [`guard`]; the CSRF key is made here, once per router.
pub fn router(m: Arc<Metacrypt>) -> Router {
    router_with(m, Arc::new(Csrf::new_or_refusing("metacrypt")))
}

fn router_with(m: Arc<Metacrypt>, csrf: Arc<Csrf>) -> Router {
    let ui = Ui { m, csrf };
    Router::new()
        .route("/ui/crypt/", get(sys::status))
        .route(
            "/ui/crypt/assets/htmx.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", mc_service::ui::HTMX) }),
        )
        .route(
            "/ui/crypt/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", mc_service::ui::STYLE) }),
        )
        .route("/ui/crypt/admin/init", post(sys::init))
        .route("/ui/crypt/admin/unseal", post(sys::unseal))
        .route("/ui/crypt/admin/seal", post(sys::seal))
        .route(
            "/ui/crypt/admin/mounts",
            get(sys::mounts).post(sys::create_mount),
        )
        .route(
            "/ui/crypt/admin/mounts/{name}/delete",
            post(sys::delete_mount),
        )
        .route(
            "/ui/crypt/admin/mounts/{name}/rotate-dek",
            post(sys::rotate_dek),
        )
        .route(
            "/ui/crypt/admin/policy",
            get(policy::list).post(policy::create),
        )
        .route(
            "/ui/crypt/admin/policy/{id}",
            get(policy::edit).post(policy::update),
        )
        .route("/ui/crypt/admin/policy/{id}/delete", post(policy::delete))
        .route("/ui/crypt/admin/explain", post(policy::explain))
        .route("/ui/crypt/admin/audit", get(audit::list))
        .route("/ui/crypt/admin/slots", get(slots::list))
        .route(
            "/ui/crypt/admin/slots/passphrase",
            post(slots::change_passphrase),
        )
        .route("/ui/crypt/admin/slots/reshare", post(slots::reshare))
        .route("/ui/crypt/admin/slots/remove", post(slots::remove))
        .route("/ui/crypt/admin/slots/rekey", post(slots::rekey))
        .route("/ui/crypt/keys", get(keys::index))
        .route("/ui/crypt/keys/{mount}", get(keys::list))
        .route("/ui/crypt/keys/{mount}/{name}", get(keys::show))
        .route("/ui/crypt/ssh", get(ssh::index))
        .route("/ui/crypt/ssh/{mount}", get(ssh::show))
        .route("/ui/crypt/kv", get(kv::index))
        .route("/ui/crypt/kv/{mount}", get(kv::browse))
        .route("/ui/crypt/kv/{mount}/read", post(kv::read))
        .route("/ui/crypt/kv/{mount}/write", post(kv::write))
        .route("/ui/crypt/kv/{mount}/delete", post(kv::delete))
        .route("/ui/crypt/kv/{mount}/undelete", post(kv::undelete))
        .route("/ui/crypt/kv/{mount}/destroy", post(kv::destroy))
        .route("/ui/crypt/user", get(user::index))
        .route("/ui/crypt/user/{mount}", get(user::show))
        .route("/ui/crypt/user/{mount}/init", post(user::init))
        .route("/ui/crypt/user/{mount}/rotate", post(user::rotate))
        .route("/ui/crypt/user/{mount}/encrypt", post(user::encrypt))
        .route("/ui/crypt/user/{mount}/decrypt", post(user::decrypt))
        .layer(axum::middleware::from_fn_with_state(ui.clone(), guard))
        .with_state(ui)
}

const CHROME: Chrome = Chrome {
    product: "Metacrypt",
    assets: "/ui/crypt/assets",
    nav: &[
        ("Status", "/ui/crypt/", false),
        ("Mounts", "/ui/crypt/admin/mounts", true),
        ("Policy", "/ui/crypt/admin/policy", true),
        ("Slots", "/ui/crypt/admin/slots", true),
        ("Audit", "/ui/crypt/admin/audit", true),
        ("Transit keys", "/ui/crypt/keys", false),
        ("KV", "/ui/crypt/kv", false),
        ("SSH CA", "/ui/crypt/ssh", false),
        ("User encryption", "/ui/crypt/user", false),
    ],
};

/// A full page for a signed-in user.
fn page(user: &UiUser, title: &str, status: StatusCode, content: Markup) -> Response {
    CHROME.page(user, title, status, content)
}

/// A core error as a page: sealed is a 503 notice pointing at the unseal
/// form, a policy refusal a 403 page, anything else the error's own status.
fn failure(user: &UiUser, title: &str, e: &CryptError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match status {
        StatusCode::SERVICE_UNAVAILABLE => html! {
            p.error #sealed { "Metacrypt is sealed: nothing can be read or written until it is unsealed." }
            @if user.principal.is_admin() { p { a href="/ui/crypt/" { "Unseal it" } } }
        },
        StatusCode::FORBIDDEN => html! {
            p.error #forbidden { "403 Forbidden: " (e.to_string()) }
            p { "No policy rule gives " b { (user.principal.username) } " this access; an administrator can add one." }
        },
        _ => html! { p.error #error { (e.to_string()) } },
    };
    let title = if status == StatusCode::FORBIDDEN {
        "Forbidden"
    } else {
        title
    };
    page(user, title, status, body)
}

/// An operation's outcome as a page: `ok` on success, [`failure`] otherwise.
fn outcome<T>(
    user: &UiUser,
    title: &str,
    r: Result<T, CryptError>,
    ok: impl FnOnce(T) -> Markup,
) -> Response {
    match r {
        Ok(v) => page(user, title, StatusCode::OK, ok(v)),
        Err(e) => failure(user, title, &e),
    }
}

/// A form body; a malformed one is a 400 page (and changes nothing).
struct UiForm<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for UiForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match Form::<T>::from_request(req, state).await {
            Ok(Form(v)) => Ok(Self(v)),
            Err(e) => Err(CHROME.error_page(StatusCode::BAD_REQUEST, &e.body_text())),
        }
    }
}

/// A comma- or space-separated form field as a list.
fn list(s: &str) -> Vec<String> {
    s.split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Unix seconds as RFC 3339 (0: never).
fn time(t: i64) -> String {
    if t == 0 {
        "-".to_owned()
    } else {
        mc_kit::clock::rfc3339(t)
    }
}

/// `?mount=` of the engine index pages.
#[derive(serde::Deserialize)]
struct Open {
    #[serde(default)]
    mount: String,
}

/// An engine's index page: the form to open a mount by name (admins also
/// see a list of the mounts of `kind`); with `?mount=` it goes there.
fn mount_index(ui: &Ui, user: &UiUser, q: Open, kind: &str, title: &str) -> Response {
    let base = match kind {
        "kv" | "ssh" | "user" => kind,
        _ => "keys",
    };
    if !q.mount.is_empty() {
        let to = format!("/ui/crypt/{base}/{}", mc_service::ui::pct(&q.mount));
        return Redirect::to(&to).into_response();
    }
    let mounts = if user.principal.is_admin() {
        ui.m.list_mounts().unwrap_or_default()
    } else {
        Vec::new()
    };
    page(
        user,
        title,
        StatusCode::OK,
        html! {
            ul #mounts {
                @for m in mounts.iter().filter(|m| m.kind == kind) {
                    li { a href=(format!("/ui/crypt/{base}/{}", m.name)) { (m.name) } }
                }
            }
            form.box #open method="get" action=(format!("/ui/crypt/{base}")) {
                label { "Mount" input name="mount" required; }
                button type="submit" { "Open" }
            }
        },
    )
}
