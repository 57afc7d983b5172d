//! `mcctl iam accounts …`.

use clap::Subcommand;
use mc_proto::iam::v1 as pb;
use pb::accounts_client::AccountsClient;
use serde::Serialize;

use super::client::{Authed, PasswordSource, refused};
use super::{role_args, role_names};
use crate::enums::name_or;
use crate::output::{Col, Out, Table, row};

type Client = AccountsClient<Authed>;

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
        #[command(flatten)]
        password: PasswordSource,
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

#[derive(Serialize)]
struct AccountView {
    id: String,
    username: String,
    #[serde(rename = "type")]
    kind: String,
    status: String,
    roles: Vec<String>,
    tags: Vec<String>,
    totp_enabled: bool,
    passkeys: u32,
    created_at_unix: i64,
    last_login_unix: i64,
    locked_until_unix: i64,
}

impl From<pb::Account> for AccountView {
    fn from(a: pb::Account) -> Self {
        Self {
            kind: name_or::<pb::AccountType>(a.r#type, "human"),
            status: name_or::<pb::AccountStatus>(a.status, "deleted"),
            roles: role_names(&a.roles),
            id: a.id,
            username: a.username,
            tags: a.tags,
            totp_enabled: a.totp_enabled,
            passkeys: a.passkeys,
            created_at_unix: a.created_at_unix,
            last_login_unix: a.last_login_unix,
            locked_until_unix: a.locked_until_unix,
        }
    }
}

impl AccountView {
    fn row(&self) -> Vec<String> {
        row![
            self.id,
            self.username,
            self.kind,
            self.status,
            self.roles.join(","),
            self.tags.join(",")
        ]
    }
}

const TABLE: Table = Table(&[
    Col::left("ID", 36),
    Col::left("USERNAME", 20),
    Col::left("TYPE", 7),
    Col::left("STATUS", 9),
    Col::left("ROLES", 12),
    Col::left("TAGS", 0),
]);

pub(super) async fn run(c: &mut Client, out: Out, cmd: AccountCommand) -> anyhow::Result<()> {
    let account = match cmd {
        AccountCommand::List => return list(c, out).await,
        AccountCommand::Create {
            username,
            system,
            roles,
            tags,
            password,
        } => create(c, username, system, &roles, tags, password).await?,
        AccountCommand::Get { account } => c
            .get_account(pb::GetAccountRequest {
                id: account,
                username: String::new(),
            })
            .await
            .map_err(refused)?
            .into_inner(),
        AccountCommand::Disable { account } => {
            set_status(c, account, pb::AccountStatus::Disabled).await?
        }
        AccountCommand::Enable { account } => {
            set_status(c, account, pb::AccountStatus::Active).await?
        }
        AccountCommand::Delete { account } => return delete(c, out, account).await,
        AccountCommand::Roles { account, roles } => {
            let roles = role_args(&roles)?;
            c.set_roles(pb::SetRolesRequest { id: account, roles })
                .await
                .map_err(refused)?
                .into_inner()
        }
        AccountCommand::Tags { account, tags } => c
            .set_tags(pb::SetTagsRequest { id: account, tags })
            .await
            .map_err(refused)?
            .into_inner(),
    };
    show(out, account)
}

/// One account: its table row (no header, as always), or its JSON.
fn show(out: Out, account: pb::Account) -> anyhow::Result<()> {
    let a = AccountView::from(account);
    out.show(&a, || TABLE.print_rows([a.row()]))
}

async fn list(c: &mut Client, out: Out) -> anyhow::Result<()> {
    let accounts: Vec<AccountView> = c
        .list_accounts(pb::ListAccountsRequest::default())
        .await
        .map_err(refused)?
        .into_inner()
        .accounts
        .into_iter()
        .map(AccountView::from)
        .collect();
    out.show(&accounts, || {
        TABLE.print(accounts.iter().map(AccountView::row));
    })
}

async fn create(
    c: &mut Client,
    username: String,
    system: bool,
    roles: &[String],
    tags: Vec<String>,
    password: PasswordSource,
) -> anyhow::Result<pb::Account> {
    let roles = role_args(roles)?;
    let password = if system {
        String::new()
    } else {
        password.one("password for the new account: ")?
    };
    let kind = if system {
        pb::AccountType::System
    } else {
        pb::AccountType::Human
    };
    Ok(c.create_account(pb::CreateAccountRequest {
        username,
        r#type: kind.into(),
        password,
        roles,
        tags,
    })
    .await
    .map_err(refused)?
    .into_inner())
}

async fn set_status(
    c: &mut Client,
    id: String,
    status: pb::AccountStatus,
) -> anyhow::Result<pb::Account> {
    Ok(c.update_account(pb::UpdateAccountRequest {
        id,
        status: status.into(),
    })
    .await
    .map_err(refused)?
    .into_inner())
}

async fn delete(c: &mut Client, out: Out, account: String) -> anyhow::Result<()> {
    c.delete_account(pb::DeleteAccountRequest {
        id: account.clone(),
    })
    .await
    .map_err(refused)?;
    out.done(
        &serde_json::json!({ "deleted": account }),
        &format!("deleted {account}"),
    )
}
