//! The user engine's operations as core calls. Policy paths:
//! `<mount>/keys/self` read (own key) and create|update (make it),
//! `<mount>/keys/self/rotate` update, `<mount>/keys/<account>` read (a
//! public key), `<mount>/encrypt/<account>` update, `<mount>/decrypt`
//! update. Policy admits; `decrypt` then still refuses everyone but the
//! recipient the ciphertext names.

use serde::Deserialize;

use super::run::EngineOp;
use super::{Caller, Metacrypt};
use crate::engines::Engine;
use crate::engines::user::{self as engine, User};
use crate::error::CryptError;
use crate::policy::Capability;

pub use crate::engines::user::{UserDecrypted, UserEncrypted, UserKeyInfo, UserKeyVersion};

/// `POST encrypt`: `{to, plaintext}` (plaintext base64). Missing fields
/// decode as empty so a caller without rights gets 403 before 400.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEncrypt {
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub plaintext: String,
}

/// `POST decrypt`: `{ciphertext}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDecrypt {
    #[serde(default)]
    pub ciphertext: String,
}

struct Op<'a> {
    mount: &'a str,
    sub: String,
    capability: Capability,
    alternative: Option<Capability>,
}

impl EngineOp for Op<'_> {
    const ENGINE: &'static str = User::TYPE;
    fn mount(&self) -> &str {
        self.mount
    }
    fn access(&self) -> (String, Capability) {
        (self.sub.clone(), self.capability)
    }
    fn alternative(&self) -> Option<Capability> {
        self.alternative
    }
}

fn op(mount: &str, sub: String, capability: Capability) -> Op<'_> {
    Op {
        mount,
        sub,
        capability,
        alternative: None,
    }
}

impl Metacrypt {
    /// The caller's own key (public halves), 404 when it has none.
    pub fn user_own_key(&self, c: &Caller, mount: &str) -> Result<UserKeyInfo, CryptError> {
        self.run(c, &op(mount, "keys/self".into(), Capability::Read), |a| {
            engine::ops::get_own(&a)
        })
    }

    /// Creates the caller's key unless it exists (idempotent).
    pub fn user_init_key(&self, c: &Caller, mount: &str) -> Result<UserKeyInfo, CryptError> {
        let o = Op {
            alternative: Some(Capability::Update),
            ..op(mount, "keys/self".into(), Capability::Create)
        };
        self.run(c, &o, |a| engine::ops::init_own(&a))
    }

    /// Adds a version to the caller's key.
    pub fn user_rotate_key(&self, c: &Caller, mount: &str) -> Result<UserKeyInfo, CryptError> {
        self.run(
            c,
            &op(mount, "keys/self/rotate".into(), Capability::Update),
            |a| engine::ops::rotate_own(&a),
        )
    }

    /// An account's public key, by account id or username.
    pub fn user_public_key(
        &self,
        c: &Caller,
        mount: &str,
        account: &str,
    ) -> Result<UserKeyInfo, CryptError> {
        self.run(
            c,
            &op(mount, format!("keys/{account}"), Capability::Read),
            |a| engine::ops::public_key(&a, account),
        )
    }

    /// Encrypts to another account (by id or username).
    pub fn user_encrypt(
        &self,
        c: &Caller,
        mount: &str,
        input: &UserEncrypt,
    ) -> Result<UserEncrypted, CryptError> {
        self.run(
            c,
            &op(mount, format!("encrypt/{}", input.to), Capability::Update),
            |a| engine::ops::encrypt(&a, &input.to, &input.plaintext),
        )
    }

    /// Decrypts a message addressed to the caller.
    pub fn user_decrypt(
        &self,
        c: &Caller,
        mount: &str,
        input: &UserDecrypt,
    ) -> Result<UserDecrypted, CryptError> {
        self.run(c, &op(mount, "decrypt".into(), Capability::Update), |a| {
            engine::ops::decrypt(&a, &input.ciphertext)
        })
    }
}
