//! GC's tables (schema v3 of `mcr`), kept here so the GC owns them:
//! - `unlinked`: digest ‖ repo → [`UnlinkedRow`]: links GC removed, kept
//!   while the blob row lives (the relink window of invariant 2);
//! - `gc_pending`: object key → [`PendingRow`]: blob rows gone whose object
//!   may still be on disk (deleted after the commit; idempotent on a crash);
//! - `gc_runs`: run id → [`RunRow`] (progress rows, newest last in key order);
//! - `retention`: rule id → [`super::retention::Rule`].

use mc_kit::store::StoreError;
use mc_kit::store::json::{JsonTable, create_tables};
use serde::{Deserialize, Serialize};

pub(crate) const UNLINKED: JsonTable<UnlinkedRow> = JsonTable::new("unlinked");
pub(crate) const GC_PENDING: JsonTable<PendingRow> = JsonTable::new("gc_pending");
pub(crate) const GC_RUNS: JsonTable<RunRow> = JsonTable::new("gc_runs");
pub(crate) const RETENTION: JsonTable<super::retention::Rule> = JsonTable::new("retention");

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UnlinkedRow {
    pub at: i64,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PendingRow {
    pub digest: String,
    pub deleted_at: i64,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counters {
    pub links_scanned: u64,
    pub links_removed: u64,
    pub blobs_scanned: u64,
    pub blobs_removed: u64,
    pub bytes_reclaimed: u64,
    pub orphans_removed: u64,
    pub uploads_removed: u64,
}

/// One thing a run removed or (dry run) would remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Item {
    /// `link`, `blob` or `orphan`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub repository: String,
    /// Digest (links, blobs) or object key (orphans).
    pub digest: String,
    pub size: u64,
}

/// A GC run: `running` until `done`, `failed` or `interrupted` (cut by a restart).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunRow {
    pub id: String,
    pub dry_run: bool,
    pub by: String,
    pub started_at: i64,
    #[serde(default)]
    pub finished_at: Option<i64>,
    pub state: String,
    /// `links`, `blobs`, `orphans`, `uploads`, `finished`.
    pub phase: String,
    pub counters: Counters,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Dry runs: the first [`super::MAX_ITEMS`] items that would go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
}

/// Migration 2: GC's tables.
pub(crate) fn create(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(
        txn,
        &[
            UNLINKED.def(),
            GC_PENDING.def(),
            GC_RUNS.def(),
            RETENTION.def(),
        ],
    )
}
