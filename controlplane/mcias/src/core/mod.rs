//! The MCIAS operations, independent of transport, split by capability:
//! [`accounts`], [`login`], [`tokens`], [`policy`], [`mfa`] (TOTP and
//! passkeys), [`sso`] and [`audit`], over one small shared state, [`Mcias`].
//! REST, gRPC and OIDC ([`crate::api`]) and the web UI ([`crate::ui`]) are
//! adapters over these; the core imports neither (check-arch rule 12).
//!
//! Invariants: every mutation and every login decision writes an audit
//! event in the same transaction as the change it records; Argon2id work
//! runs on the blocking pool inside the core ([`crate::password::Hasher`]'s
//! async methods), so no adapter can run it on an async thread by accident.
//!
//! Password lockouts lock out only sources the account has not signed in
//! from, and answer like a wrong password ([`lockout`]); passkey logins
//! are not subject to them: a sole admin cannot be locked out by others.
//!
//! Dependencies between the capability modules point one way: `audit` ←
//! `accounts` ← (`tokens`, `policy`, `mfa`) ← `login`, `sso`.

pub mod accounts;
pub mod audit;
pub(crate) mod limits;
pub(crate) mod lockout;
pub mod login;
pub mod mfa;
pub mod policy;
pub mod sso;
#[cfg(test)]
mod tests;
pub mod tokens;

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use mc_kit::ephemeral::SingleUse;
use mc_kit::store::Store;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::config::McAuthConfig;
use crate::error::IamError;
use crate::keys::{KeyRecord, KeyRing, MasterKey};
use crate::password::Hasher;
use crate::policy::{Effect, Rule};
use crate::store::{self as db, ReadTx, WriteTx as Tx};

pub use accounts::NewAccount;
pub use audit::AuditEvent;
pub use login::LoginInput;
pub use tokens::{LocalVerifier, TokenRecord};

/// Unix seconds (the platform's one clock).
pub fn now() -> i64 {
    mc_kit::clock::unix_now()
}

/// Who is asking, and from where: the serving layer's one caller type.
pub use mc_service::caller::Caller;

/// A signed token just issued.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub token: String,
    pub expires_at: i64,
    pub jti: String,
}

/// Credentials of the first admin, written once (0600) when the store is new.
#[derive(Clone, Serialize, Deserialize)]
pub struct Bootstrap {
    pub username: String,
    pub password: String,
}

impl Drop for Bootstrap {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

impl std::fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrap")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The shared state of the core: the store, keys and the in-memory maps.
/// Each capability module adds its operations to it.
pub struct Mcias {
    pub(crate) store: Arc<Store>,
    pub(crate) config: McAuthConfig,
    pub(crate) hasher: Hasher,
    pub(crate) master: MasterKey,
    /// The WebAuthn relying party (see [`mfa::passkey`]).
    pub(crate) webauthn: webauthn_rs::prelude::Webauthn,
    /// Derives the decoy answers of passkey logins that cannot happen.
    pub(crate) decoy: mfa::passkey::Decoy,
    /// Passkey ceremonies in progress: single use, 120 s, bounded.
    pub(crate) ceremonies: SingleUse<String, mfa::passkey::Ceremony>,
    pub(crate) keys: RwLock<KeyRing>,
    /// Per-IP request rate and failed logins.
    pub(crate) limits: limits::Limits,
    /// Serializes read-modify-write of accounts.
    write: Mutex<()>,
    /// Two-step TOTP logins: nonce → account id. Single use, 90 s, bounded.
    pub(crate) challenges: SingleUse<String, String>,
    /// Pending and redeemed SSO authorization codes (see [`sso`]).
    pub(crate) codes: sso::Codes,
    /// When the store was last pruned (see [`audit::Pruned`]).
    pub(crate) last_prune: std::sync::atomic::AtomicI64,
}

pub(crate) fn sha256(s: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes())
        .as_ref()
        .to_vec()
}

pub(crate) fn random_token(bytes: usize) -> Result<String, IamError> {
    use aws_lc_rs::rand::SecureRandom;
    use base64::Engine;
    let mut b = zeroize::Zeroizing::new(vec![0_u8; bytes]);
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(IamError::internal)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b.as_slice()))
}

impl Mcias {
    /// Opens the store and keys; on a new store, creates the signing key, a
    /// default "allow login" rule and the bootstrap admin (returned once).
    pub fn open(
        data_dir: &Path,
        config: McAuthConfig,
    ) -> Result<(Self, Option<Bootstrap>), IamError> {
        let store = Arc::new(Store::open(&db::path(data_dir), &db::SCHEMA)?);
        let master = MasterKey::load_or_create(&data_dir.join("mcias").join("master.key"))?;
        let hasher = Hasher::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
        )?;
        let mut records: Vec<KeyRecord> = ReadTx::begin(&store)?.all(db::KEYS)?;
        let have = |alg: &str| records.iter().any(|r| r.alg == alg);
        let mut new = Vec::new();
        if !have(crate::keys::EDDSA) {
            new.push(KeyRing::generate(&master, now())?);
        }
        if !have(crate::keys::RS256) {
            new.push(KeyRing::generate_rsa(&master, now())?);
        }
        if !new.is_empty() {
            let tx = Tx::begin(&store)?;
            for k in &new {
                tx.put(db::KEYS, k.kid.as_bytes(), k)?;
            }
            tx.commit()?;
            records.extend(new);
        }
        let keys = KeyRing::load(&master, &records, now())?;
        let iam = Self {
            store,
            hasher,
            master,
            keys: RwLock::new(keys),
            limits: limits::Limits::new(
                config.requests_per_minute_per_ip,
                config.failures_per_minute_per_ip,
                config.ipv6_prefix_len,
            ),
            write: Mutex::new(()),
            challenges: SingleUse::new(login::CHALLENGE_TTL, login::MAX_CHALLENGES),
            codes: sso::Codes::new(config.sso_code_ttl.get()),
            last_prune: std::sync::atomic::AtomicI64::new(0),
            webauthn: mfa::passkey::relying_party(&config.webauthn_rp_id, &config.webauthn_origin)?,
            decoy: mfa::passkey::Decoy::load_or_create(&data_dir.join("mcias").join("decoy.key"))?,
            ceremonies: SingleUse::new(mfa::passkey::CEREMONY_TTL, mfa::passkey::MAX_CEREMONIES),
            config,
        };
        let bootstrap = iam.bootstrap()?;
        Ok((iam, bootstrap))
    }

    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    fn bootstrap(&self) -> Result<Option<Bootstrap>, IamError> {
        let accounts: Vec<crate::model::Account> = self.read()?.all(db::ACCOUNTS)?;
        if !accounts.is_empty() {
            return Ok(None);
        }
        let creds = Bootstrap {
            username: "admin".to_owned(),
            password: random_token(18)?,
        };
        let system = Caller::default();
        // At start, before serving: the one hash that runs on the caller's thread.
        let hash = self.hasher.hash_blocking(&creds.password)?;
        self.insert_account(
            &system,
            NewAccount {
                username: creds.username.clone(),
                account_type: "human".to_owned(),
                password: String::new(),
                roles: vec!["admin".to_owned()],
                tags: vec![],
            },
            hash,
            true,
        )?;
        let rules: Vec<Rule> = self.read()?.all(db::POLICY)?;
        if rules.is_empty() {
            self.create_rule(
                &system,
                Rule {
                    id: String::new(),
                    priority: 1000,
                    effect: Effect::Allow,
                    description:
                        "default: every active account may log in (edit or add deny rules)"
                            .to_owned(),
                    roles: vec![],
                    account_types: vec![],
                    account_ids: vec![],
                    service_names: vec![],
                    required_tags: vec![],
                    actions: vec!["auth:login".to_owned()],
                    not_before: 0,
                    expires_at: 0,
                    enabled: true,
                },
                true,
            )?;
        }
        tracing::warn!(username = %creds.username, "created the bootstrap admin account");
        Ok(Some(creds))
    }

    /// A consistent read view of the store.
    pub(crate) fn read(&self) -> Result<ReadTx, mc_kit::store::StoreError> {
        ReadTx::begin(&self.store)
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Session lifetimes, for the modules that issue sessions.
pub(crate) fn ttl_secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
