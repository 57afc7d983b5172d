//! The guard's policy check and the audit of its refusals.
//!
//! Invariant: a refused push or delete writes one `registry.denied` audit
//! row per account, repository and action per minute (so a client retrying
//! in a loop cannot fill the audit table); refused pulls are counted in the
//! log only. The rate-limit memory is bounded ([`MAX_RECENT`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mc_kit::clock::unix_now;
use mc_kit::store::Store;
use mc_kit::store::audit::AuditEvent;
use mc_service::auth::Principal;

use crate::policy::{Action, Policy};

const WINDOW: Duration = Duration::from_secs(60);
const MAX_RECENT: usize = 10_000;

type Key = (String, String, Action);

/// Policy decisions for the guard.
pub(crate) struct Decider {
    pub(crate) policy: Arc<Policy>,
    store: Arc<Store>,
    recent: Mutex<HashMap<Key, Instant>>,
}

impl Decider {
    pub(crate) fn new(policy: Arc<Policy>, store: Arc<Store>) -> Self {
        Self {
            policy,
            store,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `p` may do `action` on `repo` (and `tag`); the refusal's
    /// reason otherwise, audited for pushes and deletes.
    pub(crate) fn check(
        &self,
        p: &Principal,
        repo: &str,
        action: Action,
        tag: Option<&str>,
        source: &str,
    ) -> Result<(), String> {
        let d = self.policy.decide(p, repo, action, tag);
        if d.allowed {
            return Ok(());
        }
        tracing::info!(account = %p.username, repo, action = action.name(), reason = %d.reason, "registry request denied");
        if action != Action::Pull
            && self.first_in_window((p.account_id.clone(), repo.to_owned(), action))
        {
            let event = AuditEvent {
                seq: 0,
                at: unix_now(),
                actor: p.account_id.clone(),
                action: "registry.denied".to_owned(),
                target: repo.to_owned(),
                source_ip: source.to_owned(),
                result: "denied".to_owned(),
                detail: format!(
                    "{} {}{}: {}",
                    p.username,
                    action.name(),
                    tag.map(|t| format!(" tag {t}")).unwrap_or_default(),
                    d.reason
                ),
            };
            let store = self.store.clone();
            // Off the request path: the refusal does not wait for a commit.
            tokio::task::spawn_blocking(move || {
                if let Err(e) = crate::core::policy::audit_denied(&store, event) {
                    tracing::warn!(error = %e.message, "auditing a refusal");
                }
            });
        }
        Err(d.reason)
    }

    fn first_in_window(&self, key: Key) -> bool {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < WINDOW)
        {
            return false;
        }
        if recent.len() >= MAX_RECENT {
            recent.retain(|_, t| now.duration_since(*t) < WINDOW);
            if recent.len() >= MAX_RECENT {
                recent.clear();
            }
        }
        recent.insert(key, now);
        true
    }
}
