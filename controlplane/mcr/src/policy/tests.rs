use mc_service::auth::Principal;

use super::*;

fn p(name: &str, roles: &[&str], tags: &[&str], kind: &str, scopes: &[&str]) -> Principal {
    Principal {
        account_id: format!("id-{name}"),
        username: name.into(),
        account_type: kind.into(),
        roles: roles.iter().map(|s| (*s).to_owned()).collect(),
        tags: tags.iter().map(|s| (*s).to_owned()).collect(),
        jti: "j".into(),
        expires_at: 0,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn rule(id: &str, effect: Effect, repos: &[&str], actions: &[Action]) -> Rule {
    Rule {
        id: id.into(),
        priority: 100,
        effect,
        enabled: true,
        description: String::new(),
        accounts: vec![],
        roles: vec![],
        tags: vec![],
        account_types: vec![],
        repositories: repos.iter().map(|s| (*s).to_owned()).collect(),
        actions: actions.to_vec(),
        tag_patterns: vec![],
    }
}

const ALL: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];

#[test]
fn seeded_rules_are_todays_behaviour() {
    let rules = seed();
    let admin = p("root", &["admin"], &[], "human", &[]);
    let user = p("bob", &["user"], &[], "human", &[]);
    let system = p("ci", &[], &[], "system", &[]);
    for a in ALL {
        assert!(decide(&rules, &admin, "apps/web", a, None).allowed);
        assert!(decide(&rules, &admin, "apps/web", a, Some("v1")).allowed);
    }
    for who in [&user, &system] {
        assert!(decide(&rules, who, "apps/web", Action::Pull, None).allowed);
        assert!(!decide(&rules, who, "apps/web", Action::Push, None).allowed);
        assert!(!decide(&rules, who, "apps/web", Action::Delete, None).allowed);
    }
    for r in &rules {
        assert_eq!(r.validate(), Ok(()));
    }
}

#[test]
fn default_deny_and_deny_wins() {
    let user = p("bob", &[], &[], "human", &[]);
    assert!(!decide(&[], &user, "a", Action::Pull, None).allowed);
    let mut deny = rule("no-secret", Effect::Deny, &["secret/**"], &ALL);
    deny.priority = 500; // priority orders display, never beats a deny
    let rules = vec![rule("all", Effect::Allow, &["**"], &ALL), deny];
    assert!(decide(&rules, &user, "apps/web", Action::Push, None).allowed);
    let d = decide(&rules, &user, "secret/x", Action::Pull, None);
    assert!(!d.allowed);
    assert_eq!(d.rule.as_deref(), Some("no-secret"));
    let mut disabled = rules.clone();
    disabled[1].enabled = false;
    assert!(decide(&disabled, &user, "secret/x", Action::Pull, None).allowed);
}

#[test]
fn subjects_accounts_roles_tags_and_types() {
    let mut r = rule("ci", Effect::Allow, &["ci/**"], &[Action::Push]);
    r.tags = vec!["ci".into(), "prod".into()];
    r.account_types = vec!["system".into()];
    let ci = p("builder", &[], &["ci", "prod"], "system", &[]);
    let half = p("builder", &[], &["ci"], "system", &[]);
    let human = p("alice", &[], &["ci", "prod"], "human", &[]);
    let rules = vec![r.clone()];
    assert!(decide(&rules, &ci, "ci/app", Action::Push, None).allowed);
    assert!(
        !decide(&rules, &half, "ci/app", Action::Push, None).allowed,
        "all tags"
    );
    assert!(!decide(&rules, &human, "ci/app", Action::Push, None).allowed);
    assert!(!decide(&rules, &ci, "apps/web", Action::Push, None).allowed);
    assert!(!decide(&rules, &ci, "ci/app", Action::Pull, None).allowed);
    let mut by_name = rule("a", Effect::Allow, &["**"], &[Action::Pull]);
    by_name.accounts = vec!["alice".into()];
    let mut by_id = by_name.clone();
    by_id.accounts = vec!["id-alice".into()];
    let alice = p("alice", &[], &[], "human", &[]);
    assert!(decide(&[by_name.clone()], &alice, "x", Action::Pull, None).allowed);
    assert!(decide(&[by_id], &alice, "x", Action::Pull, None).allowed);
    assert!(!decide(&[by_name], &ci, "x", Action::Pull, None).allowed);
    let mut by_role = rule("r", Effect::Allow, &["**"], &[Action::Delete]);
    by_role.roles = vec!["ops".into(), "admin".into()];
    let ops = p("o", &["ops"], &[], "human", &[]);
    assert!(decide(&[by_role.clone()], &ops, "x", Action::Delete, None).allowed);
    assert!(!decide(&[by_role], &alice, "x", Action::Delete, None).allowed);
}

#[test]
fn tag_patterns_limit_tags_and_digest_pushes_need_any_push() {
    let mut releases = rule("rel", Effect::Allow, &["apps/*"], &[Action::Push]);
    releases.tag_patterns = vec!["v*".into()];
    let user = p("bob", &[], &[], "human", &[]);
    let rules = vec![releases];
    assert!(decide(&rules, &user, "apps/web", Action::Push, Some("v1.0")).allowed);
    assert!(!decide(&rules, &user, "apps/web", Action::Push, Some("latest")).allowed);
    assert!(decide(&rules, &user, "apps/web", Action::Push, None).allowed);
    let mut no_latest = rule("nl", Effect::Deny, &["**"], &[Action::Push]);
    no_latest.tag_patterns = vec!["latest".into()];
    let rules = vec![rule("all", Effect::Allow, &["**"], &ALL), no_latest];
    assert!(!decide(&rules, &user, "a", Action::Push, Some("latest")).allowed);
    assert!(decide(&rules, &user, "a", Action::Push, Some("v2")).allowed);
    assert!(
        decide(&rules, &user, "a", Action::Push, None).allowed,
        "a tag-limited deny does not refuse blobs"
    );
}

#[test]
fn token_scopes_narrow_after_policy() {
    let rules = seed();
    let ci = p(
        "root",
        &["admin"],
        &[],
        "human",
        &["mcr:push:repo/ci/*", "mcr:pull:repo/ci/*"],
    );
    assert!(decide(&rules, &ci, "ci/app", Action::Push, None).allowed);
    let d = decide(&rules, &ci, "apps/web", Action::Push, None);
    assert!(!d.allowed, "scope narrows an admin");
    assert!(d.reason.contains("scopes"), "{}", d.reason);
    assert!(!decide(&rules, &ci, "apps/web", Action::Pull, None).allowed);
    assert!(!decide(&rules, &ci, "ci/app", Action::Delete, None).allowed);
}

#[test]
fn rules_are_validated() {
    let ok = rule("x", Effect::Allow, &["apps/*"], &[Action::Pull]);
    assert_eq!(ok.validate(), Ok(()));
    let mut bad = ok.clone();
    bad.repositories.clear();
    assert!(bad.validate().is_err());
    let mut bad = ok.clone();
    bad.actions.clear();
    assert!(bad.validate().is_err());
    let mut bad = ok.clone();
    bad.repositories = vec!["Apps/*".into()];
    assert!(bad.validate().is_err());
    let mut bad = ok.clone();
    bad.accounts = vec![String::new()];
    assert!(bad.validate().is_err());
    let mut bad = ok;
    bad.roles = vec!["r".into(); MAX_LIST + 1];
    assert!(bad.validate().is_err());
    let parsed: Result<Rule, _> = serde_json::from_str(
        r#"{"effect":"allow","repositories":["**"],"actions":["pull"],"bogus":1}"#,
    );
    assert!(parsed.is_err(), "unknown fields are refused");
}

#[test]
fn namespaces_are_first_components() {
    assert_eq!(namespace("apps/web"), "apps");
    assert_eq!(namespace("solo"), "solo");
}
