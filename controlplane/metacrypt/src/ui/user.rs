//! The user engine's page (`/ui/crypt/user/<mount>`): the session's own key
//! (public halves and versions only; no page ever holds a private key),
//! creating and rotating it, encrypting text to another account and
//! decrypting a message addressed to the session's account (the plaintext
//! only in answer to a CSRF-checked POST). Each action is the core call
//! the REST handler makes, as the session's principal, so policy and the
//! recipient rule apply.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use maud::{Markup, html};
use mc_service::ui::UiUser;
use serde::Deserialize;

use super::{Ui, UiForm, csrf_field, failure, page, time};
use crate::core::{UserDecrypt, UserEncrypt, UserKeyInfo};

/// `GET /ui/crypt/user[?mount=…]`.
pub(super) async fn index(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Query(q): Query<super::Open>,
) -> Response {
    super::mount_index(&ui, &user, q, "user", "User encryption")
}

fn key_view(k: &UserKeyInfo) -> Markup {
    html! {
        table #own-key {
            tr { th { "Account" } td { (k.username) " (" (k.account_id) ")" } }
            tr { th { "Latest version" } td #latest { (k.latest_version) } }
        }
        table #versions {
            tr { th { "Version" } th { "Public key (X25519)" } th { "Created" } }
            @for v in &k.versions {
                tr { td { (v.version) } td { code { (v.public_key) } } td { (time(v.created_at)) } }
            }
        }
    }
}

fn forms(user: &UiUser, mount: &str, has_key: bool) -> Markup {
    let to = |a: &str| format!("/ui/crypt/user/{mount}/{a}");
    html! {
        @if has_key {
            form #rotate method="post" action=(to("rotate")) {
                (csrf_field(user)) button type="submit" { "Rotate my key" }
            }
        } @else {
            p #no-key { "You have no key in this mount yet: others cannot encrypt to you." }
            form #init method="post" action=(to("init")) {
                (csrf_field(user)) button type="submit" { "Create my key" }
            }
        }
        h2 { "Encrypt to an account" }
        form.box #encrypt method="post" action=(to("encrypt")) {
            (csrf_field(user))
            label { "Account (username or id)" input name="to" required; }
            label { "Message" textarea name="plaintext" rows="4" required {} }
            button type="submit" { "Encrypt" }
        }
        h2 { "Decrypt a message to me" }
        form.box #decrypt method="post" action=(to("decrypt")) {
            (csrf_field(user))
            label { "Ciphertext (mcuser:v1:…)" textarea name="ciphertext" rows="4" required {} }
            button type="submit" { "Decrypt" }
        }
    }
}

/// The page: the own key (or none) and the forms, with `note` on top.
fn user_page(ui: &Ui, user: &UiUser, mount: &str, status: StatusCode, note: Markup) -> Response {
    let title = format!("User encryption: {mount}");
    let key = match ui.m.user_own_key(&user.caller(), mount) {
        Ok(k) => Some(k),
        Err(crate::error::CryptError::NotFound(_)) => None,
        Err(e) => return failure(user, &title, &e),
    };
    page(
        user,
        &title,
        status,
        html! {
            (note)
            @if let Some(k) = &key { (key_view(k)) }
            (forms(user, mount, key.is_some()))
        },
    )
}

/// `GET /ui/crypt/user/<mount>`.
pub(super) async fn show(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(mount): Path<String>,
) -> Response {
    user_page(&ui, &user, &mount, StatusCode::OK, html! {})
}

/// `POST …/init` and `…/rotate`.
pub(super) async fn init(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(mount): Path<String>,
) -> Response {
    match ui.m.user_init_key(&user.caller(), &mount) {
        Ok(_) => user_page(
            &ui,
            &user,
            &mount,
            StatusCode::OK,
            html! { p.ok #note { "Your key is ready." } },
        ),
        Err(e) => failure(&user, "User encryption", &e),
    }
}

pub(super) async fn rotate(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(mount): Path<String>,
) -> Response {
    match ui.m.user_rotate_key(&user.caller(), &mount) {
        Ok(k) => {
            let note = html! { p.ok #note { "Rotated to version " (k.latest_version) "; older messages still decrypt." } };
            user_page(&ui, &user, &mount, StatusCode::OK, note)
        }
        Err(e) => failure(&user, "User encryption", &e),
    }
}

#[derive(Deserialize)]
pub(super) struct EncryptForm {
    #[serde(default)]
    to: String,
    #[serde(default)]
    plaintext: String,
}

pub(super) async fn encrypt(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(mount): Path<String>,
    UiForm(f): UiForm<EncryptForm>,
) -> Response {
    let input = UserEncrypt {
        to: f.to.trim().to_owned(),
        plaintext: STANDARD.encode(f.plaintext.as_bytes()),
    };
    match ui.m.user_encrypt(&user.caller(), &mount, &input) {
        Ok(out) => {
            let note = html! {
                p.ok #note { "Encrypted to " (out.recipient_username) " (key version " (out.key_version) "): only they can decrypt it." }
                pre #ciphertext { (out.ciphertext) }
            };
            user_page(&ui, &user, &mount, StatusCode::OK, note)
        }
        Err(e) => failure(&user, "User encryption", &e),
    }
}

#[derive(Deserialize)]
pub(super) struct DecryptForm {
    #[serde(default)]
    ciphertext: String,
}

pub(super) async fn decrypt(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(mount): Path<String>,
    UiForm(f): UiForm<DecryptForm>,
) -> Response {
    let input = UserDecrypt {
        ciphertext: f.ciphertext.trim().to_owned(),
    };
    match ui.m.user_decrypt(&user.caller(), &mount, &input) {
        Ok(out) => {
            let bytes = STANDARD.decode(&out.plaintext).unwrap_or_default();
            let note = html! {
                p.ok #note { "From " b #sender { (out.sender_username) } ":" }
                pre #plaintext { (String::from_utf8_lossy(&bytes)) }
            };
            user_page(&ui, &user, &mount, StatusCode::OK, note)
        }
        Err(e) => failure(&user, "User encryption", &e),
    }
}
