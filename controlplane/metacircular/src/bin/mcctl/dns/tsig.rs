//! `mcctl dns tsig …`: TSIG keys for RFC 2136 UPDATE (nsupdate, certbot's
//! and lego's rfc2136 providers). Secrets are shown once, when generated.

use anyhow::bail;
use clap::{Args, Subcommand};
use mc_proto::dns::v1 as pb;
use serde::Serialize;

use super::{Client, refused};
use crate::enums::name_or;
use crate::output::{Col, Out, Table, row};

#[derive(Subcommand)]
pub(crate) enum TsigCommand {
    /// Every key (config file and API), never the secrets.
    List,
    /// Create or replace a key that may UPDATE the given zones.
    Add(AddArgs),
    /// Delete an API key.
    Remove { name: String },
}

#[derive(Args)]
pub(crate) struct AddArgs {
    name: String,
    /// A zone the key may change; repeat for several.
    #[arg(long = "zone", value_name = "ZONE", required = true)]
    zones: Vec<String>,
    /// hmac-sha256, hmac-sha384 or hmac-sha512 [default: hmac-sha256].
    #[arg(long)]
    algorithm: Option<String>,
    /// Base64 secret (at least 16 bytes); default: 32 random bytes, printed once.
    #[arg(long)]
    secret: Option<String>,
}

#[derive(Serialize)]
struct KeyView {
    name: String,
    algorithm: String,
    update_zones: Vec<String>,
    origin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl From<pb::TsigKey> for KeyView {
    fn from(k: pb::TsigKey) -> Self {
        Self {
            origin: name_or::<pb::Origin>(k.origin, "?"),
            name: k.name,
            algorithm: k.algorithm,
            update_zones: k.update_zones,
            secret: None,
        }
    }
}

const TABLE: Table = Table(&[
    Col::left("NAME", 24),
    Col::left("ALGORITHM", 12),
    Col::left("ORIGIN", 8),
    Col::left("UPDATE ZONES", 0),
]);

pub(super) async fn run(c: &mut Client, out: Out, cmd: TsigCommand) -> anyhow::Result<()> {
    match cmd {
        TsigCommand::List => {
            let keys: Vec<KeyView> = c
                .list_tsig_keys(pb::ListTsigKeysRequest {})
                .await
                .map_err(refused)?
                .into_inner()
                .keys
                .into_iter()
                .map(KeyView::from)
                .collect();
            out.show(&keys, || {
                TABLE.print(
                    keys.iter()
                        .map(|k| row![k.name, k.algorithm, k.origin, k.update_zones.join(",")]),
                );
            })
        }
        TsigCommand::Add(a) => {
            let r = c
                .put_tsig_key(pb::PutTsigKeyRequest {
                    key: Some(pb::TsigKey {
                        name: a.name,
                        algorithm: a.algorithm.unwrap_or_default(),
                        update_zones: a.zones,
                        origin: 0,
                    }),
                    secret: a.secret.unwrap_or_default(),
                })
                .await
                .map_err(refused)?
                .into_inner();
            let mut k = KeyView::from(r.key.unwrap_or_default());
            let line = if r.secret.is_empty() {
                format!("key {} stored", k.name)
            } else {
                format!(
                    "key {} stored; its secret (shown once): {}\n  nsupdate -y {}:{}:{}",
                    k.name, r.secret, k.algorithm, k.name, r.secret
                )
            };
            k.secret = (!r.secret.is_empty()).then_some(r.secret);
            out.done(&k, &line)
        }
        TsigCommand::Remove { name } => {
            let deleted = c
                .delete_tsig_key(pb::DeleteTsigKeyRequest { name: name.clone() })
                .await
                .map_err(refused)?
                .into_inner()
                .deleted;
            if !deleted {
                bail!("no API key {name}");
            }
            out.done(
                &serde_json::json!({ "deleted": name }),
                &format!("key {name} deleted"),
            )
        }
    }
}
