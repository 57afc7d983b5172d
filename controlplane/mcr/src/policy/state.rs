//! Policy tables (schema v2) and the in-memory snapshot of the rules.
//!
//! Tables: `policy_rules` (id → [`Rule`]), `repo_settings` (repository →
//! [`RepoSettings`]), `namespaces` (namespace → [`NamespaceSettings`]).
//! The migration seeds [`super::seed`], so a new or upgraded store keeps
//! today's behaviour. Invariant: [`Policy::rules`] is the table's content as
//! of the last [`Policy::reload`], which every rule change calls after its
//! commit.

use std::sync::{Arc, RwLock};

use mc_kit::store::json::{JsonTable, ReadTx, create_tables};
use mc_kit::store::{Store, StoreError};
use mc_service::auth::Principal;

use super::{Action, Decision, NamespaceSettings, RepoSettings, Rule, decide, namespace};

pub(crate) const POLICY_RULES: JsonTable<Rule> = JsonTable::new("policy_rules");
pub(crate) const REPO_SETTINGS: JsonTable<RepoSettings> = JsonTable::new("repo_settings");
pub(crate) const NAMESPACES: JsonTable<NamespaceSettings> = JsonTable::new("namespaces");

/// Migration to v2: the policy tables and the seeded rules.
pub(crate) fn migrate(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(
        txn,
        &[POLICY_RULES.def(), REPO_SETTINGS.def(), NAMESPACES.def()],
    )?;
    let mut t = txn
        .open_table(POLICY_RULES.def())
        .map_err(StoreError::other)?;
    for r in super::seed() {
        let v = serde_json::to_vec(&r).map_err(StoreError::other)?;
        t.insert(r.id.as_bytes(), v.as_slice())
            .map_err(StoreError::other)?;
    }
    Ok(())
}

/// Rules in evaluation/display order: priority, then id.
fn sorted(mut rules: Vec<Rule>) -> Vec<Rule> {
    rules.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
    rules
}

/// The policy as the guard reads it.
pub(crate) struct Policy {
    store: Arc<Store>,
    rules: RwLock<Arc<Vec<Rule>>>,
}

impl Policy {
    pub(crate) fn load(store: Arc<Store>) -> Result<Self, StoreError> {
        let rules = sorted(ReadTx::begin(&store)?.all(POLICY_RULES)?);
        Ok(Self {
            store,
            rules: RwLock::new(Arc::new(rules)),
        })
    }

    /// Re-reads the rules after a change.
    pub(crate) fn reload(&self) -> Result<(), StoreError> {
        let rules = sorted(ReadTx::begin(&self.store)?.all(POLICY_RULES)?);
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
        Ok(())
    }

    pub(crate) fn rules(&self) -> Arc<Vec<Rule>> {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn decide(
        &self,
        p: &Principal,
        repo: &str,
        action: Action,
        tag: Option<&str>,
    ) -> Decision {
        decide(&self.rules(), p, repo, action, tag)
    }

    pub(crate) fn allows(&self, p: &Principal, repo: &str, action: Action) -> bool {
        self.decide(p, repo, action, None).allowed
    }

    /// Whether anonymous callers may pull `repo`: its `public_pull`, else
    /// its namespace's default. A store error reads as "no".
    pub(crate) fn is_public(&self, repo: &str) -> bool {
        let read = || -> Result<bool, StoreError> {
            let tx = ReadTx::begin(&self.store)?;
            if let Some(p) = tx
                .get(REPO_SETTINGS, repo.as_bytes())?
                .and_then(|s| s.public_pull)
            {
                return Ok(p);
            }
            Ok(tx
                .get(NAMESPACES, namespace(repo).as_bytes())?
                .is_some_and(|n| n.public_pull))
        };
        read().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading repository settings");
            false
        })
    }
}
