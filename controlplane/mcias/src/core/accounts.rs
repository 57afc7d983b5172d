//! Accounts: lookup, creation, status, roles, tags and deletion (never the
//! last active admin), passwords (change, admin-issued reset tokens) and
//! the password re-check before sensitive changes.

use serde::Deserialize;
use zeroize::Zeroize;

use crate::core::audit::{Refusal, audit, refuse};
use crate::core::{Caller, Mcias, now, random_token, sha256};
use crate::error::IamError;
use crate::model::{self, Account, AccountStatus, AccountType, Role};
use crate::store::{self as db, WriteTx as Tx};

#[derive(Clone, Deserialize)]
pub struct NewAccount {
    pub username: String,
    #[serde(default, rename = "type")]
    pub account_type: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Mcias {
    pub(crate) fn account_by_name(&self, username: &str) -> Result<Option<Account>, IamError> {
        let Some(id) = self.read()?.get_raw(db::USERNAMES, username.as_bytes())? else {
            return Ok(None);
        };
        Ok(self.read()?.get(db::ACCOUNTS, &id)?)
    }

    pub fn account(&self, id: &str) -> Result<Account, IamError> {
        self.read()?
            .get(db::ACCOUNTS, id.as_bytes())?
            .filter(|a| a.status != AccountStatus::Deleted)
            .ok_or_else(|| IamError::NotFound(format!("no account `{id}`")))
    }

    /// An account by id or username.
    pub fn find(&self, id_or_name: &str) -> Result<Account, IamError> {
        if let Ok(a) = self.account(id_or_name) {
            return Ok(a);
        }
        let name = model::check_username(id_or_name)
            .map_err(|_| IamError::NotFound(format!("no account `{id_or_name}`")))?;
        self.account_by_name(&name)?
            .filter(|a| a.status != AccountStatus::Deleted)
            .ok_or_else(|| IamError::NotFound(format!("no account `{id_or_name}`")))
    }

    /// A password asked again before a sensitive change (TOTP enrol and
    /// disable, password change, passkey registration), counted like a
    /// login: a wrong one is a failure of the account (which locks it like
    /// failed logins do) and of the source address, audited under `action`
    /// and answered 401. Once the account's failures reach `lockout_after`,
    /// the session that asked is revoked and the answer is 429: a stolen
    /// session is not a password oracle. A locked account or a backed-off
    /// address is refused (429) without looking at the password.
    pub(crate) async fn recheck_password(
        &self,
        caller: &Caller,
        account: &Account,
        password: &str,
        action: &'static str,
    ) -> Result<(), IamError> {
        let locked = |why: &str| {
            IamError::RateLimited(format!("{why}; sign in again later to make this change"))
        };
        if account.locked_until > now() || self.limits.backed_off(caller) {
            let e = locked("too many wrong passwords");
            return self.refuse(caller, Refusal::new(action, &account.id, "locked", e));
        }
        if self
            .hasher
            .verify(password, Some(&account.password_hash))
            .await?
        {
            return Ok(());
        }
        self.limits.failed(caller);
        let _g = self.lock();
        let mut account = self.account(&account.id)?;
        self.password_failed(&mut account, now());
        let tx = Tx::begin(&self.store)?;
        tx.put(db::ACCOUNTS, account.id.as_bytes(), &account)?;
        let mut detail = format!("failures={}", account.failed_logins);
        let error = if account.failed_logins >= self.config.lockout_after {
            if let Some(p) = &caller.principal {
                self.revoke_jti(&tx, &p.jti)?;
                detail.push_str(&format!("; session revoked (jti={})", p.jti));
            }
            locked("too many wrong passwords: this session has ended")
        } else {
            IamError::Unauthenticated("the current password is wrong".to_owned())
        };
        let r = Refusal::new(action, &account.id, "bad_credentials", error).detail(detail);
        crate::core::audit::refuse(tx, caller, r)
    }

    /// Requires the current password; revokes every older token of the account.
    pub async fn change_password(
        &self,
        caller: &Caller,
        old: &str,
        new: &str,
    ) -> Result<(), IamError> {
        let p = caller.require()?;
        model::check_password(new)?;
        let account = self.account(&p.account_id)?;
        self.recheck_password(caller, &account, old, "auth.password")
            .await?;
        let hash = self.hasher.hash(new).await?;
        let _g = self.lock();
        let mut account = self.account(&p.account_id)?;
        account.password_hash = hash;
        account.token_generation = account.token_generation.wrapping_add(1);
        let tx = Tx::begin(&self.store)?;
        tx.put(db::ACCOUNTS, account.id.as_bytes(), &account)?;
        audit(
            &tx,
            caller,
            "auth.password",
            &account.id,
            "ok",
            "all earlier tokens revoked",
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Creates an account (a human one with its password hashed here; the
    /// password is wiped from memory once hashed).
    pub async fn create_account(
        &self,
        caller: &Caller,
        input: NewAccount,
    ) -> Result<Account, IamError> {
        let mut input = input;
        let hash = self.hash_new(&input).await;
        input.password.zeroize();
        self.insert_account(caller, input, hash?, false)
    }

    /// The password hash of a new account (empty for a system account).
    async fn hash_new(&self, input: &NewAccount) -> Result<String, IamError> {
        // The same checks as the insert, before the costly hash.
        model::check_username(&input.username)?;
        let account_type = AccountType::parse(&input.account_type)?;
        let roles = input
            .roles
            .iter()
            .map(|r| Role::parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        model::check_roles(account_type, &roles)?;
        model::check_tags(&input.tags)?;
        match account_type {
            AccountType::Human => {
                model::check_password(&input.password)?;
                self.hasher.hash(&input.password).await
            }
            AccountType::System if input.password.is_empty() => Ok(String::new()),
            AccountType::System => Err(IamError::invalid(
                "password",
                "system accounts have no password; issue them tokens",
            )),
        }
    }

    /// Checks and stores a new account whose password is already hashed.
    pub(crate) fn insert_account(
        &self,
        caller: &Caller,
        input: NewAccount,
        password_hash: String,
        bootstrap: bool,
    ) -> Result<Account, IamError> {
        let username = model::check_username(&input.username)?;
        let account_type = AccountType::parse(&input.account_type)?;
        let roles = input
            .roles
            .iter()
            .map(|r| Role::parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        let roles = model::check_roles(account_type, &roles)?;
        let tags = model::check_tags(&input.tags)?;
        let _g = self.lock();
        if self
            .read()?
            .get_raw(db::USERNAMES, username.as_bytes())?
            .is_some()
        {
            return Err(IamError::Conflict(format!(
                "username `{username}` is taken"
            )));
        }
        let account = Account {
            id: uuid::Uuid::new_v4().to_string(),
            username,
            account_type,
            status: AccountStatus::Active,
            roles,
            tags,
            password_hash,
            created_at: now(),
            last_login: 0,
            failed_logins: 0,
            locked_until: 0,
            token_generation: 0,
            totp_sealed: String::new(),
            totp_enabled: false,
            totp_last_step: 0,
            totp_failures: 0,
            totp_locked_until: 0,
            known_sources: Vec::new(),
        };
        let tx = Tx::begin(&self.store)?;
        tx.put(db::ACCOUNTS, account.id.as_bytes(), &account)?;
        tx.put_raw(
            db::USERNAMES,
            account.username.as_bytes(),
            account.id.as_bytes(),
        )?;
        audit(
            &tx,
            caller,
            "accounts.create",
            &account.id,
            "ok",
            format!(
                "username={}{}",
                account.username,
                if bootstrap { " (bootstrap)" } else { "" }
            ),
        )?;
        tx.commit()?;
        Ok(account)
    }

    pub fn list_accounts(&self) -> Result<Vec<Account>, IamError> {
        let mut all: Vec<Account> = self.read()?.all(db::ACCOUNTS)?;
        all.retain(|a| a.status != AccountStatus::Deleted);
        all.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(all)
    }

    pub(crate) fn modify(
        &self,
        caller: &Caller,
        id: &str,
        action: &str,
        detail: String,
        f: impl FnOnce(&mut Account) -> Result<(), IamError>,
    ) -> Result<Account, IamError> {
        let _g = self.lock();
        let mut account = self.account(id)?;
        f(&mut account)?;
        let tx = Tx::begin(&self.store)?;
        tx.put(db::ACCOUNTS, account.id.as_bytes(), &account)?;
        audit(&tx, caller, action, &account.id, "ok", detail)?;
        tx.commit()?;
        Ok(account)
    }

    fn refuse_last_admin(&self, account: &Account, losing_admin: bool) -> Result<(), IamError> {
        if losing_admin && account.is_admin() {
            let admins = self
                .list_accounts()?
                .into_iter()
                .filter(|a| a.is_admin() && a.status == AccountStatus::Active)
                .count();
            if admins <= 1 {
                return Err(IamError::Forbidden(
                    "refusing to remove the last active admin".to_owned(),
                ));
            }
        }
        Ok(())
    }

    pub fn set_status(&self, caller: &Caller, id: &str, status: &str) -> Result<Account, IamError> {
        let status = AccountStatus::parse(status)?;
        if status == AccountStatus::Deleted {
            return Err(IamError::invalid(
                "status",
                "use delete to delete an account",
            ));
        }
        let current = self.account(id)?;
        self.refuse_last_admin(&current, status != AccountStatus::Active)?;
        self.modify(
            caller,
            id,
            "accounts.update",
            format!("status={}", status.as_str()),
            |a| {
                if status != AccountStatus::Active {
                    a.token_generation = a.token_generation.wrapping_add(1);
                }
                a.status = status;
                a.failed_logins = 0;
                a.locked_until = 0;
                a.totp_failures = 0;
                a.totp_locked_until = 0;
                Ok(())
            },
        )
    }

    pub fn delete_account(&self, caller: &Caller, id: &str) -> Result<(), IamError> {
        let current = self.account(id)?;
        self.refuse_last_admin(&current, true)?;
        self.modify(caller, id, "accounts.delete", String::new(), |a| {
            a.status = AccountStatus::Deleted;
            a.token_generation = a.token_generation.wrapping_add(1);
            Ok(())
        })?;
        Ok(())
    }

    pub fn set_roles(
        &self,
        caller: &Caller,
        id: &str,
        roles: &[String],
    ) -> Result<Account, IamError> {
        let roles = roles
            .iter()
            .map(|r| Role::parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        let current = self.account(id)?;
        let roles = model::check_roles(current.account_type, &roles)?;
        self.refuse_last_admin(&current, !roles.contains(&Role::Admin))?;
        let detail = format!(
            "roles={}",
            roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        self.modify(caller, id, "accounts.roles", detail, |a| {
            // Tokens carry roles, and services that verify them offline read
            // them from the token: a role change ends every token issued
            // before it (the generation is what validate and revocation check).
            if a.roles != roles {
                a.token_generation = a.token_generation.wrapping_add(1);
            }
            a.roles = roles;
            Ok(())
        })
    }

    pub fn set_tags(
        &self,
        caller: &Caller,
        id: &str,
        tags: &[String],
    ) -> Result<Account, IamError> {
        let tags = model::check_tags(tags)?;
        self.modify(
            caller,
            id,
            "accounts.tags",
            format!("tags={}", tags.join(",")),
            |a| {
                a.tags = tags;
                Ok(())
            },
        )
    }

    // Credential reset.

    /// An admin-issued, time-limited, single-use token that lets the account
    /// set a new password without the old one (account recovery).
    pub fn create_reset_token(
        &self,
        caller: &Caller,
        id: &str,
        ttl_seconds: u64,
    ) -> Result<(String, i64), IamError> {
        let account = self.find(id)?;
        if account.account_type != AccountType::Human {
            return Err(IamError::invalid(
                "id",
                "only human accounts have passwords to reset",
            ));
        }
        let ttl = match ttl_seconds {
            0 => 86_400,
            s if s > 7 * 86_400 => return Err(IamError::invalid("ttl_seconds", "at most 7 days")),
            s => s,
        };
        let token = random_token(32)?;
        let expires_at = now().saturating_add(i64::try_from(ttl).unwrap_or(86_400));
        let record = serde_json::json!({"account_id": account.id, "expires_at": expires_at});
        let tx = Tx::begin(&self.store)?;
        tx.put(db::RESETS, &sha256(&token), &record)?;
        audit(
            &tx,
            caller,
            "accounts.reset_token",
            &account.id,
            "ok",
            format!("expires_at={expires_at}"),
        )?;
        tx.commit()?;
        Ok((token, expires_at))
    }

    /// Redeems a reset token: sets the password, unlocks the account and
    /// revokes every earlier token of it. The reset token works once.
    pub async fn redeem_reset_token(
        &self,
        caller: &Caller,
        token: &str,
        new_password: &str,
    ) -> Result<(), IamError> {
        model::check_password(new_password)?;
        let key = sha256(token);
        let live = |r: &serde_json::Value| r["expires_at"].as_i64().is_some_and(|e| e > now());
        let bad_token = || {
            Refusal::new(
                "auth.reset",
                "",
                "bad_token",
                IamError::Unauthenticated("invalid or expired reset token".to_owned()),
            )
        };
        let record: Option<serde_json::Value> = self.read()?.get(db::RESETS, &key)?;
        if !record.as_ref().is_some_and(live) {
            return self.refuse(caller, bad_token());
        }
        let hash = self.hasher.hash(new_password).await?;
        let _g = self.lock();
        // Checked again and consumed in one write transaction: of concurrent
        // redemptions (all past the read above), exactly one finds it.
        let tx = Tx::begin(&self.store)?;
        let record: Option<serde_json::Value> = tx.get(db::RESETS, &key)?;
        let Some(record) = record.filter(live) else {
            return refuse(tx, caller, bad_token());
        };
        let id = record["account_id"].as_str().unwrap_or_default().to_owned();
        let mut account = self.account(&id)?;
        account.password_hash = hash;
        account.failed_logins = 0;
        account.locked_until = 0;
        account.token_generation = account.token_generation.wrapping_add(1);
        tx.delete(db::RESETS.def(), &key)?;
        tx.put(db::ACCOUNTS, account.id.as_bytes(), &account)?;
        audit(
            &tx,
            caller,
            "auth.reset",
            &account.id,
            "ok",
            "password set with a reset token",
        )?;
        tx.commit()?;
        Ok(())
    }
}
