//! Login policy: priority-ordered allow/deny rules, default deny.
//!
//! Enabled rules are evaluated in ascending priority (ties by id). An empty
//! match field is a wildcard. The first matching deny wins; otherwise the
//! first matching allow; otherwise deny. [`explain`] returns the decision,
//! the deciding rule and a trace of every rule with the first field that did
//! not match — the built-in login-policy tester.

use serde::{Deserialize, Serialize};

use crate::error::IamError;
use crate::model::{Account, AccountType, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default)]
    pub id: String,
    pub priority: i32,
    pub effect: Effect,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub account_types: Vec<AccountType>,
    #[serde(default)]
    pub account_ids: Vec<String>,
    #[serde(default)]
    pub service_names: Vec<String>,
    #[serde(default)]
    pub required_tags: Vec<String>,
    #[serde(default)]
    pub actions: Vec<String>,
    /// 0 = unbounded.
    #[serde(default)]
    pub not_before: i64,
    #[serde(default)]
    pub expires_at: i64,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl Rule {
    pub fn validate(&self) -> Result<(), IamError> {
        if self.description.len() > 512 {
            return Err(IamError::invalid("description", "at most 512 bytes"));
        }
        for (field, list) in [
            ("account_ids", &self.account_ids),
            ("service_names", &self.service_names),
            ("required_tags", &self.required_tags),
            ("actions", &self.actions),
        ] {
            if list.len() > 64 {
                return Err(IamError::invalid(field, "at most 64 entries"));
            }
            if list.iter().any(|v| v.is_empty() || v.len() > 128) {
                return Err(IamError::invalid(field, "entries must be 1 to 128 bytes"));
            }
        }
        if self.roles.len() > crate::model::MAX_ROLES {
            return Err(IamError::invalid("roles", "at most 16 entries"));
        }
        if self.account_types.len() > crate::model::MAX_ROLES {
            return Err(IamError::invalid("account_types", "at most 16 entries"));
        }
        if self.id.len() > 64 {
            return Err(IamError::invalid("id", "at most 64 bytes"));
        }
        if self.not_before != 0 && self.expires_at != 0 && self.expires_at <= self.not_before {
            return Err(IamError::invalid("expires_at", "must be after not_before"));
        }
        Ok(())
    }
}

/// What is being decided.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub account: &'a Account,
    pub service_name: &'a str,
    pub tags: &'a [String],
    pub action: &'a str,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trace {
    pub rule_id: String,
    pub priority: i32,
    pub effect: Effect,
    pub matched: bool,
    /// The first field that did not match (empty when matched).
    pub mismatch: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub effect: Effect,
    /// Empty when the default deny decided.
    pub rule_id: String,
    pub trace: Vec<Trace>,
}

fn mismatch(rule: &Rule, req: &Request<'_>) -> Option<&'static str> {
    let a = req.account;
    if !rule.enabled {
        return Some("enabled");
    }
    if rule.not_before != 0 && req.at < rule.not_before {
        return Some("not_before");
    }
    if rule.expires_at != 0 && req.at >= rule.expires_at {
        return Some("expires_at");
    }
    if !rule.roles.is_empty() && !rule.roles.iter().any(|r| a.roles.contains(r)) {
        return Some("roles");
    }
    if !rule.account_types.is_empty() && !rule.account_types.contains(&a.account_type) {
        return Some("account_types");
    }
    if !rule.account_ids.is_empty() && !rule.account_ids.contains(&a.id) {
        return Some("account_ids");
    }
    if !rule.service_names.is_empty() && !rule.service_names.iter().any(|s| s == req.service_name) {
        return Some("service_names");
    }
    if !rule.required_tags.iter().all(|t| req.tags.contains(t)) {
        return Some("required_tags");
    }
    if !rule.actions.is_empty() && !rule.actions.iter().any(|x| x == req.action) {
        return Some("actions");
    }
    None
}

/// Evaluates `rules` for `req`, with a full trace.
pub fn explain(rules: &[Rule], req: &Request<'_>) -> Decision {
    let mut ordered: Vec<&Rule> = rules.iter().collect();
    ordered.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
    let mut trace = Vec::with_capacity(ordered.len());
    let mut first_allow = None;
    let mut first_deny = None;
    for rule in ordered {
        let miss = mismatch(rule, req);
        if miss.is_none() {
            match rule.effect {
                Effect::Deny if first_deny.is_none() => first_deny = Some(rule.id.clone()),
                Effect::Allow if first_allow.is_none() => first_allow = Some(rule.id.clone()),
                _ => {}
            }
        }
        trace.push(Trace {
            rule_id: rule.id.clone(),
            priority: rule.priority,
            effect: rule.effect,
            matched: miss.is_none(),
            mismatch: miss.unwrap_or_default().to_owned(),
        });
    }
    let (effect, rule_id) = match (first_deny, first_allow) {
        (Some(d), _) => (Effect::Deny, d),
        (None, Some(a)) => (Effect::Allow, a),
        (None, None) => (Effect::Deny, String::new()),
    };
    Decision {
        effect,
        rule_id,
        trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccountStatus;

    fn account(roles: &[Role], tags: &[&str]) -> Account {
        Account {
            id: "acct-1".into(),
            username: "alice".into(),
            account_type: AccountType::Human,
            status: AccountStatus::Active,
            roles: roles.to_vec(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            password_hash: String::new(),
            created_at: 0,
            last_login: 0,
            failed_logins: 0,
            locked_until: 0,
            token_generation: 0,
            totp_sealed: String::new(),
            totp_enabled: false,
            totp_last_step: 0,
            totp_failures: 0,
            totp_locked_until: 0,
            known_sources: Vec::new(),
        }
    }

    fn rule(id: &str, priority: i32, effect: Effect) -> Rule {
        Rule {
            id: id.into(),
            priority,
            effect,
            description: String::new(),
            roles: vec![],
            account_types: vec![],
            account_ids: vec![],
            service_names: vec![],
            required_tags: vec![],
            actions: vec![],
            not_before: 0,
            expires_at: 0,
            enabled: true,
        }
    }

    fn decide(rules: &[Rule], a: &Account, service: &str, tags: &[String]) -> Decision {
        explain(
            rules,
            &Request {
                account: a,
                service_name: service,
                tags,
                action: "auth:login",
                at: 100,
            },
        )
    }

    #[test]
    fn default_deny() {
        let d = decide(&[], &account(&[Role::User], &[]), "mcr", &[]);
        assert_eq!((d.effect, d.rule_id.as_str()), (Effect::Deny, ""));
    }

    #[test]
    fn first_deny_wins_over_any_allow_then_first_allow() {
        let a = account(&[Role::User], &[]);
        let mut deny = rule("d", 50, Effect::Deny);
        deny.service_names = vec!["mcr".into()];
        let allow = rule("a", 10, Effect::Allow);
        let d = decide(&[allow.clone(), deny.clone()], &a, "mcr", &[]);
        assert_eq!(
            (d.effect, d.rule_id.as_str()),
            (Effect::Deny, "d"),
            "a deny anywhere beats an earlier allow"
        );
        let d = decide(&[allow.clone(), deny], &a, "metacrypt", &[]);
        assert_eq!((d.effect, d.rule_id.as_str()), (Effect::Allow, "a"));
        assert_eq!(d.trace[1].mismatch, "service_names");
        // Lower priority numbers come first among allows.
        let d = decide(&[rule("z", 5, Effect::Allow), allow], &a, "x", &[]);
        assert_eq!(d.rule_id, "z");
    }

    #[test]
    fn fields_roles_types_tags_actions_window_enabled() {
        let admin = account(&[Role::Admin], &["site:home"]);
        let mut r = rule("r", 1, Effect::Allow);
        r.roles = vec![Role::Admin];
        r.account_types = vec![AccountType::Human];
        r.required_tags = vec!["env:prod".into()];
        let tags = vec!["env:prod".to_string()];
        assert_eq!(
            decide(&[r.clone()], &admin, "s", &tags).effect,
            Effect::Allow
        );
        assert_eq!(
            decide(&[r.clone()], &admin, "s", &[]).trace[0].mismatch,
            "required_tags"
        );
        assert_eq!(
            decide(&[r.clone()], &account(&[Role::User], &[]), "s", &tags).trace[0].mismatch,
            "roles"
        );
        r.actions = vec!["mcr:push".into()];
        assert_eq!(
            decide(&[r.clone()], &admin, "s", &tags).trace[0].mismatch,
            "actions"
        );
        r.actions.clear();
        r.not_before = 200;
        assert_eq!(
            decide(&[r.clone()], &admin, "s", &tags).trace[0].mismatch,
            "not_before"
        );
        r.not_before = 0;
        r.expires_at = 100;
        assert_eq!(
            decide(&[r.clone()], &admin, "s", &tags).trace[0].mismatch,
            "expires_at"
        );
        r.expires_at = 0;
        r.enabled = false;
        assert_eq!(decide(&[r], &admin, "s", &tags).effect, Effect::Deny);
    }
}
