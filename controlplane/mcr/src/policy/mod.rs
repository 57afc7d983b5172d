//! Per-repository policy: rules (who may pull, push or delete which
//! repositories and tags), repository and namespace settings (public pull,
//! quotas), and their evaluation.
//!
//! Invariants: evaluation is pure over one snapshot of the rules
//! ([`decide`]); default deny (no matching allow refuses); a matching
//! `deny` beats every `allow`; rules never match anonymous callers (their
//! only way in is a repository's `public_pull`). The snapshot is reloaded
//! after every rule change (`core::policy`), so a removed rule takes effect
//! on the next request, not at token expiry.

pub(crate) mod glob;
pub(crate) mod state;
#[cfg(test)]
mod tests;

use mc_service::auth::Principal;
use serde::{Deserialize, Serialize};

pub(crate) use state::Policy;

/// Registry actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "pull" => Some(Self::Pull),
            "push" => Some(Self::Push),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
            Self::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Effect {
    Allow,
    Deny,
}

fn yes() -> bool {
    true
}

/// One rule. Empty subject lists are wildcards; `repositories` and
/// `actions` must not be empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rule {
    #[serde(default)]
    pub id: String,
    #[serde(default = "default_priority")]
    pub priority: i64,
    pub effect: Effect,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub description: String,
    /// Account ids or usernames (any).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// MCIAS roles (any).
    #[serde(default)]
    pub roles: Vec<String>,
    /// MCIAS account tags (all required).
    #[serde(default)]
    pub tags: Vec<String>,
    /// `human`, `system` (any).
    #[serde(default)]
    pub account_types: Vec<String>,
    /// Repository globs (`*` within a component, `**` any components).
    pub repositories: Vec<String>,
    pub actions: Vec<Action>,
    /// Tag globs limiting which tags a rule lets one push or delete.
    #[serde(default)]
    pub tag_patterns: Vec<String>,
}

fn default_priority() -> i64 {
    100
}

/// Bounds on one rule (a peer with `mcr:admin` still cannot make one huge).
pub(crate) const MAX_LIST: usize = 64;
const MAX_STR: usize = 256;
/// Rules in the store.
pub(crate) const MAX_RULES: usize = 1_000;

impl Rule {
    /// Checks a rule as submitted; the message says what is wrong.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.repositories.is_empty() {
            return Err("repositories must name at least one pattern".into());
        }
        if self.actions.is_empty() {
            return Err("actions must name at least one of pull, push, delete".into());
        }
        if self.description.len() > MAX_STR {
            return Err(format!("description is at most {MAX_STR} bytes"));
        }
        let lists = [
            ("accounts", &self.accounts),
            ("roles", &self.roles),
            ("tags", &self.tags),
            ("account_types", &self.account_types),
            ("repositories", &self.repositories),
            ("tag_patterns", &self.tag_patterns),
        ];
        for (name, list) in lists {
            if list.len() > MAX_LIST {
                return Err(format!("{name}: at most {MAX_LIST} entries"));
            }
            if let Some(bad) = list.iter().find(|s| s.is_empty() || s.len() > MAX_STR) {
                return Err(format!("{name}: bad entry {bad:?}"));
            }
        }
        for p in &self.repositories {
            glob::check_repo_pattern(p).map_err(|e| format!("repositories: {p:?}: {e}"))?;
        }
        for p in &self.tag_patterns {
            glob::check_tag_pattern(p).map_err(|e| format!("tag_patterns: {p:?}: {e}"))?;
        }
        Ok(())
    }

    fn subject_matches(&self, p: &Principal) -> bool {
        let any = |list: &[String], f: &dyn Fn(&str) -> bool| {
            list.is_empty() || list.iter().any(|x| f(x))
        };
        any(&self.accounts, &|a| a == p.account_id || a == p.username)
            && any(&self.roles, &|r| p.roles.iter().any(|x| x == r))
            && self.tags.iter().all(|t| p.tags.contains(t))
            && any(&self.account_types, &|t| t == p.account_type)
    }

    /// Whether the rule covers `tag`. Without a tag (blobs, push by digest)
    /// an allow covers any tag pattern ("pushing by digest needs any
    /// push") while a deny covers only when it names no tag pattern.
    fn tag_matches(&self, tag: Option<&str>) -> bool {
        match tag {
            _ if self.tag_patterns.is_empty() => true,
            Some(t) => self.tag_patterns.iter().any(|p| glob::tag_matches(p, t)),
            None => self.effect == Effect::Allow,
        }
    }

    pub(crate) fn matches(
        &self,
        p: &Principal,
        repo: &str,
        action: Action,
        tag: Option<&str>,
    ) -> bool {
        self.enabled
            && self.actions.contains(&action)
            && self
                .repositories
                .iter()
                .any(|g| glob::repo_matches(g, repo))
            && self.subject_matches(p)
            && self.tag_matches(tag)
    }
}

/// The outcome of [`decide`], with the deciding rule (if any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Decision {
    pub allowed: bool,
    /// The deciding rule's id; `None` for the default deny or a scope refusal.
    pub rule: Option<String>,
    pub reason: String,
}

/// Policy, then the principal's MCIAS token scopes (`mcr:<action>:repo/<name>`).
pub(crate) fn decide(
    rules: &[Rule],
    p: &Principal,
    repo: &str,
    action: Action,
    tag: Option<&str>,
) -> Decision {
    let mut allow: Option<&Rule> = None;
    for r in rules.iter().filter(|r| r.matches(p, repo, action, tag)) {
        if r.effect == Effect::Deny {
            return Decision {
                allowed: false,
                rule: Some(r.id.clone()),
                reason: format!("denied by rule {}", r.id),
            };
        }
        allow = allow.or(Some(r));
    }
    let Some(rule) = allow else {
        return Decision {
            allowed: false,
            rule: None,
            reason: "no rule allows it (default deny)".into(),
        };
    };
    if !p.scope_allows(&format!("mcr:{}", action.name()), &format!("repo/{repo}")) {
        return Decision {
            allowed: false,
            rule: None,
            reason: format!(
                "the token's scopes do not include mcr:{}:repo/{repo}",
                action.name()
            ),
        };
    }
    Decision {
        allowed: true,
        rule: Some(rule.id.clone()),
        reason: format!("allowed by rule {}", rule.id),
    }
}

/// The rules a new store starts with: today's behaviour (admins may do
/// everything; every authenticated account may pull), both editable.
pub(crate) fn seed() -> Vec<Rule> {
    let base = |id: &str, description: &str, priority: i64| Rule {
        id: id.into(),
        priority,
        effect: Effect::Allow,
        enabled: true,
        description: description.into(),
        accounts: vec![],
        roles: vec![],
        tags: vec![],
        account_types: vec![],
        repositories: vec!["**".into()],
        actions: vec![Action::Pull],
        tag_patterns: vec![],
    };
    vec![
        Rule {
            roles: vec!["admin".into()],
            actions: vec![Action::Pull, Action::Push, Action::Delete],
            ..base("admins", "accounts with the admin role: everything", 10)
        },
        base("pull-all", "every authenticated account may pull", 1000),
    ]
}

/// Settings of one repository (admin): public pull, quota, immutable tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RepoSettings {
    /// `None`: the namespace's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_pull: Option<bool>,
    /// Bytes; 0 = none.
    #[serde(default)]
    pub quota_bytes: u64,
    /// Tag globs: a matching tag may be created but never moved or deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub immutable_tags: Vec<String>,
}

impl RepoSettings {
    /// Whether `tag` matches one of the repository's immutable-tag globs.
    pub(crate) fn is_immutable(&self, tag: &str) -> bool {
        self.immutable_tags
            .iter()
            .any(|p| glob::tag_matches(p, tag))
    }
}

/// At most this many immutable-tag globs per repository.
pub(crate) const MAX_IMMUTABLE_TAGS: usize = 32;

/// Settings of a namespace (a repository name's first component).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NamespaceSettings {
    /// Default `public_pull` for its repositories.
    #[serde(default)]
    pub public_pull: bool,
    /// Bytes over every repository of the namespace; 0 = none.
    #[serde(default)]
    pub quota_bytes: u64,
}

/// The namespace of `repo`: its first component.
pub(crate) fn namespace(repo: &str) -> &str {
    repo.split('/').next().unwrap_or(repo)
}
