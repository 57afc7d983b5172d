//! Docker token auth: challenges, the token endpoint, registry tokens
//! (grants) and the guard every `/v2` operation passes.
//!
//! Invariants: a handler that names a repository gets an [`Authorized`]
//! only from [`Auth::authorize`] (its field is private to this module), so
//! no handler skips the check; MCIAS tokens are never handed to registry
//! clients (they get `mcr1.` tokens, kept by SHA-256 in a bounded map);
//! granted = requested ∩ policy ∩ the MCIAS token's scopes, and the policy
//! is evaluated again on every request.
//!
//! Policy is `crate::policy` (rules, evaluated again on every request);
//! anonymous callers may only pull repositories with `public_pull`, with or
//! without an anonymous registry token. Scoped MCIAS tokens
//! (`mcr:push:repo/ci/*`) narrow what policy allows. Refused pushes and
//! deletes are audited (`registry.denied`, at most one row per account,
//! repository and action per minute).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mc_service::auth::{Principal, TokenVerifier};
use mc_service::hosted::{ForwardedLogin, LoginForwarder, LoginRefused};
use zeroize::Zeroizing;

use crate::core::Actor;
use crate::error::{Code, RegistryError};
use crate::model::RepoName;

pub(crate) use crate::policy::Action;

/// A parsed `scope` of a token request (distribution's `scope.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    Repository(String, Vec<Action>),
    Catalog,
    /// A type or resource we grant nothing for.
    Other,
}

/// Parses one scope: `type:name:actions` where the name may itself contain
/// a `:` (`repository:host:5000/x:pull`). Pure; fuzzed.
pub(crate) fn parse_scope(s: &str) -> Option<Scope> {
    let (kind, rest) = s.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    if name.is_empty() {
        return None;
    }
    let kind = kind.split_once('(').map_or(kind, |(k, _)| k);
    match kind {
        "repository" => Some(Scope::Repository(
            name.to_owned(),
            actions
                .split(',')
                .filter_map(|a| match a {
                    "*" => None,
                    a => Action::parse(a),
                })
                .chain(
                    actions
                        .split(',')
                        .any(|a| a == "*")
                        .then_some([Action::Pull, Action::Push, Action::Delete])
                        .into_iter()
                        .flatten(),
                )
                .collect(),
        )),
        "registry" if name == "catalog" => Some(Scope::Catalog),
        _ => Some(Scope::Other),
    }
}

/// Per repository: the actions requested, and those granted.
type Scoped = BTreeMap<String, (BTreeSet<Action>, BTreeSet<Action>)>;

/// What a registry token grants.
struct Grant {
    /// `None`: an anonymous token (pull of public repositories only).
    principal: Option<Principal>,
    /// The MCIAS token it came from, re-verified every [`REVERIFY`].
    mcias_token: Option<Zeroizing<String>>,
    verified_at: Instant,
    expires: Instant,
    /// `None`: unscoped (decided per request by policy).
    scoped: Option<Scoped>,
    catalog: bool,
}

const REVERIFY: Duration = Duration::from_secs(30);
const MAX_GRANTS: usize = 100_000;
const MAX_SCOPES: usize = 16;

/// The registry's auth state.
pub(crate) struct Auth {
    pub realm: String,
    pub service: String,
    ttl: Duration,
    verifier: Option<Arc<dyn TokenVerifier>>,
    login: Option<Arc<dyn LoginForwarder>>,
    login_tags: Vec<String>,
    grants: Mutex<HashMap<[u8; 32], Grant>>,
    /// Policy decisions and their audit.
    pub(crate) decider: super::decide::Decider,
}

/// Proof that the caller may do what it asked on a repository.
pub(crate) struct Authorized {
    pub actor: Actor,
    /// `None`: an anonymous pull of a public repository.
    pub principal: Option<Principal>,
    _private: (),
}

/// Who is calling, as the guard sees it.
enum Who {
    Anonymous,
    Principal(Principal),
    Grant([u8; 32]),
    BadToken,
}

fn hash(token: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut k = [0_u8; 32];
    k.copy_from_slice(d.as_ref());
    k
}

fn scope_string(repo: &str, actions: &[Action]) -> String {
    let a: Vec<_> = actions.iter().map(|a| a.name()).collect();
    format!("repository:{repo}:{}", a.join(","))
}

impl Auth {
    pub(crate) fn new(
        realm: String,
        service: String,
        ttl: Duration,
        verifier: Option<Arc<dyn TokenVerifier>>,
        login: Option<Arc<dyn LoginForwarder>>,
        login_tags: Vec<String>,
        decider: super::decide::Decider,
    ) -> Self {
        Self {
            realm,
            service,
            ttl,
            verifier,
            login,
            login_tags,
            grants: Mutex::new(HashMap::new()),
            decider,
        }
    }

    fn grants(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Grant>> {
        self.grants.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// 401 with the Bearer challenge for `scope` (none on `/v2/`).
    pub(crate) fn challenge(&self, scope: Option<&str>, insufficient: bool) -> RegistryError {
        let mut v = format!(
            "Bearer realm=\"{}\",service=\"{}\"",
            self.realm, self.service
        );
        if let Some(s) = scope {
            v.push_str(&format!(",scope=\"{s}\""));
        }
        if insufficient {
            v.push_str(",error=\"insufficient_scope\"");
        }
        RegistryError::new(
            StatusCode::UNAUTHORIZED,
            Code::Unauthorized,
            "authentication required",
        )
        .header(header::WWW_AUTHENTICATE, v)
    }

    fn who(&self, headers: &HeaderMap, layer_principal: Option<Principal>) -> Who {
        if let Some(p) = layer_principal {
            return Who::Principal(p);
        }
        let Some(bearer) = mc_service::auth::bearer(headers) else {
            return Who::Anonymous;
        };
        if bearer.starts_with("mcr1.") {
            let k = hash(bearer);
            if self
                .grants()
                .get(&k)
                .is_some_and(|g| g.expires > Instant::now())
            {
                return Who::Grant(k);
            }
        }
        Who::BadToken
    }

    /// Re-verifies a grant's MCIAS token when it is older than [`REVERIFY`];
    /// returns the principal (`Some(None)`: anonymous), or `None` when the
    /// grant is no longer good.
    async fn grant_principal(&self, k: &[u8; 32]) -> Option<Option<Principal>> {
        let (principal, token, fresh) = {
            let g = self.grants();
            let grant = g.get(k)?;
            (
                grant.principal.clone(),
                grant.mcias_token.clone(),
                grant.verified_at.elapsed() < REVERIFY,
            )
        };
        let Some(token) = token else {
            return Some(None);
        };
        if fresh {
            return Some(principal);
        }
        let verifier = self.verifier.as_ref()?;
        match verifier.verify(&token).await {
            Ok(p) => {
                if let Some(g) = self.grants().get_mut(k) {
                    g.verified_at = Instant::now();
                    g.principal = Some(p.clone());
                }
                Some(Some(p))
            }
            Err(_) => {
                self.grants().remove(k);
                None
            }
        }
    }

    /// The guard: may the caller do `actions` on `repo`?
    pub(crate) async fn authorize(
        &self,
        headers: &HeaderMap,
        layer_principal: Option<Principal>,
        source: String,
        repo: &RepoName,
        actions: &[Action],
    ) -> Result<Authorized, RegistryError> {
        let scope = scope_string(repo.as_str(), actions);
        let principal = match self.who(headers, layer_principal) {
            Who::BadToken => return Err(self.challenge(Some(&scope), false)),
            Who::Anonymous => None,
            Who::Principal(p) => Some(p),
            Who::Grant(k) => {
                let Some(p) = self.grant_principal(&k).await else {
                    return Err(self.challenge(Some(&scope), false));
                };
                let g = self.grants();
                if let Some(scoped) = g.get(&k).and_then(|g| g.scoped.as_ref()) {
                    let (requested, granted) =
                        scoped.get(repo.as_str()).cloned().unwrap_or_default();
                    for a in actions {
                        if !requested.contains(a) {
                            return Err(self.challenge(Some(&scope), true));
                        }
                        if !granted.contains(a) {
                            return Err(match &p {
                                Some(p) => denied(p, repo.as_str(), *a),
                                None => self.challenge(Some(&scope), false),
                            });
                        }
                    }
                }
                p
            }
        };
        for a in actions {
            match &principal {
                None if *a == Action::Pull && self.decider.policy.is_public(repo.as_str()) => {}
                None => return Err(self.challenge(Some(&scope), false)),
                Some(p) => {
                    if let Err(reason) = self.decider.check(p, repo.as_str(), *a, None, &source) {
                        return Err(denied_because(p, repo.as_str(), *a, &reason));
                    }
                }
            }
        }
        Ok(Authorized {
            actor: Actor {
                account_id: principal
                    .as_ref()
                    .map_or_else(|| "anonymous".to_owned(), |p| p.account_id.clone()),
                source_ip: source,
            },
            principal,
            _private: (),
        })
    }

    /// A tag-level check after [`Auth::authorize`]: may the caller push or
    /// delete `tag` (the rules' `tag_patterns`)?
    pub(crate) fn authorize_tag(
        &self,
        who: &Authorized,
        repo: &RepoName,
        action: Action,
        tag: &str,
    ) -> Result<(), RegistryError> {
        let Some(p) = &who.principal else {
            return Err(self.challenge(Some(&scope_string(repo.as_str(), &[action])), false));
        };
        self.decider
            .check(p, repo.as_str(), action, Some(tag), &who.actor.source_ip)
            .map_err(|reason| denied_because(p, repo.as_str(), action, &reason))
    }

    /// Whether the caller may pull `repo` (a mount's source): no challenge, just yes or no.
    pub(crate) async fn may_pull(
        &self,
        headers: &HeaderMap,
        layer_principal: Option<Principal>,
        repo: &RepoName,
    ) -> bool {
        self.authorize(
            headers,
            layer_principal,
            String::new(),
            repo,
            &[Action::Pull],
        )
        .await
        .is_ok()
    }

    /// The catalog's guard; returns the principal whose pull rights filter it.
    pub(crate) async fn authorize_catalog(
        &self,
        headers: &HeaderMap,
        layer_principal: Option<Principal>,
    ) -> Result<Principal, RegistryError> {
        let scope = "registry:catalog:*";
        match self.who(headers, layer_principal) {
            Who::Anonymous | Who::BadToken => Err(self.challenge(Some(scope), false)),
            Who::Principal(p) => Ok(p),
            Who::Grant(k) => {
                let p = self
                    .grant_principal(&k)
                    .await
                    .flatten()
                    .ok_or_else(|| self.challenge(Some(scope), false))?;
                let g = self.grants();
                let ok = g.get(&k).is_some_and(|g| g.scoped.is_none() || g.catalog);
                if ok {
                    Ok(p)
                } else {
                    Err(self.challenge(Some(scope), true))
                }
            }
        }
    }

    /// `GET /v2/`: any valid credentials.
    pub(crate) async fn check_base(
        &self,
        headers: &HeaderMap,
        layer_principal: Option<Principal>,
    ) -> Result<(), RegistryError> {
        match self.who(headers, layer_principal) {
            Who::Principal(_) => Ok(()),
            Who::Grant(k) if self.grant_principal(&k).await.is_some() => Ok(()),
            _ => Err(self.challenge(None, false)),
        }
    }

    /// The token endpoint: Basic credentials (password or MCIAS token) →
    /// a registry token for the requested scopes.
    pub(crate) async fn token(
        &self,
        headers: &HeaderMap,
        params: &[(String, String)],
        source: Option<std::net::IpAddr>,
    ) -> Response {
        match self.issue(headers, params, source).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        }
    }

    async fn issue(
        &self,
        headers: &HeaderMap,
        params: &[(String, String)],
        source: Option<std::net::IpAddr>,
    ) -> Result<Response, RegistryError> {
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if param("grant_type").is_some_and(|g| g != "password") {
            return Err(RegistryError::bad(
                Code::Unsupported,
                "unsupported_grant_type: only password (MCR issues no refresh tokens)",
            ));
        }
        if let Some(s) = param("service")
            && s != self.service
        {
            return Err(RegistryError::bad(
                Code::Denied,
                format!("unknown service {s}"),
            ));
        }
        let scopes: Vec<&str> = params
            .iter()
            .filter(|(n, _)| n == "scope")
            .flat_map(|(_, v)| v.split(' '))
            .filter(|s| !s.is_empty())
            .collect();
        if scopes.len() > MAX_SCOPES {
            return Err(RegistryError::bad(
                Code::Denied,
                format!("at most {MAX_SCOPES} scopes per request"),
            ));
        }
        let creds = basic(headers).or_else(|| {
            Some((
                param("username")?.to_owned(),
                Zeroizing::new(param("password")?.to_owned()),
            ))
        });
        let (principal, mcias_token) = match creds {
            Some((username, password)) => {
                let (p, t) = self.credentials(&username, password, source).await?;
                (Some(p), Some(t))
            }
            // Anonymous: a token for the public repositories among the scopes.
            None => (None, None),
        };
        let mut scoped = BTreeMap::new();
        let mut catalog = false;
        for s in &scopes {
            match parse_scope(s) {
                Some(Scope::Repository(name, actions)) => {
                    let entry: &mut (BTreeSet<Action>, BTreeSet<Action>) =
                        scoped.entry(name.clone()).or_default();
                    for a in actions {
                        entry.0.insert(a);
                        let ok = RepoName::parse(&name).is_some()
                            && match &principal {
                                Some(p) => self.decider.policy.allows(p, &name, a),
                                None => a == Action::Pull && self.decider.policy.is_public(&name),
                            };
                        if ok {
                            entry.1.insert(a);
                        }
                    }
                }
                Some(Scope::Catalog) => catalog = principal.is_some(),
                Some(Scope::Other) | None => {}
            }
        }
        let mut raw = [0_u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut raw[..]);
        let token = format!(
            "mcr1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let now = Instant::now();
        let grant = Grant {
            principal,
            mcias_token,
            verified_at: now,
            expires: now + self.ttl,
            scoped: (!scopes.is_empty()).then_some(scoped),
            catalog,
        };
        {
            let mut g = self.grants();
            if g.len() >= MAX_GRANTS {
                g.retain(|_, x| x.expires > now);
                if g.len() >= MAX_GRANTS
                    && let Some(first) = g.iter().min_by_key(|(_, x)| x.expires).map(|(k, _)| *k)
                {
                    g.remove(&first);
                }
            }
            g.insert(hash(&token), grant);
        }
        let body = serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": self.ttl.as_secs(),
            "issued_at": rfc3339_now(),
        });
        let mut r = axum::Json(body).into_response();
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        Ok(r)
    }

    /// A password that is an MCIAS token (of `username`) is verified;
    /// anything else is a login forwarded to MCIAS.
    async fn credentials(
        &self,
        username: &str,
        password: Zeroizing<String>,
        source: Option<std::net::IpAddr>,
    ) -> Result<(Principal, Zeroizing<String>), RegistryError> {
        let bad = |m: &str| {
            RegistryError::new(StatusCode::UNAUTHORIZED, Code::Unauthorized, m.to_owned())
        };
        let verifier = self
            .verifier
            .as_ref()
            .ok_or_else(|| RegistryError::internal("no token verifier"))?;
        let looks_like_jwt = password.split('.').count() == 3 && password.starts_with("ey");
        let token = if looks_like_jwt {
            password
        } else {
            let login = self
                .login
                .as_ref()
                .ok_or_else(|| RegistryError::internal("no login forwarder"))?;
            let result = login
                .login(ForwardedLogin {
                    username: username.to_owned(),
                    password: password.to_string(),
                    service_name: "mcr".to_owned(),
                    tags: self.login_tags.clone(),
                    source,
                })
                .await;
            match result {
                Ok(t) => Zeroizing::new(t),
                Err(LoginRefused::BadCredentials(_)) => {
                    return Err(bad("invalid username or password"));
                }
                Err(LoginRefused::SecondFactor) => {
                    return Err(bad(
                        "this account needs a second factor: use an MCIAS token as the password",
                    ));
                }
                Err(LoginRefused::Denied(m)) => return Err(RegistryError::denied(m)),
                Err(LoginRefused::RateLimited(m)) => {
                    return Err(RegistryError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        Code::TooManyRequests,
                        m,
                    )
                    .header(header::RETRY_AFTER, "60"));
                }
                Err(LoginRefused::Unavailable(m)) => return Err(RegistryError::internal(m)),
            }
        };
        let principal = verifier
            .verify(&token)
            .await
            .map_err(|_| bad("invalid username or token"))?;
        if principal.username != username {
            return Err(bad("the token belongs to another account"));
        }
        Ok((principal, token))
    }
}

fn denied(p: &Principal, repo: &str, action: Action) -> RegistryError {
    RegistryError::denied(format!("{} may not {} {repo}", p.username, action.name()))
        .detail(serde_json::json!([{"Type": "repository", "Name": repo, "Action": action.name()}]))
}

/// [`denied`] with the policy's reason in the message.
fn denied_because(p: &Principal, repo: &str, action: Action, reason: &str) -> RegistryError {
    let mut e = denied(p, repo, action);
    e.message = format!("{}: {reason}", e.message);
    e
}

/// `Authorization: Basic` credentials.
fn basic(headers: &HeaderMap) -> Option<(String, Zeroizing<String>)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?,
    );
    let s = std::str::from_utf8(&raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_owned(), Zeroizing::new(p.to_owned())))
}

fn rfc3339_now() -> String {
    mc_kit::clock::rfc3339(mc_kit::clock::unix_now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_per_distribution() {
        assert_eq!(
            parse_scope("repository:apps/web:pull,push"),
            Some(Scope::Repository(
                "apps/web".into(),
                vec![Action::Pull, Action::Push]
            ))
        );
        assert_eq!(
            parse_scope("repository:host:5000/x:pull"),
            Some(Scope::Repository("host:5000/x".into(), vec![Action::Pull]))
        );
        assert_eq!(
            parse_scope("repository(plugin):a:*"),
            Some(Scope::Repository(
                "a".into(),
                vec![Action::Pull, Action::Push, Action::Delete]
            ))
        );
        assert_eq!(parse_scope("registry:catalog:*"), Some(Scope::Catalog));
        assert_eq!(parse_scope("thing:x:y"), Some(Scope::Other));
        assert_eq!(parse_scope("repository::pull"), None);
        assert_eq!(parse_scope("repository"), None);
    }

    #[test]
    fn rfc3339() {
        let s = rfc3339_now();
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'));
    }

    proptest::proptest! {
        #[test]
        fn scope_parse_never_panics(s in "\\PC{0,60}") {
            let _ = parse_scope(&s);
        }
    }
}
