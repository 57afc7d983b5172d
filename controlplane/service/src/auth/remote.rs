//! The MCIAS client every other service uses: forward logins with the
//! service's name and tags, and verify bearer tokens — offline against the
//! published Ed25519 keys (JWKS), plus a revocation check with MCIAS — with
//! results cached (wrap it in [`super::CachedVerifier`], TTL ≤ 30 s) so a
//! revocation reaches the service within that TTL.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mc_proto::iam::v1 as pb;
use serde::Deserialize;
use tonic::transport::Channel;

use super::{AuthError, Principal, TokenVerifier};

/// How often unknown key ids may trigger a JWKS refetch, and how old the
/// cached keys may grow before a refetch.
const KEY_REFRESH_MIN: Duration = Duration::from_secs(10);
const KEY_MAX_AGE: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    typ: String,
    #[serde(default)]
    roles: Vec<String>,
    exp: i64,
    jti: String,
    #[serde(default)]
    scopes: Vec<String>,
}

struct Keys {
    fetched: Option<Instant>,
    by_kid: HashMap<String, DecodingKey>,
}

/// Verifies MCIAS tokens from another service.
pub struct RemoteVerifier {
    channel: Channel,
    /// This service's own (system account) token, for `CheckRevocation`.
    service_token: String,
    issuer: String,
    audience: String,
    keys: RwLock<Keys>,
}

impl RemoteVerifier {
    /// `channel` reaches MCIAS's gRPC endpoint (TLS verified by the caller's setup).
    pub fn new(channel: Channel, service_token: String, issuer: String, audience: String) -> Self {
        Self {
            channel,
            service_token,
            issuer,
            audience,
            keys: RwLock::new(Keys {
                fetched: None,
                by_kid: HashMap::new(),
            }),
        }
    }

    async fn refresh_keys(&self) -> Result<(), AuthError> {
        let mut client = pb::auth_client::AuthClient::new(self.channel.clone());
        let jwks = client
            .get_jwks(pb::GetJwksRequest {})
            .await
            .map_err(|s| AuthError::Unavailable(format!("fetching JWKS: {}", s.message())))?
            .into_inner();
        let mut by_kid = HashMap::new();
        for k in jwks
            .keys
            .into_iter()
            .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
        {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&k.x)
                .map_err(|e| AuthError::Unavailable(format!("bad JWKS key {}: {e}", k.kid)))?;
            by_kid.insert(k.kid, DecodingKey::from_ed_der(&raw));
        }
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        *keys = Keys {
            fetched: Some(Instant::now()),
            by_kid,
        };
        Ok(())
    }

    fn stale(&self, kid: &str) -> bool {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        match keys.fetched {
            None => true,
            Some(at) if at.elapsed() > KEY_MAX_AGE => true,
            Some(at) => !keys.by_kid.contains_key(kid) && at.elapsed() > KEY_REFRESH_MIN,
        }
    }

    fn decode(&self, token: &str, kid: &str) -> Result<Claims, AuthError> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let key = keys
            .by_kid
            .get(kid)
            .ok_or_else(|| AuthError::Invalid("unknown key id".to_owned()))?;
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.leeway = 5;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Claims>(token, key, &v)
            .map(|d| d.claims)
            .map_err(|e| super::token_error(&e))
    }

    async fn check(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| super::token_error(&e))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid("unexpected algorithm".to_owned()));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("no key id".to_owned()))?;
        if self.stale(&kid) {
            self.refresh_keys().await?;
        }
        let claims = self.decode(token, &kid)?;
        let mut client = pb::tokens_client::TokensClient::new(self.channel.clone());
        let mut request = tonic::Request::new(pb::CheckRevocationRequest {
            jtis: vec![claims.jti.clone()],
        });
        let bearer = format!("Bearer {}", self.service_token)
            .parse()
            .map_err(|_| {
                AuthError::Unavailable("the service token is not valid ASCII".to_owned())
            })?;
        request.metadata_mut().insert("authorization", bearer);
        let revoked = client
            .check_revocation(request)
            .await
            .map_err(|s| AuthError::Unavailable(format!("revocation check: {}", s.message())))?
            .into_inner()
            .revoked;
        if revoked.contains(&claims.jti) {
            return Err(AuthError::Revoked);
        }
        Ok(Principal {
            account_id: claims.sub,
            username: claims.name,
            account_type: claims.typ,
            roles: claims.roles,
            tags: Vec::new(),
            jti: claims.jti,
            expires_at: claims.exp,
            scopes: claims.scopes,
        })
    }

    /// Forwards a login to MCIAS for `service_name` with the service's `tags`,
    /// so MCIAS's login policy decides. Returns the token and its expiry.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        totp_code: &str,
        service_name: &str,
        tags: &[String],
    ) -> Result<(String, i64), tonic::Status> {
        let mut client = pb::auth_client::AuthClient::new(self.channel.clone());
        let reply = client
            .login(pb::LoginRequest {
                username: username.to_owned(),
                password: password.to_owned(),
                totp_code: totp_code.to_owned(),
                service_name: service_name.to_owned(),
                tags: tags.to_vec(),
                totp_nonce: String::new(),
            })
            .await?
            .into_inner();
        match reply.result {
            Some(pb::login_response::Result::Session(s)) => Ok((s.token, s.expires_at_unix)),
            _ => Err(tonic::Status::unauthenticated(
                "a second factor is required",
            )),
        }
    }
}

impl TokenVerifier for RemoteVerifier {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthError>> + Send + 'a>> {
        Box::pin(self.check(token))
    }
}
