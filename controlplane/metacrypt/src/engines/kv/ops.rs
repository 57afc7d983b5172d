//! The kv operations, each taking the [`Authorized`] token `Core::run`
//! builds; inputs are checked before any transaction begins.

use std::collections::BTreeMap;

use mc_kit::store::json::WriteTx;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    KvConfig, MAX_SECRET_BYTES, PathMeta, VersionMeta, check_custom, check_delete_after, check_dir,
    check_path, check_versions_limit, delete_after,
};
use crate::barrier::sealer::{Snapshot, get_sealed, purge_prefix, put_sealed};
use crate::core::run::Authorized;
use crate::error::CryptError;
use crate::policy::Capability;
use crate::store::{KV_DATA, KV_META, mount_key};

/// A version's metadata, as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvVersion {
    pub version: u64,
    pub created_time: i64,
    pub deletion_time: i64,
    pub destroyed: bool,
}

/// A read: the data (absent when the version is deleted or destroyed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KvRead {
    pub data: Option<Map<String, Value>>,
    pub metadata: KvVersion,
}

/// A path's metadata, as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvMetadata {
    pub current_version: u64,
    pub oldest_version: u64,
    pub created_time: i64,
    pub updated_time: i64,
    pub max_versions: u32,
    pub cas_required: bool,
    /// Seconds; 0: the mount's.
    pub delete_version_after: u64,
    pub custom_metadata: BTreeMap<String, String>,
    pub versions: BTreeMap<String, VersionMeta>,
}

/// `POST metadata/<path>`: what is given changes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvMetadataInput {
    #[serde(default)]
    pub max_versions: Option<u32>,
    #[serde(default)]
    pub cas_required: Option<bool>,
    /// Seconds (0: the mount's).
    #[serde(default)]
    pub delete_version_after: Option<u64>,
    #[serde(default)]
    pub custom_metadata: Option<BTreeMap<String, String>>,
}

/// A folder's immediate children, sorted; folders end in `/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvList {
    pub keys: Vec<String>,
}

pub(crate) fn data_key(mount: u64, path: &str, version: u64) -> Vec<u8> {
    let mut k = mount_key(mount, path.as_bytes());
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

fn version_view(v: u64, m: &VersionMeta) -> KvVersion {
    KvVersion {
        version: v,
        created_time: m.created_time,
        deletion_time: m.deletion_time,
        destroyed: m.destroyed,
    }
}

fn no_secret(path: &str) -> CryptError {
    CryptError::NotFound(format!("no secret at {path}"))
}

pub(super) fn audit(
    a: &Authorized<'_>,
    tx: &WriteTx,
    action: &str,
    path: &str,
    detail: String,
) -> Result<(), CryptError> {
    let target = format!("{}/{}", a.mount().name, path);
    tx.audit(crate::core::event(a.caller(), action, &target, detail))?;
    Ok(())
}

fn check_data(data: &Map<String, Value>) -> Result<(), CryptError> {
    let size = serde_json::to_vec(data)
        .map_err(CryptError::internal)?
        .len();
    if size > MAX_SECRET_BYTES {
        return Err(CryptError::invalid("data", "at most 1 MiB as JSON"));
    }
    Ok(())
}

/// Reads version `version` (0: the current one).
pub(crate) fn read(a: &Authorized<'_>, path: &str, version: u64) -> Result<KvRead, CryptError> {
    check_path(path)?;
    let (keys, id) = (a.keys(), a.mount().id);
    let rx = Snapshot::begin(a.store())?;
    let meta: PathMeta = rx
        .get(keys, id, KV_META, &mount_key(id, path.as_bytes()))?
        .ok_or_else(|| no_secret(path))?;
    let v = if version == 0 {
        meta.current_version
    } else {
        version
    };
    let vm = meta
        .versions
        .get(&v)
        .ok_or_else(|| CryptError::NotFound(format!("no version {v} of {path}")))?;
    let data = if !vm.live_at(mc_kit::clock::unix_now()) {
        None
    } else {
        Some(
            rx.get(keys, id, KV_DATA, &data_key(id, path, v))?
                .ok_or_else(|| CryptError::internal("a live version has no data row"))?,
        )
    };
    Ok(KvRead {
        data,
        metadata: version_view(v, vm),
    })
}

fn max_versions(cfg: &KvConfig, meta: &PathMeta) -> u32 {
    if meta.max_versions > 0 {
        meta.max_versions
    } else {
        cfg.max_versions
    }
}

/// Adds version current + 1 under the CAS rules and prunes old versions.
fn put_version(
    a: &Authorized<'_>,
    tx: &WriteTx,
    path: &str,
    meta: Option<PathMeta>,
    data: &Map<String, Value>,
    cas: Option<u64>,
) -> Result<KvVersion, CryptError> {
    let (keys, id) = (a.keys(), a.mount().id);
    let cfg = KvConfig::of(&a.mount().config);
    let now = mc_kit::clock::unix_now();
    let mut meta = meta.unwrap_or(PathMeta {
        created_time: now,
        ..PathMeta::default()
    });
    if cas.is_none() && (cfg.cas_required || meta.cas_required) {
        return Err(CryptError::invalid(
            "options.cas",
            "check-and-set parameter required for this call",
        ));
    }
    if let Some(c) = cas
        && c != meta.current_version
    {
        return Err(CryptError::invalid(
            "options.cas",
            "check-and-set parameter did not match the current version",
        ));
    }
    let v = meta.current_version + 1;
    put_sealed(tx, keys, id, KV_DATA, &data_key(id, path, v), data)?;
    // As Vault: the deletion time is fixed when the version is written.
    let after = i64::try_from(delete_after(&cfg, &meta)).unwrap_or(i64::MAX);
    let vm = VersionMeta {
        created_time: now,
        deletion_time: if after > 0 {
            now.saturating_add(after)
        } else {
            0
        },
        destroyed: false,
        expires: after > 0,
    };
    meta.versions.insert(v, vm.clone());
    meta.current_version = v;
    meta.updated_time = now;
    let max = max_versions(&cfg, &meta) as usize;
    while meta.versions.len() > max {
        let Some((&old, _)) = meta.versions.iter().next() else {
            break;
        };
        meta.versions.remove(&old);
        tx.delete(KV_DATA, &data_key(id, path, old))?;
    }
    meta.oldest_version = meta.versions.keys().next().copied().unwrap_or(v);
    put_sealed(
        tx,
        keys,
        id,
        KV_META,
        &mount_key(id, path.as_bytes()),
        &meta,
    )?;
    Ok(version_view(v, &vm))
}

/// The path's metadata in `tx`, and the capability an upsert needs.
fn meta_for_upsert(
    a: &Authorized<'_>,
    tx: &WriteTx,
    path: &str,
) -> Result<Option<PathMeta>, CryptError> {
    let id = a.mount().id;
    let meta: Option<PathMeta> =
        get_sealed(tx, a.keys(), id, KV_META, &mount_key(id, path.as_bytes()))?;
    a.require(if meta.is_some() {
        Capability::Update
    } else {
        Capability::Create
    })?;
    Ok(meta)
}

/// Writes a new version (`create` for a new path, `update` otherwise).
pub(crate) fn write(
    a: &Authorized<'_>,
    path: &str,
    data: &Map<String, Value>,
    cas: Option<u64>,
) -> Result<KvVersion, CryptError> {
    check_path(path)?;
    check_data(data)?;
    let tx = WriteTx::begin(a.store())?;
    let meta = meta_for_upsert(a, &tx, path)?;
    let out = put_version(a, &tx, path, meta, data, cas)?;
    audit(a, &tx, "kv.write", path, format!("version={}", out.version))?;
    tx.commit()?;
    Ok(out)
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Applies a merge patch to the current (live) version as a new version.
pub(crate) fn patch(
    a: &Authorized<'_>,
    path: &str,
    patch: &Map<String, Value>,
    cas: Option<u64>,
) -> Result<KvVersion, CryptError> {
    check_path(path)?;
    check_data(patch)?;
    let (keys, id) = (a.keys(), a.mount().id);
    let tx = WriteTx::begin(a.store())?;
    let meta: PathMeta = get_sealed(&tx, keys, id, KV_META, &mount_key(id, path.as_bytes()))?
        .ok_or_else(|| no_secret(path))?;
    let cur = meta.current_version;
    let now = mc_kit::clock::unix_now();
    let live = meta.versions.get(&cur).is_some_and(|v| v.live_at(now));
    if !live {
        return Err(CryptError::NotFound(format!(
            "the current version of {path} is deleted or destroyed"
        )));
    }
    let old: Map<String, Value> = get_sealed(&tx, keys, id, KV_DATA, &data_key(id, path, cur))?
        .ok_or_else(|| CryptError::internal("a live version has no data row"))?;
    let mut merged = Value::Object(old);
    merge_patch(&mut merged, &Value::Object(patch.clone()));
    let Value::Object(merged) = merged else {
        return Err(CryptError::internal("merge patch of an object"));
    };
    check_data(&merged)?;
    let out = put_version(a, &tx, path, Some(meta), &merged, cas)?;
    audit(a, &tx, "kv.patch", path, format!("version={}", out.version))?;
    tx.commit()?;
    Ok(out)
}

/// What a version-state operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionOp {
    Delete,
    Undelete,
    Destroy,
}

fn check_versions(versions: &[u64]) -> Result<(), CryptError> {
    if versions.is_empty() {
        return Err(CryptError::invalid("versions", "at least one version"));
    }
    if versions.len() > 1000 {
        return Err(CryptError::invalid("versions", "at most 1000 versions"));
    }
    if versions.contains(&0) {
        return Err(CryptError::invalid("versions", "versions start at 1"));
    }
    Ok(())
}

/// Soft-deletes, undeletes or destroys `versions` (empty with `Delete`:
/// the current one). Versions that do not exist are skipped, as in Vault.
pub(crate) fn set_versions(
    a: &Authorized<'_>,
    path: &str,
    op: VersionOp,
    versions: &[u64],
    latest: bool,
) -> Result<(), CryptError> {
    check_path(path)?;
    if !latest {
        check_versions(versions)?;
    }
    let (keys, id) = (a.keys(), a.mount().id);
    let tx = WriteTx::begin(a.store())?;
    let row = mount_key(id, path.as_bytes());
    let Some(mut meta) = get_sealed::<PathMeta>(&tx, keys, id, KV_META, &row)? else {
        return if latest { Err(no_secret(path)) } else { Ok(()) };
    };
    let targets = if latest {
        vec![meta.current_version]
    } else {
        versions.to_vec()
    };
    let now = mc_kit::clock::unix_now();
    for v in &targets {
        let Some(vm) = meta.versions.get_mut(v) else {
            continue;
        };
        match op {
            VersionOp::Delete if vm.live_at(now) => {
                vm.deletion_time = now;
                vm.expires = false;
            }
            // As Vault: undeleting also clears a deletion time still to come.
            VersionOp::Undelete if !vm.destroyed => {
                vm.deletion_time = 0;
                vm.expires = false;
            }
            VersionOp::Destroy => {
                vm.destroyed = true;
                tx.delete(KV_DATA, &data_key(id, path, *v))?;
            }
            _ => {}
        }
    }
    meta.updated_time = now;
    put_sealed(&tx, keys, id, KV_META, &row, &meta)?;
    let action = match op {
        VersionOp::Delete => "kv.delete",
        VersionOp::Undelete => "kv.undelete",
        VersionOp::Destroy => "kv.destroy",
    };
    let list: Vec<String> = targets.iter().map(u64::to_string).collect();
    audit(a, &tx, action, path, format!("versions={}", list.join(",")))?;
    tx.commit()?;
    Ok(())
}

fn metadata_view(meta: PathMeta) -> KvMetadata {
    KvMetadata {
        current_version: meta.current_version,
        oldest_version: meta.oldest_version,
        created_time: meta.created_time,
        updated_time: meta.updated_time,
        max_versions: meta.max_versions,
        cas_required: meta.cas_required,
        delete_version_after: meta.delete_version_after,
        custom_metadata: meta.custom_metadata,
        versions: meta
            .versions
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }
}

pub(crate) fn read_metadata(a: &Authorized<'_>, path: &str) -> Result<KvMetadata, CryptError> {
    check_path(path)?;
    let (keys, id) = (a.keys(), a.mount().id);
    let rx = Snapshot::begin(a.store())?;
    let meta: PathMeta = rx
        .get(keys, id, KV_META, &mount_key(id, path.as_bytes()))?
        .ok_or_else(|| no_secret(path))?;
    Ok(metadata_view(meta))
}

/// Writes a path's settings (creating the metadata when absent).
pub(crate) fn write_metadata(
    a: &Authorized<'_>,
    path: &str,
    input: &KvMetadataInput,
) -> Result<KvMetadata, CryptError> {
    check_path(path)?;
    if let Some(m) = input.max_versions {
        check_versions_limit("max_versions", m, true)?;
    }
    if let Some(c) = &input.custom_metadata {
        check_custom(c)?;
    }
    if let Some(d) = input.delete_version_after {
        check_delete_after("delete_version_after", d)?;
    }
    let (keys, id) = (a.keys(), a.mount().id);
    let tx = WriteTx::begin(a.store())?;
    let now = mc_kit::clock::unix_now();
    let mut meta = meta_for_upsert(a, &tx, path)?.unwrap_or(PathMeta {
        created_time: now,
        ..PathMeta::default()
    });
    if let Some(m) = input.max_versions {
        meta.max_versions = m;
    }
    if let Some(c) = input.cas_required {
        meta.cas_required = c;
    }
    if let Some(d) = input.delete_version_after {
        meta.delete_version_after = d;
    }
    if let Some(c) = &input.custom_metadata {
        meta.custom_metadata = c.clone();
    }
    meta.updated_time = now;
    // A lower limit applies now, not at the next write.
    let cfg = KvConfig::of(&a.mount().config);
    let max = max_versions(&cfg, &meta) as usize;
    while meta.versions.len() > max {
        let Some((&old, _)) = meta.versions.iter().next() else {
            break;
        };
        meta.versions.remove(&old);
        tx.delete(KV_DATA, &data_key(id, path, old))?;
    }
    if let Some((&first, _)) = meta.versions.iter().next() {
        meta.oldest_version = first;
    }
    put_sealed(
        &tx,
        keys,
        id,
        KV_META,
        &mount_key(id, path.as_bytes()),
        &meta,
    )?;
    audit(a, &tx, "kv.metadata", path, String::new())?;
    tx.commit()?;
    Ok(metadata_view(meta))
}

/// Deletes a path: its metadata and every version.
pub(crate) fn delete_metadata(a: &Authorized<'_>, path: &str) -> Result<(), CryptError> {
    check_path(path)?;
    let id = a.mount().id;
    let tx = WriteTx::begin(a.store())?;
    if !tx.delete(KV_META, &mount_key(id, path.as_bytes()))? {
        return Err(no_secret(path));
    }
    let mut prefix = mount_key(id, path.as_bytes());
    prefix.push(0);
    let rows = purge_prefix(&tx, KV_DATA, &prefix)?;
    audit(a, &tx, "kv.metadata_delete", path, format!("rows={rows}"))?;
    tx.commit()?;
    Ok(())
}

/// At most this many paths are scanned for one listing.
const LIST_SCAN: usize = 100_000;

/// The immediate children of `dir`, sorted; 404 when there are none.
pub(crate) fn list(a: &Authorized<'_>, dir: &str) -> Result<KvList, CryptError> {
    let prefix = check_dir(dir)?;
    let id = a.mount().id;
    let rx = Snapshot::begin(a.store())?;
    let base = mount_key(id, prefix.as_bytes());
    let mut keys: Vec<String> = Vec::new();
    for k in rx.keys(KV_META, &base, LIST_SCAN)? {
        let rest = String::from_utf8_lossy(&k[base.len()..]).into_owned();
        let child = match rest.split_once('/') {
            Some((folder, _)) => format!("{folder}/"),
            None => rest,
        };
        if keys.last() != Some(&child) {
            keys.push(child);
        }
    }
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Err(CryptError::NotFound(format!("nothing under {dir:?}")));
    }
    Ok(KvList { keys })
}
