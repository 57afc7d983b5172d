//! `mcctl crypt user init|key|rotate|public|encrypt|decrypt`: user-to-user
//! encryption over `mc.crypt.v1.UserCrypto` (a `user` mount, `--mount`,
//! default `user`). Each account manages only its own key; `encrypt --to
//! ACCOUNT` seals a file or stdin to another account (id or username), and
//! only that account's `decrypt` opens it (raw bytes to stdout; `--json`
//! gives base64 and the sender).

use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Subcommand;
use mc_proto::crypt::v1 as pb;
use pb::user_crypto_client::UserCryptoClient;
use serde::Serialize;

use super::transit::input;
use crate::iam::client::{Authed, refused};
use crate::output::{Out, utc};

#[derive(clap::Args)]
pub(crate) struct MountArg {
    /// The `user` mount.
    #[arg(long, default_value = "user")]
    mount: String,
}

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Create your key pair in the mount (nothing changes if you have one).
    Init {
        #[command(flatten)]
        m: MountArg,
    },
    /// Your key's versions (public halves only).
    Key {
        #[command(flatten)]
        m: MountArg,
    },
    /// Add a version to your key; older messages still decrypt.
    Rotate {
        #[command(flatten)]
        m: MountArg,
    },
    /// Another account's public key (account id or username).
    Public {
        account: String,
        #[command(flatten)]
        m: MountArg,
    },
    /// Encrypt FILE (or stdin) to ACCOUNT; prints the mcuser:v1: ciphertext.
    Encrypt {
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "-")]
        file: String,
        #[command(flatten)]
        m: MountArg,
    },
    /// Decrypt a ciphertext addressed to you; the plaintext goes to stdout.
    Decrypt {
        ciphertext: String,
        #[command(flatten)]
        m: MountArg,
    },
}

#[derive(Serialize)]
struct VersionView {
    version: u32,
    public_key: String,
    created_at: i64,
}

#[derive(Serialize)]
struct KeyView {
    account_id: String,
    username: String,
    latest_version: u32,
    versions: Vec<VersionView>,
}

impl From<pb::UserKeyInfo> for KeyView {
    fn from(k: pb::UserKeyInfo) -> Self {
        Self {
            account_id: k.account_id,
            username: k.username,
            latest_version: k.latest_version,
            versions: k
                .versions
                .into_iter()
                .map(|v| VersionView {
                    version: v.version,
                    public_key: STANDARD.encode(v.public_key),
                    created_at: v.created_at,
                })
                .collect(),
        }
    }
}

fn show_key(out: Out, k: pb::UserKeyInfo) -> anyhow::Result<()> {
    let view = KeyView::from(k);
    out.show(&view, || {
        println!("account: {} ({})", view.username, view.account_id);
        println!("latest:  v{}", view.latest_version);
        for v in &view.versions {
            println!(
                "  v{:<4} {}  {}",
                v.version,
                v.public_key,
                utc(v.created_at)
            );
        }
    })
}

pub(crate) async fn run(
    c: &mut UserCryptoClient<Authed>,
    out: Out,
    cmd: UserCommand,
) -> anyhow::Result<()> {
    let req = |m: MountArg| pb::UserMountRequest { mount: m.mount };
    match cmd {
        UserCommand::Init { m } => {
            let k = c.create_own_key(req(m)).await.map_err(refused)?;
            show_key(out, k.into_inner())
        }
        UserCommand::Key { m } => {
            let k = c.get_own_key(req(m)).await.map_err(refused)?;
            show_key(out, k.into_inner())
        }
        UserCommand::Rotate { m } => {
            let k = c.rotate_own_key(req(m)).await.map_err(refused)?;
            show_key(out, k.into_inner())
        }
        UserCommand::Public { account, m } => {
            let k = c
                .get_public_key(pb::UserPublicKeyRequest {
                    mount: m.mount,
                    account,
                })
                .await
                .map_err(refused)?;
            show_key(out, k.into_inner())
        }
        UserCommand::Encrypt { to, file, m } => {
            let r = c
                .encrypt(pb::UserEncryptRequest {
                    mount: m.mount,
                    to,
                    plaintext: input(&file)?,
                })
                .await
                .map_err(refused)?
                .into_inner();
            #[derive(Serialize)]
            struct View {
                ciphertext: String,
                recipient_id: String,
                recipient_username: String,
                key_version: u32,
            }
            let view = View {
                ciphertext: r.ciphertext,
                recipient_id: r.recipient_id,
                recipient_username: r.recipient_username,
                key_version: r.key_version,
            };
            out.show(&view, || println!("{}", view.ciphertext))
        }
        UserCommand::Decrypt { ciphertext, m } => {
            let r = c
                .decrypt(pb::UserDecryptRequest {
                    mount: m.mount,
                    ciphertext,
                })
                .await
                .map_err(refused)?
                .into_inner();
            #[derive(Serialize)]
            struct View {
                plaintext: String,
                sender_id: String,
                sender_username: String,
            }
            let view = View {
                plaintext: STANDARD.encode(&r.plaintext),
                sender_id: r.sender_id,
                sender_username: r.sender_username,
            };
            let mut failed = None;
            out.show(&view, || {
                eprintln!("from {} ({})", view.sender_username, view.sender_id);
                let mut stdout = std::io::stdout().lock();
                failed = stdout
                    .write_all(&r.plaintext)
                    .and_then(|()| stdout.flush())
                    .err();
            })?;
            failed.map_or(Ok(()), |e| Err(e.into()))
        }
    }
}
