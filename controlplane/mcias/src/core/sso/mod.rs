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
//! (OAuth 2.1 §4.1.3). Registering clients is [`clients`].

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use mc_kit::ephemeral::SingleUse;
use serde::{Deserialize, Serialize};

use crate::core::audit::audit;
use crate::core::{Caller, Mcias, now, random_token, sha256};
use crate::error::IamError;
pub use crate::model::SsoClient;
use crate::model::{Account, AccountStatus};
use crate::policy::Effect;
use crate::store::{self as db, WriteTx as Tx};

mod clients;

pub use clients::{ClientInput, MAX_CLIENTS, check_redirect_uri};

const MAX_CODES: usize = 10_000;
/// ID tokens live at most this long (access tokens: the session TTL).
const ID_TOKEN_TTL: i64 = 3600;

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
        // The session's original sign-in, kept across renewals (OIDC auth_time).
        let auth_time = self
            .read()?
            .get(db::TOKENS, principal.jti.as_bytes())?
            .map_or_else(now, |r| r.auth_time());
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
            crate::core::tokens::SSO_KIND,
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
