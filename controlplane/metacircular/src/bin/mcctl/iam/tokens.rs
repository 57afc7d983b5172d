//! `mcctl iam tokens …` and `mcctl iam rotate-key`.

use anyhow::bail;
use clap::Subcommand;
use mc_proto::iam::v1 as pb;
use pb::tokens_client::TokensClient;
use serde::Serialize;

use super::client::{Authed, refused};
use super::role_names;
use crate::output::{Col, Out, Table, row, utc};

type Client = TokensClient<Authed>;

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Issue a token for a system account (printed once).
    Issue {
        account: String,
        /// e.g. `90d` (default: the server's system token TTL).
        #[arg(long, value_parser = parse_secs)]
        ttl: Option<u32>,
        #[arg(long, default_value = "")]
        description: String,
        /// Narrow the token to a scope (repeatable), e.g. `mcr:push:repo/*`
        /// or `dns:write:zone`; it can never add to the account's rights.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
    },
    List {
        #[arg(long, default_value = "")]
        account: String,
    },
    Revoke {
        jti: String,
    },
}

fn parse_secs(s: &str) -> Result<u32, String> {
    let d: mc_kit::config::Duration = s.parse()?;
    u32::try_from(d.get().as_secs()).map_err(|_| format!("`{s}` is too long"))
}

#[derive(Serialize)]
struct IssuedView {
    token: String,
    account_id: String,
    roles: Vec<String>,
    expires_at_unix: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes: Vec<String>,
}

#[derive(Serialize)]
struct TokenView {
    jti: String,
    account_id: String,
    issued_at_unix: i64,
    expires_at_unix: i64,
    description: String,
    service_name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes: Vec<String>,
}

const TABLE: Table = Table(&[
    Col::left("JTI", 36),
    Col::left("ACCOUNT", 36),
    Col::left("EXPIRES", 20),
    Col::left("DESCRIPTION", 0),
]);

pub(super) async fn run(c: &mut Client, out: Out, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Issue {
            account,
            ttl,
            description,
            scopes,
        } => {
            let request = pb::IssueSystemTokenRequest {
                account_id: account,
                ttl_seconds: ttl.unwrap_or(0),
                description,
                scopes,
            };
            issue(c, out, request).await
        }
        TokenCommand::List { account } => list(c, out, account).await,
        TokenCommand::Revoke { jti } => revoke(c, out, jti).await,
    }
}

async fn issue(
    c: &mut Client,
    out: Out,
    request: pb::IssueSystemTokenRequest,
) -> anyhow::Result<()> {
    // The token carries them in its signed claims; the reply does not repeat them.
    let scopes = request.scopes.clone();
    let s = c
        .issue_system_token(request)
        .await
        .map_err(refused)?
        .into_inner();
    let view = IssuedView {
        roles: role_names(&s.roles),
        token: s.token,
        account_id: s.account_id,
        expires_at_unix: s.expires_at_unix,
        scopes,
    };
    out.show(&view, || {
        eprintln!(
            "token (shown once; expires at {}):",
            utc(view.expires_at_unix)
        );
        println!("{}", view.token);
    })
}

async fn list(c: &mut Client, out: Out, account: String) -> anyhow::Result<()> {
    let tokens: Vec<TokenView> = c
        .list_tokens(pb::ListTokensRequest {
            account_id: account,
        })
        .await
        .map_err(refused)?
        .into_inner()
        .tokens
        .into_iter()
        .map(|t| TokenView {
            jti: t.jti,
            account_id: t.account_id,
            issued_at_unix: t.issued_at_unix,
            expires_at_unix: t.expires_at_unix,
            description: t.description,
            service_name: t.service_name,
            scopes: t.scopes,
        })
        .collect();
    out.show(&tokens, || {
        TABLE.print(
            tokens
                .iter()
                .map(|t| row![t.jti, t.account_id, utc(t.expires_at_unix), t.description]),
        );
    })
}

async fn revoke(c: &mut Client, out: Out, jti: String) -> anyhow::Result<()> {
    let r = c
        .revoke_token(pb::RevokeTokenRequest { jti: jti.clone() })
        .await
        .map_err(refused)?
        .into_inner();
    if !r.revoked {
        bail!("no active token {jti}");
    }
    out.done(
        &serde_json::json!({ "revoked": jti }),
        &format!("revoked {jti}"),
    )
}

/// `mcctl iam rotate-key`.
pub(super) async fn rotate_key(c: &mut Client, out: Out) -> anyhow::Result<()> {
    let r = c
        .rotate_signing_key(pb::RotateSigningKeyRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    out.done(
        &serde_json::json!({ "kid": r.kid }),
        &format!("new signing key {}", r.kid),
    )
}
