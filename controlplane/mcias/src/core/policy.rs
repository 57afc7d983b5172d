//! Login policy as stored: the rules (create, update, delete; priority
//! order), the decision a login gets ([`Mcias::login_decision`]), and the
//! tester that explains a decision, optionally with a candidate rule (dry
//! run). The rule engine itself is [`crate::policy`].

use crate::core::audit::audit;
use crate::core::{Caller, Mcias, now};
use crate::error::IamError;
use crate::model::{self, Account};
use crate::policy::{self, Decision, Rule};
use crate::store::{self as db, WriteTx as Tx};

impl Mcias {
    pub fn rules(&self) -> Result<Vec<Rule>, IamError> {
        let mut r: Vec<Rule> = self.read()?.all(db::POLICY)?;
        r.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
        Ok(r)
    }

    pub fn rule(&self, id: &str) -> Result<Rule, IamError> {
        self.read()?
            .get(db::POLICY, id.as_bytes())?
            .ok_or_else(|| IamError::NotFound(format!("no rule `{id}`")))
    }

    pub fn create_rule(
        &self,
        caller: &Caller,
        mut rule: Rule,
        seed: bool,
    ) -> Result<Rule, IamError> {
        rule.validate()?;
        rule.id = uuid::Uuid::new_v4().to_string();
        let tx = Tx::begin(&self.store)?;
        tx.put(db::POLICY, rule.id.as_bytes(), &rule)?;
        audit(
            &tx,
            caller,
            "policy.create",
            &rule.id,
            "ok",
            if seed { "default rule" } else { "" },
        )?;
        tx.commit()?;
        Ok(rule)
    }

    pub fn update_rule(&self, caller: &Caller, rule: Rule) -> Result<Rule, IamError> {
        rule.validate()?;
        self.rule(&rule.id)?;
        let tx = Tx::begin(&self.store)?;
        tx.put(db::POLICY, rule.id.as_bytes(), &rule)?;
        audit(&tx, caller, "policy.update", &rule.id, "ok", "")?;
        tx.commit()?;
        Ok(rule)
    }

    pub fn delete_rule(&self, caller: &Caller, id: &str) -> Result<(), IamError> {
        self.rule(id)?;
        let tx = Tx::begin(&self.store)?;
        tx.delete(db::POLICY.def(), id.as_bytes())?;
        audit(&tx, caller, "policy.delete", id, "ok", "")?;
        tx.commit()?;
        Ok(())
    }

    /// The policy tester: the decision for an account, service and tags,
    /// optionally with a candidate rule added (dry run).
    pub fn explain(
        &self,
        account: &str,
        service: &str,
        tags: &[String],
        action: &str,
        at: i64,
        candidate: Option<Rule>,
    ) -> Result<Decision, IamError> {
        let account = self.find(account)?;
        let tags = model::check_tags(tags)?;
        let mut rules = self.rules()?;
        if let Some(mut c) = candidate {
            c.validate()?;
            c.id = "candidate".to_owned();
            rules.push(c);
        }
        let action = if action.is_empty() {
            "auth:login"
        } else {
            action
        };
        let at = if at == 0 { now() } else { at };
        Ok(policy::explain(
            &rules,
            &policy::Request {
                account: &account,
                service_name: service,
                tags: &tags,
                action,
                at,
            },
        ))
    }

    /// The decision for `account` logging in to `service` with `tags` now.
    pub(crate) fn login_decision(
        &self,
        account: &Account,
        service: &str,
        tags: &[String],
    ) -> Result<Decision, IamError> {
        let rules: Vec<Rule> = self.read()?.all(db::POLICY)?;
        Ok(policy::explain(
            &rules,
            &policy::Request {
                account,
                service_name: service,
                tags,
                action: "auth:login",
                at: now(),
            },
        ))
    }
}
