//! The audit log: every mutation and every login decision is recorded in
//! the same transaction as the change it records ([`audit`]), and a refusal
//! is recorded before it is answered ([`refuse`]): audit → commit → error,
//! in one place.

use crate::core::{Caller, Mcias, now};
use crate::error::IamError;
use crate::store::WriteTx as Tx;

/// One audited action (the kit's event: one audit format for every service).
pub use mc_kit::store::audit::AuditEvent;

/// Appends an event to `tx`; it commits (or not) with the change.
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
        target: target.to_owned(),
        source_ip: caller.ip(),
        result: result.to_owned(),
        detail: detail.into(),
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
