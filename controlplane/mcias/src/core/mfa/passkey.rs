//! Passkeys (WebAuthn, via `webauthn-rs`): registration (needs the
//! password, like TOTP enrolment; authenticators are asked to keep the
//! credential discoverable), list and remove, and the stored, sealed
//! credentials and ceremonies the passwordless login
//! ([`crate::core::login`]) uses: username first, or with no username (the
//! authenticator names the account through its user handle); user
//! verification required; subject to login policy like a password login.
//!
//! The relying party id is `[mcias] webauthn_rp_id` (default `localhost`),
//! the origin `webauthn_origin` (the host defaults it to
//! `https://<rp id>:<REST port>`): browsers only run WebAuthn for the host
//! the UI is served under, never for an IP address.
//!
//! Each credential (public key, counter, flags) is stored sealed with the
//! master key (AES-256-GCM, bound to the passkey's row), in the `passkeys`
//! table (schema v4) beside its plaintext metadata (owner, name, credential
//! id, counter). Ceremonies live in memory: single use, 120 s, bounded. The
//! sign counter must grow: an assertion whose counter is not above the
//! stored one (a cloned authenticator, a replay) is refused and audited.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Serialize;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};
use zeroize::Zeroizing;

use crate::core::audit::audit;
use crate::core::{Caller, Mcias, now, random_token};
use crate::error::IamError;
use crate::model::AccountType;
pub use crate::model::PasskeyRecord;
use crate::store::{self as db, WriteTx as Tx};

/// Credentials are sealed bound to their row of this table.
const TABLE: &str = "passkeys";
pub(crate) const CEREMONY_TTL: Duration = Duration::from_secs(120);
pub(crate) const MAX_CEREMONIES: usize = 10_000;
pub const MAX_PER_ACCOUNT: usize = 10;

/// What listings show.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyInfo {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used: i64,
}

impl From<&PasskeyRecord> for PasskeyInfo {
    fn from(r: &PasskeyRecord) -> Self {
        Self {
            id: r.id.clone(),
            name: r.name.clone(),
            created_at: r.created_at,
            last_used: r.last_used,
        }
    }
}

pub(crate) enum Ceremony {
    Register {
        account_id: String,
        state: Box<PasskeyRegistration>,
    },
    Login {
        account_id: String,
        service: String,
        tags: Vec<String>,
        state: Box<PasskeyAuthentication>,
    },
    /// No username: the assertion's user handle says whose it is.
    Discover {
        service: String,
        tags: Vec<String>,
        state: Box<DiscoverableAuthentication>,
    },
    /// A login for an account without passkeys ([`Mcias::passkey_decoy`]):
    /// no assertion finishes it.
    Decoy,
}

/// The key decoy credential ids are derived with (HMAC-SHA256 of the
/// username): a random 32-byte file beside the master key, `mcias/decoy.key`
/// (0600), so decoys stay the same across restarts like real ids do.
pub(crate) struct Decoy(aws_lc_rs::hmac::Key);

impl Decoy {
    pub(crate) fn load_or_create(path: &std::path::Path) -> Result<Self, IamError> {
        mc_kit::seal::KeyFileSealer::load_or_create(path).map_err(IamError::internal)?;
        let bytes = Zeroizing::new(std::fs::read(path).map_err(IamError::internal)?);
        Ok(Self(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            &bytes,
        )))
    }

    /// The decoy credential id of `username` (base64url, like real ones).
    pub(crate) fn credential_id(&self, username: &str) -> String {
        let tag = aws_lc_rs::hmac::sign(&self.0, username.as_bytes());
        B64.encode(tag.as_ref())
    }
}

/// The relying party for `rp_id` and `origin` (empty: `https://<rp_id>`).
pub(crate) fn relying_party(rp_id: &str, origin: &str) -> Result<Webauthn, IamError> {
    let origin = if origin.is_empty() {
        format!("https://{rp_id}")
    } else {
        origin.to_owned()
    };
    let url = Url::parse(&origin)
        .map_err(|e| IamError::invalid("mcias.webauthn_origin", e.to_string()))?;
    WebauthnBuilder::new(rp_id, &url)
        .and_then(|b| b.rp_name("Metacircular").build())
        .map_err(|e| IamError::invalid("mcias.webauthn_rp_id", e.to_string()))
}

pub(crate) fn bad_credential(e: impl std::fmt::Display) -> IamError {
    IamError::invalid("credential", e.to_string())
}

impl Mcias {
    pub(crate) fn passkeys_of(&self, account_id: &str) -> Result<Vec<PasskeyRecord>, IamError> {
        let mut all: Vec<PasskeyRecord> = self.read()?.all(db::PASSKEYS)?;
        all.retain(|p| p.account_id == account_id);
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(all)
    }

    pub(crate) fn has_passkeys(&self, account_id: &str) -> Result<bool, IamError> {
        Ok(!self.passkeys_of(account_id)?.is_empty())
    }

    pub(crate) fn open_passkey(&self, r: &PasskeyRecord) -> Result<Passkey, IamError> {
        let sealed = B64.decode(&r.sealed).map_err(IamError::internal)?;
        let legacy_aad = format!("passkey:{}", r.id);
        let plain = self
            .master
            .open(TABLE, r.id.as_bytes(), legacy_aad.as_bytes(), &sealed)?;
        serde_json::from_slice(&plain).map_err(IamError::internal)
    }

    pub(crate) fn seal_passkey(&self, id: &str, p: &Passkey) -> Result<String, IamError> {
        let plain = Zeroizing::new(serde_json::to_vec(p).map_err(IamError::internal)?);
        Ok(B64.encode(self.master.seal(TABLE, id.as_bytes(), &plain)?))
    }

    pub(crate) fn start_ceremony(&self, c: Ceremony) -> Result<String, IamError> {
        let id = random_token(24)?;
        self.ceremonies.insert(id.clone(), c).map_err(|_| {
            IamError::RateLimited(
                "too many passkey ceremonies in progress; try again shortly".to_owned(),
            )
        })?;
        Ok(id)
    }

    /// Takes a ceremony out (single use), if it exists and is fresh.
    pub(crate) fn take_ceremony(&self, id: &str) -> Result<Ceremony, IamError> {
        self.ceremonies
            .take(id)
            .ok_or_else(|| IamError::invalid("challenge_id", "unknown, used or expired challenge"))
    }

    /// Starts registering a passkey for the caller (needs the password):
    /// returns the challenge id and the `PublicKeyCredentialCreationOptions`.
    pub async fn begin_passkey_registration(
        &self,
        caller: &Caller,
        password: &str,
    ) -> Result<(String, serde_json::Value), IamError> {
        let p = caller.require()?;
        let account = self.account(&p.account_id)?;
        if account.account_type != AccountType::Human {
            return Err(IamError::invalid(
                "account",
                "passkeys are for human accounts",
            ));
        }
        self.recheck_password(caller, &account, password, "mfa.passkey.register")
            .await?;
        let existing = self.passkeys_of(&account.id)?;
        if existing.len() >= MAX_PER_ACCOUNT {
            return Err(IamError::invalid(
                "passkeys",
                format!("at most {MAX_PER_ACCOUNT} per account"),
            ));
        }
        let exclude = existing
            .iter()
            .filter_map(|r| self.open_passkey(r).ok())
            .map(|k| k.cred_id().clone())
            .collect::<Vec<_>>();
        let user = uuid::Uuid::parse_str(&account.id).map_err(IamError::internal)?;
        let (options, state) = self
            .webauthn
            .start_passkey_registration(user, &account.username, &account.username, Some(exclude))
            .map_err(IamError::internal)?;
        let id = self.start_ceremony(Ceremony::Register {
            account_id: account.id,
            state: Box::new(state),
        })?;
        let mut options = serde_json::to_value(options).map_err(IamError::internal)?;
        // Discoverable if the authenticator can (for username-less login).
        if let Some(sel) = options["publicKey"].get_mut("authenticatorSelection") {
            sel["residentKey"] = "preferred".into();
        }
        Ok((id, options))
    }

    /// Finishes a registration with the authenticator's response.
    pub fn finish_passkey_registration(
        &self,
        caller: &Caller,
        challenge_id: &str,
        credential: &str,
        name: &str,
    ) -> Result<PasskeyInfo, IamError> {
        let p = caller.require()?;
        if name.len() > 64 {
            return Err(IamError::invalid("name", "at most 64 bytes"));
        }
        let Ceremony::Register { account_id, state } = self.take_ceremony(challenge_id)? else {
            return Err(IamError::invalid("challenge_id", "not a registration"));
        };
        if account_id != p.account_id {
            return Err(IamError::invalid("challenge_id", "not your registration"));
        }
        let reg: RegisterPublicKeyCredential =
            serde_json::from_str(credential).map_err(bad_credential)?;
        let key = self
            .webauthn
            .finish_passkey_registration(&reg, &state)
            .map_err(bad_credential)?;
        let credential_id = B64.encode(key.cred_id());
        let _g = self.lock();
        let all: Vec<PasskeyRecord> = self.read()?.all(db::PASSKEYS)?;
        if all.iter().any(|r| r.credential_id == credential_id) {
            return Err(IamError::Conflict(
                "this credential is already registered".to_owned(),
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let record = PasskeyRecord {
            sealed: self.seal_passkey(&id, &key)?,
            id,
            account_id: account_id.clone(),
            name: if name.is_empty() {
                "passkey".to_owned()
            } else {
                name.to_owned()
            },
            credential_id,
            created_at: now(),
            last_used: 0,
            counter: 0,
        };
        let tx = Tx::begin(&self.store)?;
        tx.put(db::PASSKEYS, record.id.as_bytes(), &record)?;
        audit(
            &tx,
            caller,
            "mfa.passkey.register",
            &account_id,
            "ok",
            format!("passkey={} name={}", record.id, record.name),
        )?;
        tx.commit()?;
        Ok(PasskeyInfo::from(&record))
    }
    /// The passkeys of `account` (empty: the caller's; another's needs admin).
    pub fn list_passkeys(
        &self,
        caller: &Caller,
        account: &str,
    ) -> Result<Vec<PasskeyInfo>, IamError> {
        let id = self.passkey_owner(caller, account)?;
        Ok(self
            .passkeys_of(&id)?
            .iter()
            .map(PasskeyInfo::from)
            .collect())
    }

    /// Removes passkey `id` of `account` (empty: the caller's). One's own
    /// passkey is a second factor: removing it needs the current password
    /// (re-checked and counted like any re-check), so a stolen session
    /// cannot strip it. An admin removing another account's passkey (account
    /// recovery) needs the admin role, and is audited.
    pub async fn remove_passkey(
        &self,
        caller: &Caller,
        account: &str,
        id: &str,
        password: &str,
    ) -> Result<(), IamError> {
        let owner = self.passkey_owner(caller, account)?;
        if caller.require()?.account_id == owner {
            let me = self.account(&owner)?;
            self.recheck_password(caller, &me, password, "mfa.passkey.remove")
                .await?;
        }
        let _g = self.lock();
        if !self.passkeys_of(&owner)?.iter().any(|r| r.id == id) {
            return Err(IamError::NotFound(format!("no passkey `{id}`")));
        }
        let tx = Tx::begin(&self.store)?;
        tx.delete(db::PASSKEYS.def(), id.as_bytes())?;
        audit(
            &tx,
            caller,
            "mfa.passkey.remove",
            &owner,
            "ok",
            format!("passkey={id}"),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A passkey login for `username` that cannot happen (no such active
    /// human, or no passkey): answered like a real one, so `begin` does not
    /// tell which accounts exist or have passkeys. The options have the
    /// real ones' shape, with one credential id derived from the username
    /// under a key of this store ([`Decoy`]), so repeated calls agree; the
    /// ceremony it starts refuses every assertion. Audited as `no_passkey`.
    pub(crate) fn passkey_decoy(
        &self,
        caller: &Caller,
        username: &str,
    ) -> Result<(String, serde_json::Value), IamError> {
        let (options, _) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(IamError::internal)?;
        let mut options = serde_json::to_value(options).map_err(IamError::internal)?;
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        if let Some(pk) = options
            .get_mut("publicKey")
            .and_then(serde_json::Value::as_object_mut)
        {
            // What `start_passkey_authentication` leaves out or sets.
            pk.remove("extensions");
            pk.insert(
                "allowCredentials".to_owned(),
                serde_json::json!([{"type": "public-key", "id": self.decoy.credential_id(username)}]),
            );
        }
        let id = self.start_ceremony(Ceremony::Decoy)?;
        let tx = Tx::begin(&self.store)?;
        audit(&tx, caller, "auth.passkey", username, "no_passkey", "")?;
        tx.commit()?;
        Ok((id, options))
    }

    fn passkey_owner(&self, caller: &Caller, account: &str) -> Result<String, IamError> {
        let p = caller.require()?;
        if account.is_empty() || account == p.account_id || account == p.username {
            return Ok(p.account_id.clone());
        }
        if !p.is_admin() {
            return Err(IamError::Forbidden(
                "another account's passkeys need the admin role".to_owned(),
            ));
        }
        Ok(self.find(account)?.id)
    }
}
