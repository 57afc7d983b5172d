//! `mcctl iam sso …`: SSO (OAuth 2.0 / OpenID Connect) clients.

use clap::{Subcommand, ValueEnum};
use mc_proto::iam::v1 as pb;
use pb::sso_clients_client::SsoClientsClient;
use serde::Serialize;

use super::client::{Authed, refused};
use crate::enums::flag_name;
use crate::output::{Col, Out, Table, row};

type Client = SsoClientsClient<Authed>;

/// `--id-token-alg`: spelled as the JWS `alg` the client asks for.
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
            id_token_signed_response_alg: flag_name(&self.id_token_alg),
        }
    }
}

/// `sso update`: only the flags given change; everything else is kept as the
/// server has it (read, merged, written back).
#[derive(clap::Args)]
pub(crate) struct SsoUpdateArgs {
    client_id: String,
    /// Replace the redirect URIs with these (repeatable).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    #[arg(long)]
    name: Option<String>,
    /// Replace the tags with these (repeatable).
    #[arg(long = "tag", conflicts_with = "no_tags")]
    tags: Vec<String>,
    /// Remove every tag.
    #[arg(long)]
    no_tags: bool,
    #[arg(long, value_enum)]
    id_token_alg: Option<IdTokenAlg>,
    /// Disable the client.
    #[arg(long, conflicts_with = "enabled")]
    disabled: bool,
    /// Enable the client again.
    #[arg(long)]
    enabled: bool,
}

impl SsoUpdateArgs {
    /// `current` with the given flags applied.
    fn merge(self, mut current: pb::SsoClient) -> pb::SsoClient {
        if !self.redirect_uris.is_empty() {
            current.redirect_uris = self.redirect_uris;
        }
        if let Some(name) = self.name {
            current.name = name;
        }
        if self.no_tags {
            current.tags.clear();
        } else if !self.tags.is_empty() {
            current.tags = self.tags;
        }
        if let Some(alg) = self.id_token_alg {
            current.id_token_signed_response_alg = flag_name(&alg);
        }
        if self.disabled {
            current.enabled = false;
        } else if self.enabled {
            current.enabled = true;
        }
        current
    }
}

#[derive(Subcommand)]
pub(crate) enum SsoCommand {
    List,
    /// Register a client; prints its secret once.
    Create(SsoClientArgs),
    /// Change the settings given as flags; the others (and the secret) stay.
    Update(SsoUpdateArgs),
    Delete {
        client_id: String,
    },
}

#[derive(Serialize)]
struct ClientView {
    client_id: String,
    name: String,
    redirect_uris: Vec<String>,
    tags: Vec<String>,
    enabled: bool,
    id_token_signed_response_alg: String,
}

impl From<pb::SsoClient> for ClientView {
    fn from(c: pb::SsoClient) -> Self {
        Self {
            client_id: c.client_id,
            name: c.name,
            redirect_uris: c.redirect_uris,
            tags: c.tags,
            enabled: c.enabled,
            id_token_signed_response_alg: c.id_token_signed_response_alg,
        }
    }
}

impl ClientView {
    fn row(&self) -> Vec<String> {
        row![
            self.client_id,
            self.enabled,
            self.id_token_signed_response_alg,
            self.tags.join(","),
            self.redirect_uris.join(" ")
        ]
    }
}

#[derive(Serialize)]
struct CreatedView {
    client: Option<ClientView>,
    client_secret: String,
}

const TABLE: Table = Table(&[
    Col::left("CLIENT ID", 24),
    Col::left("ENABLED", 7),
    Col::left("ALG", 6),
    Col::left("TAGS", 24),
    Col::left("REDIRECT URIS", 0),
]);

pub(super) async fn run(c: &mut Client, out: Out, cmd: SsoCommand) -> anyhow::Result<()> {
    match cmd {
        SsoCommand::List => list(c, out).await,
        SsoCommand::Create(args) => create(c, out, args.into_pb()).await,
        SsoCommand::Update(args) => {
            let current = c
                .get_client(pb::GetClientRequest {
                    client_id: args.client_id.clone(),
                })
                .await
                .map_err(refused)?
                .into_inner();
            let client = ClientView::from(
                c.update_client(pb::UpdateClientRequest {
                    client: Some(args.merge(current)),
                })
                .await
                .map_err(refused)?
                .into_inner(),
            );
            out.show(&client, || TABLE.print_rows([client.row()]))
        }
        SsoCommand::Delete { client_id } => {
            c.delete_client(pb::DeleteClientRequest {
                client_id: client_id.clone(),
            })
            .await
            .map_err(refused)?;
            out.done(
                &serde_json::json!({ "deleted": client_id }),
                &format!("deleted SSO client {client_id}"),
            )
        }
    }
}

async fn list(c: &mut Client, out: Out) -> anyhow::Result<()> {
    let clients: Vec<ClientView> = c
        .list_clients(pb::ListClientsRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .clients
        .into_iter()
        .map(ClientView::from)
        .collect();
    out.show(&clients, || {
        TABLE.print(clients.iter().map(ClientView::row))
    })
}

async fn create(c: &mut Client, out: Out, client: pb::SsoClient) -> anyhow::Result<()> {
    let r = c
        .create_client(pb::CreateClientRequest {
            client: Some(client),
        })
        .await
        .map_err(refused)?
        .into_inner();
    let r = CreatedView {
        client: r.client.map(ClientView::from),
        client_secret: r.client_secret,
    };
    out.show(&r, || {
        if let Some(client) = &r.client {
            TABLE.print_rows([client.row()]);
        }
        println!("client_secret: {}", r.client_secret);
    })
}
