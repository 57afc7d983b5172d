//! Admin operations behind `/v1/registry/…` and `mc.registry.v1`: one call
//! per operation, shared by the REST and gRPC adapters (`crate::api`).
//!
//! Invariants: listings a non-admin sees are filtered by the current
//! policy's `pull`; a repository delete removes its tags, manifests,
//! referrers and links (decrementing each blob's link count) and its audit
//! row in one transaction; blob bytes stay until GC collects them.

use std::collections::HashSet;

use axum::http::StatusCode;
use mc_kit::store::audit::AuditEvent;
use mc_kit::store::json::{ReadTx, WriteTx};
use mc_service::auth::Principal;
use serde::Serialize;

use super::{Actor, Core, R, audit};
use crate::error::{Code, RegistryError};
use crate::model::RepoName;
use crate::policy::{Action, NamespaceSettings, Policy, RepoSettings, namespace};
use crate::store::{
    BLOBS, LINKS, MANIFEST_CONTENT, MANIFESTS, REFERRERS, REPOS, TAGS, key2, keys_under,
};

/// Page sizes of admin listings.
pub(crate) const MAX_PAGE: usize = 1_000;

/// One repository as the admin API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct RepoInfo {
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub tag_count: u64,
    pub manifest_count: u64,
    /// Bytes counted against its quota (links + manifests).
    pub size_bytes: u64,
    pub public_pull: bool,
    pub quota_bytes: u64,
    pub immutable_tags: Vec<String>,
    /// What GC frees because of this repository (`core::inspect`).
    pub reclaimable_blobs: u64,
    pub reclaimable_bytes: u64,
}

/// One tag with what it points at.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct TagInfo {
    pub tag: String,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub updated_at: i64,
    pub updated_by: String,
}

/// Quota and usage of a repository and of its namespace.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct QuotaInfo {
    pub repository: String,
    pub quota_bytes: u64,
    pub used_bytes: u64,
    pub namespace: String,
    pub namespace_quota_bytes: u64,
    pub namespace_used_bytes: u64,
}

fn unknown_repo(name: &str) -> RegistryError {
    RegistryError::not_found(Code::NameUnknown, format!("repository {name} is not known"))
}

impl Core {
    /// `referenced` is shared by a listing's rows (see [`Core::reclaimable`]).
    fn info(
        &self,
        policy: &Policy,
        name: &str,
        referenced: &mut Option<HashSet<Vec<u8>>>,
    ) -> R<Option<RepoInfo>> {
        let tx = ReadTx::begin(&self.store)?;
        let Some(row) = tx.get(REPOS, name.as_bytes())? else {
            return Ok(None);
        };
        let settings = tx.get(crate::policy::state::REPO_SETTINGS, name.as_bytes())?;
        let tags = crate::store::scan(self.store.db(), TAGS, name, None, usize::MAX)?;
        let manifests = crate::store::scan(self.store.db(), MANIFESTS, name, None, usize::MAX)?;
        let (size_bytes, _) = super::quota::usage(&self.store, name)?;
        let reclaimable = self.reclaimable(name, referenced)?;
        Ok(Some(RepoInfo {
            name: name.to_owned(),
            created_at: row.created_at,
            updated_at: row.updated_at,
            tag_count: tags.len() as u64,
            manifest_count: manifests.len() as u64,
            size_bytes,
            public_pull: policy.is_public(name),
            quota_bytes: settings.as_ref().map_or(0, |s| s.quota_bytes),
            immutable_tags: settings.map(|s| s.immutable_tags).unwrap_or_default(),
            reclaimable_blobs: reclaimable.blobs,
            reclaimable_bytes: reclaimable.bytes,
        }))
    }

    /// Repositories after `last` whose names start with `prefix`, at most
    /// `n`, that `who` may pull.
    pub(crate) fn list_repositories(
        &self,
        policy: &Policy,
        who: &Principal,
        prefix: &str,
        last: Option<&str>,
        n: usize,
    ) -> R<Vec<RepoInfo>> {
        let n = n.clamp(1, MAX_PAGE);
        let mut out = Vec::new();
        let mut after = last.map(str::to_owned);
        let mut referenced = None;
        'pages: for _ in 0..64 {
            let names = crate::store::names(self.store.db(), REPOS, after.as_deref(), MAX_PAGE)?;
            if names.is_empty() {
                break;
            }
            after = names.last().cloned();
            for name in names {
                if name.as_str() > prefix && !name.starts_with(prefix) {
                    break 'pages; // names are in order: past the prefix
                }
                if !name.starts_with(prefix) || !policy.allows(who, &name, Action::Pull) {
                    continue;
                }
                if let Some(info) = self.info(policy, &name, &mut referenced)? {
                    out.push(info);
                }
                if out.len() == n {
                    break 'pages;
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn repository(&self, policy: &Policy, who: &Principal, name: &str) -> R<RepoInfo> {
        if !policy.allows(who, name, Action::Pull) {
            return Err(unknown_repo(name));
        }
        self.info(policy, name, &mut None)?
            .ok_or_else(|| unknown_repo(name))
    }

    /// Tags of a repository with their manifests, after `last`, at most `n`.
    pub(crate) fn list_tags(
        &self,
        policy: &Policy,
        who: &Principal,
        name: &str,
        last: Option<&str>,
        n: usize,
    ) -> R<Vec<TagInfo>> {
        if !policy.allows(who, name, Action::Pull) || !self.repo_exists_str(name)? {
            return Err(unknown_repo(name));
        }
        let rows = crate::store::scan(self.store.db(), TAGS, name, last, n.clamp(1, MAX_PAGE))?;
        let tx = ReadTx::begin(&self.store)?;
        let mut out = Vec::with_capacity(rows.len());
        for (tag, row) in rows {
            let m = tx.get(MANIFESTS, &key2(name, &row.digest))?;
            out.push(TagInfo {
                tag,
                media_type: m.as_ref().map(|m| m.media_type.clone()).unwrap_or_default(),
                size: m.map_or(0, |m| m.size),
                digest: row.digest,
                updated_at: row.updated_at,
                updated_by: row.updated_by,
            });
        }
        Ok(out)
    }

    fn repo_exists_str(&self, name: &str) -> R<bool> {
        Ok(ReadTx::begin(&self.store)?
            .get(REPOS, name.as_bytes())?
            .is_some())
    }

    /// Removes a repository's tags, manifests, referrers and links.
    pub(crate) fn delete_repository(&self, name: &RepoName, actor: &Actor) -> R<()> {
        let repo = name.as_str();
        let tx = WriteTx::begin(&self.store)?;
        if tx.get(REPOS, repo.as_bytes())?.is_none() {
            return Err(unknown_repo(repo));
        }
        let mut counts = [0_u64; 3];
        let settings = tx
            .get(crate::policy::state::REPO_SETTINGS, repo.as_bytes())?
            .unwrap_or_default();
        for tag in keys_under(tx.raw(), TAGS.def(), repo)? {
            if settings.is_immutable(&tag) {
                return Err(RegistryError::new(
                    StatusCode::FORBIDDEN,
                    Code::Denied,
                    format!(
                        "{repo} holds the immutable tag {tag}: clear its immutable_tags setting first"
                    ),
                ));
            }
            tx.delete(TAGS.def(), &key2(repo, &tag))?;
            counts[0] += 1;
        }
        for d in keys_under(tx.raw(), MANIFESTS.def(), repo)? {
            let k = key2(repo, &d);
            tx.delete(MANIFESTS.def(), &k)?;
            tx.delete(MANIFEST_CONTENT, &k)?;
            counts[1] += 1;
        }
        for rest in keys_under(tx.raw(), REFERRERS.def(), repo)? {
            tx.delete(REFERRERS.def(), &key2(repo, &rest))?;
        }
        for d in keys_under(tx.raw(), LINKS.def(), repo)? {
            tx.delete(LINKS.def(), &key2(repo, &d))?;
            if let Some(mut b) = tx.get(BLOBS, d.as_bytes())? {
                b.links = b.links.saturating_sub(1);
                tx.put(BLOBS, d.as_bytes(), &b)?;
            }
            counts[2] += 1;
        }
        tx.delete(REPOS.def(), repo.as_bytes())?;
        tx.audit(audit(
            actor,
            "registry.repo.delete",
            repo.to_owned(),
            format!(
                "tags={} manifests={} links={}",
                counts[0], counts[1], counts[2]
            ),
        ))?;
        tx.commit()?;
        Ok(())
    }

    /// Quota and usage of `repo` and its namespace.
    pub(crate) fn quota(&self, repo: &str) -> R<QuotaInfo> {
        let ns = namespace(repo);
        let settings: RepoSettings = self.repo_settings(repo)?;
        let ns_settings: NamespaceSettings = self.namespace_settings(ns)?;
        let (used, ns_used) = super::quota::usage(&self.store, repo)?;
        Ok(QuotaInfo {
            repository: repo.to_owned(),
            quota_bytes: settings.quota_bytes,
            used_bytes: used,
            namespace: ns.to_owned(),
            namespace_quota_bytes: ns_settings.quota_bytes,
            namespace_used_bytes: ns_used,
        })
    }

    /// The registry's audit rows, newest first, before sequence `before`,
    /// optionally only those whose action starts with `action` or whose
    /// target is `target`.
    pub(crate) fn audit_query(
        &self,
        before: Option<u64>,
        limit: usize,
        action: Option<&str>,
        target: Option<&str>,
    ) -> R<Vec<AuditEvent>> {
        let limit = limit.clamp(1, MAX_PAGE);
        let tx = ReadTx::begin(&self.store)?;
        let mut out = Vec::new();
        let mut cursor = before;
        // Read pages until `limit` rows pass the filter (bounded).
        for _ in 0..64 {
            let page = tx.audit_page(cursor, MAX_PAGE)?;
            let Some(last) = page.last() else { break };
            cursor = Some(last.seq);
            for e in page {
                let keep = action.is_none_or(|a| e.action.starts_with(a))
                    && target.is_none_or(|t| e.target == t);
                if keep {
                    out.push(e);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }
}
