//! `mcctl login|logout|whoami` and `mcctl iam …`: MCIAS over gRPC, one
//! module per command group.
//!
//! `mcctl login` keeps the token in `mcctl-token` beside the endpoints file
//! (0600); `$MC_TOKEN` overrides it. Every command answers through
//! [`Out`](crate::output::Out), so `--json` works for all of them.

mod accounts;
mod audit;
pub(crate) mod client;
mod passkeys;
mod policy;
mod session;
mod sso;
mod tokens;

use clap::Subcommand;
use mc_proto::iam::v1 as pb;

pub(crate) use session::{login, logout, whoami};

use crate::endpoints::Endpoints;
use crate::enums::{name_or, parse_i32};
use crate::output::Out;

#[derive(Subcommand)]
pub(crate) enum IamCommand {
    /// Accounts.
    #[command(subcommand)]
    Accounts(accounts::AccountCommand),
    /// Tokens for system accounts, and revocation.
    #[command(subcommand)]
    Tokens(tokens::TokenCommand),
    /// Login policy rules and the policy tester.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// The audit log, newest first.
    Audit(audit::AuditArgs),
    /// Rotate the token signing key (old tokens stay valid until they expire).
    RotateKey,
    /// SSO (OAuth 2.0 / OpenID Connect) clients.
    #[command(subcommand)]
    Sso(sso::SsoCommand),
    /// Passkeys (WebAuthn): yours, or another account's as admin.
    #[command(subcommand)]
    Passkeys(passkeys::PasskeyCommand),
    /// Change your own password: the current one, then the new one (asked on
    /// the terminal, or two lines of --password-stdin / --password-file).
    Password(client::PasswordSource),
}

/// Roles as the CLI prints them (`?` for a number it does not know).
pub(crate) fn role_names(roles: &[i32]) -> Vec<String> {
    roles.iter().map(|r| name_or::<pb::Role>(*r, "?")).collect()
}

/// `--role` values (any case) as proto roles; an unknown one is an error.
pub(crate) fn role_args(roles: &[String]) -> anyhow::Result<Vec<i32>> {
    roles.iter().map(|r| parse_i32::<pb::Role>(r)).collect()
}

pub(crate) async fn run(endpoints: &Endpoints, out: Out, cmd: IamCommand) -> anyhow::Result<()> {
    let (ch, b) = client::authed(endpoints).await?;
    match cmd {
        IamCommand::Accounts(cmd) => {
            let mut c = pb::accounts_client::AccountsClient::with_interceptor(ch, b);
            accounts::run(&mut c, out, cmd).await
        }
        IamCommand::Tokens(cmd) => {
            let mut c = pb::tokens_client::TokensClient::with_interceptor(ch, b);
            tokens::run(&mut c, out, cmd).await
        }
        IamCommand::RotateKey => {
            let mut c = pb::tokens_client::TokensClient::with_interceptor(ch, b);
            tokens::rotate_key(&mut c, out).await
        }
        IamCommand::Policy(cmd) => {
            let mut c = pb::policy_client::PolicyClient::with_interceptor(ch, b);
            policy::run(&mut c, out, cmd).await
        }
        IamCommand::Audit(args) => {
            let mut c = pb::audit_client::AuditClient::with_interceptor(ch, b);
            audit::run(&mut c, out, args).await
        }
        IamCommand::Sso(cmd) => {
            let mut c = pb::sso_clients_client::SsoClientsClient::with_interceptor(ch, b);
            sso::run(&mut c, out, cmd).await
        }
        IamCommand::Passkeys(cmd) => {
            let mut c = pb::mfa_client::MfaClient::with_interceptor(ch, b);
            passkeys::run(&mut c, out, cmd).await
        }
        IamCommand::Password(source) => session::change_password(ch, b, out, source).await,
    }
}
