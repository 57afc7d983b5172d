//! Authorization for every service: one method → requirement map, enforced
//! by one axum layer for both REST routes and gRPC methods (tonic services
//! are mounted as axum routers, so `/pkg.Service/Method` paths pass through
//! the same layer).
//!
//! Default deny: a request whose route is not in the map is refused even with
//! valid admin credentials, so forgetting a method breaks it loudly (its own
//! tests fail) instead of leaving it open; the sweep test in each service
//! (`testing::assert_map_covers`, in test builds only)
//! also checks every gRPC method of its packages is mapped.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub mod remote;
mod vault;
pub use vault::{vault_list_as_get, vault_token};
#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// What a method needs from its caller. One value per REST route and gRPC
/// method, in the service's [`MethodMap`]; [`decide`] is the only place that
/// interprets it, for both surfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Anyone; a valid token, when sent, is still verified and passed on.
    Public,
    /// The service authenticates by its own protocol (the registry's Docker
    /// token auth): the layer refuses nothing, verifies a bearer token when
    /// one is sent and passes the principal on (an invalid one is ignored,
    /// as for [`Self::Public`]); the service's guard decides and answers in
    /// its protocol's shape. Sweep tests expect the protocol's 401.
    Delegated,
    /// Any valid token.
    Authenticated,
    /// A valid token of an account with the `admin` role.
    Admin,
    /// An account holding this role (an admin holds every role).
    Role(&'static str),
    /// A human account: operations a machine identity must never do.
    Human,
    /// A system account matching the pattern (an admin does not match: a
    /// method meant for an agent is not an operator's method).
    System(AccountPattern),
    /// Any one of these.
    AnyOf(&'static [Requirement]),
    /// Every one of these (a human admin: `AllOf(&[Human, Admin])`).
    AllOf(&'static [Requirement]),
    /// The inner requirement, and a token that carries scopes must carry
    /// one that covers `scope` (a scope only narrows what the account may do).
    Scoped {
        scope: &'static str,
        inner: &'static Requirement,
    },
}

/// Which system accounts a [`Requirement::System`] admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountPattern {
    /// Exactly this account name.
    Name(&'static str),
    /// Names with this prefix, e.g. `agent-` (the rest — the node — is
    /// read from the verified token with [`Principal::name_suffix`]).
    NamePrefix(&'static str),
    /// Accounts carrying this tag.
    Tag(&'static str),
}

impl AccountPattern {
    fn matches(self, p: &Principal) -> bool {
        match self {
            Self::Name(n) => p.username == n,
            Self::NamePrefix(prefix) => p
                .username
                .strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty()),
            Self::Tag(t) => p.tags.iter().any(|x| x == t),
        }
    }
}

/// What [`decide`] says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No usable credentials: 401 / `UNAUTHENTICATED`.
    Unauthenticated(String),
    /// Credentials, but not these rights: 403 / `PERMISSION_DENIED`.
    Forbidden(String),
}

/// The one decision: may `principal` (the verified caller, if any) call a
/// method that requires `requirement`?
pub fn decide(requirement: Requirement, principal: Option<&Principal>) -> Decision {
    if matches!(requirement, Requirement::Public | Requirement::Delegated) {
        return Decision::Allow;
    }
    let Some(p) = principal else {
        return Decision::Unauthenticated("missing bearer token".to_owned());
    };
    match allows(requirement, p) {
        Ok(()) => Decision::Allow,
        Err(why) => Decision::Forbidden(why),
    }
}

fn allows(requirement: Requirement, p: &Principal) -> Result<(), String> {
    match requirement {
        Requirement::Public | Requirement::Delegated | Requirement::Authenticated => Ok(()),
        Requirement::Admin if p.is_admin() => Ok(()),
        Requirement::Admin => Err("requires the admin role".to_owned()),
        Requirement::Role(r) if p.is_admin() || p.roles.iter().any(|x| x == r) => Ok(()),
        Requirement::Role(r) => Err(format!("requires the {r} role")),
        Requirement::Human if p.account_type == "human" => Ok(()),
        Requirement::Human => Err("only a human account may do this".to_owned()),
        Requirement::System(pattern) if p.account_type == "system" && pattern.matches(p) => Ok(()),
        Requirement::System(_) => {
            Err("only the platform's own system account may do this".to_owned())
        }
        Requirement::AnyOf(options) => {
            let mut last = "no requirement".to_owned();
            for r in options {
                match allows(*r, p) {
                    Ok(()) => return Ok(()),
                    Err(why) => last = why,
                }
            }
            Err(last)
        }
        Requirement::AllOf(all) => all.iter().try_for_each(|r| allows(*r, p)),
        Requirement::Scoped { scope, inner } => {
            allows(*inner, p)?;
            if p.has_scope(scope) {
                Ok(())
            } else {
                Err(format!("the token's scopes do not include {scope}"))
            }
        }
    }
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account_id: String,
    pub username: String,
    /// `human` or `system`.
    pub account_type: String,
    pub roles: Vec<String>,
    pub tags: Vec<String>,
    pub jti: String,
    pub expires_at: i64,
    /// Scopes the token is limited to (`mcr:push:repo/*`, `dns:write:zone`);
    /// empty for a token with the account's full rights.
    pub scopes: Vec<String>,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }

    /// The rest of the account name after `prefix` (`agent-web1` → `web1`),
    /// for methods admitted by [`AccountPattern::NamePrefix`].
    pub fn name_suffix(&self, prefix: &str) -> Option<&str> {
        self.username
            .strip_prefix(prefix)
            .filter(|rest| !rest.is_empty())
    }

    /// Whether the token may perform `action` (`mcr:push`) at all: true for
    /// an unscoped token, or when a scope names the action (with or without
    /// a resource).
    pub fn has_scope(&self, action: &str) -> bool {
        self.scopes.is_empty()
            || self.scopes.iter().any(|s| {
                s == action
                    || s.strip_prefix(action)
                        .is_some_and(|rest| rest.starts_with(':'))
            })
    }

    /// Whether the token may perform `action` on `resource` (`repo/app`):
    /// true for an unscoped token, or when a scope `action` (any resource),
    /// `action:resource`, or `action:prefix*` covers it.
    pub fn scope_allows(&self, action: &str, resource: &str) -> bool {
        self.scopes.is_empty()
            || self.scopes.iter().any(|s| {
                if s == action {
                    return true;
                }
                let Some(pattern) = s
                    .strip_prefix(action)
                    .and_then(|rest| rest.strip_prefix(':'))
                else {
                    return false;
                };
                match pattern.strip_suffix('*') {
                    Some(prefix) => resource.starts_with(prefix),
                    None => pattern == resource,
                }
            })
    }
}

/// The caller's source address, for audit logs and rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceAddr(pub std::net::IpAddr);

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token revoked")]
    Revoked,
    #[error("cannot verify the token right now: {0}")]
    Unavailable(String),
}

/// A JWT library error as a fixed reason: the library's own messages
/// (which claim, which key, base64 and JSON details) are never shown to
/// callers, so a probe learns only "expired" or not.
pub fn token_error(e: &jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    AuthError::Invalid(
        match e.kind() {
            ErrorKind::ExpiredSignature => "expired",
            _ => "malformed, or its signature or claims do not verify",
        }
        .to_owned(),
    )
}

/// Turns a bearer token into a [`Principal`]: offline signature checks plus
/// revocation, however the implementation does them.
pub trait TokenVerifier: Send + Sync + 'static {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthError>> + Send + 'a>>;
}

/// Route key: `"METHOD /matched/path"` for REST, `"/pkg.Service/Method"` for gRPC.
pub type RouteKey = String;

/// The one map of a service. Keys are REST `"GET /v1/x/{id}"` (axum's matched
/// path) and gRPC `"/mc.iam.v1.Auth/Login"`.
#[derive(Debug, Clone, Default)]
pub struct MethodMap(BTreeMap<RouteKey, Requirement>, BTreeSet<RouteKey>);

impl MethodMap {
    pub fn new() -> Self {
        Self::default()
    }

    #[must_use]
    pub fn rest(mut self, method: &str, path: &str, req: Requirement) -> Self {
        self.0.insert(format!("{method} {path}"), req);
        self
    }

    #[must_use]
    pub fn grpc(mut self, path: &str, req: Requirement) -> Self {
        self.0.insert(path.to_owned(), req);
        self
    }

    /// A REST route in the Vault dialect (Metacrypt's Vault facade): the
    /// token is read from `X-Vault-Token`, else `Authorization: Bearer`, and
    /// refusals have Vault's shape: 403 `{"errors":["permission denied"]}`
    /// for a missing, invalid or forbidden token (Vault answers 403, and
    /// hvac's `is_authenticated()` expects it), 503 `{"errors":[…]}` when
    /// verification is unavailable.
    #[must_use]
    pub fn vault(mut self, method: &str, path: &str, req: Requirement) -> Self {
        let key = format!("{method} {path}");
        self.1.insert(key.clone());
        self.0.insert(key, req);
        self
    }

    /// Whether a route key is in the Vault dialect.
    pub fn is_vault(&self, key: &str) -> bool {
        self.1.contains(key)
    }

    /// The standard gRPC health service is public.
    #[must_use]
    pub fn with_grpc_health(self) -> Self {
        self.grpc("/grpc.health.v1.Health/Check", Requirement::Public)
            .grpc("/grpc.health.v1.Health/Watch", Requirement::Public)
    }

    /// Adds every entry of `other`; a key both maps name is refused (two
    /// services claiming one route would make its rule ambiguous).
    pub fn merge(mut self, other: Self) -> Result<Self, DuplicateRoute> {
        for (k, v) in other.0 {
            if self.0.contains_key(&k) {
                return Err(DuplicateRoute(k));
            }
            self.0.insert(k, v);
        }
        self.1.extend(other.1);
        Ok(self)
    }

    pub fn get(&self, key: &str) -> Option<Requirement> {
        self.0.get(key).copied()
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, Requirement)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

/// Two method maps name the same route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route `{0}` is claimed by two services")]
pub struct DuplicateRoute(pub String);

/// State of the auth layer.
#[derive(Clone)]
pub struct AuthLayer {
    pub map: Arc<MethodMap>,
    pub verifier: Arc<dyn TokenVerifier>,
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

fn refuse(grpc: bool, status: StatusCode, message: &str) -> Response {
    if grpc {
        let s = match status {
            StatusCode::UNAUTHORIZED => tonic::Status::unauthenticated(message),
            StatusCode::FORBIDDEN => tonic::Status::permission_denied(message),
            StatusCode::SERVICE_UNAVAILABLE => tonic::Status::unavailable(message),
            _ => tonic::Status::internal(message),
        };
        return s.into_http::<axum::body::Body>();
    }
    mc_shell::serve::error_response(status, message)
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl AuthLayer {
    /// The axum middleware: looks the route up, verifies as required, and
    /// passes the [`Principal`] (when there is one) and [`SourceAddr`] on as
    /// request extensions.
    pub async fn enforce(State(layer): State<Self>, mut req: Request, next: Next) -> Response {
        let grpc = is_grpc(req.headers());
        let key = if grpc {
            req.uri().path().to_owned()
        } else {
            match req.extensions().get::<MatchedPath>() {
                Some(p) => format!("{} {}", req.method(), p.as_str()),
                // Unmatched: let the router answer 404/405.
                None => return next.run(req).await,
            }
        };
        let Some(requirement) = layer.map.get(&key) else {
            log_unmapped(&layer.map, &key);
            crate::body::drain_refused(req).await;
            return refuse(
                grpc,
                StatusCode::FORBIDDEN,
                "this method is not authorized for anyone (missing from the method map)",
            );
        };
        if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied()
        {
            req.extensions_mut().insert(SourceAddr(addr.ip()));
        }
        let vault = !grpc && layer.map.is_vault(&key);
        let token = match vault {
            true => vault_token(req.headers()),
            false => bearer(req.headers()),
        }
        .map(str::to_owned);
        let refuse = |grpc: bool, status: StatusCode, message: &str| match vault {
            true => vault::refusal(status, message),
            false => refuse(grpc, status, message),
        };
        let verified = match &token {
            Some(t) => Some(layer.verifier.verify(t).await),
            None => None,
        };
        let principal = match verified {
            None => None,
            Some(Ok(p)) => Some(p),
            // A bad token on a public method is ignored, not an error.
            Some(Err(_)) if matches!(requirement, Requirement::Public | Requirement::Delegated) => {
                None
            }
            Some(Err(AuthError::Unavailable(m))) => {
                crate::body::drain_refused(req).await;
                return refuse(grpc, StatusCode::SERVICE_UNAVAILABLE, &m);
            }
            Some(Err(e)) => {
                crate::body::drain_refused(req).await;
                return refuse(grpc, StatusCode::UNAUTHORIZED, &e.to_string());
            }
        };
        let refusal = match decide(requirement, principal.as_ref()) {
            Decision::Allow => None,
            Decision::Unauthenticated(m) => Some((StatusCode::UNAUTHORIZED, m)),
            Decision::Forbidden(m) => Some((StatusCode::FORBIDDEN, m)),
        };
        if let Some((status, message)) = refusal {
            crate::body::drain_refused(req).await;
            return refuse(grpc, status, &message);
        }
        if let Some(p) = principal {
            req.extensions_mut().insert(p);
        }
        next.run(req).await
    }
}

/// Logs a refused, unmapped method without letting clients flood the log:
/// another method on a mapped path (HEAD, OPTIONS preflights, made-up
/// methods) is the client's business (debug); a path with no entry at all
/// is a gap in a service's map, warned about once per route (at most
/// [`MAX_WARNED`] routes, then debug).
fn log_unmapped(map: &MethodMap, key: &str) {
    static WARNED: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
    let path = key.split_once(' ').map_or(key, |(_, p)| p);
    let known_path = map
        .entries()
        .any(|(k, _)| k.split_once(' ').is_some_and(|(_, p)| p == path));
    if known_path {
        tracing::debug!(route = %key, "method not in the method map: denied");
        return;
    }
    let mut warned = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    if warned.len() < MAX_WARNED && warned.insert(key.to_owned()) {
        tracing::warn!(route = %key, "route missing from the method map: denied (logged once)");
    } else {
        tracing::debug!(route = %key, "route missing from the method map: denied");
    }
}

const MAX_WARNED: usize = 256;

/// 401 JSON for handlers that need a principal the layer did not provide.
pub fn unauthenticated() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({"error": "missing bearer token"})),
    )
        .into_response()
}

/// Cached verification results by token hash.
type VerifyCache =
    std::collections::HashMap<[u8; 32], (std::time::Instant, Result<Principal, AuthError>)>;

/// A verifier cache: results (good or revoked) are kept for at most `ttl`,
/// keyed by the SHA-256 of the token, so a revocation reaches this service
/// within `ttl`. Bounded: at most `max_entries`, oldest dropped first.
pub struct CachedVerifier<V> {
    inner: V,
    ttl: std::time::Duration,
    max_entries: usize,
    cache: std::sync::Mutex<VerifyCache>,
}

impl<V: TokenVerifier> CachedVerifier<V> {
    pub fn new(inner: V, ttl: std::time::Duration, max_entries: usize) -> Self {
        Self {
            inner,
            ttl,
            max_entries,
            cache: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn key(token: &str) -> [u8; 32] {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut k = [0_u8; 32];
        k.copy_from_slice(d.as_ref());
        k
    }
}

impl<V: TokenVerifier> TokenVerifier for CachedVerifier<V> {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthError>> + Send + 'a>> {
        Box::pin(async move {
            let key = Self::key(token);
            let now = std::time::Instant::now();
            {
                let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((at, result)) = cache.get(&key)
                    && now.duration_since(*at) < self.ttl
                {
                    return result.clone();
                }
            }
            let result = self.inner.verify(token).await;
            if !matches!(
                result,
                Err(AuthError::Unavailable(_)) | Err(AuthError::Missing)
            ) {
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= self.max_entries {
                    cache.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
                    if cache.len() >= self.max_entries
                        && let Some(oldest) =
                            cache.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k)
                    {
                        cache.remove(&oldest);
                    }
                }
                cache.insert(key, (now, result.clone()));
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A verifier whose answer the test flips, counting calls.
    struct Flip {
        revoked: std::sync::atomic::AtomicBool,
        calls: AtomicU32,
    }

    impl TokenVerifier for Arc<Flip> {
        fn verify<'a>(
            &'a self,
            token: &'a str,
        ) -> Pin<Box<dyn Future<Output = Result<Principal, AuthError>> + Send + 'a>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                if self.revoked.load(Ordering::SeqCst) {
                    return Err(AuthError::Revoked);
                }
                Ok(Principal {
                    account_id: token.to_owned(),
                    username: "u".into(),
                    account_type: "human".into(),
                    roles: vec![],
                    tags: vec![],
                    jti: "j".into(),
                    expires_at: 0,
                    scopes: vec![],
                })
            })
        }
    }

    #[tokio::test]
    async fn cache_serves_within_ttl_and_sees_revocation_after_it() {
        let inner = Arc::new(Flip {
            revoked: false.into(),
            calls: AtomicU32::new(0),
        });
        let cached = CachedVerifier::new(inner.clone(), std::time::Duration::from_millis(200), 2);
        assert!(cached.verify("t1").await.is_ok());
        assert!(cached.verify("t1").await.is_ok());
        assert_eq!(
            inner.calls.load(Ordering::SeqCst),
            1,
            "second check served from the cache"
        );
        inner.revoked.store(true, Ordering::SeqCst);
        assert!(
            cached.verify("t1").await.is_ok(),
            "within the TTL the cached answer stands"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        assert_eq!(
            cached.verify("t1").await,
            Err(AuthError::Revoked),
            "after the TTL the revocation is seen"
        );
        // Bounded: a third distinct token evicts, never grows past max_entries.
        inner.revoked.store(false, Ordering::SeqCst);
        for t in ["a", "b", "c", "d"] {
            assert!(cached.verify(t).await.is_ok());
        }
        assert!(cached.cache.lock().map(|c| c.len()).unwrap_or(99) <= 2);
    }

    fn principal(
        name: &str,
        kind: &str,
        roles: &[&str],
        tags: &[&str],
        scopes: &[&str],
    ) -> Principal {
        Principal {
            account_id: format!("id-{name}"),
            username: name.to_owned(),
            account_type: kind.to_owned(),
            roles: roles.iter().map(|s| (*s).to_owned()).collect(),
            tags: tags.iter().map(|s| (*s).to_owned()).collect(),
            jti: "j".into(),
            expires_at: 0,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// The whole decision table in one place: every requirement against
    /// anonymous, a user, an admin, a system account, and scoped tokens.
    #[test]
    fn decisions() {
        use Decision::*;
        const PUSH: Requirement = Requirement::Role("mcr-push");
        const AGENT: Requirement = Requirement::System(AccountPattern::NamePrefix("agent-"));
        let alice = principal("alice", "human", &["user"], &[], &[]);
        let root = principal("root", "human", &["admin"], &[], &[]);
        let pusher = principal("ci", "system", &["mcr-push"], &["ci"], &[]);
        let agent = principal("agent-web1", "system", &[], &["agent"], &[]);
        let fake_agent = principal("agent-web1", "human", &["admin"], &[], &[]);
        let bare_prefix = principal("agent-", "system", &[], &[], &[]);
        let allow = |r, p: Option<&Principal>| decide(r, p) == Allow;
        let forbidden = |r, p: Option<&Principal>| matches!(decide(r, p), Forbidden(_));

        assert!(allow(Requirement::Public, None));
        for r in [
            Requirement::Authenticated,
            Requirement::Admin,
            PUSH,
            Requirement::Human,
            AGENT,
        ] {
            assert!(matches!(decide(r, None), Unauthenticated(_)), "{r:?}");
        }
        assert!(allow(Requirement::Authenticated, Some(&alice)));
        assert!(forbidden(Requirement::Admin, Some(&alice)));
        assert!(allow(Requirement::Admin, Some(&root)));
        assert!(forbidden(PUSH, Some(&alice)));
        assert!(allow(PUSH, Some(&pusher)));
        assert!(allow(PUSH, Some(&root)), "an admin holds every role");
        assert!(allow(Requirement::Human, Some(&alice)));
        assert!(forbidden(Requirement::Human, Some(&agent)));
        assert!(allow(AGENT, Some(&agent)));
        assert_eq!(agent.name_suffix("agent-"), Some("web1"));
        assert!(
            forbidden(AGENT, Some(&fake_agent)),
            "a human named like an agent is not one"
        );
        assert!(forbidden(AGENT, Some(&root)), "admins are not agents");
        const HUMAN_ADMIN: Requirement =
            Requirement::AllOf(&[Requirement::Human, Requirement::Admin]);
        let system_admin = principal("ci", "system", &["admin"], &[], &[]);
        assert!(allow(HUMAN_ADMIN, Some(&root)));
        assert!(
            forbidden(HUMAN_ADMIN, Some(&alice)),
            "a human, not an admin"
        );
        assert!(
            forbidden(HUMAN_ADMIN, Some(&system_admin)),
            "an admin, not human"
        );
        assert!(forbidden(HUMAN_ADMIN, Some(&agent)));
        assert!(matches!(decide(HUMAN_ADMIN, None), Unauthenticated(_)));
        assert!(
            forbidden(AGENT, Some(&bare_prefix)),
            "the prefix alone names no node"
        );
        assert!(allow(
            Requirement::System(AccountPattern::Tag("ci")),
            Some(&pusher)
        ));
        assert!(allow(
            Requirement::System(AccountPattern::Name("ci")),
            Some(&pusher)
        ));
        assert!(forbidden(
            Requirement::System(AccountPattern::Name("ci")),
            Some(&agent)
        ));
        const EITHER: Requirement = Requirement::AnyOf(&[Requirement::Admin, AGENT]);
        assert!(allow(EITHER, Some(&root)) && allow(EITHER, Some(&agent)));
        assert!(forbidden(EITHER, Some(&alice)));

        // Scopes narrow, never widen.
        const SCOPED_PUSH: Requirement = Requirement::Scoped {
            scope: "mcr:push",
            inner: &PUSH,
        };
        assert!(
            allow(SCOPED_PUSH, Some(&pusher)),
            "an unscoped token has the account's rights"
        );
        let narrowed = principal("ci", "system", &["mcr-push"], &[], &["mcr:push:repo/app*"]);
        assert!(allow(SCOPED_PUSH, Some(&narrowed)));
        assert!(narrowed.scope_allows("mcr:push", "repo/app-web"));
        assert!(!narrowed.scope_allows("mcr:push", "repo/other"));
        assert!(!narrowed.scope_allows("mcr:delete", "repo/app-web"));
        let wrong = principal("ci", "system", &["mcr-push"], &[], &["dns:write:zone"]);
        assert!(forbidden(SCOPED_PUSH, Some(&wrong)));
        let no_role = principal("ci", "system", &[], &[], &["mcr:push"]);
        assert!(
            forbidden(SCOPED_PUSH, Some(&no_role)),
            "a scope grants nothing the account lacks"
        );
        let similar = principal("ci", "system", &["mcr-push"], &[], &["mcr:pushall"]);
        assert!(
            forbidden(SCOPED_PUSH, Some(&similar)),
            "scope names match whole segments"
        );
    }

    #[test]
    fn merging_maps_refuses_a_route_claimed_twice() {
        let a = MethodMap::new().rest("GET", "/v1/a", Requirement::Public);
        let b = MethodMap::new().rest("GET", "/v1/b", Requirement::Admin);
        let merged = a.clone().merge(b).expect("disjoint");
        assert_eq!(merged.get("GET /v1/b"), Some(Requirement::Admin));
        let again = MethodMap::new().rest("GET", "/v1/a", Requirement::Admin);
        assert_eq!(
            a.merge(again).err(),
            Some(DuplicateRoute("GET /v1/a".to_owned()))
        );
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            axum::http::header::AUTHORIZATION,
            "Bearer abc".parse().unwrap(),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(
            axum::http::header::AUTHORIZATION,
            "bearer  xyz ".parse().unwrap(),
        );
        assert_eq!(bearer(&h), Some("xyz"));
        h.insert(
            axum::http::header::AUTHORIZATION,
            "Basic abc".parse().unwrap(),
        );
        assert_eq!(bearer(&h), None);
        h.insert(
            axum::http::header::AUTHORIZATION,
            "Bearer ".parse().unwrap(),
        );
        assert_eq!(bearer(&h), None);
    }
}
