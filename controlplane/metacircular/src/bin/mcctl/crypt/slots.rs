//! `mcctl crypt slots list|add-keyfile|change-passphrase|reshare|remove`
//! (admin): the slots that open the barrier, and the opt-in auto-unseal key
//! file. Every change needs current unseal material: the passphrase (read
//! like `unseal`'s, without echo), or with `--with-shares K` that many
//! current shares (one per line, without echo on a terminal). `add-keyfile`
//! writes the file the server's `[metacrypt] auto_unseal_key_file` names.

use clap::Subcommand;
use mc_proto::crypt::v1 as pb;
use pb::barrier_client::BarrierClient;
use serde::Serialize;

use crate::iam::client::{Authed, refused};
use crate::output::Out;
use crate::secret::PassphraseSource;

#[derive(Subcommand)]
pub(crate) enum SlotsCommand {
    /// Every slot (id and kind; no secret).
    List,
    /// Write the auto-unseal key file and add its slot (replacing an older
    /// one). Whoever holds the store and the file reads every secret: keep
    /// the file on separate storage.
    AddKeyfile {
        #[command(flatten)]
        passphrase: PassphraseSource,
    },
    /// A new passphrase (the old one stops opening; the keys do not change).
    /// Reads the current passphrase (or shares), then the new one.
    ChangePassphrase {
        #[command(flatten)]
        current: Current,
    },
    /// A new Shamir split: N shares, any K open; the old shares stop opening.
    /// The new shares are shown once.
    Reshare {
        #[arg(long = "shares", value_name = "N")]
        new_shares: u32,
        #[arg(long = "threshold", value_name = "K")]
        new_threshold: u32,
        #[command(flatten)]
        current: Current,
    },
    /// Remove a slot (never the last one).
    Remove {
        id: String,
        #[command(flatten)]
        current: Current,
    },
}

/// The current unseal material a change needs.
#[derive(clap::Args)]
pub(crate) struct Current {
    /// Prove with this many current Shamir shares instead of the passphrase.
    #[arg(long, value_name = "K", conflicts_with_all = ["passphrase_stdin", "passphrase_file"])]
    with_shares: Option<u8>,
    #[command(flatten)]
    passphrase: PassphraseSource,
}

impl Current {
    /// `(passphrase, shares)`: one of them empty.
    fn read(&self) -> anyhow::Result<(String, Vec<String>)> {
        match self.with_shares {
            Some(k) => {
                let mut shares = Vec::new();
                for i in 1..=k {
                    let s = crate::iam::client::read_secret(&format!("Current share {i}: "))?;
                    if s.trim().is_empty() {
                        anyhow::bail!("empty share {i}: nothing was sent");
                    }
                    shares.push(s.trim().to_owned());
                }
                Ok((String::new(), shares))
            }
            None => Ok((
                self.passphrase
                    .source()
                    .one("Current Metacrypt passphrase: ")?,
                Vec::new(),
            )),
        }
    }
}

#[derive(Serialize)]
struct SlotView {
    id: String,
    kind: String,
}

impl From<pb::SlotInfo> for SlotView {
    fn from(s: pb::SlotInfo) -> Self {
        Self {
            id: s.id,
            kind: s.kind,
        }
    }
}

pub(crate) async fn run(
    c: &mut BarrierClient<Authed>,
    out: Out,
    cmd: SlotsCommand,
) -> anyhow::Result<()> {
    match cmd {
        SlotsCommand::List => {
            let r = c
                .list_slots(pb::ListSlotsRequest {})
                .await
                .map_err(refused)?
                .into_inner();
            let view: Vec<SlotView> = r.slots.into_iter().map(SlotView::from).collect();
            out.show(&view, || {
                for s in &view {
                    println!("{:<12} {}", s.kind, s.id);
                }
            })
        }
        SlotsCommand::AddKeyfile { passphrase } => {
            let passphrase = passphrase.source().one("Metacrypt passphrase: ")?;
            let r = c
                .add_slot(pb::AddSlotRequest {
                    kind: "keyfile".to_owned(),
                    passphrase,
                })
                .await
                .map_err(refused)?
                .into_inner();
            #[derive(Serialize)]
            struct View {
                slot: SlotView,
                path: String,
            }
            let view = View {
                slot: r.slot.unwrap_or_default().into(),
                path: r.path,
            };
            out.show(&view, || {
                println!(
                    "keyfile slot {} added; key file written to {}",
                    view.slot.id, view.path
                );
                println!("Metacrypt now unseals itself at start while that file is readable.");
            })
        }
        SlotsCommand::ChangePassphrase { current } => {
            let (passphrase, shares) = current.read()?;
            let new_passphrase = current.passphrase.source().new_secret(
                "New Metacrypt passphrase (at least 12 characters): ",
                "New Metacrypt passphrase again: ",
            )?;
            let r = c
                .change_passphrase(pb::ChangePassphraseRequest {
                    passphrase,
                    shares,
                    new_passphrase,
                })
                .await
                .map_err(refused)?
                .into_inner();
            let view = SlotView::from(r);
            out.show(&view, || {
                println!(
                    "passphrase changed (slot {}); the old one no longer opens",
                    view.id
                );
            })
        }
        SlotsCommand::Reshare {
            new_shares,
            new_threshold,
            current,
        } => {
            let (passphrase, shares) = current.read()?;
            let r = c
                .reshare(pb::ReshareRequest {
                    passphrase,
                    shares,
                    new_shares,
                    new_threshold,
                })
                .await
                .map_err(refused)?
                .into_inner();
            #[derive(Serialize)]
            struct View {
                slot: SlotView,
                shares: Vec<String>,
            }
            let view = View {
                slot: r.slot.unwrap_or_default().into(),
                shares: r.shares,
            };
            out.show(&view, || {
                println!(
                    "new Shamir split (slot {}); the old shares no longer open",
                    view.slot.id
                );
                println!("shares (shown once; keep each with a different person):");
                for s in &view.shares {
                    println!("  {s}");
                }
            })
        }
        SlotsCommand::Remove { id, current } => {
            let (passphrase, shares) = current.read()?;
            c.remove_slot(pb::RemoveSlotRequest {
                id: id.clone(),
                passphrase,
                shares,
            })
            .await
            .map_err(refused)?;
            out.done(
                &serde_json::json!({"removed": id}),
                &format!("slot {id} removed"),
            )
        }
    }
}

/// `mcctl crypt rekey`: every slot's material (a keyfile slot's file is
/// read by the server).
#[derive(clap::Args)]
pub(crate) struct RekeyArgs {
    /// Also give this many current Shamir shares (needed when a Shamir slot exists).
    #[arg(long, value_name = "K")]
    with_shares: Option<u8>,
    /// Give no passphrase (the barrier has no passphrase slot).
    #[arg(long, requires = "with_shares", conflicts_with_all = ["passphrase_stdin", "passphrase_file"])]
    no_passphrase: bool,
    #[command(flatten)]
    passphrase: PassphraseSource,
}

pub(crate) async fn rekey(
    c: &mut BarrierClient<Authed>,
    out: Out,
    args: RekeyArgs,
) -> anyhow::Result<()> {
    let passphrase = if args.no_passphrase {
        String::new()
    } else {
        args.passphrase
            .source()
            .one("Current Metacrypt passphrase: ")?
    };
    let shares = match args.with_shares {
        Some(k) => {
            Current {
                with_shares: Some(k),
                passphrase: PassphraseSource::default(),
            }
            .read()?
            .1
        }
        None => Vec::new(),
    };
    let r = c
        .rekey(pb::RekeyRequest { passphrase, shares })
        .await
        .map_err(refused)?
        .into_inner();
    #[derive(Serialize)]
    struct View {
        root_version: u32,
        mek_version: u32,
    }
    let view = View {
        root_version: r.root_version,
        mek_version: r.mek_version,
    };
    out.show(&view, || {
        println!(
            "new root key (version {}) and MEK (version {}); the same passphrase, shares and key file unseal",
            view.root_version, view.mek_version
        );
    })
}
