//! SSO: OAuth 2.0 authorization code with PKCE (S256 only) and OpenID
//! Connect, for clients an admin registers.
//!
//! A client has an id (also the `service_name` its logins are checked
//! against by login policy, with the client's tags), a secret stored only as
//! SHA-256 (it is 256 random bits, not a password), exact redirect URIs and
//! the id_token algorithm it wants (RS256, the OIDC default, or EdDSA).
//! Authorization codes live in memory: single use, bound to client, redirect
//! URI, PKCE challenge and nonce, valid `sso_code_ttl` (60 s). A code
//! presented twice is refused and the access token issued for it is revoked
//! (OAuth 2.1 §4.1.3).

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use mc_kit::ephemeral::SingleUse;
use serde::{Deserialize, Serialize};

use crate::core::audit::audit;
use crate::core::{Caller, Mcias, now, random_token, sha256};
use crate::error::IamError;
pub use crate::model::SsoClient;
use crate::model::{self, Account, AccountStatus};
use crate::policy::Effect;
use crate::store::{self as db, WriteTx as Tx};

pub const MAX_CLIENTS: usize = 1000;
const MAX_REDIRECT_URIS: usize = 10;
const MAX_CODES: usize = 10_000;
/// ID tokens live at most this long (access tokens: the session TTL).
const ID_TOKEN_TTL: i64 = 3600;

/// What an admin sends to create or update a client.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub id_token_signed_response_alg: String,
}

fn check_client_id(id: &str) -> Result<(), IamError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(IamError::invalid(
            "client_id",
            "1 to 64 characters of a-z, 0-9 and ._-",
        ))
    }
}

/// Exact https redirect URIs; plain http only for loopback hosts
/// (`127.0.0.1`, `[::1]`, `localhost`: native and dev clients, RFC 8252).
pub fn check_redirect_uri(uri: &str) -> Result<(), IamError> {
    let bad = |m: &str| IamError::invalid("redirect_uris", format!("`{uri}`: {m}"));
    if uri.len() > 512 {
        return Err(bad("at most 512 bytes"));
    }
    if uri.contains('#') || uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(bad("no fragment, spaces or control characters"));
    }
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| bad("not absolute"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') || authority.starts_with('[') => {
            if !port.is_empty() && !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("bad port"));
            }
            h
        }
        _ => authority,
    };
    if host.is_empty() || authority.contains('@') {
        return Err(bad("needs a host and no user info"));
    }
    match scheme {
        "https" => Ok(()),
        "http" if matches!(host, "127.0.0.1" | "[::1]" | "localhost") => Ok(()),
        _ => Err(bad("must be https (http only for loopback)")),
    }
}

fn validate(input: &ClientInput) -> Result<(String, Vec<String>, String), IamError> {
    if input.name.len() > 128 {
        return Err(IamError::invalid("name", "at most 128 bytes"));
    }
    if input.redirect_uris.is_empty() || input.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(IamError::invalid(
            "redirect_uris",
            format!("1 to {MAX_REDIRECT_URIS} URIs"),
        ));
    }
    for u in &input.redirect_uris {
        check_redirect_uri(u)?;
    }
    let tags = model::check_tags(&input.tags)?;
    let alg = match input.id_token_signed_response_alg.as_str() {
        "" | "RS256" => crate::keys::RS256,
        "EdDSA" => crate::keys::EDDSA,
        other => {
            return Err(IamError::invalid(
                "id_token_signed_response_alg",
                format!("`{other}`: RS256 or EdDSA"),
            ));
        }
    };
    Ok((input.name.clone(), tags, alg.to_owned()))
}

/// An issued authorization code.
pub(crate) struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: String,
    account_id: String,
    auth_time: i64,
    issued: Instant,
}

/// Authorization codes by SHA-256 of the code: pending ones (single use,
/// `sso_code_ttl`, bounded) and, ten minutes longer, the redeemed ones with
/// their client and the access token issued for them (revoked on replay).
pub(crate) struct Codes {
    pending: SingleUse<Vec<u8>, Code>,
    /// (client id, access token jti; empty when the redemption failed).
    redeemed: SingleUse<Vec<u8>, (String, String)>,
}

impl Codes {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            pending: SingleUse::new(ttl, MAX_CODES),
            redeemed: SingleUse::new(ttl + Duration::from_secs(600), MAX_CODES),
        }
    }

    /// Ends a code: remembered as redeemed by `client` (with `jti` once issued).
    fn redeemed(&self, key: &[u8], client: &str, jti: String) {
        self.redeemed.take(key);
        // Full of live redemptions: the code is still ended (it left
        // `pending`); only a later replay goes unrecognised.
        let _full = self.redeemed.insert(key.to_vec(), (client.to_owned(), jti));
    }
}

/// An authorization request, as the browser brings it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeRequest {
    #[serde(default)]
    pub response_type: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub redirect_uri: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub nonce: String,
    #[serde(default)]
    pub code_challenge: String,
    #[serde(default)]
    pub code_challenge_method: String,
}

/// How an authorization request ends.
#[derive(Debug)]
pub enum Authorize {
    /// Client or redirect URI unknown: show an error, never redirect.
    Refuse(String),
    /// No (valid) browser session: log in, then come back.
    Login,
    /// Redirect to the client with these query parameters.
    Redirect(String),
}

/// The token endpoint's errors (RFC 6749 §5.2).
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    /// 401 with `WWW-Authenticate: Basic`.
    InvalidClient,
    /// 400 `{"error": code, "error_description": …}`.
    Bad(&'static str, String),
    Internal(IamError),
}

impl From<IamError> for TokenError {
    fn from(e: IamError) -> Self {
        Self::Internal(e)
    }
}

impl From<mc_kit::store::StoreError> for TokenError {
    fn from(e: mc_kit::store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// The token endpoint's request (client credentials already extracted).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenRequest {
    #[serde(default)]
    pub grant_type: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub redirect_uri: String,
    #[serde(default)]
    pub code_verifier: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
}

#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "str::is_empty")]
    nonce: &'a str,
    preferred_username: &'a str,
    name: &'a str,
    /// The access token's jti: lets a relying party tie the two together.
    sid: &'a str,
}

fn query(params: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(&pct(v));
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn redirect_to(uri: &str, params: &[(&str, &str)]) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", query(params))
}

/// A PKCE verifier: 43 to 128 unreserved characters (RFC 7636 §4.1).
fn pkce_ok(verifier: &str, challenge: &str) -> bool {
    let shape = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    shape
        && aws_lc_rs::constant_time::verify_slices_are_equal(
            B64.encode(sha256(verifier)).as_bytes(),
            challenge.as_bytes(),
        )
        .is_ok()
}

impl Mcias {
    // ------------------------------------------------------- client admin

    pub fn sso_clients(&self) -> Result<Vec<SsoClient>, IamError> {
        let mut all: Vec<SsoClient> = self.read()?.all(db::SSO_CLIENTS)?;
        all.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Ok(all.iter().map(SsoClient::public).collect())
    }

    fn stored_client(&self, id: &str) -> Result<Option<SsoClient>, IamError> {
        if check_client_id(id).is_err() {
            return Ok(None);
        }
        Ok(self.read()?.get(db::SSO_CLIENTS, id.as_bytes())?)
    }

    pub fn sso_client(&self, id: &str) -> Result<SsoClient, IamError> {
        self.stored_client(id)?
            .map(|c| c.public())
            .ok_or_else(|| IamError::NotFound(format!("no SSO client `{id}`")))
    }

    /// Registers a client; returns it and its secret (shown once).
    pub fn create_sso_client(
        &self,
        caller: &Caller,
        input: ClientInput,
    ) -> Result<(SsoClient, String), IamError> {
        let (name, tags, alg) = validate(&input)?;
        let client_id = if input.client_id.is_empty() {
            format!("c-{}", uuid::Uuid::new_v4().simple())
        } else {
            input.client_id.clone()
        };
        check_client_id(&client_id)?;
        let secret = random_token(32)?;
        let client = SsoClient {
            client_id,
            name,
            redirect_uris: input.redirect_uris,
            tags,
            enabled: input.enabled.unwrap_or(true),
            id_token_signed_response_alg: alg,
            secret_sha256: B64.encode(sha256(&secret)),
            created_at: now(),
        };
        let _g = self.lock();
        let existing: Vec<SsoClient> = self.read()?.all(db::SSO_CLIENTS)?;
        if existing.len() >= MAX_CLIENTS {
            return Err(IamError::invalid(
                "client",
                format!("at most {MAX_CLIENTS} clients"),
            ));
        }
        if existing.iter().any(|c| c.client_id == client.client_id) {
            return Err(IamError::Conflict(format!(
                "SSO client `{}` exists",
                client.client_id
            )));
        }
        self.save_client(caller, &client, "sso.clients.create")?;
        Ok((client.public(), secret))
    }

    /// Replaces name, redirect URIs, tags, enabled and algorithm (the secret stays).
    pub fn update_sso_client(
        &self,
        caller: &Caller,
        input: ClientInput,
    ) -> Result<SsoClient, IamError> {
        let (name, tags, alg) = validate(&input)?;
        let _g = self.lock();
        let mut client = self
            .stored_client(&input.client_id)?
            .ok_or_else(|| IamError::NotFound(format!("no SSO client `{}`", input.client_id)))?;
        client.name = name;
        client.redirect_uris = input.redirect_uris;
        client.tags = tags;
        client.id_token_signed_response_alg = alg;
        if let Some(e) = input.enabled {
            client.enabled = e;
        }
        self.save_client(caller, &client, "sso.clients.update")?;
        Ok(client.public())
    }

    fn save_client(
        &self,
        caller: &Caller,
        client: &SsoClient,
        action: &str,
    ) -> Result<(), IamError> {
        let tx = Tx::begin(&self.store)?;
        tx.put(db::SSO_CLIENTS, client.client_id.as_bytes(), client)?;
        audit(
            &tx,
            caller,
            action,
            &client.client_id,
            "ok",
            format!(
                "enabled={} alg={} redirect_uris={}",
                client.enabled,
                client.id_token_signed_response_alg,
                client.redirect_uris.join(" ")
            ),
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn delete_sso_client(&self, caller: &Caller, id: &str) -> Result<(), IamError> {
        let _g = self.lock();
        self.sso_client(id)?;
        let tx = Tx::begin(&self.store)?;
        tx.delete(db::SSO_CLIENTS.def(), id.as_bytes())?;
        audit(&tx, caller, "sso.clients.delete", id, "ok", "")?;
        tx.commit()?;
        Ok(())
    }

    // ------------------------------------------------------------ OIDC

    /// `/.well-known/openid-configuration`.
    pub fn oidc_discovery(&self) -> serde_json::Value {
        let iss = &self.config.issuer;
        serde_json::json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}/oauth2/authorize"),
            "token_endpoint": format!("{iss}/oauth2/token"),
            "userinfo_endpoint": format!("{iss}/oauth2/userinfo"),
            "jwks_uri": format!("{iss}/v1/auth/jwks"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "EdDSA"],
            "userinfo_signing_alg_values_supported": ["none"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "preferred_username", "name"],
        })
    }

    /// The policy decision for an SSO login: service = the client id, tags =
    /// the client's tags, action `auth:login`.
    fn sso_policy(
        &self,
        account: &Account,
        client: &SsoClient,
    ) -> Result<(Effect, String), IamError> {
        let d = self.login_decision(account, &client.client_id, &client.tags)?;
        Ok((d.effect, d.rule_id))
    }

    /// `GET /oauth2/authorize`, for the browser session `session` (a token
    /// from the session cookie, if any).
    pub fn authorize(
        &self,
        caller: &Caller,
        req: &AuthorizeRequest,
        session: Option<&str>,
    ) -> Result<Authorize, IamError> {
        self.rate_limit(caller)?;
        let client = match self.stored_client(&req.client_id)? {
            Some(c) if c.enabled => c,
            _ => {
                return Ok(Authorize::Refuse(
                    "unknown or disabled client_id".to_owned(),
                ));
            }
        };
        if !client.redirect_uris.contains(&req.redirect_uri) {
            return Ok(Authorize::Refuse(
                "redirect_uri is not registered for this client".to_owned(),
            ));
        }
        let fail = |error: &str, why: &str| {
            Authorize::Redirect(redirect_to(
                &req.redirect_uri,
                &[
                    ("error", error),
                    ("error_description", why),
                    ("state", &req.state),
                ],
            ))
        };
        if req.response_type != "code" {
            return Ok(fail("unsupported_response_type", "only response_type=code"));
        }
        if req.code_challenge_method != "S256"
            || req.code_challenge.len() != 43
            || B64.decode(&req.code_challenge).is_err()
        {
            return Ok(fail(
                "invalid_request",
                "PKCE is required: code_challenge (43 chars) with code_challenge_method=S256",
            ));
        }
        if req.state.len() > 512 || req.nonce.len() > 512 || req.scope.len() > 512 {
            return Ok(fail(
                "invalid_request",
                "state, nonce and scope: at most 512 bytes",
            ));
        }
        let Some(principal) = session.and_then(|t| self.verify(t).ok()) else {
            return Ok(Authorize::Login);
        };
        let account = self.account(&principal.account_id)?;
        if account.status != AccountStatus::Active {
            return Ok(Authorize::Login);
        }
        let auth_time = self
            .read()?
            .get(db::TOKENS, principal.jti.as_bytes())?
            .map_or_else(now, |r| r.issued_at);
        let (effect, rule) = self.sso_policy(&account, &client)?;
        let caller = Caller {
            principal: Some(principal),
            source: caller.source,
        };
        let tx = Tx::begin(&self.store)?;
        if effect == Effect::Deny {
            audit(
                &tx,
                &caller,
                "sso.authorize",
                &account.id,
                "denied",
                format!("client={} rule={rule}", client.client_id),
            )?;
            tx.commit()?;
            return Ok(fail(
                "access_denied",
                "login policy denies this account here",
            ));
        }
        let code = random_token(32)?;
        let pending = Code {
            client_id: client.client_id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            challenge: req.code_challenge.clone(),
            nonce: req.nonce.clone(),
            account_id: account.id.clone(),
            auth_time,
            issued: Instant::now(),
        };
        self.codes
            .pending
            .insert(sha256(&code), pending)
            .map_err(|_| {
                IamError::RateLimited(
                    "too many pending authorizations; try again shortly".to_owned(),
                )
            })?;
        audit(
            &tx,
            &caller,
            "sso.authorize",
            &account.id,
            "ok",
            format!("client={} rule={rule}", client.client_id),
        )?;
        tx.commit()?;
        Ok(Authorize::Redirect(redirect_to(
            &req.redirect_uri,
            &[("code", &code), ("state", &req.state)],
        )))
    }

    /// The client a token request authenticates as, or `InvalidClient`.
    fn authenticate_client(&self, id: &str, secret: &str) -> Result<SsoClient, TokenError> {
        let client = match self.stored_client(id)? {
            Some(c) if c.enabled => c,
            _ => return Err(TokenError::InvalidClient),
        };
        let given = B64.encode(sha256(secret));
        aws_lc_rs::constant_time::verify_slices_are_equal(
            given.as_bytes(),
            client.secret_sha256.as_bytes(),
        )
        .map_err(|_| TokenError::InvalidClient)?;
        Ok(client)
    }

    /// `POST /oauth2/token` (authorization_code grant).
    pub fn token(&self, caller: &Caller, req: &TokenRequest) -> Result<TokenResponse, TokenError> {
        self.rate_limit(caller)?;
        let client = match self.authenticate_client(&req.client_id, &req.client_secret) {
            Ok(c) => c,
            Err(e) => {
                let tx = Tx::begin(&self.store)?;
                audit(&tx, caller, "sso.token", &req.client_id, "bad_client", "")?;
                tx.commit()?;
                return Err(e);
            }
        };
        if req.grant_type != "authorization_code" {
            return Err(TokenError::Bad(
                "unsupported_grant_type",
                "only authorization_code".to_owned(),
            ));
        }
        let bad = |why: &str| TokenError::Bad("invalid_grant", why.to_owned());
        let key = sha256(&req.code);
        let grant = self.redeem(&key, &client.client_id, req);
        let (account_id, nonce, auth_time) = match grant {
            Err(replayed) => {
                let tx = Tx::begin(&self.store)?;
                let detail = match &replayed {
                    Some(jti) if !jti.is_empty() => {
                        self.revoke_jti(&tx, jti)?;
                        format!("code replayed: revoked jti={jti}")
                    }
                    Some(_) => "code replayed".to_owned(),
                    None => "unknown code".to_owned(),
                };
                audit(
                    &tx,
                    caller,
                    "sso.token",
                    &client.client_id,
                    "bad_code",
                    detail,
                )?;
                tx.commit()?;
                return Err(bad("invalid, expired or already used code"));
            }
            Ok((false, ..)) => return Err(bad("redirect_uri does not match the authorization")),
            Ok((_, false, ..)) => return Err(bad("code_verifier does not match the challenge")),
            Ok((true, true, a, n, t)) => (a, n, t),
        };
        let account = self.account(&account_id)?;
        if account.status != AccountStatus::Active {
            return Err(bad("the account is disabled"));
        }
        let (effect, rule) = self.sso_policy(&account, &client)?;
        let tx = Tx::begin(&self.store)?;
        if effect == Effect::Deny {
            audit(
                &tx,
                caller,
                "sso.token",
                &account.id,
                "denied",
                format!("client={} rule={rule}", client.client_id),
            )?;
            tx.commit()?;
            return Err(bad("login policy denies this account here"));
        }
        let session = self.issue(
            &tx,
            &account,
            "sso",
            self.session_ttl(&account),
            &format!("sso client {}", client.client_id),
            Some(&client.client_id),
            Vec::new(),
        )?;
        let iat = now();
        let claims = IdClaims {
            iss: &self.config.issuer,
            sub: &account.id,
            aud: &client.client_id,
            exp: iat + ID_TOKEN_TTL.min(session.expires_at - iat),
            iat,
            auth_time,
            nonce: &nonce,
            preferred_username: &account.username,
            name: &account.username,
            sid: &session.jti,
        };
        let id_token = self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .sign_as(&client.id_token_signed_response_alg, &claims)?;
        audit(
            &tx,
            caller,
            "sso.token",
            &account.id,
            "ok",
            format!(
                "client={} jti={} rule={rule}",
                client.client_id, session.jti
            ),
        )?;
        tx.commit()?;
        self.codes
            .redeemed(&key, &client.client_id, session.jti.clone());
        Ok(TokenResponse {
            expires_in: session.expires_at - iat,
            access_token: session.token,
            token_type: "Bearer",
            id_token: Some(id_token),
            scope: "openid profile".to_owned(),
        })
    }

    /// Takes what the code `key` grants to `client`, ending it (any use
    /// does, good or bad): (redirect URI matches, PKCE verifies, account,
    /// nonce, auth time); or, for an unknown, expired or replayed code, the
    /// jti of the token a replayed code was redeemed for.
    #[allow(clippy::type_complexity)]
    fn redeem(
        &self,
        key: &[u8],
        client: &str,
        req: &TokenRequest,
    ) -> Result<(bool, bool, String, String, i64), Option<String>> {
        match self.codes.pending.take(key) {
            Some(c) if c.client_id != client => {
                // Another client's code is not this client's to end.
                let issued = c.issued;
                let _full = self.codes.pending.insert_at(key.to_vec(), c, issued);
                Err(None)
            }
            Some(c) => {
                self.codes.redeemed(key, client, String::new());
                Ok((
                    c.redirect_uri == req.redirect_uri,
                    pkce_ok(&req.code_verifier, &c.challenge),
                    c.account_id,
                    c.nonce,
                    c.auth_time,
                ))
            }
            None => match self.codes.redeemed.take(key) {
                Some((owner, jti)) => {
                    let replayed = (owner == client).then(|| jti.clone());
                    let _full = self.codes.redeemed.insert(key.to_vec(), (owner, jti));
                    Err(replayed)
                }
                None => Err(None),
            },
        }
    }

    /// `/oauth2/userinfo`: the claims for an SSO access token.
    pub fn userinfo(&self, token: &str) -> Result<serde_json::Value, IamError> {
        let p = self
            .verify_aud(token, |aud| {
                self.stored_client(aud)
                    .ok()
                    .flatten()
                    .is_some_and(|c| c.enabled)
            })
            .map_err(|e| IamError::Unauthenticated(e.to_string()))?;
        Ok(serde_json::json!({
            "sub": p.account_id, "preferred_username": p.username, "name": p.username,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_or_loopback_http() {
        for ok in [
            "https://app.example.net/cb",
            "https://app.example.net:8443/cb?x=1",
            "http://127.0.0.1:4711/cb",
            "http://localhost/cb",
            "http://[::1]:80/cb",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example.net/cb",
            "https://app.example.net/cb#frag",
            "https:///cb",
            "https://user@app.example.net/cb",
            "app.example.net/cb",
            "javascript://x",
            "http://127.0.0.1.evil.net/cb",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_ok(verifier, challenge));
        assert!(!pkce_ok(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            challenge
        ));
        assert!(!pkce_ok("short", challenge));
    }

    #[test]
    fn redirect_query_is_escaped() {
        assert_eq!(
            redirect_to("https://a/cb?x=1", &[("code", "a b&c"), ("state", "")]),
            "https://a/cb?x=1&code=a%20b%26c"
        );
    }
}
