//! `mcctl login`, `logout` and `whoami`: the saved token's life.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::bail;
use mc_proto::iam::v1 as pb;
use serde::Serialize;

use super::client::{
    PasswordSource, authed, channel, read_secret, refused, save_token, saved_token, token_path,
};
use super::role_names;
use crate::endpoints::Endpoints;
use crate::output::{Out, utc};

#[derive(Serialize)]
struct LoginView {
    token_file: String,
    account_id: String,
    expires_at_unix: i64,
}

#[derive(Serialize)]
struct WhoamiView {
    account_id: String,
    username: String,
    account_type: String,
    roles: Vec<String>,
    tags: Vec<String>,
    expires_at_unix: i64,
}

fn ask_username() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("--username is required when stdin is not a terminal");
    }
    print!("username: ");
    std::io::stdout().flush()?;
    let mut u = String::new();
    std::io::stdin().lock().read_line(&mut u)?;
    Ok(u.trim().to_owned())
}

pub(crate) async fn login(
    endpoints: &Endpoints,
    out: Out,
    username: Option<String>,
    service: String,
    password: PasswordSource,
) -> anyhow::Result<()> {
    let username = match username {
        Some(u) => u,
        None => ask_username()?,
    };
    let password = password.one("password: ")?;
    let mut client = pb::auth_client::AuthClient::new(channel(endpoints).await?);
    let mut request = pb::LoginRequest {
        username,
        password,
        service_name: service,
        ..Default::default()
    };
    let s = loop {
        let reply = client
            .login(request.clone())
            .await
            .map_err(|s| anyhow::anyhow!("{}", s.message()))?
            .into_inner();
        match reply.result {
            Some(pb::login_response::Result::Session(s)) => break s,
            Some(pb::login_response::Result::TotpRequired(challenge))
                if request.totp_nonce.is_empty() =>
            {
                // Second step: the nonce stands in for the password.
                request.totp_code = read_secret("TOTP code: ")?;
                request.totp_nonce = challenge.nonce;
                request.password.clear();
            }
            _ => bail!("login did not complete"),
        }
    };
    let path = save_token(endpoints, &s.token)?;
    let line = format!(
        "logged in; token saved to {} (expires at {})",
        path.display(),
        utc(s.expires_at_unix)
    );
    let view = LoginView {
        token_file: path.display().to_string(),
        account_id: s.account_id,
        expires_at_unix: s.expires_at_unix,
    };
    out.done(&view, &line)
}

pub(crate) async fn logout(endpoints: &Endpoints, out: Out) -> anyhow::Result<()> {
    let (ch, bearer) = authed(endpoints).await?;
    pb::auth_client::AuthClient::with_interceptor(ch, bearer)
        .logout(pb::LogoutRequest {})
        .await
        .map_err(refused)?;
    let _ = std::fs::remove_file(token_path(endpoints));
    out.done(&serde_json::json!({ "logged_out": true }), "logged out")
}

pub(crate) async fn whoami(endpoints: &Endpoints, out: Out) -> anyhow::Result<()> {
    let token = saved_token(endpoints)?;
    let mut client = pb::auth_client::AuthClient::new(channel(endpoints).await?);
    let v = client
        .validate(pb::ValidateRequest { token })
        .await
        .map_err(refused)?
        .into_inner();
    if !v.valid {
        bail!("the saved token is no longer valid: run `mcctl login`");
    }
    let view = WhoamiView {
        roles: role_names(&v.roles),
        account_type: crate::enums::name_or::<pb::AccountType>(v.account_type, "?"),
        account_id: v.account_id,
        username: v.username,
        tags: v.tags,
        expires_at_unix: v.expires_at_unix,
    };
    let line = format!(
        "{} ({}) roles={} expires_at={}",
        view.username,
        view.account_id,
        view.roles.join(","),
        utc(view.expires_at_unix)
    );
    out.done(&view, &line)
}

/// `mcctl iam password`: change your own password (current, then new).
pub(super) async fn change_password(
    ch: tonic::transport::Channel,
    bearer: super::client::Bearer,
    out: Out,
    source: PasswordSource,
) -> anyhow::Result<()> {
    let prompts: &[&str] = if source.password_stdin
        || source.password_file.is_some()
        || !std::io::stdin().is_terminal()
    {
        &["current password: ", "new password: "]
    } else {
        &[
            "current password: ",
            "new password: ",
            "new password again: ",
        ]
    };
    let mut v = source.read(prompts)?.into_iter();
    let (Some(current_password), Some(new_password)) = (v.next(), v.next()) else {
        bail!("two passwords are needed: the current one, then the new one");
    };
    if let Some(again) = v.next()
        && again != new_password
    {
        bail!("the new passwords do not match; nothing was changed");
    }
    pb::auth_client::AuthClient::with_interceptor(ch, bearer)
        .change_password(pb::ChangePasswordRequest {
            current_password,
            new_password,
        })
        .await
        .map_err(refused)?;
    out.done(
        &serde_json::json!({ "password_changed": true }),
        "password changed",
    )
}
