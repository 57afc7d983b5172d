//! Read views for the admin API: one manifest shown whole
//! ([`Core::manifest_view`]) and what GC would free because of one
//! repository ([`Core::reclaimable`]).
//!
//! Invariants: both are read-only and filtered by the caller's `pull` like
//! every admin read (an unknown and a hidden repository look the same). A
//! blob counts as reclaimable in a repository only when that repository
//! links it, none of its manifests references it and no manifest of any
//! other repository does either, so a layer shared with a live image is
//! never reported as freeable by deleting one repository's manifest.

use std::collections::{BTreeMap, HashMap, HashSet};

use mc_kit::store::json::ReadTx;
use mc_service::auth::Principal;
use serde::{Deserialize, Serialize};

use super::{Core, R, Reference};
use crate::error::{Code, RegistryError};
use crate::gc::sweep;
use crate::model::RepoName;
use crate::policy::{Action, Policy};
use crate::store::{BLOBS, LINKS, MANIFEST_CONTENT, MANIFESTS, TAGS, key2};

/// Referrers and tags listed with a manifest, at most.
const MAX_LISTED: usize = 1_000;
/// Repositories listed in `status` by reclaimable bytes, at most.
pub(crate) const MAX_BY_REPOSITORY: usize = 100;

/// A descriptor as shown: what the manifest says about one blob or manifest.
/// Read from the referrers rows (camelCase, as end-12 serves them); shown
/// in snake_case like the rest of the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(deserialize = "camelCase"))]
pub(crate) struct DescriptorView {
    #[serde(default)]
    pub media_type: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// An index entry's `os/architecture[/variant]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// One manifest, parsed, with its referrers and tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ManifestView {
    pub repository: String,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub config: Option<DescriptorView>,
    pub layers: Vec<DescriptorView>,
    pub manifests: Vec<DescriptorView>,
    pub subject: Option<DescriptorView>,
    pub annotations: BTreeMap<String, String>,
    pub referrers: Vec<DescriptorView>,
    pub tags: Vec<String>,
    pub pushed_at: i64,
    pub pushed_by: String,
}

/// What a repository leaves for GC: blobs and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Reclaimable {
    pub blobs: u64,
    pub bytes: u64,
}

/// One repository's line in `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RepoReclaimable {
    pub repository: String,
    pub blobs: u64,
    pub bytes: u64,
}

/// The stored manifest's fields a view needs (the bytes were validated at
/// push, so only the shape is read here).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Vec<RawDescriptor>,
    #[serde(default)]
    manifests: Vec<RawDescriptor>,
    subject: Option<RawDescriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    artifact_type: Option<String>,
    platform: Option<Platform>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Platform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    variant: Option<String>,
}

impl From<RawDescriptor> for DescriptorView {
    fn from(d: RawDescriptor) -> Self {
        Self {
            media_type: d.media_type,
            digest: d.digest,
            size: d.size,
            artifact_type: d.artifact_type,
            platform: d.platform.map(|p| match p.variant {
                Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                None => format!("{}/{}", p.os, p.architecture),
            }),
            annotations: d.annotations,
        }
    }
}

fn unknown_manifest(repo: &RepoName, reference: &Reference) -> RegistryError {
    let what = match reference {
        Reference::Tag(t) => format!("{repo}:{t}"),
        Reference::Digest(d) => format!("{repo}@{d}"),
    };
    RegistryError::not_found(
        Code::ManifestUnknown,
        format!("manifest {what} is not known"),
    )
}

/// Digests some manifest in some repository references: links with
/// `refs > 0`, keyed repository ‖ 0 ‖ digest. One scan of `links`.
pub(crate) fn referenced_digests(core: &Core) -> R<HashSet<Vec<u8>>> {
    let mut referenced = HashSet::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let (rows, next, _) = sweep::scan(&core.store, LINKS, cursor.as_deref(), |l| l.refs > 0)?;
        for (key, _) in rows {
            if let Some(at) = key.iter().position(|b| *b == 0) {
                referenced.insert(key[at + 1..].to_vec());
            }
        }
        match next {
            Some(n) => cursor = Some(n),
            None => return Ok(referenced),
        }
    }
}

/// Reclaimable bytes of every repository holding some, from one scan of
/// the unreferenced links against `referenced`; most bytes first, at most
/// [`MAX_BY_REPOSITORY`].
pub(crate) fn by_repository(core: &Core, referenced: &HashSet<Vec<u8>>) -> R<Vec<RepoReclaimable>> {
    let mut per: HashMap<String, Reclaimable> = HashMap::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let (rows, next, _) = sweep::scan(&core.store, LINKS, cursor.as_deref(), |l| l.refs == 0)?;
        for (key, link) in rows {
            let Some(at) = key.iter().position(|b| *b == 0) else {
                continue;
            };
            if referenced.contains(&key[at + 1..]) {
                continue;
            }
            let repo = String::from_utf8_lossy(&key[..at]).into_owned();
            let r = per.entry(repo).or_default();
            r.blobs += 1;
            r.bytes += link.size;
        }
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let mut out: Vec<_> = per
        .into_iter()
        .map(|(repository, r)| RepoReclaimable {
            repository,
            blobs: r.blobs,
            bytes: r.bytes,
        })
        .collect();
    out.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.repository.cmp(&b.repository))
    });
    out.truncate(MAX_BY_REPOSITORY);
    Ok(out)
}

impl Core {
    /// The manifest `reference` names in `repo`, parsed, with its
    /// referrers and the tags pointing at it, if `who` may pull `repo`.
    pub(crate) fn manifest_view(
        &self,
        policy: &Policy,
        who: &Principal,
        repo: &RepoName,
        reference: &Reference,
    ) -> R<ManifestView> {
        if !policy.allows(who, repo.as_str(), Action::Pull) {
            return Err(unknown_manifest(repo, reference));
        }
        let tx = ReadTx::begin(&self.store)?;
        let digest = match reference {
            Reference::Digest(d) => d.to_string(),
            Reference::Tag(t) => match tx.get(TAGS, &key2(repo.as_str(), t))? {
                Some(row) => row.digest,
                None => return Err(unknown_manifest(repo, reference)),
            },
        };
        let k = key2(repo.as_str(), &digest);
        let Some(row) = tx.get(MANIFESTS, &k)? else {
            return Err(unknown_manifest(repo, reference));
        };
        let bytes = tx
            .get_raw(MANIFEST_CONTENT, &k)?
            .ok_or_else(|| RegistryError::internal("manifest content missing"))?;
        drop(tx);
        let stored: Stored = serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::internal(format!("a stored manifest: {e}")))?;
        let tags = crate::store::scan(self.store.db(), TAGS, repo.as_str(), None, usize::MAX)?
            .into_iter()
            .filter(|(_, t)| t.digest == digest)
            .map(|(tag, _)| tag)
            .take(MAX_LISTED)
            .collect();
        let subject = crate::registry::digest::Digest::parse(&digest)
            .map_err(|_| RegistryError::internal("a manifest row's key is no digest"))?;
        let referrers = self
            .referrers(repo, &subject, None, MAX_LISTED)?
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        Ok(ManifestView {
            repository: repo.to_string(),
            digest,
            media_type: row.media_type,
            size: row.size,
            artifact_type: stored.artifact_type.or(row.artifact_type),
            config: stored.config.map(DescriptorView::from),
            layers: stored
                .layers
                .into_iter()
                .map(DescriptorView::from)
                .collect(),
            manifests: stored
                .manifests
                .into_iter()
                .map(DescriptorView::from)
                .collect(),
            subject: stored.subject.map(DescriptorView::from),
            annotations: stored.annotations,
            referrers,
            tags,
            pushed_at: row.pushed_at,
            pushed_by: row.pushed_by,
        })
    }

    /// What GC would free because of `repo`: its links no manifest
    /// references whose blob no other repository's manifest references.
    /// `referenced` is filled by [`referenced_digests`] the first time a
    /// blob linked elsewhere too needs it (one scan per listing at most).
    pub(crate) fn reclaimable(
        &self,
        repo: &str,
        referenced: &mut Option<HashSet<Vec<u8>>>,
    ) -> R<Reclaimable> {
        let links = crate::store::scan(self.store.db(), LINKS, repo, None, usize::MAX)?;
        let mut out = Reclaimable::default();
        let tx = ReadTx::begin(&self.store)?;
        for (digest, link) in links.into_iter().filter(|(_, l)| l.refs == 0) {
            let Some(blob) = tx.get(BLOBS, digest.as_bytes())? else {
                continue;
            };
            // Linked only here and unreferenced here: nothing else can hold it.
            let free = if blob.links <= 1 {
                true
            } else {
                let set = match referenced {
                    Some(s) => s,
                    None => referenced.insert(referenced_digests(self)?),
                };
                !set.contains(digest.as_bytes())
            };
            if free {
                out.blobs += 1;
                out.bytes += link.size;
            }
        }
        Ok(out)
    }
}
