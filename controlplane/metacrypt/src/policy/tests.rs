//! Matcher and evaluation tests.

use proptest::prelude::*;

use super::*;

fn principal(name: &str, roles: &[&str], tags: &[&str], kind: &str) -> Principal {
    Principal {
        account_id: format!("id-{name}"),
        username: name.to_owned(),
        account_type: kind.to_owned(),
        roles: roles.iter().map(|s| (*s).to_owned()).collect(),
        tags: tags.iter().map(|s| (*s).to_owned()).collect(),
        jti: String::new(),
        expires_at: 0,
        scopes: vec![],
    }
}

fn rule(id: &str, effect: Effect, paths: &[&str], caps: &[Capability]) -> Rule {
    Rule {
        id: id.to_owned(),
        priority: 100,
        effect,
        enabled: true,
        description: String::new(),
        accounts: vec![],
        roles: vec![],
        tags: vec![],
        account_types: vec![],
        paths: paths.iter().map(|s| (*s).to_owned()).collect(),
        capabilities: caps.to_vec(),
    }
}

fn m(pattern: &str, path: &str) -> bool {
    Pattern::parse(pattern).expect("pattern").matches(path)
}

#[test]
fn patterns_match_exact_prefix_and_one_segment() {
    assert!(m("secret/data/a", "secret/data/a"));
    assert!(!m("secret/data/a", "secret/data/ab"));
    assert!(!m("secret/data/a", "secret/data/a/b"));
    assert!(m("transit/encrypt/app-*", "transit/encrypt/app-web"));
    assert!(m("transit/encrypt/app-*", "transit/encrypt/app-"));
    assert!(!m("transit/encrypt/app-*", "transit/encrypt/ap"));
    assert!(m("secret/*", "secret/data/x/y"));
    assert!(!m("secret/*", "secret"));
    assert!(!m("secret/*", "secretive/data"));
    assert!(m("*", "anything/at/all"));
    assert!(m("secret/data/ci/+/token", "secret/data/ci/web/token"));
    assert!(!m("secret/data/ci/+/token", "secret/data/ci/token"));
    assert!(!m("secret/data/ci/+/token", "secret/data/ci/a/b/token"));
    assert!(!m("secret/data/ci/+/token", "secret/data/ci//token"));
    assert!(m("+/data/+", "kv/data/x"));
    assert!(m("+/data/*", "kv/data/x/y"));
}

#[test]
fn bad_patterns_are_refused_by_reason() {
    for bad in ["", "a*b", "a/*/b", "a/b+/c", "a/+*", "a\u{1}"] {
        assert!(Pattern::parse(bad).is_err(), "{bad:?}");
    }
    let long = "a".repeat(1025);
    assert!(Pattern::parse(&long).is_err());
}

#[test]
fn default_deny_then_allow_then_deny_wins() {
    let carol = principal("carol", &["dev"], &["ci"], "human");
    let mut rules = vec![];
    let policy = Policy::compile(rules.clone());
    let v = policy.evaluate(&carol, "secret/data/a", Capability::Read);
    assert_eq!(
        (v.allowed, v.decision, v.rule),
        (false, "default deny", None)
    );

    rules.push(rule(
        "r-allow",
        Effect::Allow,
        &["secret/*"],
        &[Capability::Read],
    ));
    let policy = Policy::compile(rules.clone());
    assert!(
        policy
            .evaluate(&carol, "secret/data/a", Capability::Read)
            .allowed
    );
    assert!(
        !policy
            .evaluate(&carol, "secret/data/a", Capability::Update)
            .allowed,
        "only the granted capability"
    );

    // A deny with a *lower* precedence (higher priority number) still wins.
    let mut deny = rule(
        "r-deny",
        Effect::Deny,
        &["secret/data/a"],
        &[Capability::Read],
    );
    deny.priority = 5000;
    rules.push(deny);
    let policy = Policy::compile(rules.clone());
    let v = policy.evaluate(&carol, "secret/data/a", Capability::Read);
    assert_eq!((v.allowed, v.decision), (false, "deny"));
    assert_eq!(v.rule.as_deref(), Some("r-deny"));
    assert_eq!(v.matched, vec!["r-allow".to_owned(), "r-deny".to_owned()]);
    // A deny naming no capability denies all of them.
    rules[1].capabilities.clear();
    let policy = Policy::compile(rules.clone());
    assert!(
        !policy
            .evaluate(&carol, "secret/data/a", Capability::List)
            .allowed
    );
    assert!(
        policy
            .evaluate(&carol, "secret/data/b", Capability::Read)
            .allowed
    );
    // A disabled rule does nothing.
    rules[1].enabled = false;
    let policy = Policy::compile(rules);
    assert!(
        policy
            .evaluate(&carol, "secret/data/a", Capability::Read)
            .allowed
    );
}

#[test]
fn subjects_match_accounts_any_roles_any_tags_all_types_any() {
    let carol = principal("carol", &["dev"], &["ci", "eu"], "human");
    let bot = principal("bot", &[], &["ci"], "system");
    let check = |r: Rule, p: &Principal| {
        Policy::compile(vec![r])
            .evaluate(p, "kv/data/x", Capability::Read)
            .allowed
    };
    let base = rule("r", Effect::Allow, &["kv/*"], &[Capability::Read]);
    let mut by_name = base.clone();
    by_name.accounts = vec!["carol".to_owned(), "someone".to_owned()];
    assert!(check(by_name.clone(), &carol) && !check(by_name, &bot));
    let mut by_id = base.clone();
    by_id.accounts = vec!["id-bot".to_owned()];
    assert!(check(by_id.clone(), &bot) && !check(by_id, &carol));
    let mut by_role = base.clone();
    by_role.roles = vec!["ops".to_owned(), "dev".to_owned()];
    assert!(check(by_role.clone(), &carol) && !check(by_role, &bot));
    let mut by_tags = base.clone();
    by_tags.tags = vec!["ci".to_owned(), "eu".to_owned()];
    assert!(
        check(by_tags.clone(), &carol) && !check(by_tags, &bot),
        "all tags"
    );
    let mut by_type = base;
    by_type.account_types = vec!["system".to_owned()];
    assert!(check(by_type.clone(), &bot) && !check(by_type, &carol));
}

#[test]
fn the_seeded_rule_admits_admins_only_and_rules_validate_by_field() {
    let policy = Policy::compile(vec![Rule::seeded_admin()]);
    let admin = principal("admin", &["admin"], &[], "human");
    let carol = principal("carol", &["dev"], &[], "human");
    for c in Capability::ALL {
        assert!(policy.evaluate(&admin, "secret/data/x", c).allowed);
        assert!(!policy.evaluate(&carol, "secret/data/x", c).allowed);
    }
    Rule::seeded_admin().validate().expect("valid");
    let mut r = Rule::seeded_admin();
    r.paths = vec!["ok/*".to_owned(), "a*b".to_owned()];
    let e = r.validate().expect_err("bad path");
    assert!(e.to_string().contains("paths[1]"), "{e}");
    let mut r = Rule::seeded_admin();
    r.capabilities.clear();
    assert!(r.validate().is_err(), "an allow without capabilities");
    let mut r = Rule::seeded_admin();
    r.account_types = vec!["robot".to_owned()];
    assert!(r.validate().is_err());
    let mut r = Rule::seeded_admin();
    r.paths = (0..65).map(|i| format!("p{i}")).collect();
    assert!(r.validate().is_err());
}

fn segment() -> impl Strategy<Value = String> {
    "[a-z0-9_-]{1,6}"
}

proptest! {
    /// An exact pattern matches only itself; `p*` matches exactly the
    /// paths starting with `p`; `+` in place of any one segment matches.
    #[test]
    fn patterns_agree_with_the_string_oracle(
        segs in proptest::collection::vec(segment(), 1..6),
        other in proptest::collection::vec(segment(), 1..6),
        cut in 0usize..30,
        hole in 0usize..6,
    ) {
        let path = segs.join("/");
        let probe = other.join("/");
        prop_assert!(m(&path, &path));
        prop_assert_eq!(m(&path, &probe), path == probe);
        let prefix: String = path.chars().take(cut.min(path.len())).collect();
        let pat = Pattern::parse(&format!("{prefix}*")).expect("a prefix pattern");
        prop_assert!(pat.matches(&path));
        prop_assert_eq!(pat.matches(&probe), probe.starts_with(&prefix));
        let mut plus = segs.clone();
        let i = hole % plus.len();
        plus[i] = "+".to_owned();
        prop_assert!(m(&plus.join("/"), &path));
    }
}
