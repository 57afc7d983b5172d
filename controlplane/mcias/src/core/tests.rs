//! Unit tests of the core against a temporary store: no processes, no
//! network. Argon2id runs with toy parameters so each test takes
//! milliseconds; every assertion checks an outcome a broken core would get
//! wrong (who may log in, what is audited, which tokens verify).

use std::time::Duration;

use mc_service::auth::{AuthError, Decision, Requirement, decide};

use super::*;
use crate::model::AccountStatus;

mod web;

struct Fixture {
    _dir: tempfile::TempDir,
    iam: Arc<Mcias>,
    admin: Bootstrap,
}

fn open_with(config: McAuthConfig) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = McAuthConfig {
        issuer: "https://mcias.test".to_owned(),
        argon2_memory_kib: 256,
        argon2_iterations: 1,
        ..config
    };
    let (iam, admin) = Mcias::open(dir.path(), config).expect("open");
    Fixture {
        _dir: dir,
        iam: Arc::new(iam),
        admin: admin.expect("a new store bootstraps an admin"),
    }
}

fn open() -> Fixture {
    open_with(McAuthConfig::default())
}

fn login(username: &str, password: &str) -> LoginInput {
    LoginInput {
        username: username.to_owned(),
        password: password.to_owned(),
        ..LoginInput::default()
    }
}

fn human(username: &str) -> NewAccount {
    NewAccount {
        username: username.to_owned(),
        account_type: "human".to_owned(),
        password: "correct horse battery staple".to_owned(),
        roles: vec!["user".to_owned()],
        tags: vec![],
    }
}

fn system(username: &str) -> NewAccount {
    NewAccount {
        username: username.to_owned(),
        account_type: "system".to_owned(),
        password: String::new(),
        roles: vec![],
        tags: vec!["ci".to_owned()],
    }
}

impl Fixture {
    /// The bootstrap admin, logged in.
    async fn admin(&self) -> Caller {
        let s = self
            .iam
            .login(
                &Caller::default(),
                login(&self.admin.username, &self.admin.password),
            )
            .await
            .expect("admin logs in");
        self.caller(&s.token)
    }

    fn caller(&self, token: &str) -> Caller {
        Caller {
            principal: Some(self.iam.verify(token).expect("token verifies")),
            source: None,
        }
    }

    /// The results audited for `action`, oldest first.
    fn results(&self, action: &str) -> Vec<String> {
        let mut r: Vec<String> = self
            .iam
            .audit_log(1000, action, "")
            .expect("audit")
            .into_iter()
            .map(|e| e.result)
            .collect();
        r.reverse();
        r
    }
}

#[tokio::test]
async fn login_succeeds_fails_and_locks_out() {
    let f = open_with(McAuthConfig {
        lockout_after: 3,
        ..McAuthConfig::default()
    });
    let admin = f.admin().await;
    let alice = f
        .iam
        .create_account(&admin, human("alice"))
        .await
        .expect("create");
    let anon = Caller::default();
    let pw = "correct horse battery staple";

    let s = f.iam.login(&anon, login("alice", pw)).await.expect("login");
    let p = f.iam.verify(&s.token).expect("verifies");
    assert_eq!(
        (p.account_id.as_str(), p.username.as_str()),
        (alice.id.as_str(), "alice")
    );
    assert_eq!(p.roles, vec!["user".to_owned()]);

    let unknown = f.iam.login(&anon, login("nobody", pw)).await;
    assert!(
        matches!(unknown, Err(IamError::Unauthenticated(_))),
        "{unknown:?}"
    );
    for n in 1..=3 {
        let e = f.iam.login(&anon, login("alice", "wrong password!")).await;
        assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
        assert_eq!(f.iam.account(&alice.id).expect("account").failed_logins, n);
    }
    let locked = f.iam.account(&alice.id).expect("account");
    assert!(locked.locked_until > now(), "third failure locks");
    // Locked: even the right password is refused, answered like an unknown user.
    let e = f.iam.login(&anon, login("alice", pw)).await;
    assert_eq!(format!("{e:?}"), format!("{unknown:?}"));
    assert_eq!(
        f.results("auth.login"),
        [
            "ok", // the admin
            "ok",
            "bad_credentials",
            "bad_credentials",
            "bad_credentials",
            "bad_credentials",
            "locked"
        ]
    );
    // An admin's status change unlocks.
    f.iam
        .set_status(&admin, &alice.id, "active")
        .expect("unlock");
    f.iam
        .login(&anon, login("alice", pw))
        .await
        .expect("unlocked");
    assert_eq!(f.iam.account(&alice.id).expect("account").failed_logins, 0);
}

#[tokio::test]
async fn failures_from_one_address_back_off() {
    let f = open_with(McAuthConfig {
        failures_per_minute_per_ip: 2,
        ..McAuthConfig::default()
    });
    let from = Caller {
        principal: None,
        source: Some("192.0.2.7".parse().expect("ip")),
    };
    for _ in 0..2 {
        let e = f.iam.login(&from, login("admin", "nope nope nope")).await;
        assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    }
    let e = f
        .iam
        .login(&from, login(&f.admin.username, &f.admin.password))
        .await;
    assert!(matches!(e, Err(IamError::RateLimited(_))), "{e:?}");
    // Another address is not affected.
    f.admin().await;
}

#[tokio::test]
async fn system_tokens_issue_verify_and_revoke() {
    let f = open();
    let admin = f.admin().await;
    let ci = f
        .iam
        .create_account(&admin, system("ci-runner"))
        .await
        .expect("system account");
    let s = f
        .iam
        .issue_system_token(&admin, "ci-runner", 3600, "deploys", &[])
        .expect("issue");
    assert!(s.expires_at > now() && s.expires_at <= now() + 3600);
    let p = f.iam.verify(&s.token).expect("verifies");
    assert_eq!(
        (p.account_type.as_str(), p.tags.clone()),
        ("system", vec!["ci".to_owned()])
    );
    let listed = f.iam.list_tokens(Some("ci-runner")).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].jti.as_str(), listed[0].kind.as_str()),
        (s.jti.as_str(), "system")
    );
    assert!(
        f.iam
            .check_revocation(std::slice::from_ref(&s.jti))
            .expect("check")
            .is_empty()
    );

    assert!(f.iam.revoke_token(&admin, &s.jti).expect("revoke"));
    assert!(
        !f.iam.revoke_token(&admin, &s.jti).expect("again"),
        "already revoked"
    );
    assert!(matches!(f.iam.verify(&s.token), Err(AuthError::Revoked)));
    assert_eq!(
        f.iam
            .check_revocation(std::slice::from_ref(&s.jti))
            .expect("check"),
        [s.jti]
    );

    // Too long, or for a human: refused.
    let e = f
        .iam
        .issue_system_token(&admin, &ci.id, 10 * 365 * 86_400, "", &[]);
    assert!(matches!(e, Err(IamError::Invalid(_))), "{e:?}");
    let e = f.iam.issue_system_token(&admin, "admin", 60, "", &[]);
    assert!(matches!(e, Err(IamError::Invalid(_))), "{e:?}");
    // Disabling the account ends its tokens.
    let s = f
        .iam
        .issue_system_token(&admin, "ci-runner", 60, "", &[])
        .expect("issue");
    f.iam
        .set_status(&admin, &ci.id, "disabled")
        .expect("disable");
    assert!(f.iam.verify(&s.token).is_err());
    assert!(matches!(
        f.iam.issue_system_token(&admin, "ci-runner", 60, "", &[]),
        Err(IamError::Forbidden(_))
    ));
    // A forged token does not verify.
    assert!(matches!(f.iam.verify("a.b.c"), Err(AuthError::Invalid(_))));
}

#[tokio::test]
async fn the_local_verifier_remembers_a_token_only_until_the_next_commit() {
    use mc_service::auth::TokenVerifier;
    let f = open();
    let admin = f.admin().await;
    let ci = f
        .iam
        .create_account(&admin, system("ci-runner"))
        .await
        .expect("system account");
    let verifier = LocalVerifier::new(f.iam.clone());
    let issue = || {
        f.iam
            .issue_system_token(&admin, "ci-runner", 600, "", &[])
            .expect("issue")
    };
    let (a, b) = (issue(), issue());
    for _ in 0..2 {
        assert_eq!(verifier.verify(&a.token).await.expect("a").jti, a.jti);
        assert_eq!(verifier.verify(&b.token).await.expect("b").jti, b.jti);
    }
    // Revoking `a` refuses it at once, remembered or not; `b` still passes.
    assert!(f.iam.revoke_token(&admin, &a.jti).expect("revoke"));
    assert!(matches!(
        verifier.verify(&a.token).await,
        Err(AuthError::Revoked)
    ));
    assert_eq!(verifier.verify(&b.token).await.expect("b").jti, b.jti);
    // Disabling the account ends `b` at once too.
    f.iam
        .set_status(&admin, &ci.id, "disabled")
        .expect("disable");
    assert!(verifier.verify(&b.token).await.is_err());
    assert!(verifier.verify("a.b.c").await.is_err());
}

#[tokio::test]
async fn logout_renew_and_password_change_revoke() {
    let f = open();
    let admin = f.admin().await;
    f.iam
        .create_account(&admin, human("bob"))
        .await
        .expect("create");
    let anon = Caller::default();
    let s = f
        .iam
        .login(&anon, login("bob", "correct horse battery staple"))
        .await
        .expect("login");
    let bob = f.caller(&s.token);
    let renewed = f.iam.renew(&bob).expect("renew");
    assert!(
        matches!(f.iam.verify(&s.token), Err(AuthError::Revoked)),
        "renew ends the old one"
    );
    let bob = f.caller(&renewed.token);
    let e = f
        .iam
        .change_password(&bob, "not the password", "a brand new password")
        .await;
    assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    f.iam
        .change_password(&bob, "correct horse battery staple", "a brand new password")
        .await
        .expect("change");
    assert!(
        f.iam.verify(&renewed.token).is_err(),
        "a new password ends every session"
    );
    assert!(
        f.iam
            .login(&anon, login("bob", "correct horse battery staple"))
            .await
            .is_err()
    );
    let s = f
        .iam
        .login(&anon, login("bob", "a brand new password"))
        .await
        .expect("new password");
    f.iam.logout(&f.caller(&s.token)).expect("logout");
    assert!(matches!(f.iam.verify(&s.token), Err(AuthError::Revoked)));
    assert_eq!(f.results("auth.password"), ["bad_credentials", "ok"]);
}

#[tokio::test]
async fn accounts_create_disable_and_keep_one_admin() {
    let f = open();
    let admin = f.admin().await;
    let carol = f
        .iam
        .create_account(&admin, human("carol"))
        .await
        .expect("create");
    assert!(
        carol.password_hash.starts_with("$argon2id$"),
        "stored hashed"
    );
    let dup = f.iam.create_account(&admin, human("carol")).await;
    assert!(matches!(dup, Err(IamError::Conflict(_))), "{dup:?}");
    let bad = f
        .iam
        .create_account(
            &admin,
            NewAccount {
                password: "short".to_owned(),
                ..human("dave")
            },
        )
        .await;
    assert!(matches!(bad, Err(IamError::Invalid(_))), "{bad:?}");
    let sys_pw = f
        .iam
        .create_account(
            &admin,
            NewAccount {
                password: "system accounts have none".to_owned(),
                ..system("svc")
            },
        )
        .await;
    assert!(matches!(sys_pw, Err(IamError::Invalid(_))), "{sys_pw:?}");

    let anon = Caller::default();
    let s = f
        .iam
        .login(&anon, login("carol", "correct horse battery staple"))
        .await
        .expect("login");
    let disabled = f
        .iam
        .set_status(&admin, &carol.id, "disabled")
        .expect("disable");
    assert_eq!(disabled.status, AccountStatus::Disabled);
    assert!(f.iam.verify(&s.token).is_err(), "disabling ends sessions");
    let e = f
        .iam
        .login(&anon, login("carol", "correct horse battery staple"))
        .await;
    assert!(matches!(e, Err(IamError::Forbidden(_))), "{e:?}");
    assert_eq!(
        f.results("auth.login").last().map(String::as_str),
        Some("disabled")
    );

    // The last active admin can be neither disabled, demoted nor deleted.
    let me = admin
        .principal
        .as_ref()
        .expect("principal")
        .account_id
        .clone();
    assert!(matches!(
        f.iam.set_status(&admin, &me, "disabled"),
        Err(IamError::Forbidden(_))
    ));
    assert!(matches!(
        f.iam.set_roles(&admin, &me, &["user".to_owned()]),
        Err(IamError::Forbidden(_))
    ));
    assert!(matches!(
        f.iam.delete_account(&admin, &me),
        Err(IamError::Forbidden(_))
    ));

    f.iam.delete_account(&admin, &carol.id).expect("delete");
    assert!(matches!(f.iam.find("carol"), Err(IamError::NotFound(_))));
    let names: Vec<String> = f
        .iam
        .list_accounts()
        .expect("list")
        .into_iter()
        .map(|a| a.username)
        .collect();
    assert_eq!(names, ["admin"]);
}

#[tokio::test]
async fn totp_enrolls_confirms_and_guards_login() {
    let f = open();
    let admin = f.admin().await;
    f.iam
        .create_account(&admin, human("erin"))
        .await
        .expect("create");
    let anon = Caller::default();
    let pw = "correct horse battery staple";
    let s = f.iam.login(&anon, login("erin", pw)).await.expect("login");
    let erin = f.caller(&s.token);

    let e = f.iam.totp_enroll(&erin, "wrong password").await;
    assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    let (secret, url) = f.iam.totp_enroll(&erin, pw).await.expect("enroll");
    assert!(
        url.starts_with("otpauth://totp/") && url.contains(&secret),
        "{url}"
    );
    // Not yet confirmed: the password alone still logs in.
    f.iam
        .login(&anon, login("erin", pw))
        .await
        .expect("pending enrolment");
    let account = f.iam.find("erin").expect("account");
    let t = u64::try_from(now()).expect("time");
    let e = f.iam.totp_confirm(&erin, "000000x");
    assert!(matches!(e, Err(IamError::Invalid(_))), "{e:?}");
    let code = crate::totp::code_at(&f.iam.master, &account, t);
    f.iam.totp_confirm(&erin, &code).expect("confirm");
    assert!(f.iam.find("erin").expect("account").totp_enabled);

    // The password alone now gets a challenge, not a session.
    let Err(IamError::TotpRequired { nonce, expires_at }) =
        f.iam.login(&anon, login("erin", pw)).await
    else {
        panic!("expected a TOTP challenge");
    };
    assert!(expires_at > now());
    // The confirming code was used: it does not log in again.
    let replay = LoginInput {
        totp_code: Some(code),
        ..login("erin", pw)
    };
    let e = f.iam.login(&anon, replay).await;
    assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    // The next step's code with the nonce instead of the password does.
    let next = crate::totp::code_at(&f.iam.master, &account, t + 30);
    let second = LoginInput {
        totp_nonce: Some(nonce.clone()),
        totp_code: Some(next.clone()),
        ..login("erin", "")
    };
    f.iam
        .login(&anon, second.clone())
        .await
        .expect("second step");
    // A nonce works once.
    let e = f.iam.login(&anon, second).await;
    assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    let results = f.results("auth.login");
    assert!(
        results.ends_with(&[
            "totp_required".to_owned(),
            "bad_totp".to_owned(),
            "ok".to_owned(),
            "bad_credentials".to_owned()
        ]),
        "{results:?}"
    );

    let e = f.iam.totp_disable(&erin, "wrong password").await;
    assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    f.iam.totp_disable(&erin, pw).await.expect("disable");
    f.iam
        .login(&anon, login("erin", pw))
        .await
        .expect("password alone again");
}

#[tokio::test]
async fn policy_denies_allows_and_explains() {
    let f = open();
    let admin = f.admin().await;
    f.iam
        .create_account(&admin, human("frank"))
        .await
        .expect("create");
    let anon = Caller::default();
    let to = |service: &str| LoginInput {
        service_name: Some(service.to_owned()),
        ..login("frank", "correct horse battery staple")
    };
    f.iam
        .login(&anon, to("grafana"))
        .await
        .expect("default rule allows");
    let deny = f
        .iam
        .create_rule(
            &admin,
            Rule {
                id: String::new(),
                priority: 10,
                effect: Effect::Deny,
                description: "no grafana".to_owned(),
                roles: vec![],
                account_types: vec![],
                account_ids: vec![],
                service_names: vec!["grafana".to_owned()],
                required_tags: vec![],
                actions: vec!["auth:login".to_owned()],
                not_before: 0,
                expires_at: 0,
                enabled: true,
            },
            false,
        )
        .expect("rule");
    let e = f.iam.login(&anon, to("grafana")).await;
    assert!(matches!(e, Err(IamError::Forbidden(_))), "{e:?}");
    f.iam
        .login(&anon, to("wiki"))
        .await
        .expect("other services still allowed");
    let d = f
        .iam
        .explain("frank", "grafana", &[], "", 0, None)
        .expect("explain");
    assert_eq!(
        (d.effect, d.rule_id.as_str()),
        (Effect::Deny, deny.id.as_str())
    );
    let d = f
        .iam
        .explain("frank", "wiki", &[], "", 0, None)
        .expect("explain");
    assert_eq!(d.effect, Effect::Allow);
    // Dry run: a candidate rule changes the answer without being stored.
    let candidate = Rule {
        service_names: vec!["wiki".to_owned()],
        ..deny.clone()
    };
    let d = f
        .iam
        .explain("frank", "wiki", &[], "", 0, Some(candidate))
        .expect("explain");
    assert_eq!((d.effect, d.rule_id.as_str()), (Effect::Deny, "candidate"));
    assert_eq!(f.iam.rules().expect("rules").len(), 2);
    let rules = f.iam.rules().expect("rules");
    assert_eq!(rules[0].id, deny.id, "priority order");

    f.iam.delete_rule(&admin, &deny.id).expect("delete");
    f.iam
        .login(&anon, to("grafana"))
        .await
        .expect("allowed again");
    let bad = Rule {
        description: "x".repeat(600),
        ..deny
    };
    assert!(matches!(
        f.iam.create_rule(&admin, bad, false),
        Err(IamError::Invalid(_))
    ));
    assert_eq!(
        f.results("policy."),
        ["ok", "ok", "ok"],
        "seed, create, delete"
    );
}

#[tokio::test]
async fn reset_tokens_work_once() {
    let f = open();
    let admin = f.admin().await;
    f.iam
        .create_account(&admin, human("gina"))
        .await
        .expect("create");
    let (token, expires_at) = f
        .iam
        .create_reset_token(&admin, "gina", 600)
        .expect("reset");
    assert!(expires_at > now());
    let anon = Caller::default();
    f.iam
        .redeem_reset_token(&anon, &token, "a reset password")
        .await
        .expect("redeem");
    let e = f
        .iam
        .redeem_reset_token(&anon, &token, "another password")
        .await;
    assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    f.iam
        .login(&anon, login("gina", "a reset password"))
        .await
        .expect("new password");
    assert_eq!(f.results("auth.reset"), ["ok", "bad_token"]);
}

#[test]
fn unknown_ceremonies_and_challenges_are_refused() {
    let f = open();
    assert_eq!(f.iam.challenges.ttl(), Duration::from_secs(90));
    let e = f.iam.take_ceremony("never issued");
    assert!(matches!(e, Err(IamError::Invalid(_))), "{:?}", e.err());
}

#[tokio::test]
async fn scoped_tokens_only_narrow_and_are_refused_outside_their_scope() {
    let f = open();
    let admin = f.admin().await;
    f.iam
        .create_account(&admin, system("pusher"))
        .await
        .expect("system account");
    let scopes = ["mcr:push:repo/*".to_owned(), "dns:write:zone".to_owned()];
    let s = f
        .iam
        .issue_system_token(&admin, "pusher", 600, "ci pushes", &scopes)
        .expect("issue");
    let p = f.iam.verify(&s.token).expect("verifies");
    assert_eq!(p.scopes, scopes, "carried in the signed claims");
    let listed = f.iam.list_tokens(Some("pusher")).expect("list");
    assert_eq!(listed[0].scopes, scopes, "and in the token record");
    assert!(p.scope_allows("mcr:push", "repo/app"));
    assert!(
        !p.scope_allows("mcr:push", "other/app"),
        "outside the resource prefix"
    );
    assert!(!p.has_scope("mcr:delete"));

    const PUSH: Requirement = Requirement::Scoped {
        scope: "mcr:push",
        inner: &Requirement::Authenticated,
    };
    const DELETE: Requirement = Requirement::Scoped {
        scope: "mcr:delete",
        inner: &Requirement::Authenticated,
    };
    const ADMIN_PUSH: Requirement = Requirement::Scoped {
        scope: "mcr:push",
        inner: &Requirement::Admin,
    };
    assert_eq!(decide(PUSH, Some(&p)), Decision::Allow);
    assert!(
        matches!(decide(DELETE, Some(&p)), Decision::Forbidden(_)),
        "outside its scope"
    );
    // A scope never widens: the account's own rights still apply.
    assert!(matches!(
        decide(ADMIN_PUSH, Some(&p)),
        Decision::Forbidden(_)
    ));
    // An unscoped token of the same account has its full rights.
    let full = f
        .iam
        .issue_system_token(&admin, "pusher", 600, "", &[])
        .expect("issue");
    let q = f.iam.verify(&full.token).expect("verifies");
    assert!(q.scopes.is_empty());
    assert_eq!(decide(DELETE, Some(&q)), Decision::Allow);
    // Renewal keeps the scopes.
    let renewed = f.iam.renew(&f.caller(&s.token)).expect("renew");
    assert_eq!(
        f.iam.verify(&renewed.token).expect("verifies").scopes,
        scopes
    );
    // Malformed scopes are refused, naming the field.
    for bad in [
        "",
        "push",
        "MCR:push",
        "mcr:pu*sh",
        ":push",
        "mcr:push repo",
    ] {
        let e = f
            .iam
            .issue_system_token(&admin, "pusher", 600, "", &[bad.to_owned()]);
        assert!(
            matches!(&e, Err(IamError::Invalid(i)) if i.field == "scopes"),
            "{bad:?}: {e:?}"
        );
    }
}

mod security;
