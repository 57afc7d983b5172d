//! MCR's redb store: `<data_dir>/mcr/mcr.redb`, schema `mcr`, opened through
//! `mc_kit::store` (0600/0700, durable commits, ordered migrations).
//!
//! Tables (v1), keys are UTF-8 joined by `\0` (which no name, tag or digest
//! contains, so a prefix `repo\0` scans exactly one repository, in byte
//! order):
//! - `repos`: name → [`RepoRow`]
//! - `blobs`: digest → [`BlobRow`] (size, stored object, link count)
//! - `links`: repo ‖ digest → [`LinkRow`] (a blob visible in a repository;
//!   `refs` = manifests of the repository referencing it)
//! - `manifests`: repo ‖ digest → [`ManifestRow`]; `manifest_content`: repo ‖
//!   digest → the exact bytes pushed
//! - `tags`: repo ‖ tag → [`TagRow`] (with `updated_at`)
//! - `referrers`: repo ‖ subject ‖ referrer → the descriptor end-12 serves
//! - the kit's `audit`.
//!
//! Invariants: a blob row exists only once its object is durable; a
//! manifest row only with every blob and child manifest it references
//! linked/stored in its repository, and its `refs`/`parents` increments in
//! the same transaction. Upload sessions are not here: they live under
//! `uploads/` (see `core::uploads`), so a push costs one commit, at the end.

use mc_kit::store::json::{JsonTable, create_tables};
use mc_kit::store::{Migration, Schema, StoreError, Table};
use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

pub(crate) use mc_kit::store::audit::AUDIT;

pub(crate) const REPOS: JsonTable<RepoRow> = JsonTable::new("repos");
pub(crate) const BLOBS: JsonTable<BlobRow> = JsonTable::new("blobs");
pub(crate) const LINKS: JsonTable<LinkRow> = JsonTable::new("links");
pub(crate) const MANIFESTS: JsonTable<ManifestRow> = JsonTable::new("manifests");
pub(crate) const MANIFEST_CONTENT: Table = Table::new("manifest_content");
pub(crate) const TAGS: JsonTable<TagRow> = JsonTable::new("tags");
pub(crate) const REFERRERS: JsonTable<serde_json::Value> = JsonTable::new("referrers");

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RepoRow {
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BlobRow {
    pub size: u64,
    /// The storage key of its object (`sha256/ab/<hex>.<inc>`).
    pub object: String,
    pub created_at: i64,
    /// Repositories linking it.
    pub links: u64,
    /// When `links` last dropped to 0 (GC deletes the blob `grace` later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlinked_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LinkRow {
    pub size: u64,
    /// Manifests of this repository that reference the blob.
    pub refs: u64,
    pub linked_at: i64,
    /// When `refs` last dropped to 0 (GC removes the link `grace` later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreferenced_since: Option<i64>,
}

/// What a manifest references, so a delete can undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Child {
    pub digest: String,
    /// A child manifest (of an index) rather than a blob.
    pub manifest: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ManifestRow {
    pub media_type: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub pushed_at: i64,
    pub pushed_by: String,
    /// Indexes of this repository listing it.
    pub parents: u64,
    pub children: Vec<Child>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TagRow {
    pub digest: String,
    pub updated_at: i64,
    pub updated_by: String,
}

fn create(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(
        txn,
        &[
            REPOS.def(),
            BLOBS.def(),
            LINKS.def(),
            MANIFESTS.def(),
            MANIFEST_CONTENT,
            TAGS.def(),
            REFERRERS.def(),
            AUDIT.def(),
        ],
    )
}

pub(crate) const SCHEMA: Schema = Schema {
    name: "mcr",
    migrations: &[
        Migration {
            to_version: 1,
            description: "repositories, blobs, links, manifests, tags, referrers, audit",
            apply: create,
        },
        Migration {
            to_version: 2,
            description: "policy rules (seeded), repository and namespace settings",
            apply: crate::policy::state::migrate,
        },
        Migration {
            to_version: 3,
            description: "online GC: unlinked (relink window), gc_pending, gc_runs",
            apply: crate::gc::tables::create,
        },
    ],
};

/// `a ‖ b` with the `\0` separator.
pub(crate) fn key2(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + b.len() + 1);
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b.as_bytes());
    k
}

/// `a ‖ b ‖ c`.
pub(crate) fn key3(a: &str, b: &str, c: &str) -> Vec<u8> {
    let mut k = key2(a, b);
    k.push(0);
    k.extend_from_slice(c.as_bytes());
    k
}

/// Up to `limit` rows whose key starts with `prefix ‖ \0`, strictly after
/// `prefix ‖ \0 ‖ after` when given, in key order; keys are returned
/// without the prefix.
pub(crate) fn scan<T: serde::de::DeserializeOwned>(
    db: &redb::Database,
    table: JsonTable<T>,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, T)>, StoreError> {
    let txn = db.begin_read().map_err(StoreError::other)?;
    let t = txn.open_table(table.def()).map_err(StoreError::other)?;
    let start = key2(prefix, after.unwrap_or(""));
    let mut end = prefix.as_bytes().to_vec();
    end.push(1);
    let mut out = Vec::new();
    for row in t
        .range(start.as_slice()..end.as_slice())
        .map_err(StoreError::other)?
    {
        let (k, v) = row.map_err(StoreError::other)?;
        let k = k.value();
        let rest = &k[prefix.len() + 1..];
        let rest = String::from_utf8_lossy(rest).into_owned();
        if after.is_some_and(|a| rest == a) {
            continue;
        }
        if out.len() >= limit {
            break;
        }
        out.push((
            rest,
            serde_json::from_slice(v.value()).map_err(StoreError::other)?,
        ));
    }
    Ok(out)
}

/// Keys (after `prefix ‖ \0`) of every row of a write transaction's table
/// under `prefix`: for deletes that must see their own transaction.
pub(crate) fn keys_under(
    txn: &redb::WriteTransaction,
    table: Table,
    prefix: &str,
) -> Result<Vec<String>, StoreError> {
    let t = txn.open_table(table).map_err(StoreError::other)?;
    let start = key2(prefix, "");
    let mut end = prefix.as_bytes().to_vec();
    end.push(1);
    let mut out = Vec::new();
    for row in t
        .range(start.as_slice()..end.as_slice())
        .map_err(StoreError::other)?
    {
        let (k, _) = row.map_err(StoreError::other)?;
        out.push(String::from_utf8_lossy(&k.value()[prefix.len() + 1..]).into_owned());
    }
    Ok(out)
}

/// Top-level keys of a table (repository names), after `after`, at most `limit`.
pub(crate) fn names<T>(
    db: &redb::Database,
    table: JsonTable<T>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let txn = db.begin_read().map_err(StoreError::other)?;
    let t = txn.open_table(table.def()).map_err(StoreError::other)?;
    let start = after.unwrap_or("").as_bytes().to_vec();
    let mut out = Vec::new();
    for row in t.range(start.as_slice()..).map_err(StoreError::other)? {
        let (k, _) = row.map_err(StoreError::other)?;
        let k = String::from_utf8_lossy(k.value()).into_owned();
        if after.is_some_and(|a| k == a) {
            continue;
        }
        if out.len() >= limit {
            break;
        }
        out.push(k);
    }
    Ok(out)
}
