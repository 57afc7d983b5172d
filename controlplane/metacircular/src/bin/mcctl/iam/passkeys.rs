//! `mcctl iam passkeys …`: yours, or another account's as admin.

use clap::Subcommand;
use mc_proto::iam::v1 as pb;
use pb::mfa_client::MfaClient;
use serde::Serialize;

use super::client::{Authed, refused};
use crate::output::{Col, Out, Table, row, utc};

type Client = MfaClient<Authed>;

#[derive(Subcommand)]
pub(crate) enum PasskeyCommand {
    List {
        /// Username or id (default: you).
        #[arg(long, default_value = "")]
        account: String,
    },
    /// Removes a passkey. Your own needs your current password (asked, or
    /// one line of stdin); an admin removing another account's does not.
    Remove {
        id: String,
        #[arg(long, default_value = "")]
        account: String,
        #[command(flatten)]
        password: super::client::PasswordSource,
    },
}

#[derive(Serialize)]
struct PasskeyView {
    id: String,
    name: String,
    aaguid: String,
    created_at_unix: i64,
    last_used_unix: i64,
}

const TABLE: Table = Table(&[
    Col::left("ID", 36),
    Col::left("CREATED", 20),
    Col::left("LAST USED", 20),
    Col::left("NAME", 0),
]);

pub(super) async fn run(c: &mut Client, out: Out, cmd: PasskeyCommand) -> anyhow::Result<()> {
    match cmd {
        PasskeyCommand::List { account } => list(c, out, account).await,
        PasskeyCommand::Remove {
            id,
            account,
            password,
        } => {
            let password = if account.is_empty() {
                password.one("Current password: ")?
            } else {
                String::new()
            };
            c.remove_passkey(pb::RemovePasskeyRequest {
                account_id: account,
                id: id.clone(),
                password,
            })
            .await
            .map_err(refused)?;
            out.done(
                &serde_json::json!({ "removed": id }),
                &format!("removed passkey {id}"),
            )
        }
    }
}

async fn list(c: &mut Client, out: Out, account: String) -> anyhow::Result<()> {
    let keys: Vec<PasskeyView> = c
        .list_passkeys(pb::ListPasskeysRequest {
            account_id: account,
        })
        .await
        .map_err(refused)?
        .into_inner()
        .passkeys
        .into_iter()
        .map(|k| PasskeyView {
            id: k.id,
            name: k.name,
            aaguid: k.aaguid,
            created_at_unix: k.created_at_unix,
            last_used_unix: k.last_used_unix,
        })
        .collect();
    out.show(&keys, || {
        TABLE.print(
            keys.iter()
                .map(|k| row![k.id, utc(k.created_at_unix), utc(k.last_used_unix), k.name]),
        );
    })
}
