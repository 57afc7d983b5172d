//! The admin operations, one function per operation: what the REST and
//! gRPC twins both call (validation, the caller's principal, the core call,
//! the error mapping to `ApiError`). The auth map has already decided who
//! may reach each one (`crate::methods`); listings are further filtered by
//! policy in the core.

use std::sync::Arc;

use axum::http::StatusCode;
use mc_kit::api::ApiError;
use mc_kit::store::audit::AuditEvent;
use mc_service::auth::Principal;
use mc_service::caller::Caller;
use serde::Deserialize;

use crate::Mcr;
use crate::core::admin::{QuotaInfo, RepoInfo, TagInfo};
use crate::core::inspect::ManifestView;
use crate::core::{Actor, Reference, blocking};
use crate::error::RegistryError;
use crate::model::RepoName;
use crate::policy::{Action, Decision, MAX_IMMUTABLE_TAGS, NamespaceSettings, Rule};

pub(crate) type R<T> = Result<T, ApiError>;

/// A core refusal as an API error (`{"error": …}` / gRPC status).
pub(crate) fn api(e: RegistryError) -> ApiError {
    match e.status {
        StatusCode::BAD_REQUEST => ApiError::invalid("request", e.message),
        StatusCode::NOT_FOUND => ApiError::NotFound(e.message),
        StatusCode::CONFLICT => ApiError::AlreadyExists(e.message),
        StatusCode::FORBIDDEN | StatusCode::METHOD_NOT_ALLOWED => ApiError::Forbidden(e.message),
        StatusCode::UNAUTHORIZED => ApiError::Unauthenticated(e.message),
        _ => ApiError::internal(e.message),
    }
}

fn repo(name: &str) -> R<RepoName> {
    RepoName::parse(name).ok_or_else(|| {
        ApiError::invalid(
            "repository",
            "not a repository name (lowercase components separated by /)",
        )
    })
}

fn namespace_name(name: &str) -> R<String> {
    match RepoName::parse(name) {
        Some(n) if !n.as_str().contains('/') => Ok(name.to_owned()),
        _ => Err(ApiError::invalid(
            "namespace",
            "one repository-name component",
        )),
    }
}

fn actor(c: &Caller) -> Actor {
    Actor {
        account_id: c.actor(),
        source_ip: c.ip(),
    }
}

async fn run<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> R<T> {
    blocking(f).await.map_err(api)
}

pub(crate) async fn list_repositories(
    m: &Arc<Mcr>,
    c: &Caller,
    prefix: String,
    last: Option<String>,
    n: usize,
) -> R<Vec<RepoInfo>> {
    let p = c.require()?.clone();
    let m = m.clone();
    run(move || {
        m.core
            .list_repositories(&m.policy, &p, &prefix, last.as_deref(), n)
    })
    .await
}

pub(crate) async fn get_repository(m: &Arc<Mcr>, c: &Caller, name: &str) -> R<RepoInfo> {
    let name = repo(name)?;
    let p = c.require()?.clone();
    let m = m.clone();
    run(move || m.core.repository(&m.policy, &p, name.as_str())).await
}

/// A change of a repository's settings; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RepoUpdate {
    /// `null` clears it (the namespace's default applies).
    #[serde(default, with = "double_option")]
    pub public_pull: Option<Option<bool>>,
    #[serde(default)]
    pub quota_bytes: Option<u64>,
    /// Replaces the globs; `[]` makes every tag movable again.
    #[serde(default)]
    pub immutable_tags: Option<Vec<String>>,
}

/// Refuses more than [`MAX_IMMUTABLE_TAGS`] globs or a malformed one.
fn check_immutable_tags(globs: &[String]) -> R<()> {
    if globs.len() > MAX_IMMUTABLE_TAGS {
        return Err(ApiError::invalid(
            "immutable_tags",
            format!("at most {MAX_IMMUTABLE_TAGS} globs"),
        ));
    }
    for g in globs {
        if g.is_empty() {
            return Err(ApiError::invalid("immutable_tags", "an empty glob"));
        }
        crate::policy::glob::check_tag_pattern(g)
            .map_err(|why| ApiError::invalid("immutable_tags", format!("`{g}`: {why}")))?;
    }
    Ok(())
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<bool>>, D::Error> {
        Option::<bool>::deserialize(d).map(Some)
    }
}

pub(crate) async fn update_repository(
    m: &Arc<Mcr>,
    c: &Caller,
    name: &str,
    u: RepoUpdate,
) -> R<RepoInfo> {
    let name = repo(name)?;
    if let Some(globs) = &u.immutable_tags {
        check_immutable_tags(globs)?;
    }
    let p = c.require()?.clone();
    let (m, a) = (m.clone(), actor(c));
    run(move || {
        let mut s = m.core.repo_settings(name.as_str())?;
        if let Some(pp) = u.public_pull {
            s.public_pull = pp;
        }
        if let Some(q) = u.quota_bytes {
            s.quota_bytes = q;
        }
        if let Some(globs) = u.immutable_tags {
            s.immutable_tags = globs;
        }
        m.core.set_repo_settings(name.as_str(), &s, &a)?;
        match m.core.repository(&m.policy, &p, name.as_str()) {
            // Settings may be made before the first push.
            Err(e) if e.status == StatusCode::NOT_FOUND => Ok(RepoInfo {
                name: name.to_string(),
                created_at: 0,
                updated_at: 0,
                tag_count: 0,
                manifest_count: 0,
                size_bytes: 0,
                public_pull: m.policy.is_public(name.as_str()),
                quota_bytes: s.quota_bytes,
                immutable_tags: s.immutable_tags,
                reclaimable_blobs: 0,
                reclaimable_bytes: 0,
            }),
            other => other,
        }
    })
    .await
}

pub(crate) async fn delete_repository(m: &Arc<Mcr>, c: &Caller, name: &str) -> R<()> {
    let name = repo(name)?;
    let (m, a) = (m.clone(), actor(c));
    run(move || m.core.delete_repository(&name, &a)).await
}

pub(crate) async fn list_tags(
    m: &Arc<Mcr>,
    c: &Caller,
    name: &str,
    last: Option<String>,
    n: usize,
) -> R<Vec<TagInfo>> {
    let name = repo(name)?;
    let p = c.require()?.clone();
    let m = m.clone();
    run(move || {
        m.core
            .list_tags(&m.policy, &p, name.as_str(), last.as_deref(), n)
    })
    .await
}

pub(crate) async fn get_namespace(m: &Arc<Mcr>, name: &str) -> R<NamespaceSettings> {
    let name = namespace_name(name)?;
    let m = m.clone();
    run(move || m.core.namespace_settings(&name)).await
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NamespaceUpdate {
    #[serde(default)]
    pub public_pull: Option<bool>,
    #[serde(default)]
    pub quota_bytes: Option<u64>,
}

pub(crate) async fn update_namespace(
    m: &Arc<Mcr>,
    c: &Caller,
    name: &str,
    u: NamespaceUpdate,
) -> R<NamespaceSettings> {
    let name = namespace_name(name)?;
    let (m, a) = (m.clone(), actor(c));
    run(move || {
        let mut s = m.core.namespace_settings(&name)?;
        if let Some(pp) = u.public_pull {
            s.public_pull = pp;
        }
        if let Some(q) = u.quota_bytes {
            s.quota_bytes = q;
        }
        m.core.set_namespace_settings(&name, &s, &a)?;
        Ok(s)
    })
    .await
}

pub(crate) async fn get_quota(m: &Arc<Mcr>, name: &str) -> R<QuotaInfo> {
    let name = repo(name)?;
    let m = m.clone();
    run(move || m.core.quota(name.as_str())).await
}

pub(crate) async fn set_quota(m: &Arc<Mcr>, c: &Caller, name: &str, bytes: u64) -> R<QuotaInfo> {
    let name = repo(name)?;
    let (m, a) = (m.clone(), actor(c));
    run(move || {
        let mut s = m.core.repo_settings(name.as_str())?;
        s.quota_bytes = bytes;
        m.core.set_repo_settings(name.as_str(), &s, &a)?;
        m.core.quota(name.as_str())
    })
    .await
}

pub(crate) async fn list_rules(m: &Arc<Mcr>) -> R<Vec<Rule>> {
    let m = m.clone();
    run(move || m.core.policy_rules()).await
}

pub(crate) async fn get_rule(m: &Arc<Mcr>, id: &str) -> R<Rule> {
    let (m, id) = (m.clone(), id.to_owned());
    run(move || m.core.policy_rule(&id)).await
}

pub(crate) async fn create_rule(m: &Arc<Mcr>, c: &Caller, rule: Rule) -> R<Rule> {
    let (m, a) = (m.clone(), actor(c));
    run(move || m.core.create_rule(&m.policy, rule, &a)).await
}

pub(crate) async fn update_rule(m: &Arc<Mcr>, c: &Caller, id: &str, rule: Rule) -> R<Rule> {
    let (m, a, id) = (m.clone(), actor(c), id.to_owned());
    run(move || m.core.update_rule(&m.policy, &id, rule, &a)).await
}

pub(crate) async fn delete_rule(m: &Arc<Mcr>, c: &Caller, id: &str) -> R<()> {
    let (m, a, id) = (m.clone(), actor(c), id.to_owned());
    run(move || m.core.delete_rule(&m.policy, &id, &a)).await
}

/// A described caller and request for `explain`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExplainInput {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub account_id: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub account_type: String,
    pub repository: String,
    pub action: String,
    #[serde(default)]
    pub tag: Option<String>,
}

pub(crate) fn explain(m: &Mcr, e: ExplainInput) -> R<Decision> {
    let name = repo(&e.repository)?;
    let action = Action::parse(&e.action)
        .ok_or_else(|| ApiError::invalid("action", "pull, push or delete"))?;
    if e.roles.len() > crate::policy::MAX_LIST || e.tags.len() > crate::policy::MAX_LIST {
        return Err(ApiError::invalid("roles", "too many entries"));
    }
    let p = Principal {
        account_id: e.account_id,
        username: e.username,
        account_type: if e.account_type.is_empty() {
            "human".into()
        } else {
            e.account_type
        },
        roles: e.roles,
        tags: e.tags,
        jti: String::new(),
        expires_at: 0,
        scopes: Vec::new(),
    };
    let tag = e.tag.filter(|t| !t.is_empty());
    Ok(m.policy.decide(&p, name.as_str(), action, tag.as_deref()))
}

pub(crate) async fn get_manifest(
    m: &Arc<Mcr>,
    c: &Caller,
    name: &str,
    reference: &str,
) -> R<ManifestView> {
    let name = repo(name)?;
    let reference = Reference::parse(reference)
        .map_err(|_| ApiError::invalid("reference", "a tag or a digest (sha256:…)"))?;
    let p = c.require()?.clone();
    let m = m.clone();
    run(move || m.core.manifest_view(&m.policy, &p, &name, &reference)).await
}

/// Audit rows, newest first.
pub(crate) async fn audit(
    m: &Arc<Mcr>,
    before: Option<u64>,
    limit: usize,
    action: Option<String>,
    target: Option<String>,
) -> R<Vec<AuditEvent>> {
    let m = m.clone();
    run(move || {
        m.core
            .audit_query(before, limit, action.as_deref(), target.as_deref())
    })
    .await
}
