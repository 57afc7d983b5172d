//! Retention rules (docs/design/mcr.md, "Retention"): declarative, per
//! matching repository, run on demand (`POST /v1/registry/retention/run`,
//! `Retention/Run`, `mcctl registry retention run [--dry-run]`).
//!
//! Semantics: an enabled rule matching a repository **retains** tags (those
//! matching `keep_tags`, plus the `keep_last` most recently updated of the
//! others; a rule without `keep_last` retains every tag); a tag no matching
//! rule retains is deleted. Referrers-schema tags (`sha256-<hex>`,
//! `sha512-<hex>`) are always kept and never counted. Then manifests with no
//! tag, no parent index in the repository and `pushed_at` older than the
//! longest `untagged_older_than` of the matching rules are deleted, repeated
//! until nothing changes (deleting an index frees its children); a referrer
//! (a manifest with a `subject`) only once its subject is gone. Blobs are
//! left to GC.
//!
//! Invariant: the plan is computed from one read snapshot, and each
//! deletion re-checks in its own write transaction that the plan still
//! holds (the tag still points where and as it did; the manifest is still
//! untagged, unparented and the same push), so a tag or push landing during
//! a run always wins. A dry run plans only.

use std::collections::{BTreeMap, BTreeSet};

use mc_kit::api::ApiError;
use mc_kit::store::json::{ReadTx, WriteTx};
use serde::{Deserialize, Serialize};

use super::tables::RETENTION;
use crate::core::{Actor, Core};
use crate::model::RepoName;
use crate::registry::digest::Digest;
use crate::store::{LINKS, LinkRow, MANIFESTS, ManifestRow, REPOS, TAGS, TagRow, key2};

/// Rules in all.
pub(crate) const MAX_RULES: usize = 100;
/// Patterns per list in a rule.
const MAX_PATTERNS: usize = 64;
/// Items a report lists (counts are always whole).
const MAX_LISTED: usize = 1000;

/// A retention rule as stored and as the API takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rule {
    pub id: String,
    /// Repository globs: `*` within one component, `**` any components.
    pub repositories: Vec<String>,
    /// Keep this many most recently updated tags (besides `keep_tags`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Tag globs (`*`, `?`) always kept.
    #[serde(default)]
    pub keep_tags: Vec<String>,
    /// Delete untagged manifests pushed longer ago than this (`7d`, `12h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untagged_older_than: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

fn seconds(s: &str) -> Option<i64> {
    let d: mc_kit::config::Duration = s.parse().ok()?;
    i64::try_from(d.get().as_secs()).ok().filter(|s| *s > 0)
}

fn glob_ok(p: &str, max: usize) -> bool {
    !p.is_empty()
        && p.len() <= max
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/*?".contains(&b))
}

impl Rule {
    pub(crate) fn validate(&self) -> Result<(), ApiError> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !id_ok {
            return Err(ApiError::invalid("id", "1-64 of [A-Za-z0-9._-]"));
        }
        if self.repositories.is_empty() || self.repositories.len() > MAX_PATTERNS {
            return Err(ApiError::invalid("repositories", "1 to 64 globs"));
        }
        if let Some(p) = self.repositories.iter().find(|p| !glob_ok(p, 256)) {
            return Err(ApiError::invalid("repositories", format!("bad glob {p:?}")));
        }
        if self.keep_tags.len() > MAX_PATTERNS {
            return Err(ApiError::invalid("keep_tags", "at most 64 globs"));
        }
        if let Some(p) = self
            .keep_tags
            .iter()
            .find(|p| !glob_ok(p, 128) || p.contains('/'))
        {
            return Err(ApiError::invalid("keep_tags", format!("bad glob {p:?}")));
        }
        if self.keep_last.is_some_and(|n| n > 100_000) {
            return Err(ApiError::invalid("keep_last", "at most 100000"));
        }
        if let Some(t) = &self.untagged_older_than
            && seconds(t).is_none()
        {
            return Err(ApiError::invalid(
                "untagged_older_than",
                "a positive duration such as 7d, 12h, 30m",
            ));
        }
        if self.keep_last.is_none() && self.untagged_older_than.is_none() {
            return Err(ApiError::invalid(
                "keep_last",
                "a rule needs keep_last or untagged_older_than",
            ));
        }
        Ok(())
    }

    fn matches_repo(&self, repo: &str) -> bool {
        self.repositories.iter().any(|p| repo_glob(p, repo))
    }
}

/// `*`/`?` wildcard match of one string (no separators involved).
fn wild(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wild(&p[1..], s) || (!s.is_empty() && wild(p, &s[1..])),
        (Some(b'?'), Some(_)) => wild(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wild(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Repository glob: per component, `**` spans any number of components.
pub(crate) fn repo_glob(pattern: &str, repo: &str) -> bool {
    fn go(p: &[&str], r: &[&str]) -> bool {
        match p.first() {
            None => r.is_empty(),
            Some(&"**") => (0..=r.len()).any(|i| go(&p[1..], &r[i..])),
            Some(c) => !r.is_empty() && wild(c.as_bytes(), r[0].as_bytes()) && go(&p[1..], &r[1..]),
        }
    }
    let p: Vec<&str> = pattern.split('/').collect();
    let r: Vec<&str> = repo.split('/').collect();
    go(&p, &r)
}

/// A referrers-schema tag (`sha256-<64 hex>`, `sha512-<128 hex>`).
fn referrers_tag(tag: &str) -> bool {
    let hex = |h: &str, n: usize| h.len() == n && h.bytes().all(|b| b.is_ascii_hexdigit());
    tag.strip_prefix("sha256-").is_some_and(|h| hex(h, 64))
        || tag.strip_prefix("sha512-").is_some_and(|h| hex(h, 128))
}

/// What a run deletes (or would).
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Report {
    pub dry_run: bool,
    pub repositories: u64,
    pub tags_deleted: u64,
    pub manifests_deleted: u64,
    /// Manifest bytes plus links no remaining manifest references.
    pub bytes: u64,
    /// Planned deletions skipped because a push or tag changed them.
    pub skipped: u64,
    pub tags: Vec<TagItem>,
    pub manifests: Vec<ManifestItem>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TagItem {
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ManifestItem {
    pub repository: String,
    pub digest: String,
    pub size: u64,
}

/// One repository's plan.
struct Plan {
    tags: Vec<(String, TagRow)>,
    /// In deletion order (parents before children).
    manifests: Vec<(String, ManifestRow)>,
    bytes: u64,
}

fn plan(
    tags: Vec<(String, TagRow)>,
    mut manifests: BTreeMap<String, ManifestRow>,
    mut links: BTreeMap<String, LinkRow>,
    rules: &[&Rule],
    now: i64,
) -> Plan {
    let mut retained: BTreeSet<&str> = BTreeSet::new();
    for r in rules {
        let Some(n) = r.keep_last else {
            retained.extend(tags.iter().map(|(t, _)| t.as_str()));
            continue;
        };
        let mut others: Vec<&(String, TagRow)> = Vec::new();
        for t in &tags {
            if referrers_tag(&t.0) {
                continue;
            }
            if r.keep_tags
                .iter()
                .any(|p| wild(p.as_bytes(), t.0.as_bytes()))
            {
                retained.insert(&t.0);
            } else {
                others.push(t);
            }
        }
        others.sort_by(|a, b| b.1.updated_at.cmp(&a.1.updated_at).then(a.0.cmp(&b.0)));
        retained.extend(others.iter().take(n as usize).map(|t| t.0.as_str()));
    }
    let doomed: Vec<(String, TagRow)> = tags
        .iter()
        .filter(|(t, _)| !referrers_tag(t) && !retained.contains(t.as_str()))
        .cloned()
        .collect();
    let tagged: BTreeSet<String> = tags
        .iter()
        .filter(|(t, _)| referrers_tag(t) || retained.contains(t.as_str()))
        .map(|(_, r)| r.digest.clone())
        .collect();
    let limit = rules
        .iter()
        .filter_map(|r| r.untagged_older_than.as_deref().and_then(seconds))
        .max();
    let mut out = Plan {
        tags: doomed,
        manifests: Vec::new(),
        bytes: 0,
    };
    let Some(limit) = limit else {
        return out;
    };
    loop {
        let round: Vec<String> = manifests
            .iter()
            .filter(|(d, m)| {
                !tagged.contains(*d)
                    && m.parents == 0
                    && m.pushed_at.saturating_add(limit) < now
                    && m.subject
                        .as_ref()
                        .is_none_or(|s| !manifests.contains_key(s))
            })
            .map(|(d, _)| d.clone())
            .collect();
        if round.is_empty() {
            return out;
        }
        for d in round {
            let Some(m) = manifests.remove(&d) else {
                continue;
            };
            out.bytes += m.size;
            for c in &m.children {
                if c.manifest {
                    if let Some(child) = manifests.get_mut(&c.digest) {
                        child.parents = child.parents.saturating_sub(1);
                    }
                } else if let Some(l) = links.get_mut(&c.digest) {
                    l.refs = l.refs.saturating_sub(1);
                    if l.refs == 0 {
                        out.bytes += l.size;
                    }
                }
            }
            out.manifests.push((d, m));
        }
    }
}

impl Core {
    pub(crate) fn retention_rules(&self) -> Result<Vec<Rule>, ApiError> {
        Ok(ReadTx::begin(&self.store)?.all(RETENTION)?)
    }

    /// Creates (`create`: refused if the id exists) or replaces a rule.
    pub(crate) fn retention_put(&self, rule: Rule, create: bool) -> Result<Rule, ApiError> {
        rule.validate()?;
        let tx = WriteTx::begin(&self.store)?;
        let exists = tx.get(RETENTION, rule.id.as_bytes())?.is_some();
        if create && exists {
            return Err(ApiError::AlreadyExists(format!(
                "retention rule {}",
                rule.id
            )));
        }
        if !exists && tx.all(RETENTION)?.len() >= MAX_RULES {
            return Err(ApiError::invalid("id", "at most 100 retention rules"));
        }
        tx.put(RETENTION, rule.id.as_bytes(), &rule)?;
        tx.commit()?;
        Ok(rule)
    }

    pub(crate) fn retention_delete(&self, id: &str) -> Result<(), ApiError> {
        let tx = WriteTx::begin(&self.store)?;
        if !tx.delete(RETENTION.def(), id.as_bytes())? {
            return Err(ApiError::NotFound(format!("no retention rule {id}")));
        }
        tx.commit()?;
        Ok(())
    }

    /// Applies the enabled rules to `only` (else every repository).
    pub(crate) fn retention_run(
        &self,
        only: Option<&RepoName>,
        dry_run: bool,
        by: &str,
        now: i64,
    ) -> Result<Report, ApiError> {
        let rules: Vec<Rule> = self
            .retention_rules()?
            .into_iter()
            .filter(|r| r.enabled)
            .collect();
        let repos = match only {
            Some(r) => vec![r.as_str().to_owned()],
            None => crate::store::names(self.store.db(), REPOS, None, usize::MAX)?,
        };
        let actor = Actor {
            account_id: by.to_owned(),
            source_ip: String::new(),
        };
        let mut report = Report {
            dry_run,
            ..Report::default()
        };
        for name in repos {
            let matching: Vec<&Rule> = rules.iter().filter(|r| r.matches_repo(&name)).collect();
            let Some(repo) = RepoName::parse(&name) else {
                continue;
            };
            if matching.is_empty() {
                continue;
            }
            report.repositories += 1;
            let db = self.store.db();
            let tags = crate::store::scan(db, TAGS, &name, None, usize::MAX)?;
            let manifests = crate::store::scan(db, MANIFESTS, &name, None, usize::MAX)?
                .into_iter()
                .collect();
            let links = crate::store::scan(db, LINKS, &name, None, usize::MAX)?
                .into_iter()
                .collect();
            let p = plan(tags, manifests, links, &matching, now);
            report.bytes += p.bytes;
            for (tag, row) in p.tags {
                let gone = dry_run
                    || self
                        .delete_tag_if(
                            &repo,
                            &tag,
                            &row.digest,
                            row.updated_at,
                            &actor,
                            "registry.retention",
                        )
                        .map_err(|e| ApiError::internal(e.message))?;
                if !gone {
                    report.skipped += 1;
                    continue;
                }
                report.tags_deleted += 1;
                if report.tags.len() < MAX_LISTED {
                    report.tags.push(TagItem {
                        repository: name.clone(),
                        tag,
                        digest: row.digest,
                    });
                }
            }
            for (d, m) in p.manifests {
                let gone = dry_run || self.delete_planned(&repo, &d, &m, &actor)?;
                if !gone {
                    report.skipped += 1;
                    continue;
                }
                report.manifests_deleted += 1;
                if report.manifests.len() < MAX_LISTED {
                    report.manifests.push(ManifestItem {
                        repository: name.clone(),
                        digest: d,
                        size: m.size,
                    });
                }
            }
        }
        Ok(report)
    }

    /// Deletes a planned manifest if it is still the same push, untagged and
    /// unparented.
    fn delete_planned(
        &self,
        repo: &RepoName,
        d: &str,
        planned: &ManifestRow,
        actor: &Actor,
    ) -> Result<bool, ApiError> {
        let Ok(digest) = Digest::parse(d) else {
            return Ok(false);
        };
        let r = self.delete_manifest_when(repo, &digest, actor, "registry.retention", |tx, row| {
            if row.pushed_at != planned.pushed_at || row.parents > 0 {
                return Ok(false);
            }
            for tag in crate::store::keys_under(tx.raw(), TAGS.def(), repo.as_str())? {
                if tx
                    .get(TAGS, &key2(repo.as_str(), &tag))?
                    .is_some_and(|t| t.digest == d)
                {
                    return Ok(false);
                }
            }
            Ok(true)
        });
        match r {
            Ok(done) => Ok(done),
            // Gone already, or an index listing it was pushed meanwhile.
            Err(e) if e.status.is_client_error() => Ok(false),
            Err(e) => Err(ApiError::internal(e.message)),
        }
    }
}
