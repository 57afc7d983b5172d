//! `sys`: init, unseal, seal, status, MEK rotation. Admin-only in the
//! method map, except status (public).
//!
//! Invariant: input is validated (naming the field) before any key work,
//! and every attempt is audited by the barrier.

use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Caller, Metacrypt};
use crate::barrier::{Actor, Barrier, InitRequest, Status, UnsealInput};
use crate::error::CryptError;

/// `POST sys/init`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitInput {
    #[serde(default)]
    pub passphrase: Option<String>,
    #[serde(default)]
    pub shares: Option<u32>,
    #[serde(default)]
    pub threshold: Option<u32>,
}

/// What `init` answers: the status and the Shamir shares (once).
#[derive(Debug, serde::Serialize)]
pub struct InitOutput {
    pub status: Status,
    pub shares: Vec<String>,
}

/// `POST sys/unseal`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsealInputBody {
    #[serde(default)]
    pub passphrase: Option<String>,
    #[serde(default)]
    pub share: Option<String>,
    #[serde(default)]
    pub reset: bool,
}

fn actor(c: &Caller) -> Actor {
    Actor {
        actor: c.actor(),
        ip: c.ip(),
    }
}

fn small(field: &str, v: u32) -> Result<u8, CryptError> {
    u8::try_from(v).map_err(|_| CryptError::invalid(field, "at most 16"))
}

impl Metacrypt {
    pub fn status(&self) -> Result<Status, CryptError> {
        self.barrier.status()
    }

    pub async fn init(&self, c: &Caller, input: InitInput) -> Result<InitOutput, CryptError> {
        let shamir = match (input.shares, input.threshold) {
            (None | Some(0), None | Some(0)) => None,
            (Some(n), Some(k)) if n > 0 && k > 0 => {
                Some((small("shares", n)?, small("threshold", k)?))
            }
            (_, None | Some(0)) => {
                return Err(CryptError::invalid("threshold", "required with shares"));
            }
            _ => return Err(CryptError::invalid("shares", "required with threshold")),
        };
        let req = InitRequest {
            passphrase: input
                .passphrase
                .filter(|p| !p.is_empty())
                .map(Zeroizing::new),
            shamir,
        };
        Barrier::check_init(&req)?;
        let barrier = self.barrier.clone();
        let who = actor(c);
        let shares = tokio::task::spawn_blocking(move || barrier.init_blocking(&req, &who))
            .await
            .map_err(CryptError::internal)??;
        self.seed_policy(c)?;
        Ok(InitOutput {
            status: self.barrier.status()?,
            shares: shares.iter().map(|s| s.as_str().to_owned()).collect(),
        })
    }

    pub async fn unseal(&self, c: &Caller, input: UnsealInputBody) -> Result<Status, CryptError> {
        let given = usize::from(input.passphrase.is_some())
            + usize::from(input.share.is_some())
            + usize::from(input.reset);
        let attempt = match (input.passphrase, input.share, input.reset) {
            _ if given != 1 => {
                return Err(CryptError::invalid(
                    "passphrase",
                    "give exactly one of passphrase, share or reset",
                ));
            }
            (Some(p), _, _) => UnsealInput::Passphrase(Zeroizing::new(p)),
            (_, Some(s), _) => UnsealInput::Share(Zeroizing::new(s)),
            _ => UnsealInput::Reset,
        };
        self.barrier.unseal(attempt, actor(c)).await
    }

    pub async fn seal(&self, c: &Caller) -> Result<Status, CryptError> {
        let status = self.barrier.seal(&actor(c)).await?;
        self.view.store(None);
        for engine in self.engines().all() {
            engine.on_seal();
        }
        Ok(status)
    }

    pub fn rotate_mek(&self, c: &Caller) -> Result<u32, CryptError> {
        self.barrier.rotate_mek(&actor(c))
    }
}
