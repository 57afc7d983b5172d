//! `mcctl crypt …`: Metacrypt over `mc.crypt.v1`: the barrier here, and
//! `mounts`, `policy`, `kv`, the transit engine (`keys`,
//! `encrypt|decrypt|sign|verify`), `user` (user-to-user encryption), `pki` and `ssh` in `crypt/`.
//!
//! Passphrases come from `--passphrase-stdin`, `--passphrase-file FILE`, the
//! terminal without echo, or one line of piped stdin ([`crate::secret`], the
//! same reader as `mcctl login`'s password; empty is refused); shares from the
//! terminal or stdin. Neither is ever a flag's value, so they stay out of
//! shell history and `ps`. Every answer goes through [`Out`], so `--json`
//! works for all.

mod audit;
mod jobs;
mod kv;
mod mounts;
mod pki;
mod policy;
mod slots;
mod ssh;
mod transit;
mod user;

use clap::Subcommand;
use mc_proto::crypt::v1 as pb;
use pb::barrier_client::BarrierClient;
use serde::Serialize;

use crate::endpoints::Endpoints;
use crate::iam::client::{Authed, authed, channel, read_secret, refused, saved_token};
use crate::output::Out;
use crate::secret::PassphraseSource;

#[derive(Subcommand)]
pub(crate) enum CryptCommand {
    /// The barrier's state (public: needs no login).
    Status,
    /// Initialise the barrier (admin): a passphrase, Shamir shares, or both.
    Init {
        /// Split an unseal key into this many shares…
        #[arg(long, requires = "threshold")]
        shares: Option<u32>,
        /// …any this many of which unseal.
        #[arg(long, requires = "shares")]
        threshold: Option<u32>,
        /// No passphrase slot (only with --shares).
        #[arg(long, requires = "shares", conflicts_with_all = ["passphrase_stdin", "passphrase_file"])]
        no_passphrase: bool,
        #[command(flatten)]
        passphrase: PassphraseSource,
    },
    /// One unseal attempt (admin): the passphrase, or one share with --share.
    Unseal {
        /// Give one Shamir share (read from the terminal or stdin) instead of the passphrase.
        #[arg(long, conflicts_with_all = ["passphrase_stdin", "passphrase_file"])]
        share: bool,
        /// Discard the shares given so far.
        #[arg(long, conflicts_with_all = ["share", "passphrase_stdin", "passphrase_file"])]
        reset: bool,
        #[command(flatten)]
        passphrase: PassphraseSource,
    },
    /// Drop every key from memory (admin).
    Seal,
    /// A new master encryption key; the data keys are rewrapped (admin).
    RotateMek,
    /// A new root key and MEK, every slot rewrapped so the same passphrase,
    /// shares and key file still unseal (admin; every slot's material).
    Rekey(slots::RekeyArgs),
    /// Running rewrap jobs, each mount's DEK versions, periodic tasks (admin).
    Jobs,
    /// The audit log, newest first (admin).
    Audit(audit::AuditArgs),
    /// Engine mounts (admin).
    Mounts {
        #[command(subcommand)]
        cmd: mounts::MountsCommand,
    },
    /// ACL rules over engine paths (admin).
    Policy {
        #[command(subcommand)]
        cmd: policy::PolicyCommand,
    },
    /// KV secrets (version 2 semantics), as policy allows.
    Kv {
        #[command(subcommand)]
        cmd: kv::KvCommand,
    },
    /// Transit keys (named, versioned), as policy allows.
    Keys {
        #[command(subcommand)]
        cmd: transit::KeysCommand,
    },
    /// The pki engine: CAs, roles, certificates, CRLs, as policy allows.
    Pki {
        #[command(subcommand)]
        cmd: pki::PkiCommand,
    },
    /// The ssh engine (SSH CA): CA key, profiles, certificates, KRL, as policy allows.
    Ssh {
        #[command(subcommand)]
        cmd: ssh::SshCommand,
    },
    /// Transit data operations: encrypt, decrypt, sign, verify.
    #[command(flatten)]
    Transit(transit::DataCommand),
    /// The slots that open the barrier; the auto-unseal key file.
    Slots {
        #[command(subcommand)]
        cmd: slots::SlotsCommand,
    },
    /// User-to-user encryption: your key pair, encrypt to another account.
    User {
        #[command(subcommand)]
        cmd: user::UserCommand,
    },
}

#[derive(Serialize)]
struct StatusView {
    state: String,
    initialized: bool,
    sealed: bool,
    slots: Vec<String>,
    threshold: u32,
    shares: u32,
    progress: u32,
}

impl From<pb::BarrierStatus> for StatusView {
    fn from(s: pb::BarrierStatus) -> Self {
        Self {
            state: s.state,
            initialized: s.initialized,
            sealed: s.sealed,
            slots: s.slots,
            threshold: s.threshold,
            shares: s.shares,
            progress: s.progress,
        }
    }
}

fn print_status(s: &StatusView) {
    println!("state:  {}", s.state);
    if !s.slots.is_empty() {
        println!("slots:  {}", s.slots.join(", "));
    }
    if s.shares > 0 {
        println!(
            "shamir: {} of {} (progress {}/{})",
            s.threshold, s.shares, s.progress, s.threshold
        );
    }
}

#[derive(Serialize)]
struct InitView {
    status: StatusView,
    shares: Vec<String>,
}

type Client = BarrierClient<Authed>;

async fn client(endpoints: &Endpoints) -> anyhow::Result<Client> {
    let (ch, b) = authed(endpoints).await?;
    Ok(BarrierClient::with_interceptor(ch, b))
}

pub(crate) async fn run(endpoints: &Endpoints, out: Out, cmd: CryptCommand) -> anyhow::Result<()> {
    match cmd {
        CryptCommand::Mounts { cmd } => {
            let (ch, b) = authed(endpoints).await?;
            let mut barrier = BarrierClient::with_interceptor(ch.clone(), b.clone());
            let mut c = mc_proto::crypt::v1::mounts_client::MountsClient::with_interceptor(ch, b);
            mounts::run(&mut c, &mut barrier, out, cmd).await
        }
        CryptCommand::Policy { cmd } => {
            let (ch, b) = authed(endpoints).await?;
            let mut c = mc_proto::crypt::v1::policy_client::PolicyClient::with_interceptor(ch, b);
            policy::run(&mut c, out, cmd).await
        }
        CryptCommand::Kv { cmd } => {
            let (ch, b) = authed(endpoints).await?;
            let mut c = mc_proto::crypt::v1::kv_client::KvClient::with_interceptor(ch, b);
            kv::run(&mut c, out, cmd).await
        }
        CryptCommand::Keys { cmd } => {
            let (ch, b) = authed(endpoints).await?;
            let mut c = pb::transit_client::TransitClient::with_interceptor(ch, b);
            transit::keys(&mut c, out, cmd).await
        }
        CryptCommand::Pki { cmd } => {
            let (ch, b) = authed(endpoints).await?;
            let mut c = pb::pki_client::PkiClient::with_interceptor(ch, b);
            pki::run(&mut c, out, cmd).await
        }
        CryptCommand::Ssh { cmd } => {
            let (ch, b) = authed(endpoints).await?;
            let mut c = pb::ssh_ca_client::SshCaClient::with_interceptor(ch, b);
            ssh::run(&mut c, out, cmd).await
        }
        CryptCommand::Transit(cmd) => {
            let (ch, b) = authed(endpoints).await?;
            let mut c = pb::transit_client::TransitClient::with_interceptor(ch, b);
            transit::data(&mut c, out, cmd).await
        }
        CryptCommand::Jobs => jobs::list(&mut client(endpoints).await?, out).await,
        CryptCommand::Audit(args) => {
            let (ch, b) = authed(endpoints).await?;
            let mut c = pb::audit_client::AuditClient::with_interceptor(ch, b);
            audit::run(&mut c, out, args).await
        }
        CryptCommand::Slots { cmd } => slots::run(&mut client(endpoints).await?, out, cmd).await,
        CryptCommand::Rekey(args) => slots::rekey(&mut client(endpoints).await?, out, args).await,
        CryptCommand::User { cmd } => {
            let (ch, b) = authed(endpoints).await?;
            let mut c = pb::user_crypto_client::UserCryptoClient::with_interceptor(ch, b);
            user::run(&mut c, out, cmd).await
        }
        CryptCommand::Status => {
            // Public: send the token when there is one, else none.
            let status = match saved_token(endpoints) {
                Ok(_) => client(endpoints).await?.status(pb::StatusRequest {}).await,
                Err(_) => {
                    BarrierClient::new(channel(endpoints).await?)
                        .status(pb::StatusRequest {})
                        .await
                }
            }
            .map_err(refused)?
            .into_inner();
            let view = StatusView::from(status);
            out.show(&view, || print_status(&view))
        }
        CryptCommand::Init {
            shares,
            threshold,
            no_passphrase,
            passphrase,
        } => {
            let passphrase = if no_passphrase {
                String::new()
            } else {
                passphrase.source().new_secret(
                    "New Metacrypt passphrase (at least 12 characters): ",
                    "New Metacrypt passphrase again: ",
                )?
            };
            let r = client(endpoints)
                .await?
                .init(pb::InitRequest {
                    passphrase,
                    shares: shares.unwrap_or(0),
                    threshold: threshold.unwrap_or(0),
                })
                .await
                .map_err(refused)?
                .into_inner();
            let view = InitView {
                status: r.status.unwrap_or_default().into(),
                shares: r.shares,
            };
            out.show(&view, || {
                print_status(&view.status);
                if !view.shares.is_empty() {
                    println!("shares (shown once; keep each with a different person):");
                    for s in &view.shares {
                        println!("  {s}");
                    }
                }
            })
        }
        CryptCommand::Unseal {
            share,
            reset,
            passphrase,
        } => {
            let mut req = pb::UnsealRequest {
                reset,
                ..Default::default()
            };
            if share {
                req.share = read_secret("Share: ")?;
                if req.share.trim().is_empty() {
                    anyhow::bail!(
                        "empty share: nothing was sent; paste one share on the terminal or pipe it on stdin"
                    );
                }
            } else if !reset {
                req.passphrase = passphrase.source().one("Metacrypt passphrase: ")?;
            }
            let s = client(endpoints)
                .await?
                .unseal(req)
                .await
                .map_err(refused)?
                .into_inner();
            let view = StatusView::from(s);
            out.show(&view, || print_status(&view))
        }
        CryptCommand::Seal => {
            let s = client(endpoints)
                .await?
                .seal(pb::SealRequest {})
                .await
                .map_err(refused)?
                .into_inner();
            let view = StatusView::from(s);
            out.show(&view, || print_status(&view))
        }
        CryptCommand::RotateMek => {
            let r = client(endpoints)
                .await?
                .rotate_mek(pb::RotateMekRequest {})
                .await
                .map_err(refused)?
                .into_inner();
            out.done(
                &serde_json::json!({"mek_version": r.mek_version}),
                &format!("MEK rotated to version {}", r.mek_version),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::CryptCommand;

    #[derive(Parser)]
    struct Crypt {
        #[command(subcommand)]
        cmd: CryptCommand,
    }

    /// clap's own checks (unique argument names, valid conflicts…), which
    /// otherwise fail only when the command is run.
    #[test]
    fn crypt_commands_are_well_formed() {
        Crypt::command().debug_assert();
        let parsed = Crypt::try_parse_from([
            "crypt",
            "policy",
            "update",
            "r-1",
            "--id",
            "r-2",
            "--disable",
        ]);
        assert!(parsed.is_ok(), "update takes the rule and --id apart");
        let parsed = Crypt::try_parse_from(["crypt", "kv", "undelete", "secret", "a"]);
        assert!(parsed.is_err(), "undelete needs --versions");
    }
}
