//! `sys/policy`: rules CRUD and `explain` (Admin in the map). Rules are
//! stored sealed under the `sys` ring (`policy`, key 0 ‖ id) and compiled
//! into the view on unseal and after every change.
//!
//! Invariant: a rule is validated before its transaction begins; every
//! change and its audit row commit together.

use mc_kit::store::json::WriteTx;
use mc_service::auth::Principal;
use serde::{Deserialize, Serialize};

use super::{Caller, Metacrypt, event};
use crate::barrier::SYS_MOUNT;
use crate::barrier::sealer::{get_sealed, put_sealed};
use crate::error::CryptError;
use crate::policy::{Capability, MAX_RULES, Rule, Verdict};
use crate::store::{POLICY, sys_key};

pub use crate::policy::{
    Capability as PolicyCapability, Effect as PolicyEffect, Rule as PolicyRule,
};

/// Who `explain` asks about (default: the caller).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    #[serde(default)]
    pub account_id: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub account_type: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `POST sys/policy/explain`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainInput {
    pub path: String,
    pub capability: String,
    #[serde(default)]
    pub subject: Option<Subject>,
}

/// What `explain` answers: the verdict and the rules it names.
#[derive(Debug, Serialize)]
pub struct Explained {
    pub path: String,
    pub capability: Capability,
    #[serde(flatten)]
    pub verdict: Verdict,
}

fn rule_id() -> Result<String, CryptError> {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| CryptError::internal("no randomness"))?;
    Ok(format!(
        "r-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    ))
}

fn check_id(id: &str) -> Result<(), CryptError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(CryptError::invalid("id", "1 to 64 of [A-Za-z0-9_-]"))
    }
}

fn not_found(id: &str) -> CryptError {
    CryptError::NotFound(format!("no policy rule {id}"))
}

impl Metacrypt {
    /// Every rule, by priority then id.
    pub fn list_rules(&self) -> Result<Vec<Rule>, CryptError> {
        let keys = self.barrier.unsealed()?;
        Ok(self.view(&keys)?.policy.rules().cloned().collect())
    }

    pub fn get_rule(&self, id: &str) -> Result<Rule, CryptError> {
        let keys = self.barrier.unsealed()?;
        check_id(id)?;
        self.view(&keys)?
            .policy
            .rules()
            .find(|r| r.id == id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    pub fn create_rule(&self, c: &Caller, mut rule: Rule) -> Result<Rule, CryptError> {
        let keys = self.barrier.unsealed()?;
        rule.validate()?;
        if rule.id.is_empty() {
            rule.id = rule_id()?;
        } else {
            check_id(&rule.id)?;
        }
        let tx = WriteTx::begin(&self.store)?;
        let row = sys_key(&rule.id);
        if tx.get_raw(POLICY, &row)?.is_some() {
            return Err(CryptError::AlreadyExists(format!(
                "a policy rule {} exists",
                rule.id
            )));
        }
        if tx
            .raw()
            .open_table(POLICY)
            .map_err(CryptError::internal)
            .and_then(|t| {
                use redb::ReadableTableMetadata;
                t.len().map_err(CryptError::internal)
            })?
            >= MAX_RULES as u64
        {
            return Err(CryptError::FailedPrecondition(format!(
                "at most {MAX_RULES} policy rules"
            )));
        }
        put_sealed(&tx, &keys, SYS_MOUNT, POLICY, &row, &rule)?;
        tx.audit(event(c, "policy.create", &rule.id, String::new()))?;
        tx.commit()?;
        self.changed();
        Ok(rule)
    }

    /// Replaces rule `id` (the body's `id`, if any, must match).
    pub fn update_rule(&self, c: &Caller, id: &str, mut rule: Rule) -> Result<Rule, CryptError> {
        let keys = self.barrier.unsealed()?;
        check_id(id)?;
        if !rule.id.is_empty() && rule.id != id {
            return Err(CryptError::invalid("id", "differs from the rule's path"));
        }
        rule.id = id.to_owned();
        rule.validate()?;
        let tx = WriteTx::begin(&self.store)?;
        let row = sys_key(id);
        get_sealed::<Rule>(&tx, &keys, SYS_MOUNT, POLICY, &row)?.ok_or_else(|| not_found(id))?;
        put_sealed(&tx, &keys, SYS_MOUNT, POLICY, &row, &rule)?;
        tx.audit(event(c, "policy.update", id, String::new()))?;
        tx.commit()?;
        self.changed();
        Ok(rule)
    }

    pub fn delete_rule(&self, c: &Caller, id: &str) -> Result<(), CryptError> {
        self.barrier.unsealed()?;
        check_id(id)?;
        let tx = WriteTx::begin(&self.store)?;
        if !tx.delete(POLICY, &sys_key(id))? {
            return Err(not_found(id));
        }
        tx.audit(event(c, "policy.delete", id, String::new()))?;
        tx.commit()?;
        self.changed();
        Ok(())
    }

    /// What policy decides for a subject (default: the caller) on a path.
    pub fn explain(&self, c: &Caller, input: ExplainInput) -> Result<Explained, CryptError> {
        let keys = self.barrier.unsealed()?;
        let capability = Capability::parse(&input.capability).ok_or_else(|| {
            CryptError::invalid(
                "capability",
                "one of read, list, create, update, patch, delete",
            )
        })?;
        if input.path.is_empty() || input.path.len() > 2048 {
            return Err(CryptError::invalid("path", "1 to 2048 bytes"));
        }
        let principal = match input.subject {
            Some(s) => Principal {
                account_id: s.account_id,
                username: s.username,
                account_type: s.account_type,
                roles: s.roles,
                tags: s.tags,
                jti: String::new(),
                expires_at: 0,
                scopes: vec![],
            },
            None => c.require()?.clone(),
        };
        let verdict = self
            .view(&keys)?
            .policy
            .evaluate(&principal, &input.path, capability);
        Ok(Explained {
            path: input.path,
            capability,
            verdict,
        })
    }

    /// Seeds the admin rule (once, right after `init`).
    pub(crate) fn seed_policy(&self, c: &Caller) -> Result<(), CryptError> {
        let keys = self.barrier.unsealed()?;
        let rule = Rule::seeded_admin();
        let tx = WriteTx::begin(&self.store)?;
        let row = sys_key(&rule.id);
        if tx.get_raw(POLICY, &row)?.is_none() {
            put_sealed(&tx, &keys, SYS_MOUNT, POLICY, &row, &rule)?;
            tx.audit(event(
                c,
                "policy.create",
                &rule.id,
                "seeded at init".to_owned(),
            ))?;
            tx.commit()?;
            self.changed();
        }
        Ok(())
    }
}
