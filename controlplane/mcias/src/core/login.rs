//! Logging in: by password (with a TOTP code, in one step or two), or by
//! passkey; each way ends in [`Mcias::grant_login`] (account status, login
//! policy, then a session).
//!
//! A password login is a sequence of small steps ([`Mcias::login`]); a step
//! that refuses says what to audit ([`Stop`]), and one place records it,
//! with the failure counters it changed, in the login's transaction.
//! Unknown usernames cost one Argon2id verification like known ones, so a
//! login takes the same time whether the account exists or not.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Deserialize;
use webauthn_rs::prelude::{AuthenticationResult, Passkey, PublicKeyCredential, WebauthnError};
use zeroize::Zeroize;

use crate::config::TOTP_LOCKOUT_MAX;
use crate::core::audit::{Refusal, audit, refuse};
use crate::core::mfa::passkey::{Ceremony, bad_credential};
use crate::core::{Caller, Mcias, Session, now, random_token, ttl_secs};
use crate::error::IamError;
use crate::model::{self, Account, AccountStatus, AccountType};
use crate::policy::Effect;
use crate::store::{self as db, WriteTx as Tx};

/// Two-step logins: how long the nonce stands in for the password.
pub(crate) const CHALLENGE_TTL: Duration = Duration::from_secs(90);
pub(crate) const MAX_CHALLENGES: usize = 10_000;

const ACTION: &str = "auth.login";

#[derive(Clone, Default, Deserialize)]
pub struct LoginInput {
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub totp_code: Option<String>,
    /// Second step of a two-step login: stands in for the password.
    #[serde(default)]
    pub totp_nonce: Option<String>,
    #[serde(default)]
    pub service_name: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl std::fmt::Debug for LoginInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginInput")
            .field("username", &self.username)
            .field("service_name", &self.service_name)
            .finish_non_exhaustive()
    }
}

fn bad_credentials() -> IamError {
    IamError::Unauthenticated("invalid username or password".to_owned())
}

/// What the first factor proved.
struct Proof {
    ok: bool,
    /// The second step of a two-step login (the nonce, not the password).
    via_nonce: bool,
}

/// Why a login step stops.
enum Stop {
    /// Audited and answered; `save` holds the account whose failure counters
    /// changed, `counts` whether it counts against the source address.
    Refused(Box<Refused>),
    /// A fault: answered, nothing recorded (the transaction is dropped).
    Failed(IamError),
}

struct Refused {
    refusal: Refusal,
    save: Option<Account>,
    counts: bool,
}

impl From<IamError> for Stop {
    fn from(e: IamError) -> Self {
        Self::Failed(e)
    }
}

impl From<mc_kit::store::StoreError> for Stop {
    fn from(e: mc_kit::store::StoreError) -> Self {
        Self::Failed(e.into())
    }
}

fn stop(target: &str, result: &'static str, error: IamError) -> Stop {
    Stop::Refused(Box::new(Refused {
        refusal: Refusal::new(ACTION, target, result, error),
        save: None,
        counts: false,
    }))
}

/// A failed credential: counts against the address, saves `account`'s counters.
fn failed(account: Option<&Account>, target: &str, result: &'static str, error: IamError) -> Stop {
    let detail = match (account, result) {
        (Some(a), "bad_totp" | "bad_nonce") => {
            format!("second-factor failures={}", a.totp_failures)
        }
        (Some(a), "bad_credentials") => format!("failures={}", a.failed_logins),
        _ => String::new(),
    };
    Stop::Refused(Box::new(Refused {
        refusal: Refusal::new(ACTION, target, result, error).detail(detail),
        save: account.cloned(),
        counts: true,
    }))
}

/// A locked account is refused (from sources it has not signed in from,
/// see [`crate::core::lockout`]) before its password is looked at, with
/// the reply of a wrong password: locked and unknown accounts answer alike.
fn not_locked(account: &Account, caller: &Caller, now: i64) -> Result<(), Stop> {
    if account.locked_until > now && crate::core::lockout::applies(account, caller) {
        let remaining = format!("locked for {} s", account.locked_until - now);
        return Err(Stop::Refused(Box::new(Refused {
            refusal: Refusal::new(ACTION, &account.id, "locked", bad_credentials())
                .detail(remaining),
            save: None,
            counts: false,
        })));
    }
    Ok(())
}

/// The service and tags a login asks for, or why the request is malformed.
fn check_input(input: &LoginInput) -> Result<(String, Vec<String>), IamError> {
    let service = model::check_service_name(input.service_name.as_deref())?;
    let tags = model::check_tags(&input.tags)?;
    model::check_login_username(&input.username)?;
    if input.password.len() > 1024 {
        return Err(IamError::invalid("password", "at most 1024 bytes"));
    }
    if input.totp_code.as_ref().is_some_and(|c| c.len() > 16)
        || input.totp_nonce.as_ref().is_some_and(|n| n.len() > 64)
    {
        return Err(IamError::invalid(
            "totp_code",
            "at most 16 bytes (nonce: 64)",
        ));
    }
    Ok((service, tags))
}

impl Mcias {
    /// Password login. Bad credentials → 401; locked or rate-limited → 429;
    /// a login the policy denies → 403. Every outcome is audited.
    /// The password is wiped from memory once the login has been decided.
    pub async fn login(&self, caller: &Caller, input: LoginInput) -> Result<Session, IamError> {
        let mut input = input;
        let result = self.password_login(caller, &input).await;
        input.password.zeroize();
        result
    }

    async fn password_login(
        &self,
        caller: &Caller,
        input: &LoginInput,
    ) -> Result<Session, IamError> {
        self.rate_limit(caller)?;
        let started = Instant::now();
        let (service, tags) = check_input(input)?;
        if self.limits.backed_off(caller) {
            return self.refuse(
                caller,
                Refusal::new(
                    ACTION,
                    &input.username,
                    "rate_limited",
                    IamError::RateLimited(
                        "too many failed logins from this address; try again later".to_owned(),
                    ),
                )
                .detail("too many failures from this address"),
            );
        }
        let candidate = self.login_candidate(&input.username)?;
        let proof = self.first_factor(input, candidate.as_ref()).await?;
        let session = self.finish_login(caller, input, candidate, &proof, &service, &tags)?;
        tracing::debug!(elapsed = ?started.elapsed(), "login");
        Ok(session)
    }

    /// The human, not deleted account `username` names, if any.
    fn login_candidate(&self, username: &str) -> Result<Option<Account>, IamError> {
        Ok(model::check_username(username)
            .ok()
            .map(|n| self.account_by_name(&n))
            .transpose()?
            .flatten()
            .filter(|a| a.status != AccountStatus::Deleted && a.account_type == AccountType::Human))
    }

    /// A two-step login's second step: the single-use nonce stands in for
    /// the password. Otherwise always one Argon2id verification, whether or
    /// not the account exists.
    async fn first_factor(
        &self,
        input: &LoginInput,
        candidate: Option<&Account>,
    ) -> Result<Proof, IamError> {
        if let Some(nonce) = input.totp_nonce.as_deref().filter(|n| !n.is_empty()) {
            let issued_for = self.challenges.take(nonce);
            let ok = matches!((issued_for, candidate), (Some(id), Some(a)) if id == a.id);
            return Ok(Proof {
                ok,
                via_nonce: true,
            });
        }
        let phc = candidate.map(|a| a.password_hash.as_str());
        Ok(Proof {
            ok: self.hasher.verify(&input.password, phc).await?,
            via_nonce: false,
        })
    }

    /// The steps after the first factor, under the account lock and in one
    /// transaction: a refusal is audited (with the counters it changed) in it.
    fn finish_login(
        &self,
        caller: &Caller,
        input: &LoginInput,
        candidate: Option<Account>,
        proof: &Proof,
        service: &str,
        tags: &[String],
    ) -> Result<Session, IamError> {
        let _g = self.lock();
        let tx = Tx::begin(&self.store)?;
        let steps = || -> Result<Account, Stop> {
            let account = self.current(candidate, &input.username)?;
            let now = now();
            not_locked(&account, caller, now)?;
            let mut account = if proof.via_nonce {
                self.nonce_step(account, proof.ok, now)?
            } else {
                self.password_step(account, proof.ok, now)?
            };
            if !proof.via_nonce {
                self.passkey_not_required(&account)?;
            }
            self.totp_step(
                &mut account,
                input.totp_code.as_deref().unwrap_or_default(),
                now,
            )?;
            Ok(account)
        };
        match steps() {
            Ok(account) => self.grant_login(tx, caller, account, service, tags, "password"),
            Err(s) => self.stop(tx, caller, s),
        }
    }

    /// Records a stopped login in `tx` and answers its error.
    fn stop<T>(&self, tx: Tx, caller: &Caller, stop: Stop) -> Result<T, IamError> {
        match stop {
            Stop::Failed(e) => Err(e),
            Stop::Refused(r) => {
                if r.counts {
                    self.limits.failed(caller);
                }
                if let Some(a) = &r.save {
                    tx.put(db::ACCOUNTS, a.id.as_bytes(), a)?;
                }
                refuse(tx, caller, r.refusal)
            }
        }
    }

    /// The candidate as stored now (under the lock), or a refusal.
    fn current(&self, candidate: Option<Account>, username: &str) -> Result<Account, Stop> {
        candidate
            .and_then(|a| self.account(&a.id).ok())
            .ok_or_else(|| failed(None, username, "bad_credentials", bad_credentials()))
    }

    /// A wrong password counts a failure; enough of them lock the account,
    /// with exponential back-off (doubling per further failure, capped at a day).
    fn password_step(&self, mut account: Account, ok: bool, now: i64) -> Result<Account, Stop> {
        if ok {
            return Ok(account);
        }
        self.password_failed(&mut account, now);
        Err(failed(
            Some(&account),
            &account.id,
            "bad_credentials",
            bad_credentials(),
        ))
    }

    /// Counts a wrong password (at login or at a re-check): enough of them
    /// lock the account, doubling per further failure, at most a day.
    pub(crate) fn password_failed(&self, account: &mut Account, now: i64) {
        account.failed_logins = account.failed_logins.saturating_add(1);
        if account.failed_logins >= self.config.lockout_after {
            let extra = account.failed_logins - self.config.lockout_after;
            let secs = self
                .config
                .lockout
                .get()
                .as_secs()
                .saturating_mul(1_u64 << extra.min(10))
                .min(86_400);
            account.locked_until = now + i64::try_from(secs).unwrap_or(86_400);
        }
    }

    /// The second step of a two-step login: a wrong (unknown, used or
    /// foreign) nonce is a second-factor failure, not a password failure.
    fn nonce_step(&self, mut account: Account, ok: bool, now: i64) -> Result<Account, Stop> {
        if ok {
            return Ok(account);
        }
        self.second_factor_failed(&mut account, now);
        Err(failed(
            Some(&account),
            &account.id,
            "bad_credentials",
            bad_credentials(),
        ))
    }

    /// Counts a wrong second factor; enough of them in a row lock the
    /// second step (not the password) for a bounded, growing time.
    fn second_factor_failed(&self, account: &mut Account, now: i64) {
        account.totp_failures = account.totp_failures.saturating_add(1);
        if let Some(secs) = totp_lock_secs(
            account.totp_failures,
            self.config.totp_lockout_after,
            self.config.totp_lockout.get(),
        ) {
            account.totp_locked_until = now.saturating_add(i64::try_from(secs).unwrap_or(0));
        }
    }

    /// Passkeys are a second factor too: with one (and no TOTP), the
    /// password alone does not log in.
    fn passkey_not_required(&self, account: &Account) -> Result<(), Stop> {
        if !account.totp_enabled && self.has_passkeys(&account.id)? {
            return Err(stop(
                &account.id,
                "passkey_required",
                IamError::PasskeyRequired,
            ));
        }
        Ok(())
    }

    /// With TOTP enabled: while the second step is locked, every attempt
    /// (even the right code) is refused; no code starts a two-step login (a
    /// nonce); a wrong or reused code counts a second-factor failure; a
    /// good one is remembered so it cannot be used again.
    fn totp_step(&self, account: &mut Account, code: &str, now: i64) -> Result<(), Stop> {
        if !account.totp_enabled {
            return Ok(());
        }
        if account.totp_locked_until > now {
            let e = IamError::RateLimited(format!(
                "second factor locked after repeated wrong codes; try again in {} s",
                account.totp_locked_until - now
            ));
            return Err(stop(&account.id, "totp_locked", e));
        }
        if code.is_empty() {
            let nonce = random_token(24)?;
            self.challenges
                .insert(nonce.clone(), account.id.clone())
                .map_err(|_| {
                    IamError::RateLimited("too many pending logins; try again shortly".to_owned())
                })?;
            let expires_at = now + ttl_secs(CHALLENGE_TTL);
            return Err(stop(
                &account.id,
                "totp_required",
                IamError::TotpRequired { nonce, expires_at },
            ));
        }
        let secs = u64::try_from(now).unwrap_or(0);
        match crate::totp::check(&self.master, account, code, secs)? {
            Some(step) => {
                account.totp_last_step = step;
                Ok(())
            }
            None => {
                self.second_factor_failed(account, now);
                Err(failed(
                    Some(account),
                    &account.id,
                    "bad_totp",
                    IamError::Unauthenticated("invalid TOTP code".to_owned()),
                ))
            }
        }
    }

    /// The end of every login, whatever proved who it is (`how`): account
    /// status, login policy, then a session; each outcome audited in `tx`.
    pub(crate) fn grant_login(
        &self,
        tx: Tx,
        caller: &Caller,
        mut account: Account,
        service: &str,
        tags: &[String],
        how: &str,
    ) -> Result<Session, IamError> {
        if account.status != AccountStatus::Active {
            let e = IamError::Forbidden("account is disabled".to_owned());
            return refuse(tx, caller, Refusal::new(ACTION, &account.id, "disabled", e));
        }
        let decision = self.login_decision(&account, service, tags)?;
        if decision.effect == Effect::Deny {
            let e = IamError::Forbidden(format!("login to `{service}` is not allowed by policy"));
            let r = Refusal::new(ACTION, &account.id, "denied", e)
                .detail(format!("service={service} rule={}", decision.rule_id));
            return refuse(tx, caller, r);
        }
        account.failed_logins = 0;
        account.locked_until = 0;
        account.totp_failures = 0;
        account.totp_locked_until = 0;
        account.last_login = now();
        crate::core::lockout::remember(&mut account, caller);
        tx.put(db::ACCOUNTS, account.id.as_bytes(), &account)?;
        let origin = crate::core::tokens::Origin {
            auth_time: 0,
            service: service.to_owned(),
            tags: tags.to_vec(),
        };
        let session = self.issue_from(
            &tx,
            &account,
            "session",
            self.session_ttl(&account),
            &format!("login to {service}"),
            None,
            Vec::new(),
            &origin,
        )?;
        audit(
            &tx,
            caller,
            ACTION,
            &account.id,
            "ok",
            format!(
                "service={service} rule={} jti={} via={how}",
                decision.rule_id, session.jti
            ),
        )?;
        tx.commit()?;
        Ok(session)
    }

    // Passkey login.

    /// Starts a passkey login for `username`: the `PublicKeyCredentialRequestOptions`.
    pub fn begin_passkey_login(
        &self,
        caller: &Caller,
        username: &str,
        service: &str,
        tags: &[String],
    ) -> Result<(String, serde_json::Value), IamError> {
        self.rate_limit(caller)?;
        let tags = model::check_tags(tags)?;
        let service = model::check_service_name(Some(service))?;
        model::check_login_username(username)?;
        if username.is_empty() {
            let (options, state) = self
                .webauthn
                .start_discoverable_authentication()
                .map_err(IamError::internal)?;
            let mut options = serde_json::to_value(options).map_err(IamError::internal)?;
            // A modal request, not the autofill (conditional) one.
            if let Some(o) = options.as_object_mut() {
                o.remove("mediation");
            }
            let id = self.start_ceremony(Ceremony::Discover {
                service,
                tags,
                state: Box::new(state),
            })?;
            return Ok((id, options));
        }
        let account = self
            .find(username)
            .ok()
            .filter(|a| a.status == AccountStatus::Active && a.account_type == AccountType::Human);
        let keys = match &account {
            Some(a) => self
                .passkeys_of(&a.id)?
                .iter()
                .map(|r| self.open_passkey(r))
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![],
        };
        let (Some(account), false) = (account, keys.is_empty()) else {
            return self.passkey_decoy(caller, username);
        };
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&keys)
            .map_err(IamError::internal)?;
        let id = self.start_ceremony(Ceremony::Login {
            account_id: account.id,
            service,
            tags,
            state: Box::new(state),
        })?;
        Ok((
            id,
            serde_json::to_value(options).map_err(IamError::internal)?,
        ))
    }

    /// Finishes a passkey login: checks the assertion and the sign counter,
    /// then login policy, and issues a session.
    pub fn finish_passkey_login(
        &self,
        caller: &Caller,
        challenge_id: &str,
        credential: &str,
    ) -> Result<Session, IamError> {
        self.rate_limit(caller)?;
        let ceremony = self.take_ceremony(challenge_id)?;
        let assertion: PublicKeyCredential =
            serde_json::from_str(credential).map_err(bad_credential)?;
        let (account_id, service, tags, result) = match ceremony {
            Ceremony::Register { .. } => {
                return Err(IamError::invalid("challenge_id", "not a login"));
            }
            Ceremony::Decoy => {
                return self.refuse_passkey(caller, "", "bad_assertion", "no passkey login");
            }
            Ceremony::Login {
                account_id,
                service,
                tags,
                state,
            } => {
                let r = self
                    .webauthn
                    .finish_passkey_authentication(&assertion, &state);
                (account_id, service, tags, r)
            }
            Ceremony::Discover {
                service,
                tags,
                state,
            } => {
                let Some((account_id, key)) = self.discovered(&assertion) else {
                    return self.refuse_passkey(caller, "", "bad_assertion", "unknown credential");
                };
                let r = self
                    .webauthn
                    .finish_discoverable_authentication_v2(&assertion, *state, &key);
                (account_id, service, tags, r)
            }
        };
        self.passkey_login(caller, account_id, &service, &tags, result)
    }

    /// Whose passkey a username-less assertion says it is (its user handle
    /// is the account id), and that passkey.
    fn discovered(&self, assertion: &PublicKeyCredential) -> Option<(String, Passkey)> {
        let (user, cred) = self
            .webauthn
            .identify_discoverable_authentication(assertion)
            .ok()?;
        let (account_id, credential_id) = (user.to_string(), B64.encode(cred));
        let record = self
            .passkeys_of(&account_id)
            .ok()?
            .into_iter()
            .find(|r| r.credential_id == credential_id)?;
        Some((account_id, self.open_passkey(&record).ok()?))
    }

    fn refuse_passkey(
        &self,
        caller: &Caller,
        account_id: &str,
        result: &'static str,
        detail: impl Into<String>,
    ) -> Result<Session, IamError> {
        let e = IamError::Unauthenticated("passkey login failed".to_owned());
        let r = Refusal::new("auth.passkey", account_id, result, e).detail(detail);
        self.refuse(caller, r)
    }

    /// A verified (or refused) assertion's last steps: the stored counter,
    /// then the account and login policy.
    fn passkey_login(
        &self,
        caller: &Caller,
        account_id: String,
        service: &str,
        tags: &[String],
        result: Result<AuthenticationResult, WebauthnError>,
    ) -> Result<Session, IamError> {
        let refuse = |result: &'static str, detail: String| {
            self.refuse_passkey(caller, &account_id, result, detail)
        };
        let result = match result {
            Ok(r) => r,
            Err(e) => return refuse("bad_assertion", e.to_string()),
        };
        let credential_id = B64.encode(result.cred_id());
        let _g = self.lock();
        let Some(mut record) = self
            .passkeys_of(&account_id)?
            .into_iter()
            .find(|r| r.credential_id == credential_id)
        else {
            return refuse("bad_assertion", "passkey removed".to_owned());
        };
        // The stored counter, not the one the ceremony started with: another
        // login may have used the credential since.
        if (result.counter() > 0 || record.counter > 0) && result.counter() <= record.counter {
            return refuse(
                "stale_counter",
                format!(
                    "passkey={} counter {} <= stored {}: cloned authenticator or replay",
                    record.id,
                    result.counter(),
                    record.counter
                ),
            );
        }
        let mut key = self.open_passkey(&record)?;
        key.update_credential(&result);
        record.counter = result.counter();
        record.last_used = now();
        record.sealed = self.seal_passkey(&record.id, &key)?;
        let account = self.account(&account_id)?;
        let tx = Tx::begin(&self.store)?;
        tx.put(db::PASSKEYS, record.id.as_bytes(), &record)?;
        self.grant_login(
            tx,
            caller,
            account,
            service,
            tags,
            &format!("passkey={}", record.id),
        )
    }
}

/// How long the second step locks after `failures` wrong second factors in
/// a row: none below `after`, then `first`, doubling per further failure,
/// at most [`TOTP_LOCKOUT_MAX`] (minutes, never hours).
pub(crate) fn totp_lock_secs(failures: u32, after: u32, first: Duration) -> Option<u64> {
    if failures < after {
        return None;
    }
    let extra = (failures - after).min(16);
    Some(
        first
            .as_secs()
            .max(1)
            .saturating_mul(1_u64 << extra)
            .min(TOTP_LOCKOUT_MAX.as_secs()),
    )
}
