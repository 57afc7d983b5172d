//! Regression tests of the adversarial review (issue 12), one group per
//! item: each performs the attack against the core and asserts the refusal.

use super::*;
use crate::model;
use crate::policy::{Effect, Rule};

/// The field an `Invalid` refusal names, or a panic.
fn invalid_field<T: std::fmt::Debug>(r: Result<T, IamError>) -> String {
    match r {
        Err(IamError::Invalid(i)) => i.field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn deny_all() -> Rule {
    Rule {
        id: String::new(),
        priority: 1,
        effect: Effect::Deny,
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

// Item 1: disk exhaustion.

#[tokio::test]
async fn oversized_login_fields_are_refused_naming_the_field() {
    let f = open();
    let anon = Caller::default();
    let pw = &f.admin.password;
    let with = |service: String, tags: Vec<String>| LoginInput {
        service_name: Some(service),
        tags,
        ..login("admin", pw)
    };
    // The largest allowed values log in.
    let max_tags: Vec<String> = (0..model::MAX_TAGS)
        .map(|i| format!("{i:02}{}", "t".repeat(62)))
        .collect();
    f.iam
        .login(&anon, with("s".repeat(model::MAX_SERVICE_NAME), max_tags))
        .await
        .expect("maximal fields log in");
    let big = "s".repeat(1_500_000);
    for (input, field) in [
        (with(big.clone(), vec![]), "service_name"),
        (with("a\nb".to_owned(), vec![]), "service_name"),
        (with("x".to_owned(), vec!["t".repeat(65)]), "tags"),
        (
            with("x".to_owned(), vec!["t".to_owned(); model::MAX_TAGS + 1]),
            "tags",
        ),
        (login(&big, pw), "username"),
        (login("admin", &big), "password"),
        (
            LoginInput {
                totp_code: Some(big.clone()),
                ..login("admin", pw)
            },
            "totp_code",
        ),
    ] {
        assert_eq!(invalid_field(f.iam.login(&anon, input).await), field);
    }
    // The passkey login carries the same fields.
    assert_eq!(
        invalid_field(f.iam.begin_passkey_login(&anon, "admin", &big, &[])),
        "service_name"
    );
    assert_eq!(
        invalid_field(f.iam.begin_passkey_login(&anon, &big, "", &[])),
        "username"
    );
    // Nothing of the refused values reached the store.
    let audit = f.iam.audit_log(1000, "", "").expect("audit");
    assert!(
        audit
            .iter()
            .all(|e| e.target.len() <= 256 && e.detail.len() <= 2048)
    );
    let tokens = f.iam.list_tokens(None).expect("tokens");
    assert!(
        tokens.iter().all(|t| t.description.len() < 200),
        "{tokens:?}"
    );
}

#[tokio::test]
async fn oversized_lists_of_accounts_and_rules_are_refused() {
    let f = open();
    let admin = f.admin().await;
    let many_roles = NewAccount {
        roles: vec!["user".to_owned(); 17],
        ..human("ivy")
    };
    assert_eq!(
        invalid_field(f.iam.create_account(&admin, many_roles).await),
        "roles"
    );
    let ivy = f
        .iam
        .create_account(&admin, human("ivy"))
        .await
        .expect("create");
    assert_eq!(
        invalid_field(
            f.iam
                .set_roles(&admin, &ivy.id, &vec!["user".to_owned(); 17])
        ),
        "roles"
    );
    let rule = Rule {
        roles: vec![model::Role::User; 17],
        ..deny_all()
    };
    assert_eq!(
        invalid_field(f.iam.create_rule(&admin, rule, false)),
        "roles"
    );
    let rule = Rule {
        account_types: vec![model::AccountType::Human; 17],
        ..deny_all()
    };
    assert_eq!(
        invalid_field(f.iam.create_rule(&admin, rule, false)),
        "account_types"
    );
    let rule = Rule {
        description: "d".repeat(513),
        ..deny_all()
    };
    assert_eq!(
        invalid_field(f.iam.create_rule(&admin, rule, false)),
        "description"
    );
    assert_eq!(
        invalid_field(f.iam.set_tags(&admin, &ivy.id, &["t".repeat(65)])),
        "tags"
    );
}

#[tokio::test]
async fn oversized_sso_client_and_passkey_fields_are_refused() {
    let f = open();
    let admin = f.admin().await;
    let client =
        |name: String, uris: Vec<String>, client_id: String| crate::core::sso::ClientInput {
            client_id,
            name,
            redirect_uris: uris,
            tags: vec![],
            enabled: None,
            id_token_signed_response_alg: String::new(),
        };
    let uri = || vec!["https://app.test/cb".to_owned()];
    for (input, field) in [
        (client("n".repeat(129), uri(), String::new()), "name"),
        (client("n".to_owned(), uri(), "c".repeat(65)), "client_id"),
        (
            client(
                "n".to_owned(),
                vec![format!("https://app.test/{}", "p".repeat(600))],
                String::new(),
            ),
            "redirect_uris",
        ),
        (
            client(
                "n".to_owned(),
                vec!["https://app.test/cb".to_owned(); 64],
                String::new(),
            ),
            "redirect_uris",
        ),
    ] {
        assert_eq!(invalid_field(f.iam.create_sso_client(&admin, input)), field);
    }
    let e = f
        .iam
        .finish_passkey_registration(&admin, "unknown", "{}", &"k".repeat(65));
    assert_eq!(invalid_field(e), "name");
    f.iam
        .create_account(&admin, system("ci"))
        .await
        .expect("system account");
    let e = f
        .iam
        .issue_system_token(&admin, "ci", 0, &"d".repeat(257), &[]);
    assert_eq!(invalid_field(e), "description");
}

#[test]
fn audit_rows_are_clipped_as_a_backstop() {
    let s = crate::core::audit::clip("é".repeat(3000), 2048);
    assert!(s.len() <= 2048 && s.ends_with('…'), "{}", s.len());
    assert_eq!(crate::core::audit::clip("short".to_owned(), 10), "short");
}

#[tokio::test]
async fn pruning_removes_expired_tokens_and_audit_past_retention_and_audits_itself() {
    let f = open_with(McAuthConfig {
        audit_max_events: 5,
        ..McAuthConfig::default()
    });
    let admin = f.admin().await;
    let anon = Caller::default();
    for _ in 0..3 {
        f.iam
            .login(&anon, login(&f.admin.username, &f.admin.password))
            .await
            .expect("login");
    }
    let before = f.iam.read().expect("read").len(db::TOKENS).expect("len");
    assert!(before >= 4);
    // Nothing is due now but the audit rows beyond 5.
    let p = f.iam.prune(now()).expect("prune");
    assert_eq!(p.tokens, 0);
    assert!(p.audit > 0);
    let events = f.iam.audit_log(1000, "", "").expect("audit");
    assert_eq!(events.len(), 5);
    assert_eq!(
        events.first().map(|e| e.action.as_str()),
        Some("audit.prune")
    );
    // A day later every session has expired: all are pruned, in one event.
    let later = now() + 86_400 * 2;
    let p = f.iam.prune(later).expect("prune");
    assert_eq!(p.tokens, before);
    assert_eq!(f.iam.read().expect("read").len(db::TOKENS).expect("len"), 0);
    assert!(admin.principal.is_some());
    let prunes = f.results("audit.prune");
    assert_eq!(prunes.last().map(String::as_str), Some("ok"));
    // That event brought the log over its 5 rows again: one more pass
    // trims it, and then nothing is due, and no event is written.
    f.iam.prune(later).expect("prune");
    let n = f.iam.audit_log(1000, "", "").expect("audit").len();
    assert_eq!(f.iam.prune(later).expect("prune"), Default::default());
    assert_eq!(f.iam.audit_log(1000, "", "").expect("audit").len(), n);
}

#[tokio::test]
async fn audit_retention_by_age() {
    let f = open();
    f.admin().await;
    let n = f.iam.audit_log(1000, "", "").expect("audit").len() as u64;
    // Past the default year every row is old: all go, one event remains.
    let p = f.iam.prune(now() + 400 * 86_400).expect("prune");
    assert_eq!(p.audit, n);
    let events = f.iam.audit_log(1000, "", "").expect("audit");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, "audit.prune");
}

// Item 2: TOTP brute force.

/// Erin with TOTP enabled; the secret's account for computing codes.
async fn with_totp(f: &Fixture, name: &str) -> crate::model::Account {
    let admin = f.admin().await;
    f.iam
        .create_account(&admin, human(name))
        .await
        .expect("create");
    let pw = "correct horse battery staple";
    let s = f
        .iam
        .login(&Caller::default(), login(name, pw))
        .await
        .expect("login");
    let me = f.caller(&s.token);
    f.iam.totp_enroll(&me, pw).await.expect("enroll");
    let account = f.iam.find(name).expect("account");
    let t = u64::try_from(now()).expect("time");
    let code = crate::totp::code_at(&f.iam.master, &account, t);
    f.iam.totp_confirm(&me, &code).expect("confirm");
    f.iam.find(name).expect("account")
}

/// A code that is wrong now (none of the accepted steps).
fn wrong_code(f: &Fixture, account: &crate::model::Account) -> String {
    let t = u64::try_from(now()).expect("time");
    let valid: Vec<String> = [t - 30, t, t + 30, t + 60]
        .iter()
        .map(|s| crate::totp::code_at(&f.iam.master, account, *s))
        .collect();
    (0..10)
        .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
        .find(|c| !valid.contains(c))
        .expect("a wrong code")
}

#[tokio::test]
async fn guessed_totp_codes_lock_the_second_step_not_the_password() {
    let f = open_with(McAuthConfig {
        totp_lockout_after: 3,
        ..McAuthConfig::default()
    });
    let account = with_totp(&f, "erin").await;
    let anon = Caller::default();
    let pw = "correct horse battery staple";
    let guess = |code: String| LoginInput {
        totp_code: Some(code),
        ..login("erin", pw)
    };
    for _ in 0..3 {
        let e = f.iam.login(&anon, guess(wrong_code(&f, &account))).await;
        assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    }
    let a = f.iam.find("erin").expect("account");
    assert_eq!(
        (a.totp_failures, a.failed_logins),
        (3, 0),
        "wrong codes are not wrong passwords"
    );
    assert!(a.totp_locked_until > now());
    assert!(a.totp_locked_until <= now() + 15 * 60);
    // Locked: the right code is refused too, and so is a new challenge.
    let t = u64::try_from(now()).expect("time");
    let right = crate::totp::code_at(&f.iam.master, &account, t + 30);
    let e = f.iam.login(&anon, guess(right)).await;
    assert!(matches!(e, Err(IamError::RateLimited(_))), "{e:?}");
    let e = f.iam.login(&anon, login("erin", pw)).await;
    assert!(matches!(e, Err(IamError::RateLimited(_))), "{e:?}");
    // One wrong password after all that is one failure, not a long lock.
    let e = f.iam.login(&anon, login("erin", "wrong password!")).await;
    assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    let a = f.iam.find("erin").expect("account");
    assert_eq!((a.failed_logins, a.locked_until), (1, 0));
    assert!(f.results("auth.login").ends_with(&[
        "bad_totp".to_owned(),
        "totp_locked".to_owned(),
        "totp_locked".to_owned(),
        "bad_credentials".to_owned()
    ]));
}

#[tokio::test]
async fn wrong_two_step_nonces_count_as_second_factor_failures() {
    let f = open_with(McAuthConfig {
        totp_lockout_after: 2,
        ..McAuthConfig::default()
    });
    with_totp(&f, "erin").await;
    let anon = Caller::default();
    for _ in 0..2 {
        let step = LoginInput {
            totp_nonce: Some("not-a-nonce".to_owned()),
            totp_code: Some("123456".to_owned()),
            ..login("erin", "")
        };
        let e = f.iam.login(&anon, step).await;
        assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    }
    let a = f.iam.find("erin").expect("account");
    assert_eq!((a.totp_failures, a.failed_logins), (2, 0));
    assert!(a.totp_locked_until > now());
}

#[test]
fn the_second_step_lock_grows_and_is_capped_in_minutes() {
    use crate::core::login::totp_lock_secs;
    let first = Duration::from_secs(60);
    assert_eq!(totp_lock_secs(4, 5, first), None);
    assert_eq!(totp_lock_secs(5, 5, first), Some(60));
    assert_eq!(totp_lock_secs(6, 5, first), Some(120));
    assert_eq!(totp_lock_secs(500, 5, first), Some(15 * 60));
    assert_eq!(totp_lock_secs(u32::MAX, 1, first), Some(15 * 60));
}

// Item 3: the password re-check as an oracle for a session holder.

#[tokio::test]
async fn wrong_rechecks_count_like_logins_and_end_the_session() {
    let f = open_with(McAuthConfig {
        lockout_after: 3,
        ..McAuthConfig::default()
    });
    let admin = f.admin().await;
    f.iam
        .create_account(&admin, human("hal"))
        .await
        .expect("create");
    let pw = "correct horse battery staple";
    let s = f
        .iam
        .login(&Caller::default(), login("hal", pw))
        .await
        .expect("login");
    let hal = f.caller(&s.token);
    // Each re-checking operation counts toward the same limit.
    let e = f
        .iam
        .change_password(&hal, "guess one!!!", "a new long password")
        .await;
    assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    let e = f.iam.totp_enroll(&hal, "guess two!!!").await;
    assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    assert_eq!(f.iam.find("hal").expect("account").failed_logins, 2);
    let e = f.iam.begin_passkey_registration(&hal, "guess three!").await;
    assert!(matches!(e, Err(IamError::RateLimited(_))), "{e:?}");
    // The session that guessed is over, and the account is locked like
    // after failed logins: the right password is refused.
    assert!(matches!(f.iam.verify(&s.token), Err(AuthError::Revoked)));
    let e = f.iam.totp_disable(&hal, pw).await;
    assert!(matches!(e, Err(IamError::RateLimited(_))), "{e:?}");
    // A locked account answers a login like a wrong password (item 7a).
    let e = f.iam.login(&Caller::default(), login("hal", pw)).await;
    assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    let results = f.results("mfa.passkey.register");
    assert_eq!(results, ["bad_credentials"]);
}

#[tokio::test]
async fn wrong_rechecks_count_against_the_address() {
    let f = open_with(McAuthConfig {
        failures_per_minute_per_ip: 2,
        ..McAuthConfig::default()
    });
    let from = Caller {
        source: Some("192.0.2.9".parse().expect("ip")),
        ..f.admin().await
    };
    for _ in 0..2 {
        let e = f.iam.totp_enroll(&from, "not the password").await;
        assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    }
    // The address is backed off: the right password is not even checked.
    let e = f.iam.totp_enroll(&from, &f.admin.password).await;
    assert!(matches!(e, Err(IamError::RateLimited(_))), "{e:?}");
    let e = f
        .iam
        .login(&from, login(&f.admin.username, &f.admin.password))
        .await;
    assert!(matches!(e, Err(IamError::RateLimited(_))), "{e:?}");
}

// Item 5: renewals ignored policy and had no absolute limit.

#[tokio::test]
async fn renew_is_decided_like_the_login_and_keeps_the_sign_in_time() {
    let f = open();
    let admin = f.admin().await;
    let ivy = f
        .iam
        .create_account(&admin, human("ivy"))
        .await
        .expect("create");
    let anon = Caller::default();
    let pw = "correct horse battery staple";
    let input = LoginInput {
        service_name: Some("grafana".to_owned()),
        ..login("ivy", pw)
    };
    let s = f.iam.login(&anon, input).await.expect("login");
    let first: TokenRecord = f
        .iam
        .read()
        .expect("read")
        .get(db::TOKENS, s.jti.as_bytes())
        .expect("get")
        .expect("record");
    assert_eq!(first.service, "grafana");
    let r = f.iam.renew(&f.caller(&s.token)).expect("renew");
    let again = f.iam.renew(&f.caller(&r.token)).expect("renew again");
    let last: TokenRecord = f
        .iam
        .read()
        .expect("read")
        .get(db::TOKENS, again.jti.as_bytes())
        .expect("get")
        .expect("record");
    assert_eq!(
        (last.auth_time, last.service.as_str()),
        (first.auth_time, "grafana"),
        "renewals keep the sign-in time and service"
    );
    // A deny rule for the service the session was for stops renewals.
    let rule = Rule {
        service_names: vec!["grafana".to_owned()],
        account_ids: vec![ivy.id.clone()],
        ..deny_all()
    };
    f.iam.create_rule(&admin, rule, false).expect("rule");
    let e = f.iam.renew(&f.caller(&again.token));
    assert!(matches!(e, Err(IamError::Forbidden(_))), "{e:?}");
    assert!(f.results("auth.renew").ends_with(&["denied".to_owned()]));
}

#[tokio::test]
async fn renew_past_the_maximum_session_age_is_refused() {
    let f = open_with(McAuthConfig {
        max_session_age: mc_kit::config::Duration::from_secs(3600),
        ..McAuthConfig::default()
    });
    let admin = f.admin().await;
    let p = admin.principal.clone().expect("principal");
    // Tokens end at the latest max_session_age after the sign-in.
    assert!(p.expires_at <= now() + 3600);
    // A sign-in two hours old (as if renewed ever since) renews no more.
    let tx = Tx::begin(&f.iam.store).expect("tx");
    let mut rec: TokenRecord = tx
        .get(db::TOKENS, p.jti.as_bytes())
        .expect("get")
        .expect("record");
    rec.auth_time = now() - 7200;
    tx.put(db::TOKENS, p.jti.as_bytes(), &rec).expect("put");
    tx.commit().expect("commit");
    let e = f.iam.renew(&admin);
    assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    assert!(f.results("auth.renew").ends_with(&["too_old".to_owned()]));
}

// Item 6: per-address limiter saturation (the table itself is tested in
// `core::limits`); here the configured prefix reaches the endpoints.

#[tokio::test]
async fn one_ipv6_prefix_is_one_source_for_the_endpoints() {
    let f = open_with(McAuthConfig {
        requests_per_minute_per_ip: 3,
        ipv6_prefix_len: 56,
        ..McAuthConfig::default()
    });
    let from = |a: &str| Caller {
        principal: None,
        source: Some(a.parse().expect("ip")),
    };
    // Three addresses of one /56 (in different /64s) spend one budget.
    for a in ["2001:db8:0:1::1", "2001:db8:0:2::1", "2001:db8:0:3::1"] {
        f.iam.validate(&from(a), "x").expect("within the limit");
    }
    let e = f.iam.validate(&from("2001:db8:0:ff::9"), "x");
    assert!(matches!(e, Err(IamError::RateLimited(_))), "{e:?}");
    // The next /56 is another source.
    f.iam
        .validate(&from("2001:db8:0:100::1"), "x")
        .expect("another prefix");
}
