//! Quotas per repository and per namespace (bytes).
//!
//! Usage = sizes of the repository's links + its manifests' bytes (a blob
//! shared by two repositories counts in each), read inside the write
//! transaction that adds a link or a manifest, so the check and the change
//! are one atomic step: two concurrent pushes cannot both pass on the same
//! remaining space (redb serialises write transactions). A refused change
//! commits nothing. Deleted manifests stop counting at once; unlinked blobs
//! when their link goes (GC).

use axum::http::StatusCode;
use mc_kit::store::StoreError;
use mc_kit::store::json::{ReadTx, WriteTx};
use redb::ReadableTable;

use super::R;
use crate::error::{Code, RegistryError};
use crate::policy::namespace;
use crate::policy::state::{NAMESPACES, REPO_SETTINGS};
use crate::store::{LINKS, LinkRow, MANIFESTS, ManifestRow};

/// Bytes used by `repo`, or by every repository of namespace `ns` when
/// `whole_namespace`, over any readable table pair.
fn sum<L, M>(links: &L, manifests: &M, name: &str, whole_namespace: bool) -> Result<u64, StoreError>
where
    L: ReadableTable<&'static [u8], &'static [u8]>,
    M: ReadableTable<&'static [u8], &'static [u8]>,
{
    let start = name.as_bytes().to_vec();
    let mut end = start.clone();
    // Past "name\0", "name/…" and siblings like "name-x" (filtered below).
    end.push(b'0');
    let mut total = 0_u64;
    let in_scope = |k: &[u8]| match k.get(name.len()) {
        Some(0) => true,
        Some(b'/') => whole_namespace,
        _ => false,
    };
    for row in links
        .range(start.as_slice()..end.as_slice())
        .map_err(StoreError::other)?
    {
        let (k, v) = row.map_err(StoreError::other)?;
        if in_scope(k.value()) {
            let l: LinkRow = serde_json::from_slice(v.value()).map_err(StoreError::other)?;
            total = total.saturating_add(l.size);
        }
    }
    for row in manifests
        .range(start.as_slice()..end.as_slice())
        .map_err(StoreError::other)?
    {
        let (k, v) = row.map_err(StoreError::other)?;
        if in_scope(k.value()) {
            let m: ManifestRow = serde_json::from_slice(v.value()).map_err(StoreError::other)?;
            total = total.saturating_add(m.size);
        }
    }
    Ok(total)
}

fn usage_in(tx: &WriteTx, name: &str, whole_namespace: bool) -> Result<u64, StoreError> {
    let links = tx
        .raw()
        .open_table(LINKS.def())
        .map_err(StoreError::other)?;
    let manifests = tx
        .raw()
        .open_table(MANIFESTS.def())
        .map_err(StoreError::other)?;
    sum(&links, &manifests, name, whole_namespace)
}

/// Usage of a repository and of its namespace, as of now.
pub(crate) fn usage(store: &mc_kit::store::Store, repo: &str) -> R<(u64, u64)> {
    let txn = redb::ReadableDatabase::begin_read(store.db()).map_err(StoreError::other)?;
    let links = txn.open_table(LINKS.def()).map_err(StoreError::other)?;
    let manifests = txn.open_table(MANIFESTS.def()).map_err(StoreError::other)?;
    Ok((
        sum(&links, &manifests, repo, false)?,
        sum(&links, &manifests, namespace(repo), true)?,
    ))
}

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / f64::from(1_u32 << 30))
}

fn human(b: u64) -> String {
    if b >= 1 << 30 {
        gib(b)
    } else if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / f64::from(1_u32 << 20))
    } else {
        format!("{b} bytes")
    }
}

/// Refuses (403 `DENIED`, nothing committed) when adding `added` bytes to
/// `repo` would exceed its quota or its namespace's.
pub(crate) fn charge(tx: &WriteTx, repo: &str, added: u64) -> R<()> {
    if added == 0 {
        return Ok(());
    }
    let ns = namespace(repo);
    let repo_quota = tx
        .get(REPO_SETTINGS, repo.as_bytes())?
        .map_or(0, |s| s.quota_bytes);
    let ns_quota = tx
        .get(NAMESPACES, ns.as_bytes())?
        .map_or(0, |s| s.quota_bytes);
    for (name, quota, whole) in [(repo, repo_quota, false), (ns, ns_quota, true)] {
        if quota == 0 {
            continue;
        }
        let used = usage_in(tx, name, whole)?;
        if used.saturating_add(added) > quota {
            return Err(exceeded(name, used, quota));
        }
    }
    Ok(())
}

fn exceeded(name: &str, used: u64, quota: u64) -> RegistryError {
    RegistryError::new(
        StatusCode::FORBIDDEN,
        Code::Denied,
        format!(
            "quota exceeded: {name} uses {} of {}",
            human(used),
            human(quota)
        ),
    )
    .detail(serde_json::json!({"name": name, "used_bytes": used, "quota_bytes": quota}))
}

/// For a PATCH: refuses (413 `SIZE_INVALID`) an upload that alone is
/// larger than what its repository or namespace has left.
pub(crate) fn check_upload_size(store: &mc_kit::store::Store, repo: &str, size: u64) -> R<()> {
    let tx = ReadTx::begin(store)?;
    let ns = namespace(repo);
    let repo_quota = tx
        .get(REPO_SETTINGS, repo.as_bytes())?
        .map_or(0, |s| s.quota_bytes);
    let ns_quota = tx
        .get(NAMESPACES, ns.as_bytes())?
        .map_or(0, |s| s.quota_bytes);
    if repo_quota == 0 && ns_quota == 0 {
        return Ok(());
    }
    drop(tx);
    let (repo_used, ns_used) = usage(store, repo)?;
    for (name, quota, used) in [(repo, repo_quota, repo_used), (ns, ns_quota, ns_used)] {
        if quota > 0 && size > quota.saturating_sub(used) {
            return Err(RegistryError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::SizeInvalid,
                format!(
                    "the upload ({}) is larger than what {name} has left of its quota ({} of {})",
                    human(size),
                    human(quota.saturating_sub(used)),
                    human(quota)
                ),
            ));
        }
    }
    Ok(())
}
