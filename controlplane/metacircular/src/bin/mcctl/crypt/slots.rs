//! `mcctl crypt slots list|add-keyfile` (admin): the slots that open the
//! barrier, and the opt-in auto-unseal key file. `add-keyfile` needs the
//! current passphrase (read like `unseal`'s) and writes the file the
//! server's `[metacrypt] auto_unseal_key_file` names.

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
    }
}
