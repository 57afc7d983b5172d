//! The MCIAS operations, independent of transport: REST ([`crate::rest`])
//! and gRPC ([`crate::grpc`]) are thin adapters over these, which is how the
//! two surfaces stay in sync.
//!
//! Every mutation and every login decision writes an audit event in the same
//! transaction as the change it records.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mc_kit::store::Store;
use mc_service::auth::{AuthError, Principal};
use serde::{Deserialize, Serialize};

use crate::config::McAuthConfig;
use crate::error::IamError;
use crate::keys::{Claims, KeyRecord, KeyRing, MasterKey};
use crate::model::{self, Account, AccountStatus, AccountType, Role};
use crate::password::Hasher;
use crate::policy::{self, Decision, Effect, Rule};
use crate::store::{self as db, Tx};

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A token as tracked for listing and revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub jti: String,
    pub account_id: String,
    /// `session` (login) or `system` (issued by an admin).
    pub kind: String,
    pub description: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked: bool,
    /// The account's token generation when issued: a later password change
    /// or disable makes the token revoked for every verifier.
    #[serde(default)]
    pub generation: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: u64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source_ip: String,
    pub result: String,
    pub detail: String,
}

/// Who is asking, and from where.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub principal: Option<Principal>,
    pub source: Option<IpAddr>,
}

impl Caller {
    pub(crate) fn actor(&self) -> String {
        self.principal
            .as_ref()
            .map(|p| p.account_id.clone())
            .unwrap_or_default()
    }
    fn ip(&self) -> String {
        self.source.map(|i| i.to_string()).unwrap_or_default()
    }
    pub fn require(&self) -> Result<&Principal, IamError> {
        self.principal
            .as_ref()
            .ok_or_else(|| IamError::Unauthenticated("missing bearer token".to_owned()))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub token: String,
    pub expires_at: i64,
    pub jti: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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

/// Sliding-window counters per source IP, bounded in entries.
struct IpWindows {
    window: Duration,
    limit: u32,
    max_entries: usize,
    map: HashMap<IpAddr, (Instant, u32)>,
}

impl IpWindows {
    fn new(window: Duration, limit: u32) -> Self {
        Self {
            window,
            limit,
            max_entries: 100_000,
            map: HashMap::new(),
        }
    }

    /// Counts one event; `false` once over the limit within the window.
    fn hit(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.map.len() >= self.max_entries {
            let w = self.window;
            self.map
                .retain(|_, (start, _)| now.duration_since(*start) < w);
            if self.map.len() >= self.max_entries {
                // Still full of live entries: refuse newcomers rather than grow.
                return self.map.contains_key(&ip) && self.check(ip, now);
            }
        }
        let e = self.map.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= self.window {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
        e.1 <= self.limit
    }

    fn check(&mut self, ip: IpAddr, now: Instant) -> bool {
        match self.map.get_mut(&ip) {
            Some(e) if now.duration_since(e.0) < self.window => {
                e.1 = e.1.saturating_add(1);
                e.1 <= self.limit
            }
            _ => true,
        }
    }

    fn over(&self, ip: IpAddr, now: Instant) -> bool {
        self.map
            .get(&ip)
            .is_some_and(|(start, n)| now.duration_since(*start) < self.window && *n >= self.limit)
    }
}

pub struct Iam {
    pub(crate) store: Arc<Store>,
    pub(crate) config: McAuthConfig,
    pub(crate) hasher: Hasher,
    pub(crate) master: MasterKey,
    /// The WebAuthn relying party (see [`crate::passkey`]).
    pub(crate) webauthn: webauthn_rs::prelude::Webauthn,
    /// Passkey ceremonies in progress.
    pub(crate) ceremonies: Mutex<crate::passkey::Ceremonies>,
    pub(crate) keys: RwLock<KeyRing>,
    /// Per-IP request rate (login and validate).
    requests: Mutex<IpWindows>,
    /// Per-IP failed logins (back-off).
    failures: Mutex<IpWindows>,
    /// Serializes read-modify-write of accounts.
    write: Mutex<()>,
    /// Two-step TOTP logins: nonce → (account id, issued). Single use, 90 s.
    challenges: Mutex<HashMap<String, (String, Instant)>>,
    /// Pending and redeemed SSO authorization codes (see [`crate::sso`]).
    pub(crate) codes: Mutex<crate::sso::Codes>,
    /// Binds CSRF tokens of the web UI to sessions (random per process).
    pub(crate) csrf_key: aws_lc_rs::hmac::Key,
}

const CHALLENGE_TTL: Duration = Duration::from_secs(90);
const MAX_CHALLENGES: usize = 10_000;

pub(crate) fn audit(
    tx: &Tx,
    caller: &Caller,
    action: &str,
    target: &str,
    result: &str,
    detail: impl Into<String>,
) -> Result<(), IamError> {
    let mut e = AuditEvent {
        seq: 0,
        at: now(),
        actor: caller.actor(),
        action: action.to_owned(),
        target: target.to_owned(),
        source_ip: caller.ip(),
        result: result.to_owned(),
        detail: detail.into(),
    };
    tx.audit(&mut e, |e, seq| e.seq = seq)?;
    Ok(())
}

/// Credentials of the first admin, written once (0600) when the store is new.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bootstrap {
    pub username: String,
    pub password: String,
}

pub(crate) fn sha256(s: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes())
        .as_ref()
        .to_vec()
}

pub(crate) fn random_token(bytes: usize) -> Result<String, IamError> {
    use aws_lc_rs::rand::SecureRandom;
    use base64::Engine;
    let mut b = vec![0_u8; bytes];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(IamError::internal)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

impl Iam {
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
        let mut records: Vec<KeyRecord> = db::all(&store, db::KEYS)?;
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
        let window = Duration::from_secs(60);
        let iam = Self {
            store,
            hasher,
            master,
            keys: RwLock::new(keys),
            requests: Mutex::new(IpWindows::new(window, config.requests_per_minute_per_ip)),
            failures: Mutex::new(IpWindows::new(window, config.failures_per_minute_per_ip)),
            write: Mutex::new(()),
            challenges: Mutex::new(HashMap::new()),
            codes: Mutex::new(crate::sso::Codes::default()),
            webauthn: crate::passkey::relying_party(
                &config.webauthn_rp_id,
                &config.webauthn_origin,
            )?,
            ceremonies: Mutex::new(crate::passkey::Ceremonies::default()),
            csrf_key: {
                use aws_lc_rs::rand::SecureRandom;
                let mut k = [0_u8; 32];
                aws_lc_rs::rand::SystemRandom::new()
                    .fill(&mut k)
                    .map_err(IamError::internal)?;
                aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &k)
            },
            config,
        };
        let bootstrap = iam.bootstrap()?;
        Ok((iam, bootstrap))
    }

    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    fn bootstrap(&self) -> Result<Option<Bootstrap>, IamError> {
        let accounts: Vec<Account> = db::all(&self.store, db::ACCOUNTS)?;
        if !accounts.is_empty() {
            return Ok(None);
        }
        let password = random_token(18)?;
        let creds = Bootstrap {
            username: "admin".to_owned(),
            password: password.clone(),
        };
        let system = Caller::default();
        self.create_account(
            &system,
            NewAccount {
                username: creds.username.clone(),
                account_type: "human".to_owned(),
                password,
                roles: vec!["admin".to_owned()],
                tags: vec![],
            },
            true,
        )?;
        let rules: Vec<Rule> = db::all(&self.store, db::POLICY)?;
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

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn account_by_name(&self, username: &str) -> Result<Option<Account>, IamError> {
        let Some(id) = db::get_raw(&self.store, db::USERNAMES, username.as_bytes())? else {
            return Ok(None);
        };
        Ok(db::get(&self.store, db::ACCOUNTS, &id)?)
    }

    pub fn account(&self, id: &str) -> Result<Account, IamError> {
        db::get::<Account>(&self.store, db::ACCOUNTS, id.as_bytes())?
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

    /// The per-IP request limit of the public credential endpoints.
    pub fn rate_limit_public(&self, caller: &Caller) -> Result<(), IamError> {
        self.rate_limit(caller)
    }

    pub(crate) fn rate_limit(&self, caller: &Caller) -> Result<(), IamError> {
        if let Some(ip) = caller.source {
            let mut w = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            if !w.hit(ip, Instant::now()) {
                return Err(IamError::RateLimited(
                    "too many requests from this address; try again in a minute".to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// A token for `audience`: MCIAS's own (`None`), or an SSO client's id.
    pub(crate) fn issue(
        &self,
        tx: &Tx,
        account: &Account,
        kind: &str,
        ttl: Duration,
        description: &str,
        audience: Option<&str>,
    ) -> Result<Session, IamError> {
        let iat = now();
        let exp = iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
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

    // ------------------------------------------------------------- auth

    /// Password login. Bad credentials → 401; locked or rate-limited → 429;
    /// a login the policy denies → 403.
    pub fn login(&self, caller: &Caller, input: LoginInput) -> Result<Session, IamError> {
        self.rate_limit(caller)?;
        let started = Instant::now();
        let service = input
            .service_name
            .clone()
            .unwrap_or_else(|| "mcias".to_owned());
        let tags = model::check_tags(&input.tags)?;
        if input.password.len() > 1024 || input.username.len() > 256 {
            return Err(IamError::Unauthenticated(
                "invalid username or password".to_owned(),
            ));
        }
        let now_i = now();
        if let Some(ip) = caller.source
            && self
                .failures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .over(ip, Instant::now())
        {
            let tx = Tx::begin(&self.store)?;
            audit(
                &tx,
                caller,
                "auth.login",
                &input.username,
                "rate_limited",
                "too many failures from this address",
            )?;
            tx.commit()?;
            return Err(IamError::RateLimited(
                "too many failed logins from this address; try again later".to_owned(),
            ));
        }
        let account = model::check_username(&input.username)
            .ok()
            .map(|n| self.account_by_name(&n))
            .transpose()?
            .flatten()
            .filter(|a| a.status != AccountStatus::Deleted && a.account_type == AccountType::Human);
        // A two-step login's second step: the single-use nonce stands in for
        // the password. Otherwise always one Argon2id verification, whether
        // or not the account exists.
        let via_nonce = input.totp_nonce.as_deref().filter(|n| !n.is_empty());
        let ok = match via_nonce {
            Some(nonce) => {
                let mut c = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
                let found = c.remove(nonce);
                matches!((found, &account), (Some((id, at)), Some(a)) if id == a.id && at.elapsed() < CHALLENGE_TTL)
            }
            None => self.hasher.verify(
                &input.password,
                account.as_ref().map(|a| a.password_hash.as_str()),
            ),
        };
        let _g = self.lock();
        let account = match account {
            Some(a) => self.account(&a.id).ok(),
            None => None,
        };
        let tx = Tx::begin(&self.store)?;
        let Some(mut account) = account else {
            if let Some(ip) = caller.source {
                self.failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .hit(ip, Instant::now());
            }
            audit(
                &tx,
                caller,
                "auth.login",
                &input.username,
                "bad_credentials",
                "",
            )?;
            tx.commit()?;
            return Err(IamError::Unauthenticated(
                "invalid username or password".to_owned(),
            ));
        };
        if account.locked_until > now_i {
            audit(&tx, caller, "auth.login", &account.id, "locked", "")?;
            tx.commit()?;
            return Err(IamError::RateLimited(format!(
                "account locked after repeated failed logins; try again in {} s",
                account.locked_until - now_i
            )));
        }
        if !ok {
            account.failed_logins = account.failed_logins.saturating_add(1);
            if account.failed_logins >= self.config.lockout_after {
                // Exponential back-off: lockout, doubling per further failure, capped at a day.
                let extra = account.failed_logins - self.config.lockout_after;
                let secs = self
                    .config
                    .lockout
                    .get()
                    .as_secs()
                    .saturating_mul(1_u64 << extra.min(10))
                    .min(86_400);
                account.locked_until = now_i + i64::try_from(secs).unwrap_or(86_400);
            }
            if let Some(ip) = caller.source {
                self.failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .hit(ip, Instant::now());
            }
            tx.put(db::ACCOUNTS, account.id.as_bytes(), &account)?;
            audit(
                &tx,
                caller,
                "auth.login",
                &account.id,
                "bad_credentials",
                format!("failures={}", account.failed_logins),
            )?;
            tx.commit()?;
            return Err(IamError::Unauthenticated(
                "invalid username or password".to_owned(),
            ));
        }
        // Passkeys are a second factor too: with one (and no TOTP), the
        // password alone does not log in.
        if !account.totp_enabled && via_nonce.is_none() && self.has_passkeys(&account.id)? {
            audit(
                &tx,
                caller,
                "auth.login",
                &account.id,
                "passkey_required",
                "",
            )?;
            tx.commit()?;
            return Err(IamError::PasskeyRequired);
        }
        if account.totp_enabled {
            let code = input.totp_code.as_deref().unwrap_or_default();
            if code.is_empty() {
                let nonce = random_token(24)?;
                {
                    let mut c = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
                    c.retain(|_, (_, at)| at.elapsed() < CHALLENGE_TTL);
                    if c.len() >= MAX_CHALLENGES {
                        return Err(IamError::RateLimited(
                            "too many pending logins; try again shortly".to_owned(),
                        ));
                    }
                    c.insert(nonce.clone(), (account.id.clone(), Instant::now()));
                }
                audit(&tx, caller, "auth.login", &account.id, "totp_required", "")?;
                tx.commit()?;
                return Err(IamError::TotpRequired {
                    nonce,
                    expires_at: now_i + i64::try_from(CHALLENGE_TTL.as_secs()).unwrap_or(90),
                });
            }
            let secs = u64::try_from(now_i).unwrap_or(0);
            match crate::totp::check(&self.master, &account, code, secs)? {
                Some(step) => account.totp_last_step = step,
                None => {
                    account.failed_logins = account.failed_logins.saturating_add(1);
                    if let Some(ip) = caller.source {
                        self.failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .hit(ip, Instant::now());
                    }
                    tx.put(db::ACCOUNTS, account.id.as_bytes(), &account)?;
                    audit(&tx, caller, "auth.login", &account.id, "bad_totp", "")?;
                    tx.commit()?;
                    return Err(IamError::Unauthenticated("invalid TOTP code".to_owned()));
                }
            }
        }
        let session = self.grant_login(tx, caller, account, &service, &tags, "password")?;
        tracing::debug!(elapsed = ?started.elapsed(), "login");
        Ok(session)
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
        let now_i = now();
        if account.status != AccountStatus::Active {
            audit(&tx, caller, "auth.login", &account.id, "disabled", "")?;
            tx.commit()?;
            return Err(IamError::Forbidden("account is disabled".to_owned()));
        }
        let rules: Vec<Rule> = db::all(&self.store, db::POLICY)?;
        let decision = policy::explain(
            &rules,
            &policy::Request {
                account: &account,
                service_name: service,
                tags,
                action: "auth:login",
                at: now_i,
            },
        );
        if decision.effect == Effect::Deny {
            audit(
                &tx,
                caller,
                "auth.login",
                &account.id,
                "denied",
                format!("service={service} rule={}", decision.rule_id),
            )?;
            tx.commit()?;
            return Err(IamError::Forbidden(format!(
                "login to `{service}` is not allowed by policy"
            )));
        }
        account.failed_logins = 0;
        account.locked_until = 0;
        account.last_login = now_i;
        tx.put(db::ACCOUNTS, account.id.as_bytes(), &account)?;
        let session = self.issue(
            &tx,
            &account,
            "session",
            self.session_ttl(&account),
            &format!("login to {service}"),
            None,
        )?;
        audit(
            &tx,
            caller,
            "auth.login",
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

    /// Offline signature check, then revocation, account status and token generation.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_aud(token, |aud| aud == self.config.audience)
    }

    /// [`Self::verify`] for tokens whose audience `accept` agrees to.
    pub(crate) fn verify_aud(
        &self,
        token: &str,
        accept: impl Fn(&str) -> bool,
    ) -> Result<Principal, AuthError> {
        let claims = self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .verify_aud(token, &self.config.issuer, accept)
            .map_err(AuthError::Invalid)?;
        let record: TokenRecord = db::get(&self.store, db::TOKENS, claims.jti.as_bytes())
            .map_err(|e| AuthError::Unavailable(e.to_string()))?
            .ok_or_else(|| AuthError::Invalid("unknown token".to_owned()))?;
        if record.revoked {
            return Err(AuthError::Revoked);
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
            scopes: Vec::new(),
        })
    }

    /// The online validate endpoint (rate-limited per IP).
    pub fn validate(&self, caller: &Caller, token: &str) -> Result<Option<Principal>, IamError> {
        self.rate_limit(caller)?;
        Ok(self.verify(token).ok())
    }

    pub(crate) fn revoke_jti(&self, tx: &Tx, jti: &str) -> Result<bool, IamError> {
        let Some(mut rec) = db::get::<TokenRecord>(&self.store, db::TOKENS, jti.as_bytes())? else {
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

    pub fn renew(&self, caller: &Caller) -> Result<Session, IamError> {
        let p = caller.require()?;
        let account = self.account(&p.account_id)?;
        let tx = Tx::begin(&self.store)?;
        self.revoke_jti(&tx, &p.jti)?;
        let session = self.issue(
            &tx,
            &account,
            "session",
            self.session_ttl(&account),
            "renewed",
            None,
        )?;
        audit(
            &tx,
            caller,
            "auth.renew",
            &account.id,
            "ok",
            format!("old={} new={}", p.jti, session.jti),
        )?;
        tx.commit()?;
        Ok(session)
    }

    /// A password asked again before a sensitive change; a wrong one is
    /// audited under `action` and answered 401.
    pub(crate) fn recheck_password(
        &self,
        caller: &Caller,
        account: &Account,
        password: &str,
        action: &str,
    ) -> Result<(), IamError> {
        if self.hasher.verify(password, Some(&account.password_hash)) {
            return Ok(());
        }
        let tx = Tx::begin(&self.store)?;
        audit(&tx, caller, action, &account.id, "bad_credentials", "")?;
        tx.commit()?;
        Err(IamError::Unauthenticated(
            "the current password is wrong".to_owned(),
        ))
    }

    /// Requires the current password; revokes every older token of the account.
    pub fn change_password(&self, caller: &Caller, old: &str, new: &str) -> Result<(), IamError> {
        let p = caller.require()?;
        model::check_password(new)?;
        let account = self.account(&p.account_id)?;
        self.recheck_password(caller, &account, old, "auth.password")?;
        let hash = self.hasher.hash(new)?;
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

    // ------------------------------------------------------------- TOTP

    /// Starts TOTP enrolment (requires the password): returns the base32
    /// secret and the otpauth URL. Takes effect once confirmed with a code.
    pub fn totp_enroll(
        &self,
        caller: &Caller,
        password: &str,
    ) -> Result<(String, String), IamError> {
        let p = caller.require()?;
        let account = self.account(&p.account_id)?;
        if account.account_type != AccountType::Human {
            return Err(IamError::invalid("account", "TOTP is for human accounts"));
        }
        if !self.hasher.verify(password, Some(&account.password_hash)) {
            return Err(IamError::Unauthenticated(
                "the password is wrong".to_owned(),
            ));
        }
        if account.totp_enabled {
            return Err(IamError::Conflict(
                "TOTP is already enabled; disable it first".to_owned(),
            ));
        }
        let (sealed, secret, url) = crate::totp::enroll(&self.master, &account)?;
        self.modify(caller, &account.id, "mfa.totp.enroll", String::new(), |a| {
            a.totp_sealed = sealed;
            a.totp_enabled = false;
            a.totp_last_step = 0;
            Ok(())
        })?;
        Ok((secret, url))
    }

    /// Confirms enrolment with a current code; from then on logins need a code.
    pub fn totp_confirm(&self, caller: &Caller, code: &str) -> Result<(), IamError> {
        let p = caller.require()?;
        let account = self.account(&p.account_id)?;
        if account.totp_sealed.is_empty() || account.totp_enabled {
            return Err(IamError::invalid("code", "no TOTP enrolment is pending"));
        }
        let Some(step) = crate::totp::check(
            &self.master,
            &account,
            code,
            u64::try_from(now()).unwrap_or(0),
        )?
        else {
            return Err(IamError::invalid("code", "the code does not match"));
        };
        self.modify(
            caller,
            &account.id,
            "mfa.totp.confirm",
            String::new(),
            |a| {
                a.totp_enabled = true;
                a.totp_last_step = step;
                Ok(())
            },
        )?;
        Ok(())
    }

    /// Turns TOTP off (requires the password).
    pub fn totp_disable(&self, caller: &Caller, password: &str) -> Result<(), IamError> {
        let p = caller.require()?;
        let account = self.account(&p.account_id)?;
        if !self.hasher.verify(password, Some(&account.password_hash)) {
            return Err(IamError::Unauthenticated(
                "the password is wrong".to_owned(),
            ));
        }
        self.modify(
            caller,
            &account.id,
            "mfa.totp.disable",
            String::new(),
            |a| {
                a.totp_sealed.clear();
                a.totp_enabled = false;
                Ok(())
            },
        )?;
        Ok(())
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).jwks()
    }

    /// New active signing key; the old one verifies until its tokens expire.
    pub fn rotate_keys(&self, caller: &Caller) -> Result<String, IamError> {
        let _g = self.lock();
        let mut records: Vec<KeyRecord> = db::all(&self.store, db::KEYS)?;
        let longest = [
            self.config.token_ttl,
            self.config.admin_token_ttl,
            self.config.system_token_max_ttl,
        ]
        .iter()
        .map(|d| i64::try_from(d.get().as_secs()).unwrap_or(i64::MAX))
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

    // --------------------------------------------------------- accounts

    pub fn create_account(
        &self,
        caller: &Caller,
        input: NewAccount,
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
        let password_hash = match account_type {
            AccountType::Human => {
                model::check_password(&input.password)?;
                self.hasher.hash(&input.password)?
            }
            AccountType::System if input.password.is_empty() => String::new(),
            AccountType::System => {
                return Err(IamError::invalid(
                    "password",
                    "system accounts have no password; issue them tokens",
                ));
            }
        };
        let _g = self.lock();
        if db::get_raw(&self.store, db::USERNAMES, username.as_bytes())?.is_some() {
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
        let mut all: Vec<Account> = db::all(&self.store, db::ACCOUNTS)?;
        all.retain(|a| a.status != AccountStatus::Deleted);
        all.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(all)
    }

    fn modify(
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

    // ------------------------------------------------------ credential reset

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
    pub fn redeem_reset_token(
        &self,
        caller: &Caller,
        token: &str,
        new_password: &str,
    ) -> Result<(), IamError> {
        model::check_password(new_password)?;
        let key = sha256(token);
        let record: Option<serde_json::Value> = db::get(&self.store, db::RESETS, &key)?;
        let Some(record) = record.filter(|r| r["expires_at"].as_i64().is_some_and(|e| e > now()))
        else {
            let tx = Tx::begin(&self.store)?;
            audit(&tx, caller, "auth.reset", "", "bad_token", "")?;
            tx.commit()?;
            return Err(IamError::Unauthenticated(
                "invalid or expired reset token".to_owned(),
            ));
        };
        let id = record["account_id"].as_str().unwrap_or_default().to_owned();
        let hash = self.hasher.hash(new_password)?;
        let _g = self.lock();
        let mut account = self.account(&id)?;
        account.password_hash = hash;
        account.failed_logins = 0;
        account.locked_until = 0;
        account.token_generation = account.token_generation.wrapping_add(1);
        let tx = Tx::begin(&self.store)?;
        tx.delete(db::RESETS, &key)?;
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

    // ----------------------------------------------------------- tokens

    /// A long-lived token for a system account, issued by an admin without a password.
    pub fn issue_system_token(
        &self,
        caller: &Caller,
        account_id: &str,
        ttl_seconds: u64,
        description: &str,
    ) -> Result<Session, IamError> {
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
        let session = self.issue(&tx, &account, "system", ttl, description, None)?;
        audit(
            &tx,
            caller,
            "tokens.issue",
            &account.id,
            "ok",
            format!("jti={} ttl={}s", session.jti, ttl.as_secs()),
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
        let mut all: Vec<TokenRecord> = db::all(&self.store, db::TOKENS)?;
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
            let live = match db::get::<TokenRecord>(&self.store, db::TOKENS, j.as_bytes())? {
                Some(r) if !r.revoked => self.account(&r.account_id).is_ok_and(|a| {
                    a.status == AccountStatus::Active && a.token_generation == r.generation
                }),
                _ => false,
            };
            if !live {
                out.push(j.clone());
            }
        }
        Ok(out)
    }

    // ----------------------------------------------------------- policy

    pub fn rules(&self) -> Result<Vec<Rule>, IamError> {
        let mut r: Vec<Rule> = db::all(&self.store, db::POLICY)?;
        r.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
        Ok(r)
    }

    pub fn rule(&self, id: &str) -> Result<Rule, IamError> {
        db::get(&self.store, db::POLICY, id.as_bytes())?
            .ok_or_else(|| IamError::NotFound(format!("no rule `{id}`")))
    }

    pub fn create_rule(
        &self,
        caller: &Caller,
        mut rule: Rule,
        seed: bool,
    ) -> Result<Rule, IamError> {
        rule.validate()?;
        rule.id = uuid::Uuid::new_v4().to_string();
        let tx = Tx::begin(&self.store)?;
        tx.put(db::POLICY, rule.id.as_bytes(), &rule)?;
        audit(
            &tx,
            caller,
            "policy.create",
            &rule.id,
            "ok",
            if seed { "default rule" } else { "" },
        )?;
        tx.commit()?;
        Ok(rule)
    }

    pub fn update_rule(&self, caller: &Caller, rule: Rule) -> Result<Rule, IamError> {
        rule.validate()?;
        self.rule(&rule.id)?;
        let tx = Tx::begin(&self.store)?;
        tx.put(db::POLICY, rule.id.as_bytes(), &rule)?;
        audit(&tx, caller, "policy.update", &rule.id, "ok", "")?;
        tx.commit()?;
        Ok(rule)
    }

    pub fn delete_rule(&self, caller: &Caller, id: &str) -> Result<(), IamError> {
        self.rule(id)?;
        let tx = Tx::begin(&self.store)?;
        tx.delete(db::POLICY, id.as_bytes())?;
        audit(&tx, caller, "policy.delete", id, "ok", "")?;
        tx.commit()?;
        Ok(())
    }

    /// The policy tester: the decision for an account, service and tags,
    /// optionally with a candidate rule added (dry run).
    pub fn explain(
        &self,
        account: &str,
        service: &str,
        tags: &[String],
        action: &str,
        at: i64,
        candidate: Option<Rule>,
    ) -> Result<Decision, IamError> {
        let account = self.find(account)?;
        let tags = model::check_tags(tags)?;
        let mut rules = self.rules()?;
        if let Some(mut c) = candidate {
            c.validate()?;
            c.id = "candidate".to_owned();
            rules.push(c);
        }
        let action = if action.is_empty() {
            "auth:login"
        } else {
            action
        };
        let at = if at == 0 { now() } else { at };
        Ok(policy::explain(
            &rules,
            &policy::Request {
                account: &account,
                service_name: service,
                tags: &tags,
                action,
                at,
            },
        ))
    }

    // ------------------------------------------------------------ audit

    pub fn audit_log(
        &self,
        limit: usize,
        action: &str,
        actor: &str,
    ) -> Result<Vec<AuditEvent>, IamError> {
        let limit = limit.clamp(1, 1000);
        let scan: Vec<AuditEvent> = db::last(&self.store, db::AUDIT, 50_000)?;
        Ok(scan
            .into_iter()
            .filter(|e| {
                (action.is_empty() || e.action.starts_with(action))
                    && (actor.is_empty() || e.actor == actor)
            })
            .take(limit)
            .collect())
    }
}

/// The token verifier MCIAS itself uses: local keys and store, no cache
/// (a revocation is effective on MCIAS at once).
pub struct LocalVerifier(pub Arc<Iam>);

impl mc_service::auth::TokenVerifier for LocalVerifier {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Principal, AuthError>> + Send + 'a>,
    > {
        Box::pin(async move { self.0.verify(token) })
    }
}
