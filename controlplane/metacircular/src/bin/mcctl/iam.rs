//! `mcctl login|logout|whoami` and `mcctl iam …`: MCIAS over gRPC (TLS,
//! verified against the platform CA from the endpoints file).
//!
//! `mcctl login` keeps the token in `mcctl-token` beside the endpoints file
//! (0600); `$MC_TOKEN` overrides it.

use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use mc_proto::iam::v1 as pb;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::endpoints::Endpoints;

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum EffectArg {
    Allow,
    Deny,
}

#[derive(Subcommand)]
pub(crate) enum IamCommand {
    /// Accounts.
    #[command(subcommand)]
    Accounts(AccountCommand),
    /// Tokens for system accounts, and revocation.
    #[command(subcommand)]
    Tokens(TokenCommand),
    /// Login policy rules and the policy tester.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The audit log, newest first.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Action prefix, e.g. `auth.login`.
        #[arg(long, default_value = "")]
        action: String,
    },
    /// Rotate the token signing key (old tokens stay valid until they expire).
    RotateKey,
    /// SSO (OAuth 2.0 / OpenID Connect) clients.
    #[command(subcommand)]
    Sso(SsoCommand),
    /// Passkeys (WebAuthn): yours, or another account's as admin.
    #[command(subcommand)]
    Passkeys(PasskeyCommand),
}

#[derive(Subcommand)]
pub(crate) enum PasskeyCommand {
    List {
        /// Username or id (default: you).
        #[arg(long, default_value = "")]
        account: String,
    },
    Remove {
        id: String,
        #[arg(long, default_value = "")]
        account: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum IdTokenAlg {
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "EdDSA")]
    EdDsa,
}

/// The fields of a client, for create and update.
#[derive(clap::Args)]
pub(crate) struct SsoClientArgs {
    /// Client id (also the `service_name` login policy sees).
    client_id: String,
    /// Exact redirect URI (repeatable): https, or http on a loopback host.
    #[arg(long = "redirect-uri", required = true)]
    redirect_uris: Vec<String>,
    #[arg(long, default_value = "")]
    name: String,
    /// Tag passed to login policy with every login through this client (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    #[arg(long, value_enum, default_value = "RS256")]
    id_token_alg: IdTokenAlg,
    #[arg(long)]
    disabled: bool,
}

impl SsoClientArgs {
    fn into_pb(self) -> pb::SsoClient {
        pb::SsoClient {
            client_id: self.client_id,
            name: self.name,
            redirect_uris: self.redirect_uris,
            tags: self.tags,
            enabled: !self.disabled,
            id_token_signed_response_alg: match self.id_token_alg {
                IdTokenAlg::Rs256 => "RS256",
                IdTokenAlg::EdDsa => "EdDSA",
            }
            .to_owned(),
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum SsoCommand {
    List,
    /// Register a client; prints its secret once.
    Create(SsoClientArgs),
    /// Replace a client's settings (its secret stays).
    Update(SsoClientArgs),
    Delete {
        client_id: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum AccountCommand {
    List,
    /// Create an account; a human account's password is read from the terminal (or stdin).
    Create {
        username: String,
        /// A system account (no password, no roles; issue it tokens).
        #[arg(long)]
        system: bool,
        /// admin, user or guest; repeat for several.
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    Get {
        account: String,
    },
    Disable {
        account: String,
    },
    Enable {
        account: String,
    },
    Delete {
        account: String,
    },
    /// Replace the account's roles.
    Roles {
        account: String,
        roles: Vec<String>,
    },
    /// Replace the account's tags.
    Tags {
        account: String,
        tags: Vec<String>,
    },
}

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
    },
    List {
        #[arg(long, default_value = "")]
        account: String,
    },
    Revoke {
        jti: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    List,
    /// Add a rule. Empty match fields are wildcards.
    Add {
        #[arg(long, value_enum)]
        effect: EffectArg,
        /// Lower runs first.
        #[arg(long)]
        priority: i32,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long = "service")]
        services: Vec<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long = "action")]
        actions: Vec<String>,
        #[arg(long = "account")]
        accounts: Vec<String>,
        #[arg(long = "system-accounts")]
        system_only: bool,
    },
    Remove {
        id: String,
    },
    /// Which rule decides a login for ACCOUNT to SERVICE with TAGS, and why.
    Explain {
        account: String,
        #[arg(long, default_value = "")]
        service: String,
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long, default_value = "auth:login")]
        action: String,
    },
}

fn parse_secs(s: &str) -> Result<u32, String> {
    let d: mc_kit::config::Duration = s.parse()?;
    u32::try_from(d.get().as_secs()).map_err(|_| format!("`{s}` is too long"))
}

fn token_path(endpoints: &Endpoints) -> PathBuf {
    endpoints.path.with_file_name("mcctl-token")
}

fn saved_token(endpoints: &Endpoints) -> anyhow::Result<String> {
    if let Ok(t) = std::env::var("MC_TOKEN")
        && !t.is_empty()
    {
        return Ok(t);
    }
    let path = token_path(endpoints);
    std::fs::read_to_string(&path)
        .map(|t| t.trim().to_owned())
        .map_err(|_| anyhow::anyhow!("not logged in: run `mcctl login` (or set MC_TOKEN)"))
}

fn save_token(endpoints: &Endpoints, token: &str) -> anyhow::Result<PathBuf> {
    let path = token_path(endpoints);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(token.as_bytes())?;
    Ok(path)
}

/// A password from the terminal without echo, or one line of stdin when piped.
fn read_secret(prompt: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt).context("reading the password");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn channel(endpoints: &Endpoints) -> anyhow::Result<Channel> {
    let url = endpoints
        .json
        .pointer("/controlplane/grpc")
        .and_then(|v| v.as_str())
        .context("endpoints file has no controlplane.grpc")?;
    let ca_path = endpoints
        .json
        .get("ca_cert")
        .and_then(|v| v.as_str())
        .context("endpoints file has no ca_cert")?;
    let ca = std::fs::read(ca_path).with_context(|| format!("reading {ca_path}"))?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    Endpoint::from_shared(url.to_owned())?
        .tls_config(tls)?
        .connect()
        .await
        .with_context(|| format!("cannot reach the control plane at {url}"))
}

type Authed = InterceptedService<Channel, Bearer>;

#[derive(Clone)]
pub(crate) struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            r.metadata_mut().insert("authorization", v.clone());
        }
        Ok(r)
    }
}

async fn authed(endpoints: &Endpoints) -> anyhow::Result<(Channel, Bearer)> {
    let token = saved_token(endpoints)?;
    let value = format!("Bearer {token}")
        .parse()
        .context("the saved token is not valid ASCII")?;
    Ok((channel(endpoints).await?, Bearer(Some(value))))
}

fn refused(s: tonic::Status) -> anyhow::Error {
    match s.code() {
        tonic::Code::Unauthenticated => {
            anyhow::anyhow!("{} (log in again with `mcctl login`)", s.message())
        }
        _ => anyhow::anyhow!("{}", s.message()),
    }
}

fn role_arg(r: &str) -> anyhow::Result<i32> {
    Ok(match r.to_ascii_lowercase().as_str() {
        "admin" => pb::Role::Admin,
        "user" => pb::Role::User,
        "guest" => pb::Role::Guest,
        other => bail!("unknown role `{other}` (admin, user or guest)"),
    } as i32)
}

fn role_name(r: i32) -> &'static str {
    match pb::Role::try_from(r) {
        Ok(pb::Role::Admin) => "admin",
        Ok(pb::Role::User) => "user",
        Ok(pb::Role::Guest) => "guest",
        _ => "?",
    }
}

fn print_account(a: &pb::Account) {
    let kind = if a.r#type == pb::AccountType::System as i32 {
        "system"
    } else {
        "human"
    };
    let status = match pb::AccountStatus::try_from(a.status) {
        Ok(pb::AccountStatus::Active) => "active",
        Ok(pb::AccountStatus::Disabled) => "disabled",
        _ => "deleted",
    };
    let roles: Vec<_> = a.roles.iter().map(|r| role_name(*r)).collect();
    println!(
        "{:<36} {:<20} {:<7} {:<9} {:<12} {}",
        a.id,
        a.username,
        kind,
        status,
        roles.join(","),
        a.tags.join(",")
    );
}

pub(crate) async fn login(
    endpoints: &Endpoints,
    username: Option<String>,
    service: String,
) -> anyhow::Result<()> {
    let username = match username {
        Some(u) => u,
        None if std::io::stdin().is_terminal() => {
            print!("username: ");
            std::io::stdout().flush()?;
            let mut u = String::new();
            std::io::stdin().lock().read_line(&mut u)?;
            u.trim().to_owned()
        }
        None => bail!("--username is required when stdin is not a terminal"),
    };
    let password = read_secret("password: ")?;
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
    println!(
        "logged in; token saved to {} (expires at {})",
        path.display(),
        s.expires_at_unix
    );
    Ok(())
}

pub(crate) async fn logout(endpoints: &Endpoints) -> anyhow::Result<()> {
    let (ch, bearer) = authed(endpoints).await?;
    pb::auth_client::AuthClient::with_interceptor(ch, bearer)
        .logout(pb::LogoutRequest {})
        .await
        .map_err(refused)?;
    let _ = std::fs::remove_file(token_path(endpoints));
    println!("logged out");
    Ok(())
}

pub(crate) async fn whoami(endpoints: &Endpoints) -> anyhow::Result<()> {
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
    let roles: Vec<_> = v.roles.iter().map(|r| role_name(*r)).collect();
    println!(
        "{} ({}) roles={} expires_at={}",
        v.username,
        v.account_id,
        roles.join(","),
        v.expires_at_unix
    );
    Ok(())
}

pub(crate) async fn run(endpoints: &Endpoints, cmd: IamCommand) -> anyhow::Result<()> {
    let (ch, b) = authed(endpoints).await?;
    match cmd {
        IamCommand::Accounts(cmd) => {
            let mut c: pb::accounts_client::AccountsClient<Authed> =
                pb::accounts_client::AccountsClient::with_interceptor(ch, b);
            let id_of = |a: &str| pb::GetAccountRequest {
                id: a.to_owned(),
                username: String::new(),
            };
            match cmd {
                AccountCommand::List => {
                    let list = c
                        .list_accounts(pb::ListAccountsRequest::default())
                        .await
                        .map_err(refused)?
                        .into_inner();
                    println!(
                        "{:<36} {:<20} {:<7} {:<9} {:<12} TAGS",
                        "ID", "USERNAME", "TYPE", "STATUS", "ROLES"
                    );
                    list.accounts.iter().for_each(print_account);
                }
                AccountCommand::Create {
                    username,
                    system,
                    roles,
                    tags,
                } => {
                    let password = if system {
                        String::new()
                    } else {
                        read_secret("password for the new account: ")?
                    };
                    let a = c
                        .create_account(pb::CreateAccountRequest {
                            username,
                            r#type: if system {
                                pb::AccountType::System
                            } else {
                                pb::AccountType::Human
                            } as i32,
                            password,
                            roles: roles
                                .iter()
                                .map(|r| role_arg(r))
                                .collect::<anyhow::Result<_>>()?,
                            tags,
                        })
                        .await
                        .map_err(refused)?
                        .into_inner();
                    print_account(&a);
                }
                AccountCommand::Get { account } => print_account(
                    &c.get_account(id_of(&account))
                        .await
                        .map_err(refused)?
                        .into_inner(),
                ),
                AccountCommand::Disable { account } => {
                    let a = c
                        .update_account(pb::UpdateAccountRequest {
                            id: account,
                            status: pb::AccountStatus::Disabled as i32,
                        })
                        .await
                        .map_err(refused)?;
                    print_account(a.get_ref());
                }
                AccountCommand::Enable { account } => {
                    let a = c
                        .update_account(pb::UpdateAccountRequest {
                            id: account,
                            status: pb::AccountStatus::Active as i32,
                        })
                        .await
                        .map_err(refused)?;
                    print_account(a.get_ref());
                }
                AccountCommand::Delete { account } => {
                    c.delete_account(pb::DeleteAccountRequest {
                        id: account.clone(),
                    })
                    .await
                    .map_err(refused)?;
                    println!("deleted {account}");
                }
                AccountCommand::Roles { account, roles } => {
                    let roles = roles
                        .iter()
                        .map(|r| role_arg(r))
                        .collect::<anyhow::Result<_>>()?;
                    print_account(
                        c.set_roles(pb::SetRolesRequest { id: account, roles })
                            .await
                            .map_err(refused)?
                            .get_ref(),
                    );
                }
                AccountCommand::Tags { account, tags } => {
                    print_account(
                        c.set_tags(pb::SetTagsRequest { id: account, tags })
                            .await
                            .map_err(refused)?
                            .get_ref(),
                    );
                }
            }
        }
        IamCommand::Tokens(cmd) => {
            let mut c = pb::tokens_client::TokensClient::with_interceptor(ch, b);
            match cmd {
                TokenCommand::Issue {
                    account,
                    ttl,
                    description,
                } => {
                    let s = c
                        .issue_system_token(pb::IssueSystemTokenRequest {
                            account_id: account,
                            ttl_seconds: ttl.unwrap_or(0),
                            description,
                            scopes: Vec::new(),
                        })
                        .await
                        .map_err(refused)?
                        .into_inner();
                    eprintln!("token (shown once; expires at {}):", s.expires_at_unix);
                    println!("{}", s.token);
                }
                TokenCommand::List { account } => {
                    let l = c
                        .list_tokens(pb::ListTokensRequest {
                            account_id: account,
                        })
                        .await
                        .map_err(refused)?
                        .into_inner();
                    println!(
                        "{:<36} {:<36} {:>12} DESCRIPTION",
                        "JTI", "ACCOUNT", "EXPIRES"
                    );
                    for t in l.tokens {
                        println!(
                            "{:<36} {:<36} {:>12} {}",
                            t.jti, t.account_id, t.expires_at_unix, t.description
                        );
                    }
                }
                TokenCommand::Revoke { jti } => {
                    let r = c
                        .revoke_token(pb::RevokeTokenRequest { jti: jti.clone() })
                        .await
                        .map_err(refused)?
                        .into_inner();
                    if !r.revoked {
                        bail!("no active token {jti}");
                    }
                    println!("revoked {jti}");
                }
            }
        }
        IamCommand::Policy(cmd) => {
            let mut c = pb::policy_client::PolicyClient::with_interceptor(ch, b);
            match cmd {
                PolicyCommand::List => {
                    let l = c
                        .list_rules(pb::ListRulesRequest {})
                        .await
                        .map_err(refused)?
                        .into_inner();
                    println!(
                        "{:<36} {:>8} {:<6} {:<7} DESCRIPTION",
                        "ID", "PRIORITY", "EFFECT", "ENABLED"
                    );
                    for r in l.rules {
                        let effect = if r.effect == pb::Effect::Allow as i32 {
                            "allow"
                        } else {
                            "deny"
                        };
                        println!(
                            "{:<36} {:>8} {:<6} {:<7} {}",
                            r.id, r.priority, effect, r.enabled, r.description
                        );
                    }
                }
                PolicyCommand::Add {
                    effect,
                    priority,
                    description,
                    roles,
                    services,
                    tags,
                    actions,
                    accounts,
                    system_only,
                } => {
                    let rule = pb::PolicyRule {
                        priority,
                        effect: match effect {
                            EffectArg::Allow => pb::Effect::Allow,
                            EffectArg::Deny => pb::Effect::Deny,
                        } as i32,
                        description,
                        roles: roles
                            .iter()
                            .map(|r| role_arg(r))
                            .collect::<anyhow::Result<_>>()?,
                        account_types: if system_only {
                            vec![pb::AccountType::System as i32]
                        } else {
                            vec![]
                        },
                        account_ids: accounts,
                        service_names: services,
                        required_tags: tags,
                        actions,
                        enabled: true,
                        ..Default::default()
                    };
                    let r = c
                        .create_rule(pb::CreateRuleRequest { rule: Some(rule) })
                        .await
                        .map_err(refused)?
                        .into_inner();
                    println!("added rule {}", r.id);
                }
                PolicyCommand::Remove { id } => {
                    c.delete_rule(pb::DeleteRuleRequest { id: id.clone() })
                        .await
                        .map_err(refused)?;
                    println!("removed rule {id}");
                }
                PolicyCommand::Explain {
                    account,
                    service,
                    tags,
                    action,
                } => {
                    let d = c
                        .explain(pb::ExplainRequest {
                            username: account,
                            service_name: service,
                            tags,
                            action,
                            ..Default::default()
                        })
                        .await
                        .map_err(refused)?
                        .into_inner();
                    let allow = d.decision == pb::Effect::Allow as i32;
                    println!(
                        "{} by {}",
                        if allow { "ALLOW" } else { "DENY" },
                        if d.rule_id.is_empty() {
                            "the default deny".to_owned()
                        } else {
                            format!("rule {}", d.rule_id)
                        }
                    );
                    for t in d.trace {
                        println!(
                            "  {} {}{}",
                            if t.matched { "matched " } else { "skipped " },
                            t.rule_id,
                            if t.matched {
                                String::new()
                            } else {
                                format!(" ({} did not match)", t.mismatch)
                            }
                        );
                    }
                }
            }
        }
        IamCommand::Audit { limit, action } => {
            let mut c = pb::audit_client::AuditClient::with_interceptor(ch, b);
            let l = c
                .query_audit(pb::QueryAuditRequest {
                    limit,
                    action,
                    ..Default::default()
                })
                .await
                .map_err(refused)?
                .into_inner();
            for e in l.events {
                println!(
                    "{:>6} {} {:<18} {:<16} {:<36} {:<15} {}",
                    e.seq, e.at_unix, e.action, e.result, e.target, e.source_ip, e.detail
                );
            }
        }
        IamCommand::RotateKey => {
            let mut c = pb::tokens_client::TokensClient::with_interceptor(ch, b);
            let r = c
                .rotate_signing_key(pb::RotateSigningKeyRequest {})
                .await
                .map_err(refused)?
                .into_inner();
            println!("new signing key {}", r.kid);
        }
        IamCommand::Sso(cmd) => {
            let mut c = pb::sso_clients_client::SsoClientsClient::with_interceptor(ch, b);
            let show = |c: &pb::SsoClient| {
                println!(
                    "{:<24} {:<7} {:<6} {:<24} {}",
                    c.client_id,
                    c.enabled,
                    c.id_token_signed_response_alg,
                    c.tags.join(","),
                    c.redirect_uris.join(" ")
                );
            };
            match cmd {
                SsoCommand::List => {
                    let l = c
                        .list_clients(pb::ListClientsRequest {})
                        .await
                        .map_err(refused)?
                        .into_inner();
                    println!(
                        "{:<24} {:<7} {:<6} {:<24} REDIRECT URIS",
                        "CLIENT ID", "ENABLED", "ALG", "TAGS"
                    );
                    l.clients.iter().for_each(show);
                }
                SsoCommand::Create(args) => {
                    let r = c
                        .create_client(pb::CreateClientRequest {
                            client: Some(args.into_pb()),
                        })
                        .await
                        .map_err(refused)?
                        .into_inner();
                    if let Some(client) = &r.client {
                        show(client);
                    }
                    println!("client_secret: {}", r.client_secret);
                }
                SsoCommand::Update(args) => {
                    let r = c
                        .update_client(pb::UpdateClientRequest {
                            client: Some(args.into_pb()),
                        })
                        .await
                        .map_err(refused)?
                        .into_inner();
                    show(&r);
                }
                SsoCommand::Delete { client_id } => {
                    c.delete_client(pb::DeleteClientRequest {
                        client_id: client_id.clone(),
                    })
                    .await
                    .map_err(refused)?;
                    println!("deleted SSO client {client_id}");
                }
            }
        }
        IamCommand::Passkeys(cmd) => {
            let mut c = pb::mfa_client::MfaClient::with_interceptor(ch, b);
            match cmd {
                PasskeyCommand::List { account } => {
                    let l = c
                        .list_passkeys(pb::ListPasskeysRequest {
                            account_id: account,
                        })
                        .await
                        .map_err(refused)?
                        .into_inner();
                    println!("{:<36} {:<12} {:<12} NAME", "ID", "CREATED", "LAST USED");
                    for k in l.passkeys {
                        println!(
                            "{:<36} {:<12} {:<12} {}",
                            k.id, k.created_at_unix, k.last_used_unix, k.name
                        );
                    }
                }
                PasskeyCommand::Remove { id, account } => {
                    c.remove_passkey(pb::RemovePasskeyRequest {
                        account_id: account,
                        id: id.clone(),
                    })
                    .await
                    .map_err(refused)?;
                    println!("removed passkey {id}");
                }
            }
        }
    }
    Ok(())
}
