//! The CRL refresh (docs/design/pki.md §Revocation and CRLs), a task of
//! the jobs loop (`core/tasks.rs`, `pki crl refresh`, every
//! `crl_refresh_check`): each pki mount re-signs the CRLs of its issuer
//! versions that reach `next_update` − `crl_refresh_margin`.
//!
//! Invariants: it never runs sealed (issuer keys are sealed); a failure on
//! one mount is logged and the other mounts still refresh; each refresh is
//! one transaction with its audit row, actor `metacrypt-jobs`.

use mc_kit::clock::unix_now;

use super::Metacrypt;
use crate::engines::Engine as _;
use crate::engines::pki::{Pki, ops};
use crate::error::CryptError;

impl Metacrypt {
    /// One pass over every pki mount; how many CRLs were re-signed.
    pub(crate) fn refresh_crls(&self) -> Result<String, CryptError> {
        let (n, failed) = self.refresh_crls_at(unix_now())?;
        Ok(match failed {
            0 => format!("{n} CRLs re-signed"),
            f => format!("{n} CRLs re-signed, {f} mounts failed (logged)"),
        })
    }

    /// [`Self::refresh_crls`] as of `now`: (CRLs re-signed, mounts failed).
    fn refresh_crls_at(&self, now: i64) -> Result<(usize, usize), CryptError> {
        let (mut n, mut failed) = (0, 0);
        self.run_system(Pki::TYPE, |a| {
            match ops::refresh_due_crls(&a, now) {
                Ok(k) => n += k,
                Err(e) => {
                    failed += 1;
                    tracing::warn!(mount = %a.mount().name, error = %e, "pki: CRL refresh failed");
                }
            }
            Ok(())
        })?;
        if n > 0 {
            tracing::info!(crls = n, "pki: CRLs refreshed");
        }
        Ok((n, failed))
    }
}

#[cfg(test)]
mod tests {
    use crate::core::MountInput;
    use crate::engines::pki::model::CaRequest;

    #[tokio::test]
    async fn due_crls_are_resigned_once_and_not_while_sealed() {
        let (_d, m, admin) = crate::testing::unsealed().await;
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
        assert_eq!(m.refresh_crls_at(now + 60).expect("early"), (0, 0));
        let due = now + 48 * 3600 + 60;
        assert_eq!(m.refresh_crls_at(due).expect("due"), (1, 0));
        let info = m.pki_issuer(&admin, "pki", "root").expect("issuer");
        assert_eq!(info.crl_number, root.crl_number + 1);
        // Re-signed now with a fresh lifetime: not due again soon.
        assert_eq!(m.refresh_crls_at(now + 60).expect("again"), (0, 0));
        m.seal(&admin).await.expect("seal");
        // Sealed: nothing runs (the loop skips the task; a direct call is refused).
        assert!(m.refresh_crls_at(due + 72 * 3600).is_err());
    }
}
