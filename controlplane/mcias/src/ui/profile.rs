//! The signed-in user's own page: change password, TOTP enrolment, and
//! passkeys (register, remove).

use super::*;

#[derive(Deserialize)]
pub(super) struct PasskeyBeginJson {
    password: String,
}

pub(super) async fn passkey_begin(
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
pub(super) struct PasskeyFinishJson {
    challenge_id: String,
    credential: serde_json::Value,
    #[serde(default)]
    name: String,
}

pub(super) async fn passkey_finish(
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

#[derive(Deserialize)]
pub(super) struct RemoveForm {
    #[serde(default)]
    password: String,
}

pub(super) async fn passkey_remove(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    Path(id): Path<String>,
    f: Result<Form<RemoveForm>, FormRejection>,
) -> Response {
    let password = f.map(|Form(f)| f.password).unwrap_or_default();
    let r = iam.remove_passkey(&u.caller(), "", &id, &password).await;
    outcome(&u, "Passkeys", r, |()| {
        html! { p.ok #note { "Passkey removed. " a href="/ui/" { "Back to the profile" } } }
    })
}

pub(super) async fn profile(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
) -> Response {
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
                             (csrf(&u))
                             input name="password" type="password" placeholder="Current password" aria-label="Current password" required;
                             button type="submit" { "Remove" } } } }
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
pub(super) struct PasswordForm {
    old_password: String,
    new_password: String,
}

pub(super) async fn change_password(
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
pub(super) struct SecretForm {
    password: String,
}

pub(super) async fn totp_enroll(
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
pub(super) struct CodeForm {
    code: String,
}

pub(super) async fn totp_confirm(
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
