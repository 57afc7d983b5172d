//! Policy changes: rules, repository and namespace settings. Each change
//! and its audit row commit in one transaction; the guard's snapshot is
//! reloaded after the commit. Denied registry requests are audited here too
//! (the guard may not open write transactions).

use axum::http::StatusCode;
use mc_kit::store::Store;
use mc_kit::store::audit::AuditEvent;
use mc_kit::store::json::{ReadTx, WriteTx};

use super::{Actor, Core, R, audit};
use crate::error::{Code, RegistryError};
use crate::policy::state::{NAMESPACES, POLICY_RULES, REPO_SETTINGS};
use crate::policy::{MAX_RULES, NamespaceSettings, Policy, RepoSettings, Rule};

fn invalid(m: impl Into<String>) -> RegistryError {
    RegistryError::bad(Code::Unsupported, m)
}

fn new_id() -> String {
    let mut raw = [0_u8; 6];
    rand::Rng::fill(&mut rand::rng(), &mut raw[..]);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    format!("r-{hex}")
}

fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn rule_not_found(id: &str) -> RegistryError {
    RegistryError::not_found(Code::NameUnknown, format!("no policy rule {id}"))
}

impl Core {
    pub(crate) fn policy_rules(&self) -> R<Vec<Rule>> {
        let mut rules = ReadTx::begin(&self.store)?.all(POLICY_RULES)?;
        rules.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
        Ok(rules)
    }

    pub(crate) fn policy_rule(&self, id: &str) -> R<Rule> {
        ReadTx::begin(&self.store)?
            .get(POLICY_RULES, id.as_bytes())?
            .ok_or_else(|| rule_not_found(id))
    }

    /// Creates a rule (an id is assigned when none is given).
    pub(crate) fn create_rule(&self, policy: &Policy, mut rule: Rule, actor: &Actor) -> R<Rule> {
        if rule.id.is_empty() {
            rule.id = new_id();
        }
        if !id_ok(&rule.id) {
            return Err(invalid("id: 1-64 letters, digits, - or _"));
        }
        rule.validate().map_err(invalid)?;
        let tx = WriteTx::begin(&self.store)?;
        if tx.get(POLICY_RULES, rule.id.as_bytes())?.is_some() {
            return Err(RegistryError::new(
                StatusCode::CONFLICT,
                Code::Denied,
                format!("policy rule {} exists", rule.id),
            ));
        }
        if tx.all(POLICY_RULES)?.len() >= MAX_RULES {
            return Err(invalid(format!("at most {MAX_RULES} rules")));
        }
        tx.put(POLICY_RULES, rule.id.as_bytes(), &rule)?;
        tx.audit(audit(
            actor,
            "registry.policy.create",
            rule.id.clone(),
            serde_json::to_string(&rule).unwrap_or_default(),
        ))?;
        tx.commit()?;
        policy.reload()?;
        Ok(rule)
    }

    /// Replaces rule `id` (the body's id, if any, must match).
    pub(crate) fn update_rule(
        &self,
        policy: &Policy,
        id: &str,
        mut rule: Rule,
        actor: &Actor,
    ) -> R<Rule> {
        if !rule.id.is_empty() && rule.id != id {
            return Err(invalid("the rule's id does not match the path"));
        }
        rule.id = id.to_owned();
        rule.validate().map_err(invalid)?;
        let tx = WriteTx::begin(&self.store)?;
        if tx.get(POLICY_RULES, id.as_bytes())?.is_none() {
            return Err(rule_not_found(id));
        }
        tx.put(POLICY_RULES, id.as_bytes(), &rule)?;
        tx.audit(audit(
            actor,
            "registry.policy.update",
            id.to_owned(),
            serde_json::to_string(&rule).unwrap_or_default(),
        ))?;
        tx.commit()?;
        policy.reload()?;
        Ok(rule)
    }

    pub(crate) fn delete_rule(&self, policy: &Policy, id: &str, actor: &Actor) -> R<()> {
        let tx = WriteTx::begin(&self.store)?;
        if !tx.delete(POLICY_RULES.def(), id.as_bytes())? {
            return Err(rule_not_found(id));
        }
        tx.audit(audit(
            actor,
            "registry.policy.delete",
            id.to_owned(),
            String::new(),
        ))?;
        tx.commit()?;
        policy.reload()?;
        Ok(())
    }

    pub(crate) fn repo_settings(&self, repo: &str) -> R<RepoSettings> {
        Ok(ReadTx::begin(&self.store)?
            .get(REPO_SETTINGS, repo.as_bytes())?
            .unwrap_or_default())
    }

    pub(crate) fn set_repo_settings(&self, repo: &str, s: &RepoSettings, actor: &Actor) -> R<()> {
        let tx = WriteTx::begin(&self.store)?;
        tx.put(REPO_SETTINGS, repo.as_bytes(), s)?;
        tx.audit(audit(
            actor,
            "registry.repo.update",
            repo.to_owned(),
            serde_json::to_string(s).unwrap_or_default(),
        ))?;
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn namespace_settings(&self, ns: &str) -> R<NamespaceSettings> {
        Ok(ReadTx::begin(&self.store)?
            .get(NAMESPACES, ns.as_bytes())?
            .unwrap_or_default())
    }

    pub(crate) fn set_namespace_settings(
        &self,
        ns: &str,
        s: &NamespaceSettings,
        actor: &Actor,
    ) -> R<()> {
        let tx = WriteTx::begin(&self.store)?;
        tx.put(NAMESPACES, ns.as_bytes(), s)?;
        tx.audit(audit(
            actor,
            "registry.namespace.update",
            ns.to_owned(),
            serde_json::to_string(s).unwrap_or_default(),
        ))?;
        tx.commit()?;
        Ok(())
    }
}

/// Records a refused registry request (`registry.denied`, result `denied`).
pub(crate) fn audit_denied(store: &Store, event: AuditEvent) -> R<()> {
    let tx = WriteTx::begin(store)?;
    tx.audit(event)?;
    tx.commit()?;
    Ok(())
}
