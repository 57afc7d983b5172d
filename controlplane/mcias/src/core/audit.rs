//! The audit log: every mutation and every login decision is recorded in
//! the same transaction as the change it records ([`audit`]), and a refusal
//! is recorded before it is answered ([`refuse`]): audit → commit → error,
//! in one place.
//!
//! Retention ([`Mcias::prune`]): expired token records and audit rows past
//! `audit_max_events` / `audit_max_age` are removed in bounded batches, and
//! each pass that removes anything is itself one `audit.prune` event.

use crate::core::{Caller, Mcias, now, ttl_secs};
use crate::error::IamError;
use crate::store::{self as db, AUDIT, WriteTx as Tx};

/// One audited action (the kit's event: one audit format for every service).
pub use mc_kit::store::audit::AuditEvent;

/// Longest target an audit row keeps (ids and names are far shorter).
pub(crate) const MAX_TARGET: usize = 256;
/// Longest detail an audit row keeps.
pub(crate) const MAX_DETAIL: usize = 2048;

/// `s` cut to at most `max` bytes (on a character boundary), marked when cut.
/// A backstop only: every client-controlled field is bounded (and refused
/// when too long) before it reaches an audit row, so a row stays small even
/// if a new field is forgotten.
pub(crate) fn clip(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max.saturating_sub(3);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Appends an event to `tx`; it commits (or not) with the change. Target
/// and detail are clipped ([`clip`]).
pub(crate) fn audit(
    tx: &Tx,
    caller: &Caller,
    action: &str,
    target: &str,
    result: &str,
    detail: impl Into<String>,
) -> Result<(), IamError> {
    let e = AuditEvent {
        seq: 0,
        at: now(),
        actor: caller.actor(),
        action: action.to_owned(),
        target: clip(target.to_owned(), MAX_TARGET),
        source_ip: caller.ip(),
        result: result.to_owned(),
        detail: clip(detail.into(), MAX_DETAIL),
    };
    tx.audit(e)?;
    Ok(())
}

/// What a refused request records: `action` on `target` ended with `result`.
pub(crate) struct Refusal {
    pub action: &'static str,
    pub target: String,
    pub result: &'static str,
    pub detail: String,
    /// What the caller is answered.
    pub error: IamError,
}

impl Refusal {
    pub(crate) fn new(
        action: &'static str,
        target: &str,
        result: &'static str,
        error: IamError,
    ) -> Self {
        Self {
            action,
            target: target.to_owned(),
            result,
            detail: String::new(),
            error,
        }
    }

    #[must_use]
    pub(crate) fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// Audits `r` in `tx` (with whatever else `tx` holds), commits, and answers
/// its error: the one way a request ends refused but recorded.
pub(crate) fn refuse<T>(tx: Tx, caller: &Caller, r: Refusal) -> Result<T, IamError> {
    audit(&tx, caller, r.action, &r.target, r.result, r.detail)?;
    tx.commit()?;
    Err(r.error)
}

impl Mcias {
    /// [`refuse`] in a transaction of its own.
    pub(crate) fn refuse<T>(&self, caller: &Caller, r: Refusal) -> Result<T, IamError> {
        refuse(Tx::begin(&self.store)?, caller, r)
    }

    /// The newest events first, filtered by action prefix and actor.
    pub fn audit_log(
        &self,
        limit: usize,
        action: &str,
        actor: &str,
    ) -> Result<Vec<AuditEvent>, IamError> {
        let limit = limit.clamp(1, 1000);
        let scan: Vec<AuditEvent> = self.read()?.audit_page(None, 50_000)?;
        Ok(scan
            .into_iter()
            .filter(|e| {
                (action.is_empty() || e.action.starts_with(action))
                    && (actor.is_empty() || e.actor == actor)
            })
            .take(limit)
            .collect())
    }
}

// Retention: expired token records and audit rows past their retention are
// pruned in bounded batches, at most once a minute, on the request path.

/// Rows one pruning pass removes at most, per table.
pub(crate) const PRUNE_BATCH: usize = 10_000;
/// Seconds between pruning passes.
const PRUNE_EVERY: i64 = 60;

/// What one pruning pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Expired token records and expired credential-reset tokens.
    pub tokens: u64,
    pub audit: u64,
}

impl Mcias {
    /// Prunes when the last pass is a minute old. Housekeeping: a failure is
    /// logged, never answered to the request that happened to trigger it.
    pub(crate) fn maybe_prune(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let t = now();
        let last = self.last_prune.load(Relaxed);
        if t.saturating_sub(last) < PRUNE_EVERY
            || self
                .last_prune
                .compare_exchange(last, t, Relaxed, Relaxed)
                .is_err()
        {
            return;
        }
        if let Err(e) = self.prune(t) {
            tracing::warn!(error = %e, "pruning the MCIAS store");
        }
    }

    /// One pruning pass as of `now`: up to [`PRUNE_BATCH`] expired token
    /// records (and expired reset tokens) and up to [`PRUNE_BATCH`] of the oldest audit rows beyond
    /// `audit_max_events` or older than `audit_max_age`, recorded as one
    /// `audit.prune` event in the same transaction (nothing when nothing
    /// was due).
    pub fn prune(&self, now: i64) -> Result<Pruned, IamError> {
        let tx = Tx::begin(&self.store)?;
        let mut n = 0_usize;
        let tokens = tx.delete_where(db::TOKENS, |_, r| {
            let due = n < PRUNE_BATCH && r.expires_at <= now;
            n += usize::from(due);
            due
        })?;
        // Expired credential-reset tokens go the same way.
        let mut n = 0_usize;
        let resets = tx.delete_where(db::RESETS, |_, r| {
            let due = n < PRUNE_BATCH && r["expires_at"].as_i64().is_none_or(|e| e <= now);
            n += usize::from(due);
            due
        })?;
        let tokens = tokens + resets;
        let cutoff = now.saturating_sub(ttl_secs(self.config.audit_max_age.get()));
        let (audit_rows, seqs) = prune_audit(&tx, cutoff, self.config.audit_max_events)?;
        let pruned = Pruned {
            tokens,
            audit: audit_rows,
        };
        if pruned == Pruned::default() {
            return Ok(pruned);
        }
        audit(
            &tx,
            &Caller::default(),
            "audit.prune",
            "",
            "ok",
            format!(
                "expired tokens={tokens} (reset tokens {resets}) audit rows={audit_rows}{seqs} (retention: {} events, {} s)",
                self.config.audit_max_events,
                self.config.audit_max_age.get().as_secs()
            ),
        )?;
        tx.commit()?;
        Ok(pruned)
    }
}

/// Removes the oldest audit rows while there are more than `max_events` or
/// they are older than `cutoff`, at most [`PRUNE_BATCH`]; returns how many
/// and the sequence range removed.
fn prune_audit(tx: &Tx, cutoff: i64, max_events: u64) -> Result<(u64, String), IamError> {
    use mc_kit::store::StoreError;
    use redb::{ReadableTable, ReadableTableMetadata};
    let mut t = tx
        .raw()
        .open_table(AUDIT.def())
        .map_err(StoreError::other)?;
    let len = t.len().map_err(StoreError::other)?;
    // Down to one below the limit, leaving room for the pruning's own event
    // (so the next pass finds nothing to do).
    let mut excess = if len > max_events {
        len - max_events + 1
    } else {
        0
    };
    let mut doomed = Vec::new();
    for row in t.iter().map_err(StoreError::other)?.take(PRUNE_BATCH) {
        let (k, v) = row.map_err(StoreError::other)?;
        // An undecodable row counts as oldest.
        let at = serde_json::from_slice::<AuditEvent>(v.value()).map_or(0, |e| e.at);
        if excess == 0 && at >= cutoff {
            break;
        }
        excess = excess.saturating_sub(1);
        doomed.push(k.value().to_vec());
    }
    for k in &doomed {
        t.remove(k.as_slice()).map_err(StoreError::other)?;
    }
    let seq = |k: Option<&Vec<u8>>| {
        k.and_then(|k| <[u8; 8]>::try_from(k.as_slice()).ok())
            .map_or(0, u64::from_be_bytes)
    };
    let range = if doomed.is_empty() {
        String::new()
    } else {
        format!(" (seq {}..={})", seq(doomed.first()), seq(doomed.last()))
    };
    Ok((doomed.len() as u64, range))
}
