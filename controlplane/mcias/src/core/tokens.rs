//! Tokens: issuing (sessions, system tokens), verifying (signature, then
//! revocation, account status and token generation), listing, revoking,
//! logout and renewal (re-decided like the login it descends from, never
//! past `max_session_age` after the sign-in), and the signing keys (JWKS,
//! rotation).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mc_service::auth::{AuthError, Principal};

use crate::core::audit::{Refusal, audit, refuse};
use crate::core::{Caller, Mcias, Session, now, ttl_secs};
use crate::error::IamError;
use crate::keys::{Claims, KeyRecord, KeyRing};
pub use crate::model::TokenRecord;
use crate::model::{self, Account, AccountStatus, AccountType};
use crate::policy::Effect;
use crate::store::{self as db, WriteTx as Tx};

/// The sign-in a session descends from: when it happened and what it was
/// for (what a renewal re-decides).
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    /// Unix seconds; 0: now (a new sign-in).
    pub auth_time: i64,
    pub service: String,
    pub tags: Vec<String>,
}
/// The token record kind of tokens issued to SSO clients.
pub(crate) const SSO_KIND: &str = "sso";

impl Mcias {
    /// [`Self::issue_from`] for a token that is its own sign-in.
    #[allow(clippy::too_many_arguments)] // each is a distinct property of the token
    pub(crate) fn issue(
        &self,
        tx: &Tx,
        account: &Account,
        kind: &str,
        ttl: Duration,
        description: &str,
        audience: Option<&str>,
        scopes: Vec<String>,
    ) -> Result<Session, IamError> {
        let origin = Origin::default();
        self.issue_from(
            tx,
            account,
            kind,
            ttl,
            description,
            audience,
            scopes,
            &origin,
        )
    }

    /// A token for `audience`: MCIAS's own (`None`), or an SSO client's id;
    /// `scopes` limit it (empty: the account's full rights). Recorded in `tx`.
    /// It expires after `ttl`, and at the latest `max_session_age` after
    /// the sign-in of `origin`.
    #[allow(clippy::too_many_arguments)] // each is a distinct property of the token
    pub(crate) fn issue_from(
        &self,
        tx: &Tx,
        account: &Account,
        kind: &str,
        ttl: Duration,
        description: &str,
        audience: Option<&str>,
        scopes: Vec<String>,
        origin: &Origin,
    ) -> Result<Session, IamError> {
        let iat = now();
        let auth_time = if origin.auth_time > 0 {
            origin.auth_time
        } else {
            iat
        };
        let max_age = ttl_secs(self.config.max_session_age.get());
        let exp = iat
            .saturating_add(ttl_secs(ttl))
            .min(auth_time.saturating_add(max_age));
        let jti = uuid::Uuid::new_v4().to_string();
        let claims = Claims {
            sub: account.id.clone(),
            name: account.username.clone(),
            typ: account.account_type.as_str().to_owned(),
            roles: account
                .roles
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            iss: self.config.issuer.clone(),
            aud: audience.unwrap_or(&self.config.audience).to_owned(),
            iat,
            exp,
            jti: jti.clone(),
            r#gen: account.token_generation,
            scopes: scopes.clone(),
            auth_time,
        };
        let token = self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .sign(&claims)?;
        tx.put(
            db::TOKENS,
            jti.as_bytes(),
            &TokenRecord {
                jti: jti.clone(),
                account_id: account.id.clone(),
                kind: kind.to_owned(),
                description: description.to_owned(),
                issued_at: iat,
                expires_at: exp,
                revoked: false,
                generation: account.token_generation,
                scopes,
                auth_time,
                service: origin.service.clone(),
                tags: origin.tags.clone(),
            },
        )?;
        Ok(Session {
            token,
            expires_at: exp,
            jti,
        })
    }

    pub(crate) fn session_ttl(&self, account: &Account) -> Duration {
        if account.is_admin() {
            self.config.admin_token_ttl.get()
        } else {
            self.config.token_ttl.get()
        }
    }

    /// Offline signature check, then revocation, account status and token
    /// generation. SSO tokens are never MCIAS API tokens, whatever their
    /// audience says (their record's kind is `sso`).
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_kind(token, |aud| aud == self.config.audience, false)
    }

    /// [`Self::verify`] for SSO tokens whose audience (client) `accept` agrees to.
    pub(crate) fn verify_aud(
        &self,
        token: &str,
        accept: impl Fn(&str) -> bool,
    ) -> Result<Principal, AuthError> {
        self.verify_kind(token, accept, true)
    }

    fn verify_kind(
        &self,
        token: &str,
        accept: impl Fn(&str) -> bool,
        sso: bool,
    ) -> Result<Principal, AuthError> {
        let claims = self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .verify_aud(token, &self.config.issuer, accept)
            .map_err(AuthError::Invalid)?;
        let record: TokenRecord = self
            .read()
            .and_then(|r| r.get(db::TOKENS, claims.jti.as_bytes()))
            .map_err(|e| AuthError::Unavailable(e.to_string()))?
            .ok_or_else(|| AuthError::Invalid("unknown token".to_owned()))?;
        if record.revoked {
            return Err(AuthError::Revoked);
        }
        // The record is the token's: same account, same generation, and
        // the kind this surface takes (SSO tokens only at the SSO endpoints).
        if record.account_id != claims.sub
            || record.generation != claims.r#gen
            || (record.kind == SSO_KIND) != sso
        {
            return Err(AuthError::Invalid("unknown token".to_owned()));
        }
        let account = self
            .account(&claims.sub)
            .map_err(|_| AuthError::Invalid("account gone".to_owned()))?;
        if account.status != AccountStatus::Active {
            return Err(AuthError::Invalid("account disabled".to_owned()));
        }
        if account.token_generation != claims.r#gen {
            return Err(AuthError::Revoked);
        }
        Ok(Principal {
            account_id: account.id,
            username: account.username,
            account_type: account.account_type.as_str().to_owned(),
            roles: account
                .roles
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            tags: account.tags,
            jti: claims.jti,
            expires_at: claims.exp,
            scopes: claims.scopes,
        })
    }

    /// The online validate endpoint (rate-limited per IP).
    pub fn validate(&self, caller: &Caller, token: &str) -> Result<Option<Principal>, IamError> {
        self.rate_limit(caller)?;
        Ok(self.verify(token).ok())
    }

    pub(crate) fn revoke_jti(&self, tx: &Tx, jti: &str) -> Result<bool, IamError> {
        let Some(mut rec) = self.read()?.get(db::TOKENS, jti.as_bytes())? else {
            return Ok(false);
        };
        if rec.revoked {
            return Ok(false);
        }
        rec.revoked = true;
        tx.put(db::TOKENS, jti.as_bytes(), &rec)?;
        Ok(true)
    }

    pub fn logout(&self, caller: &Caller) -> Result<(), IamError> {
        let p = caller.require()?;
        let tx = Tx::begin(&self.store)?;
        self.revoke_jti(&tx, &p.jti)?;
        audit(
            &tx,
            caller,
            "auth.logout",
            &p.account_id,
            "ok",
            format!("jti={}", p.jti),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A fresh token for the caller's, decided like the login it descends
    /// from: the account must still be active, login policy must still
    /// allow it for the same service and tags (403 otherwise), and the
    /// sign-in must be younger than `max_session_age` (401 otherwise: log in
    /// again). The new token keeps the original `auth_time`.
    pub fn renew(&self, caller: &Caller) -> Result<Session, IamError> {
        let p = caller.require()?;
        self.maybe_prune();
        let account = self.account(&p.account_id)?;
        let record: TokenRecord = self
            .read()?
            .get(db::TOKENS, p.jti.as_bytes())?
            .ok_or_else(|| IamError::Unauthenticated("unknown token".to_owned()))?;
        let origin = Origin {
            auth_time: record.auth_time(),
            service: if record.service.is_empty() {
                "mcias".to_owned()
            } else {
                record.service.clone()
            },
            tags: record.tags.clone(),
        };
        let tx = Tx::begin(&self.store)?;
        let refused = |result: &'static str, e: IamError, detail: String| {
            Refusal::new("auth.renew", &account.id, result, e).detail(detail)
        };
        let age = now().saturating_sub(origin.auth_time);
        if age >= ttl_secs(self.config.max_session_age.get()) {
            let e = IamError::Unauthenticated(
                "the sign-in is older than the maximum session age; log in again".to_owned(),
            );
            return refuse(
                tx,
                caller,
                refused("too_old", e, format!("jti={} age={age}s", p.jti)),
            );
        }
        if account.status != AccountStatus::Active {
            let e = IamError::Forbidden("account is disabled".to_owned());
            return refuse(tx, caller, refused("disabled", e, format!("jti={}", p.jti)));
        }
        let decision = self.login_decision(&account, &origin.service, &origin.tags)?;
        if decision.effect == Effect::Deny {
            let e = IamError::Forbidden(format!(
                "login to `{}` is not allowed by policy",
                origin.service
            ));
            let detail = format!("service={} rule={}", origin.service, decision.rule_id);
            return refuse(tx, caller, refused("denied", e, detail));
        }
        self.revoke_jti(&tx, &p.jti)?;
        let session = self.issue_from(
            &tx,
            &account,
            "session",
            self.session_ttl(&account),
            "renewed",
            None,
            p.scopes.clone(),
            &origin,
        )?;
        audit(
            &tx,
            caller,
            "auth.renew",
            &account.id,
            "ok",
            format!(
                "old={} new={} rule={}",
                p.jti, session.jti, decision.rule_id
            ),
        )?;
        tx.commit()?;
        Ok(session)
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).jwks()
    }

    /// New active signing key; the old one verifies until its tokens expire.
    pub fn rotate_keys(&self, caller: &Caller) -> Result<String, IamError> {
        let _g = self.lock();
        let mut records: Vec<KeyRecord> = self.read()?.all(db::KEYS)?;
        let longest = [
            self.config.token_ttl,
            self.config.admin_token_ttl,
            self.config.system_token_max_ttl,
        ]
        .iter()
        .map(|d| ttl_secs(d.get()))
        .max()
        .unwrap_or(0);
        let t = now();
        let tx = Tx::begin(&self.store)?;
        for r in records.iter_mut().filter(|r| r.active) {
            r.active = false;
            r.verify_until = t.saturating_add(longest);
            tx.put(db::KEYS, r.kid.as_bytes(), r)?;
        }
        let k = KeyRing::generate(&self.master, t)?;
        let rsa = KeyRing::generate_rsa(&self.master, t)?;
        tx.put(db::KEYS, k.kid.as_bytes(), &k)?;
        tx.put(db::KEYS, rsa.kid.as_bytes(), &rsa)?;
        records.push(k.clone());
        records.push(rsa.clone());
        let ring = KeyRing::load(&self.master, &records, t)?;
        audit(
            &tx,
            caller,
            "keys.rotate",
            &k.kid,
            "ok",
            format!("id_token key {}", rsa.kid),
        )?;
        tx.commit()?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = ring;
        Ok(k.kid)
    }

    /// A long-lived token for a system account, issued by an admin without a password.
    pub fn issue_system_token(
        &self,
        caller: &Caller,
        account_id: &str,
        ttl_seconds: u64,
        description: &str,
        scopes: &[String],
    ) -> Result<Session, IamError> {
        let scopes = model::check_scopes(scopes)?;
        let account = self.find(account_id)?;
        if account.account_type != AccountType::System {
            return Err(IamError::invalid(
                "account_id",
                "system tokens are for system accounts; humans log in",
            ));
        }
        if account.status != AccountStatus::Active {
            return Err(IamError::Forbidden("account is disabled".to_owned()));
        }
        if description.len() > 256 {
            return Err(IamError::invalid("description", "at most 256 bytes"));
        }
        let max = self.config.system_token_max_ttl.get();
        let ttl = match ttl_seconds {
            0 => self.config.system_token_ttl.get(),
            s if Duration::from_secs(s) > max => {
                return Err(IamError::invalid(
                    "ttl_seconds",
                    format!("at most {}", max.as_secs()),
                ));
            }
            s => Duration::from_secs(s),
        };
        let tx = Tx::begin(&self.store)?;
        let detail = if scopes.is_empty() {
            String::new()
        } else {
            format!(" scopes={}", scopes.join(","))
        };
        let session = self.issue(&tx, &account, "system", ttl, description, None, scopes)?;
        audit(
            &tx,
            caller,
            "tokens.issue",
            &account.id,
            "ok",
            format!("jti={} ttl={}s{detail}", session.jti, ttl.as_secs()),
        )?;
        tx.commit()?;
        Ok(session)
    }

    pub fn list_tokens(&self, account_id: Option<&str>) -> Result<Vec<TokenRecord>, IamError> {
        let id = match account_id.filter(|s| !s.is_empty()) {
            Some(a) => Some(self.find(a)?.id),
            None => None,
        };
        let t = now();
        let mut all: Vec<TokenRecord> = self.read()?.all(db::TOKENS)?;
        all.retain(|r| r.expires_at > t && id.as_ref().is_none_or(|i| *i == r.account_id));
        all.sort_by_key(|r| std::cmp::Reverse(r.issued_at));
        Ok(all)
    }

    pub fn revoke_token(&self, caller: &Caller, jti: &str) -> Result<bool, IamError> {
        let tx = Tx::begin(&self.store)?;
        let revoked = self.revoke_jti(&tx, jti)?;
        audit(
            &tx,
            caller,
            "tokens.revoke",
            jti,
            if revoked { "ok" } else { "noop" },
            "",
        )?;
        tx.commit()?;
        Ok(revoked)
    }

    /// Which of `jtis` are revoked (or unknown): what verifying services ask.
    pub fn check_revocation(&self, jtis: &[String]) -> Result<Vec<String>, IamError> {
        if jtis.len() > 1000 {
            return Err(IamError::invalid("jtis", "at most 1000 per call"));
        }
        let mut out = Vec::new();
        for j in jtis {
            // An SSO token is for its client, never for a service: not live.
            let live = match self.read()?.get(db::TOKENS, j.as_bytes())? {
                Some(r) if !r.revoked && r.kind != SSO_KIND => {
                    self.account(&r.account_id).is_ok_and(|a| {
                        a.status == AccountStatus::Active && a.token_generation == r.generation
                    })
                }
                _ => false,
            };
            if !live {
                out.push(j.clone());
            }
        }
        Ok(out)
    }
}

/// The token verifier MCIAS itself and the services it hosts use: local keys
/// and store. A verified token is remembered (by the SHA-256 of its text)
/// with the store's commit count, and reused only while no write has been
/// committed since and it has not expired. Revocations, logouts, account and
/// key changes are all commits, so each takes effect at once, as uncached;
/// meanwhile a token in use skips the Ed25519 check and the store reads
/// (about 70 µs a request: docs/PERFORMANCE.md, Metacrypt against OpenBao).
pub struct LocalVerifier {
    mcias: Arc<Mcias>,
    /// token hash → (store commits when verified, what it verified to).
    verified: std::sync::Mutex<HashMap<[u8; 32], (u64, Principal)>>,
}

impl LocalVerifier {
    /// Remembered tokens at most; past it the memory starts over (a bound,
    /// not a policy: a live deployment has far fewer tokens in use at once).
    const MAX_REMEMBERED: usize = 10_000;

    pub fn new(mcias: Arc<Mcias>) -> Self {
        Self {
            mcias,
            verified: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn verify_now(&self, token: &str) -> Result<Principal, AuthError> {
        let key: [u8; 32] = {
            let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
            let mut k = [0_u8; 32];
            k.copy_from_slice(d.as_ref());
            k
        };
        // Read before verifying: a commit racing with the check makes the
        // entry stale at once rather than valid for a state it never saw.
        let commits = self.mcias.store.commits();
        {
            let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, principal)) = verified.get(&key)
                && *at == commits
                && principal.expires_at > now()
            {
                return Ok(principal.clone());
            }
        }
        let principal = self.mcias.verify(token)?;
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= Self::MAX_REMEMBERED {
            verified.clear();
        }
        verified.insert(key, (commits, principal.clone()));
        Ok(principal)
    }
}

impl mc_service::auth::TokenVerifier for LocalVerifier {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Principal, AuthError>> + Send + 'a>,
    > {
        Box::pin(async move { self.verify_now(token) })
    }
}
