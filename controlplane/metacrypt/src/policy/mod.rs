//! Policy: ACL rules over engine paths, matched against the MCIAS caller.
//!
//! A rule names a subject (`accounts` any, `roles` any, `tags` all,
//! `account_types` any; empty = wildcard), path patterns (exact, `*` only at
//! the end = prefix, `+` = exactly one segment) and capabilities.
//! Evaluation: among enabled rules whose subject and some path match, a
//! `deny` naming the capability (or naming none) refuses; else an `allow`
//! granting it admits; else refuse (default deny). Priority orders rules
//! for display and for naming the deciding rule; it never changes the
//! outcome.
//!
//! Invariant: pure (no store, no keys): rules are validated here before
//! they are stored, and compiled from the stored rows on every unseal and
//! change (`core::view`).

mod pattern;

use serde::{Deserialize, Serialize};

use crate::error::CryptError;
use mc_service::auth::Principal;

pub(crate) use pattern::Pattern;

/// At most this many rules, and this many paths per rule.
pub(crate) const MAX_RULES: usize = 1000;
pub(crate) const MAX_PATHS: usize = 64;
const MAX_SUBJECTS: usize = 64;
const MAX_NAME: usize = 128;
const MAX_DESCRIPTION: usize = 256;

/// What an operation does to its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    Read,
    List,
    Create,
    Update,
    Patch,
    Delete,
}

impl Capability {
    pub const ALL: [Capability; 6] = [
        Self::Read,
        Self::List,
        Self::Create,
        Self::Update,
        Self::Patch,
        Self::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::List => "list",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    #[default]
    Allow,
    Deny,
}

fn yes() -> bool {
    true
}

/// One stored rule (also the create/update input; `id` is assigned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub priority: u32,
    #[serde(default)]
    pub effect: Effect,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub account_types: Vec<String>,
    pub paths: Vec<String>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
}

impl Rule {
    /// The rule `init` seeds: role `admin` → every capability on `*`.
    pub(crate) fn seeded_admin() -> Self {
        Self {
            id: "r-admin".to_owned(),
            priority: 1000,
            effect: Effect::Allow,
            enabled: true,
            description: "seeded at init: admins may use every engine path".to_owned(),
            accounts: vec![],
            roles: vec!["admin".to_owned()],
            tags: vec![],
            account_types: vec![],
            paths: vec!["*".to_owned()],
            capabilities: Capability::ALL.to_vec(),
        }
    }

    /// Checks every field, naming the first bad one.
    pub(crate) fn validate(&self) -> Result<(), CryptError> {
        if self.paths.is_empty() {
            return Err(CryptError::invalid("paths", "at least one path"));
        }
        if self.paths.len() > MAX_PATHS {
            return Err(CryptError::invalid("paths", "at most 64 paths"));
        }
        for (i, p) in self.paths.iter().enumerate() {
            Pattern::parse(p).map_err(|why| CryptError::invalid(format!("paths[{i}]"), why))?;
        }
        if self.effect == Effect::Allow && self.capabilities.is_empty() {
            return Err(CryptError::invalid(
                "capabilities",
                "an allow rule grants at least one capability",
            ));
        }
        if self.description.len() > MAX_DESCRIPTION {
            return Err(CryptError::invalid("description", "at most 256 bytes"));
        }
        for (field, list) in [
            ("accounts", &self.accounts),
            ("roles", &self.roles),
            ("tags", &self.tags),
            ("account_types", &self.account_types),
        ] {
            if list.len() > MAX_SUBJECTS {
                return Err(CryptError::invalid(field, "at most 64 entries"));
            }
            for (i, v) in list.iter().enumerate() {
                if v.is_empty() || v.len() > MAX_NAME || v.chars().any(char::is_control) {
                    return Err(CryptError::invalid(
                        format!("{field}[{i}]"),
                        "1 to 128 bytes, no control characters",
                    ));
                }
            }
        }
        for (i, t) in self.account_types.iter().enumerate() {
            if t != "human" && t != "system" {
                return Err(CryptError::invalid(
                    format!("account_types[{i}]"),
                    "human or system",
                ));
            }
        }
        Ok(())
    }

    fn subject_matches(&self, p: &Principal) -> bool {
        (self.accounts.is_empty()
            || self
                .accounts
                .iter()
                .any(|a| *a == p.account_id || *a == p.username))
            && (self.roles.is_empty() || self.roles.iter().any(|r| p.roles.contains(r)))
            && self.tags.iter().all(|t| p.tags.contains(t))
            && (self.account_types.is_empty() || self.account_types.contains(&p.account_type))
    }
}

struct Compiled {
    rule: Rule,
    patterns: Vec<Pattern>,
}

/// The rules, ready to evaluate (sorted by priority, then id).
#[derive(Default)]
pub(crate) struct Policy {
    rules: Vec<Compiled>,
}

/// What [`Policy::evaluate`] decided, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub allowed: bool,
    /// `allow`, `deny` or `default deny`.
    pub decision: &'static str,
    /// The deciding rule (the first by priority), when one decided.
    pub rule: Option<String>,
    /// Every enabled rule whose subject and a path match, by priority.
    pub matched: Vec<String>,
}

impl Policy {
    /// Compiles stored rules; a rule that no longer parses is skipped (and
    /// logged), never widened.
    pub(crate) fn compile(rules: Vec<Rule>) -> Self {
        let mut out: Vec<Compiled> = rules
            .into_iter()
            .filter_map(|rule| {
                let patterns = rule
                    .paths
                    .iter()
                    .map(|p| Pattern::parse(p))
                    .collect::<Result<Vec<_>, _>>();
                match patterns {
                    Ok(patterns) => Some(Compiled { rule, patterns }),
                    Err(why) => {
                        tracing::error!(rule = %rule.id, %why, "metacrypt: policy rule skipped");
                        None
                    }
                }
            })
            .collect();
        out.sort_by(|a, b| (a.rule.priority, &a.rule.id).cmp(&(b.rule.priority, &b.rule.id)));
        Self { rules: out }
    }

    pub(crate) fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|c| &c.rule)
    }

    /// May `p` use `capability` on `path` (`<mount>/<sub-path>`)?
    pub(crate) fn evaluate(&self, p: &Principal, path: &str, capability: Capability) -> Verdict {
        let mut deny = None;
        let mut allow = None;
        let mut matched = Vec::new();
        for c in &self.rules {
            let r = &c.rule;
            if !r.enabled || !r.subject_matches(p) || !c.patterns.iter().any(|x| x.matches(path)) {
                continue;
            }
            matched.push(r.id.clone());
            match r.effect {
                Effect::Deny
                    if deny.is_none()
                        && (r.capabilities.is_empty() || r.capabilities.contains(&capability)) =>
                {
                    deny = Some(r.id.clone());
                }
                Effect::Allow if allow.is_none() && r.capabilities.contains(&capability) => {
                    allow = Some(r.id.clone());
                }
                _ => {}
            }
        }
        let (allowed, decision, rule) = match (deny, allow) {
            (Some(d), _) => (false, "deny", Some(d)),
            (None, Some(a)) => (true, "allow", Some(a)),
            (None, None) => (false, "default deny", None),
        };
        Verdict {
            allowed,
            decision,
            rule,
            matched,
        }
    }
}

#[cfg(test)]
mod tests;
