//! Registry operations over one store: blobs, links, manifests, tags,
//! referrers. Each change is one redb write transaction (with its audit row
//! for manifest and tag changes); reads are one read transaction.
//!
//! Invariants (see `crate::store`): a blob row only after its object is
//! durable; a manifest row only with everything it references present in
//! its repository, and reference counts changed in the same transaction.
//! Manifest bytes are stored and served exactly as received.

pub(crate) mod admin;
pub(crate) mod fsck;
pub(crate) mod inspect;
pub(crate) mod policy;
#[cfg(test)]
mod policy_tests;
pub(crate) mod quota;
#[cfg(test)]
mod tests;
pub(crate) mod uploads;

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::StatusCode;
use mc_kit::clock::unix_now;
use mc_kit::store::Store;
use mc_kit::store::audit::AuditEvent;
use mc_kit::store::json::{ReadTx, WriteTx};

use crate::error::{Code, RegistryError};
use crate::gc::tables::UNLINKED;
use crate::model::RepoName;
use crate::policy::state::REPO_SETTINGS;
use crate::registry::digest::Digest;
use crate::registry::manifest::Parsed;
use crate::storage::Storage;
use crate::store::{
    BLOBS, BlobRow, Child, LINKS, LinkRow, MANIFEST_CONTENT, MANIFESTS, ManifestRow, REFERRERS,
    REPOS, RepoRow, TAGS, TagRow, key2, key3,
};

type R<T> = Result<T, RegistryError>;

/// Whether `tag` of `repo` is immutable, read in the changing transaction
/// so a settings change and a tag change are ordered.
fn immutable(tx: &WriteTx, repo: &RepoName, tag: &str) -> R<bool> {
    Ok(tx
        .get(REPO_SETTINGS, repo.as_str().as_bytes())?
        .is_some_and(|s| s.is_immutable(tag)))
}

fn immutable_refused(repo: &RepoName, tag: &str, what: &str) -> RegistryError {
    RegistryError::new(
        StatusCode::FORBIDDEN,
        Code::Denied,
        format!("tag {tag} of {repo} is immutable: it cannot be {what}"),
    )
    .detail(serde_json::json!({"tag": tag}))
}

/// The registry's state: the store and the blob files.
pub(crate) struct Core {
    pub(crate) store: Arc<Store>,
    pub(crate) fs: Storage,
}

/// A stored manifest as served.
pub(crate) struct Served {
    pub digest: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// Who did it, for audit rows.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub account_id: String,
    pub source_ip: String,
}

fn audit(actor: &Actor, action: &str, target: String, detail: String) -> AuditEvent {
    AuditEvent {
        seq: 0,
        at: unix_now(),
        actor: actor.account_id.clone(),
        action: action.to_owned(),
        target,
        source_ip: actor.source_ip.clone(),
        result: "ok".to_owned(),
        detail,
    }
}

fn touch_repo(tx: &WriteTx, repo: &RepoName) -> R<()> {
    let now = unix_now();
    let row = match tx.get(REPOS, repo.as_str().as_bytes())? {
        Some(r) => RepoRow {
            updated_at: now,
            ..r
        },
        None => RepoRow {
            created_at: now,
            updated_at: now,
        },
    };
    tx.put(REPOS, repo.as_str().as_bytes(), &row)?;
    Ok(())
}

/// Runs blocking store or file work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> R<T> + Send + 'static) -> R<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(RegistryError::internal)?
}

impl Core {
    pub(crate) fn repo_exists(&self, repo: &RepoName) -> R<bool> {
        Ok(ReadTx::begin(&self.store)?
            .get(REPOS, repo.as_str().as_bytes())?
            .is_some())
    }

    /// The blob `digest` as visible in `repo` (linked there), with its object.
    pub(crate) fn blob(&self, repo: &RepoName, digest: &Digest) -> R<Option<BlobRow>> {
        let tx = ReadTx::begin(&self.store)?;
        let d = digest.to_string();
        if tx.get(LINKS, &key2(repo.as_str(), &d))?.is_none() {
            return Ok(None);
        }
        Ok(tx.get(BLOBS, d.as_bytes())?)
    }

    /// Makes a verified, staged upload a blob of `repo`: moves the file into
    /// the store (unless the digest is already stored), then links it.
    pub(crate) fn commit_upload(
        &self,
        repo: &RepoName,
        digest: &Digest,
        staged: PathBuf,
        inc: &str,
        size: u64,
    ) -> R<()> {
        let d = digest.to_string();
        // Twice at most: GC may delete the blob row between our read and
        // our transaction, and then our own copy must be stored.
        let mut store_ours = ReadTx::begin(&self.store)?
            .get(BLOBS, d.as_bytes())?
            .is_none();
        let mut staged = Some(staged);
        for _ in 0..2 {
            let mut ours = None;
            if store_ours && let Some(path) = staged.take() {
                let key = Storage::object_key(digest, inc);
                self.fs.put_from_file(&path, &key)?;
                ours = Some(key);
            }
            let tx = WriteTx::begin(&self.store)?;
            let blob = match (tx.get(BLOBS, d.as_bytes())?, &ours) {
                (Some(b), _) => b,
                (None, Some(key)) => BlobRow {
                    size,
                    object: key.clone(),
                    created_at: unix_now(),
                    links: 0,
                    unlinked_at: None,
                },
                (None, None) => {
                    store_ours = true;
                    continue;
                }
            };
            let kept_ours = ours.as_deref() == Some(blob.object.as_str());
            self.link(&tx, repo, &d, blob)?;
            tx.commit()?;
            if let Some(key) = ours
                && !kept_ours
            {
                // Another upload of the same digest committed first.
                self.fs.delete_object(&key)?;
            }
            return Ok(());
        }
        Err(RegistryError::internal(
            "blob row vanished twice during commit",
        ))
    }

    fn link(&self, tx: &WriteTx, repo: &RepoName, d: &str, mut blob: BlobRow) -> R<()> {
        let k = key2(repo.as_str(), d);
        if tx.get(LINKS, &k)?.is_none() {
            quota::charge(tx, repo.as_str(), blob.size)?;
            tx.put(
                LINKS,
                &k,
                &LinkRow {
                    size: blob.size,
                    refs: 0,
                    linked_at: unix_now(),
                    unreferenced_since: None,
                },
            )?;
            blob.links += 1;
            blob.unlinked_at = None;
            tx.delete(UNLINKED.def(), &key2(d, repo.as_str()))?;
        }
        tx.put(BLOBS, d.as_bytes(), &blob)?;
        touch_repo(tx, repo)
    }

    /// Restores a link GC removed, while the blob row lives (`unlinked`).
    fn relink(&self, tx: &WriteTx, repo: &RepoName, d: &str) -> R<Option<LinkRow>> {
        if tx.get(UNLINKED, &key2(d, repo.as_str()))?.is_none() {
            return Ok(None);
        }
        let Some(blob) = tx.get(BLOBS, d.as_bytes())? else {
            return Ok(None);
        };
        self.link(tx, repo, d, blob)?;
        Ok(tx.get(LINKS, &key2(repo.as_str(), d))?)
    }

    /// Links `digest` from `from` into `repo`; false when it is not linked there.
    pub(crate) fn mount(&self, repo: &RepoName, from: &RepoName, digest: &Digest) -> R<bool> {
        let d = digest.to_string();
        let tx = WriteTx::begin(&self.store)?;
        if tx.get(LINKS, &key2(from.as_str(), &d))?.is_none() {
            return Ok(false);
        }
        let Some(blob) = tx.get(BLOBS, d.as_bytes())? else {
            return Ok(false);
        };
        self.link(&tx, repo, &d, blob)?;
        tx.commit()?;
        Ok(true)
    }

    /// Unlinks a blob from `repo` (its bytes go at a GC run `grace` later).
    pub(crate) fn delete_blob(&self, repo: &RepoName, digest: &Digest, actor: &Actor) -> R<()> {
        let d = digest.to_string();
        let k = key2(repo.as_str(), &d);
        let tx = WriteTx::begin(&self.store)?;
        let Some(link) = tx.get(LINKS, &k)? else {
            return Err(
                RegistryError::not_found(Code::BlobUnknown, "blob unknown to registry")
                    .detail(serde_json::json!({"digest": d})),
            );
        };
        if link.refs > 0 {
            return Err(RegistryError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                Code::Denied,
                format!(
                    "the blob is referenced by {} manifest(s) of this repository",
                    link.refs
                ),
            )
            .detail(serde_json::json!({"digest": d})));
        }
        tx.delete(LINKS.def(), &k)?;
        if let Some(mut blob) = tx.get(BLOBS, d.as_bytes())? {
            blob.links = blob.links.saturating_sub(1);
            if blob.links == 0 {
                blob.unlinked_at = Some(unix_now());
            }
            tx.put(BLOBS, d.as_bytes(), &blob)?;
        }
        tx.audit(audit(actor, "registry.blob.delete", repo.to_string(), d))?;
        tx.commit()?;
        Ok(())
    }

    /// Stores a validated manifest and points `tags` at it.
    pub(crate) fn put_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        parsed: &Parsed,
        bytes: &[u8],
        tags: &[String],
        actor: &Actor,
    ) -> R<()> {
        let d = digest.to_string();
        let mk = key2(repo.as_str(), &d);
        let tx = WriteTx::begin(&self.store)?;
        let unknown = |what: &str, dig: &Digest| {
            RegistryError::bad(
                Code::ManifestBlobUnknown,
                format!("{what} {dig} is not in this repository"),
            )
            .detail(serde_json::json!({"digest": dig.to_string()}))
        };
        let size_bad = |dig: &Digest| {
            RegistryError::bad(
                Code::ManifestInvalid,
                format!("descriptor size of {dig} does not match the stored content"),
            )
            .detail(serde_json::json!({"digest": dig.to_string()}))
        };
        let mut children: Vec<Child> = Vec::new();
        for b in &parsed.blobs {
            let k = key2(repo.as_str(), &b.digest.to_string());
            let link = match tx.get(LINKS, &k)? {
                Some(link) => link,
                // GC removed the link within the relink window (its invariant 2).
                None => match self.relink(&tx, repo, &b.digest.to_string())? {
                    Some(link) => link,
                    None => return Err(unknown("blob", &b.digest)),
                },
            };
            if link.size != b.size {
                return Err(size_bad(&b.digest));
            }
            let c = Child {
                digest: b.digest.to_string(),
                manifest: false,
            };
            if !children.contains(&c) {
                children.push(c);
            }
        }
        for m in &parsed.manifests {
            let k = key2(repo.as_str(), &m.digest.to_string());
            let Some(row) = tx.get(MANIFESTS, &k)? else {
                return Err(unknown("manifest", &m.digest));
            };
            if row.size != m.size {
                return Err(size_bad(&m.digest));
            }
            let c = Child {
                digest: m.digest.to_string(),
                manifest: true,
            };
            if !children.contains(&c) {
                children.push(c);
            }
        }
        if tx.get(MANIFESTS, &mk)?.is_none() {
            quota::charge(&tx, repo.as_str(), bytes.len() as u64)?;
            for c in &children {
                let k = key2(repo.as_str(), &c.digest);
                if c.manifest {
                    if let Some(mut row) = tx.get(MANIFESTS, &k)? {
                        row.parents += 1;
                        tx.put(MANIFESTS, &k, &row)?;
                    }
                } else if let Some(mut link) = tx.get(LINKS, &k)? {
                    link.refs += 1;
                    tx.put(LINKS, &k, &link)?;
                }
            }
            let artifact_type = parsed
                .artifact_type
                .clone()
                .or_else(|| parsed.config_media_type.clone());
            if let Some(subject) = &parsed.subject {
                let mut desc = serde_json::json!({
                    "mediaType": parsed.media_type,
                    "digest": d,
                    "size": bytes.len(),
                });
                if let Some(a) = &artifact_type {
                    desc["artifactType"] = serde_json::Value::String(a.clone());
                }
                if let Some(a) = &parsed.annotations {
                    desc["annotations"] = serde_json::Value::Object(a.clone());
                }
                tx.put(
                    REFERRERS,
                    &key3(repo.as_str(), &subject.digest.to_string(), &d),
                    &desc,
                )?;
            }
            tx.put(
                MANIFESTS,
                &mk,
                &ManifestRow {
                    media_type: parsed.media_type.clone(),
                    size: bytes.len() as u64,
                    artifact_type,
                    subject: parsed.subject.as_ref().map(|s| s.digest.to_string()),
                    pushed_at: unix_now(),
                    pushed_by: actor.account_id.clone(),
                    parents: 0,
                    children,
                },
            )?;
            tx.put_raw(MANIFEST_CONTENT, &mk, bytes)?;
        }
        for t in tags {
            let moved = tx
                .get(TAGS, &key2(repo.as_str(), t))?
                .is_some_and(|old| old.digest != d);
            if moved && immutable(&tx, repo, t)? {
                return Err(immutable_refused(repo, t, "moved to another manifest"));
            }
            tx.put(
                TAGS,
                &key2(repo.as_str(), t),
                &TagRow {
                    digest: d.clone(),
                    updated_at: unix_now(),
                    updated_by: actor.account_id.clone(),
                },
            )?;
        }
        touch_repo(&tx, repo)?;
        tx.audit(audit(
            actor,
            "registry.push",
            repo.to_string(),
            format!("{d} tags={}", tags.join(",")),
        ))?;
        tx.commit()?;
        Ok(())
    }

    /// A manifest by tag or digest.
    pub(crate) fn manifest(&self, repo: &RepoName, reference: &Reference) -> R<Served> {
        let tx = ReadTx::begin(&self.store)?;
        let unknown = || {
            let known = tx
                .get(REPOS, repo.as_str().as_bytes())
                .ok()
                .flatten()
                .is_some();
            if known {
                RegistryError::not_found(Code::ManifestUnknown, "manifest unknown to registry")
            } else {
                RegistryError::not_found(Code::NameUnknown, "repository name not known to registry")
            }
        };
        let d = match reference {
            Reference::Digest(d) => d.to_string(),
            Reference::Tag(t) => match tx.get(TAGS, &key2(repo.as_str(), t))? {
                Some(row) => row.digest,
                None => return Err(unknown()),
            },
        };
        let k = key2(repo.as_str(), &d);
        let Some(row) = tx.get(MANIFESTS, &k)? else {
            return Err(unknown());
        };
        let bytes = tx
            .get_raw(MANIFEST_CONTENT, &k)?
            .ok_or_else(|| RegistryError::internal("manifest content missing"))?;
        Ok(Served {
            digest: d,
            media_type: row.media_type,
            bytes,
        })
    }

    /// Deletes `tag` if it still points at `digest` and was not updated
    /// since `updated_at` (retention's plan); false when it moved or went.
    pub(crate) fn delete_tag_if(
        &self,
        repo: &RepoName,
        tag: &str,
        digest: &str,
        updated_at: i64,
        actor: &Actor,
        action: &str,
    ) -> R<bool> {
        let k = key2(repo.as_str(), tag);
        let tx = WriteTx::begin(&self.store)?;
        let same = tx
            .get(TAGS, &k)?
            .is_some_and(|t| t.digest == digest && t.updated_at == updated_at);
        // Retention skips immutable tags, as it skips tags that moved.
        if !same || immutable(&tx, repo, tag)? {
            return Ok(false);
        }
        tx.delete(TAGS.def(), &k)?;
        tx.audit(audit(
            actor,
            action,
            repo.to_string(),
            format!("{tag} {digest}"),
        ))?;
        tx.commit()?;
        Ok(true)
    }

    /// Deletes a tag (the manifest stays).
    pub(crate) fn delete_tag(&self, repo: &RepoName, tag: &str, actor: &Actor) -> R<()> {
        let tx = WriteTx::begin(&self.store)?;
        if immutable(&tx, repo, tag)? && tx.get(TAGS, &key2(repo.as_str(), tag))?.is_some() {
            return Err(immutable_refused(repo, tag, "deleted"));
        }
        if !tx.delete(TAGS.def(), &key2(repo.as_str(), tag))? {
            return Err(
                RegistryError::not_found(Code::ManifestUnknown, "tag unknown")
                    .detail(serde_json::json!({"tag": tag})),
            );
        }
        tx.audit(audit(
            actor,
            "registry.tag.delete",
            repo.to_string(),
            tag.to_owned(),
        ))?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes a manifest, its tags and its referrers row.
    pub(crate) fn delete_manifest(&self, repo: &RepoName, digest: &Digest, actor: &Actor) -> R<()> {
        self.delete_manifest_when(repo, digest, actor, "registry.manifest.delete", |_, _| {
            Ok(true)
        })
        .map(|_| ())
    }

    /// [`Self::delete_manifest`] if `guard` (seeing the transaction and the
    /// row) still agrees inside the deleting transaction; false when it did
    /// not. Retention uses it so a tag or push landing after its plan wins.
    pub(crate) fn delete_manifest_when(
        &self,
        repo: &RepoName,
        digest: &Digest,
        actor: &Actor,
        action: &str,
        guard: impl FnOnce(&WriteTx, &ManifestRow) -> R<bool>,
    ) -> R<bool> {
        let d = digest.to_string();
        let mk = key2(repo.as_str(), &d);
        let tx = WriteTx::begin(&self.store)?;
        let Some(row) = tx.get(MANIFESTS, &mk)? else {
            return Err(RegistryError::not_found(
                Code::ManifestUnknown,
                "manifest unknown to registry",
            )
            .detail(serde_json::json!({"digest": d})));
        };
        if row.parents > 0 {
            return Err(RegistryError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                Code::Denied,
                "the manifest is listed by an index of this repository: delete the index first",
            )
            .detail(serde_json::json!({"digest": d})));
        }
        if !guard(&tx, &row)? {
            return Ok(false);
        }
        for c in &row.children {
            let k = key2(repo.as_str(), &c.digest);
            if c.manifest {
                if let Some(mut m) = tx.get(MANIFESTS, &k)? {
                    m.parents = m.parents.saturating_sub(1);
                    tx.put(MANIFESTS, &k, &m)?;
                }
            } else if let Some(mut l) = tx.get(LINKS, &k)? {
                l.refs = l.refs.saturating_sub(1);
                if l.refs == 0 {
                    l.unreferenced_since = Some(unix_now());
                }
                tx.put(LINKS, &k, &l)?;
            }
        }
        let mut removed_tags = Vec::new();
        for tag in crate::store::keys_under(tx.raw(), TAGS.def(), repo.as_str())? {
            let k = key2(repo.as_str(), &tag);
            if tx.get(TAGS, &k)?.is_some_and(|t| t.digest == d) {
                if immutable(&tx, repo, &tag)? {
                    return Err(immutable_refused(repo, &tag, "deleted with its manifest"));
                }
                tx.delete(TAGS.def(), &k)?;
                removed_tags.push(tag);
            }
        }
        if let Some(subject) = &row.subject {
            tx.delete(REFERRERS.def(), &key3(repo.as_str(), subject, &d))?;
        }
        tx.delete(MANIFESTS.def(), &mk)?;
        tx.delete(MANIFEST_CONTENT, &mk)?;
        tx.audit(audit(
            actor,
            action,
            repo.to_string(),
            format!("{d} tags={}", removed_tags.join(",")),
        ))?;
        tx.commit()?;
        Ok(true)
    }

    /// Tags of `repo` after `last`, at most `n`; `None` when the repository is unknown.
    pub(crate) fn tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        n: usize,
    ) -> R<Option<Vec<String>>> {
        if !self.repo_exists(repo)? {
            return Ok(None);
        }
        let rows = crate::store::scan(self.store.db(), TAGS, repo.as_str(), last, n)?;
        Ok(Some(rows.into_iter().map(|(t, _)| t).collect()))
    }

    /// Repository names after `last`, at most `n`.
    pub(crate) fn catalog(&self, last: Option<&str>, n: usize) -> R<Vec<String>> {
        Ok(crate::store::names(self.store.db(), REPOS, last, n)?)
    }

    /// Descriptors of manifests whose subject is `subject`, optionally of one artifactType.
    pub(crate) fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
        limit: usize,
    ) -> R<Vec<serde_json::Value>> {
        let prefix = format!("{}\0{subject}", repo.as_str());
        let rows = crate::store::scan(self.store.db(), REFERRERS, &prefix, None, limit)?;
        Ok(rows
            .into_iter()
            .map(|(_, v)| v)
            .filter(|v| artifact_type.is_none_or(|a| v["artifactType"] == a))
            .collect())
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    /// A reference with `:` is a digest; otherwise a tag.
    pub(crate) fn parse(s: &str) -> R<Self> {
        if s.contains(':') {
            return Digest::parse(s)
                .map(Self::Digest)
                .map_err(|e| RegistryError::bad(Code::DigestInvalid, e.to_string()));
        }
        if crate::model::valid_tag(s) {
            Ok(Self::Tag(s.to_owned()))
        } else {
            Err(RegistryError::bad(Code::TagInvalid, "invalid tag")
                .detail(serde_json::json!({"tag": s})))
        }
    }
}
