//! Applying the workers' UPDATE plans (RFC 2136 §3.2.5, §3.4.2) through the
//! same commit as every admin change: under the state's mutex, on a copy of
//! the zone, prerequisites first, then the changes; only a change that
//! alters the zone bumps the serial (once), commits and publishes, and the
//! secondaries are NOTIFYed as after an admin API change.

use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use mc_kit::api::ApiError;

use super::state::DnsState;
use crate::update::{Job, Plan, apply};
use crate::zone;

impl DnsState {
    /// Applies `plan`; the rcode is the answer to the client, the flag
    /// whether the zone changed.
    pub(crate) fn apply_update(&self, plan: &Plan) -> (ResponseCode, bool) {
        let mut inner = self.lock();
        let Some(data) = inner.zones.get(&plan.zone).cloned() else {
            return (ResponseCode::NotAuth, false);
        };
        let soa = crate::model::canonical(&zone::soa_record(&data.spec).data);
        if let Err(rcode) = apply::check(&data.records, &soa, &plan.prereqs) {
            return (rcode, false);
        }
        let mut new = data.clone();
        if let Err(rcode) = apply::changes(&mut new.records, &plan.changes) {
            return (rcode, false);
        }
        let (removed, added) = apply::diff(&data.records, &new.records);
        if removed.is_empty() && added.is_empty() {
            return (ResponseCode::NoError, false);
        }
        match self.commit_zone(&mut inner, new, &removed, &added, false) {
            Ok(serial) => {
                tracing::info!(zone = %plan.zone, serial, removed = removed.len(), added = added.len(), "dns: UPDATE applied");
                (ResponseCode::NoError, true)
            }
            Err(ApiError::Invalid(e)) => {
                tracing::info!(zone = %plan.zone, error = %e, "dns: UPDATE refused: it would break a zone rule");
                (ResponseCode::Refused, false)
            }
            Err(e) => {
                tracing::warn!(zone = %plan.zone, error = %e, "dns: UPDATE failed");
                (ResponseCode::ServFail, false)
            }
        }
    }

    /// NOTIFYs the secondaries of `zone` with its published SOA.
    pub(crate) fn notify_secondaries(&self, zone: &crate::model::ZoneName) {
        let snap = self.published.snapshot.load();
        if let Some(z) = snap.zones.get(&zone.name()) {
            super::notify::zone_changed(&self.published.settings, zone, z.soa.clone());
        }
    }
}

/// Applies plans one at a time until every worker's sender is gone; runs on
/// the admin runtime, the store work on its blocking pool.
pub(crate) async fn serve(state: Arc<DnsState>) {
    let rx = state
        .updates
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let Some(mut rx) = rx else {
        return;
    };
    while let Some(Job { plan, reply }) = rx.recv().await {
        let s = state.clone();
        let (plan, (rcode, changed)) = match tokio::task::spawn_blocking(move || {
            let outcome = s.apply_update(&plan);
            (plan, outcome)
        })
        .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "dns: UPDATE task failed");
                let _ = reply.send(ResponseCode::ServFail);
                continue;
            }
        };
        if changed {
            state.notify_secondaries(&plan.zone);
        }
        // The worker may have given up waiting; nothing to do then.
        let _ = reply.send(rcode);
    }
}
