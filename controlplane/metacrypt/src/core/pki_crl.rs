//! The CRL refresh job (docs/design/pki.md §Revocation and CRLs): every
//! [`TICK`], while unsealed, each pki mount re-signs the CRLs of its
//! issuer versions that reach `next_update` − `crl_refresh_margin`.
//!
//! Invariants: the job never runs sealed (issuer keys are sealed: it
//! skips the tick); it holds only a `Weak` to Metacrypt, so it ends when
//! the service is dropped; a failure on one mount is logged and the other
//! mounts still refresh; each refresh is one transaction with its audit
//! row, actor `pki-crl-refresh`.

use std::sync::Weak;
use std::time::Duration;

use mc_kit::clock::unix_now;
use mc_service::auth::Principal;

use super::{Caller, Metacrypt};
use crate::engines::Engine as _;
use crate::engines::pki::{Pki, ops};
use crate::error::CryptError;

/// How often the job looks for CRLs to refresh.
pub(crate) const TICK: Duration = Duration::from_secs(5);

fn job_caller() -> Caller {
    Caller {
        principal: Some(Principal {
            account_id: "pki-crl-refresh".to_owned(),
            username: "pki-crl-refresh".to_owned(),
            account_type: "system".to_owned(),
            roles: Vec::new(),
            tags: Vec::new(),
            jti: String::new(),
            expires_at: 0,
            scopes: Vec::new(),
        }),
        source: None,
    }
}

impl Metacrypt {
    /// One pass over every pki mount; how many CRLs were re-signed. Sealed:
    /// none, and no error.
    pub fn refresh_crls(&self) -> Result<usize, CryptError> {
        self.refresh_crls_at(unix_now())
    }

    fn refresh_crls_at(&self, now: i64) -> Result<usize, CryptError> {
        let Ok(keys) = self.barrier.unsealed() else {
            return Ok(0);
        };
        let view = self.view(&keys)?;
        let caller = job_caller();
        let mut n = 0;
        for m in view.mounts.values().filter(|m| m.kind == Pki::TYPE) {
            match self.run_job(&caller, &m.name, |a| ops::refresh_due_crls(&a, now)) {
                Ok(k) => n += k,
                Err(e) => tracing::warn!(mount = %m.name, error = %e, "pki: CRL refresh failed"),
            }
        }
        Ok(n)
    }
}

/// The job: runs until Metacrypt is dropped.
pub(crate) async fn run(m: Weak<Metacrypt>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(m) = m.upgrade() else {
            return;
        };
        // redb commits block: keep them off the async workers.
        let r = tokio::task::spawn_blocking(move || m.refresh_crls()).await;
        match r {
            Ok(Ok(n)) if n > 0 => tracing::info!(crls = n, "pki: CRLs refreshed"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "pki: CRL refresh failed"),
            Err(e) => tracing::warn!(error = %e, "pki: CRL refresh task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::MountInput;
    use crate::engines::pki::model::CaRequest;

    #[tokio::test]
    async fn due_crls_are_resigned_once_and_not_while_sealed() {
        let (_d, m, admin) = crate::engines::kv::tests::unsealed().await;
        m.create_mount(
            &admin,
            MountInput {
                name: "pki".to_owned(),
                kind: "pki".to_owned(),
                description: String::new(),
                config: None,
            },
        )
        .expect("mount");
        let root = m
            .pki_root_generate(&admin, "pki", || {
                Ok(CaRequest {
                    common_name: "Refresh Root".to_owned(),
                    ..CaRequest::default()
                })
            })
            .expect("root");
        let now = mc_kit::clock::unix_now();
        // Default: 72 h CRLs, refreshed 24 h before next_update.
        assert_eq!(m.refresh_crls_at(now + 60).expect("early"), 0);
        let due = now + 48 * 3600 + 60;
        assert_eq!(m.refresh_crls_at(due).expect("due"), 1);
        let info = m.pki_issuer(&admin, "pki", "root").expect("issuer");
        assert_eq!(info.crl_number, root.crl_number + 1);
        // Re-signed now with a fresh lifetime: not due again soon.
        assert_eq!(m.refresh_crls_at(now + 60).expect("again"), 0);
        m.seal(&admin).await.expect("seal");
        assert_eq!(m.refresh_crls_at(due + 72 * 3600).expect("sealed"), 0);
    }
}
