//! Core decisions behind the web-facing items of the adversarial review
//! (issue 12, items 4 and 7): the lockout, reset tokens, passkey decoys
//! and removal, role changes, SSO token kinds and token error messages.

use super::*;
use crate::core::mfa::passkey::Decoy;
use crate::core::sso::ClientInput;
use crate::core::tokens::SSO_KIND;
use crate::model::PasskeyRecord;

fn at(ip: &str) -> Caller {
    Caller {
        principal: None,
        source: Some(ip.parse().expect("ip")),
    }
}

const PW: &str = "correct horse battery staple";

/// Item 7a: a locked account answers like an unknown one, and the lock
/// does not reach a source the account has signed in from.
#[tokio::test]
async fn lockout_answers_like_unknown_and_spares_known_sources() {
    let f = open_with(McAuthConfig {
        lockout_after: 3,
        failures_per_minute_per_ip: 1000,
        ..McAuthConfig::default()
    });
    let admin = f.admin().await;
    f.iam
        .create_account(&admin, human("alice"))
        .await
        .expect("create");
    let home = at("2001:db8:1:2::10");
    f.iam.login(&home, login("alice", PW)).await.expect("home");
    let attacker = at("198.51.100.9");
    for _ in 0..3 {
        let e = f
            .iam
            .login(&attacker, login("alice", "wrong password!"))
            .await;
        assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    }
    let locked = f.iam.login(&attacker, login("alice", PW)).await;
    let unknown = f.iam.login(&attacker, login("nobody", PW)).await;
    assert_eq!(format!("{locked:?}"), format!("{unknown:?}"));
    assert!(matches!(locked, Err(IamError::Unauthenticated(_))));
    assert_eq!(
        f.results("auth.login").last().map(String::as_str),
        Some("bad_credentials")
    );
    assert!(f.results("auth.login").iter().any(|r| r == "locked"));
    // The account's own network (same /64) still signs in.
    f.iam
        .login(&at("2001:db8:1:2::99"), login("alice", PW))
        .await
        .expect("a known source is not locked out");
    // The sole admin likewise, from where it signed in before.
    let admin_home = at("192.0.2.1");
    let a = login(&f.admin.username, &f.admin.password);
    f.iam.login(&admin_home, a.clone()).await.expect("admin");
    for _ in 0..5 {
        let _ = f
            .iam
            .login(&attacker, login("admin", "wrong password!"))
            .await;
    }
    assert!(
        f.iam.login(&attacker, a.clone()).await.is_err(),
        "locked elsewhere"
    );
    f.iam.login(&admin_home, a).await.expect("not locked out");
}

/// Item 7e: concurrent redemptions of one reset token: exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reset_token_redeemed_concurrently_works_once() {
    let f = open();
    let admin = f.admin().await;
    f.iam
        .create_account(&admin, human("gina"))
        .await
        .expect("create");
    let (token, _) = f
        .iam
        .create_reset_token(&admin, "gina", 600)
        .expect("reset");
    let anon = Caller::default();
    let redeem = |n: u8| {
        let (iam, anon, token) = (&f.iam, &anon, &token);
        async move {
            iam.redeem_reset_token(anon, token, &format!("new password number {n}"))
                .await
        }
    };
    let all = tokio::join!(
        redeem(1),
        redeem(2),
        redeem(3),
        redeem(4),
        redeem(5),
        redeem(6)
    );
    let all = [all.0, all.1, all.2, all.3, all.4, all.5];
    assert_eq!(all.iter().filter(|r| r.is_ok()).count(), 1, "{all:?}");
    let oks = f
        .results("auth.reset")
        .iter()
        .filter(|r| *r == "ok")
        .count();
    assert_eq!(oks, 1);
}

/// Item 7b: `begin` for an account without passkeys (or none at all)
/// answers a decoy: the shape of a real request, one stable credential id.
#[tokio::test]
async fn passkey_begin_answers_a_stable_decoy() {
    let f = open();
    let admin = f.admin().await;
    f.iam
        .create_account(&admin, human("alice"))
        .await
        .expect("create");
    let anon = Caller::default();
    let begin = |u: &str| f.iam.begin_passkey_login(&anon, u, "", &[]).expect("begin");
    let (id1, a1) = begin("nobody");
    let (_, a2) = begin("nobody");
    let (_, b) = begin("alice");
    let pk = &a1["publicKey"];
    for k in ["challenge", "rpId", "allowCredentials", "userVerification"] {
        assert!(pk.get(k).is_some(), "{k}: {a1}");
    }
    assert!(
        a1.get("mediation").is_none() && pk.get("extensions").is_none(),
        "{a1}"
    );
    let cred = |v: &serde_json::Value| v["publicKey"]["allowCredentials"].clone();
    assert_eq!(cred(&a1).as_array().map(Vec::len), Some(1), "{a1}");
    assert_eq!(cred(&a1)[0]["type"], "public-key");
    assert_eq!(cred(&a1), cred(&a2), "the same id every time");
    assert_ne!(a1["publicKey"]["challenge"], a2["publicKey"]["challenge"]);
    assert_ne!(cred(&a1), cred(&b), "one per username");
    // The same key after a restart (it lives beside the master key).
    let again = Decoy::load_or_create(&f._dir.path().join("mcias/decoy.key")).expect("key");
    assert_eq!(cred(&a1)[0]["id"], again.credential_id("nobody"));
    // The decoy ceremony finishes nothing.
    let e = f.iam.finish_passkey_login(&anon, &id1, "{}");
    assert!(e.is_err());
    assert!(f.results("auth.passkey").iter().any(|r| r == "no_passkey"));
}

/// Item 7c: removing one's own passkey needs the current password.
#[tokio::test]
async fn removing_a_passkey_needs_the_password() {
    let f = open();
    let admin = f.admin().await;
    let bob = f
        .iam
        .create_account(&admin, human("bob"))
        .await
        .expect("create");
    let put = |id: &str| {
        let tx = Tx::begin(&f.iam.store).expect("tx");
        let r = PasskeyRecord {
            id: id.to_owned(),
            account_id: bob.id.clone(),
            name: "k".to_owned(),
            credential_id: id.to_owned(),
            created_at: 1,
            last_used: 0,
            counter: 0,
            sealed: String::new(),
        };
        tx.put(db::PASSKEYS, id.as_bytes(), &r).expect("put");
        tx.commit().expect("commit");
    };
    put("k1");
    put("k2");
    // With passkeys, a password login needs one: a session issued directly.
    let tx = Tx::begin(&f.iam.store).expect("tx");
    let account = f.iam.account(&bob.id).expect("bob");
    let session = f
        .iam
        .issue(
            &tx,
            &account,
            "session",
            Duration::from_secs(60),
            "t",
            None,
            vec![],
        )
        .expect("issue");
    tx.commit().expect("commit");
    let me = f.caller(&session.token);
    for wrong in ["", "not the password"] {
        let e = f.iam.remove_passkey(&me, "", "k1", wrong).await;
        assert!(matches!(e, Err(IamError::Unauthenticated(_))), "{e:?}");
    }
    assert_eq!(f.iam.list_passkeys(&me, "").expect("list").len(), 2);
    f.iam
        .remove_passkey(&me, "", "k1", PW)
        .await
        .expect("with the password");
    // An admin removing another account's passkey (recovery) needs no password.
    f.iam
        .remove_passkey(&admin, "bob", "k2", "")
        .await
        .expect("admin");
    assert!(f.iam.list_passkeys(&me, "").expect("list").is_empty());
}

/// Item 7g: a role change ends the tokens issued before it, for MCIAS and
/// for services that check revocation.
#[tokio::test]
async fn role_changes_end_earlier_tokens() {
    let f = open();
    let admin = f.admin().await;
    let bob = f
        .iam
        .create_account(&admin, human("bob"))
        .await
        .expect("create");
    let s = f
        .iam
        .login(&Caller::default(), login("bob", PW))
        .await
        .expect("login");
    f.iam.verify(&s.token).expect("verifies");
    f.iam
        .set_roles(&admin, &bob.id, &["guest".to_owned()])
        .expect("roles");
    assert!(f.iam.verify(&s.token).is_err(), "old roles live on");
    assert_eq!(
        f.iam
            .check_revocation(std::slice::from_ref(&s.jti))
            .expect("check"),
        vec![s.jti.clone()]
    );
    let s = f
        .iam
        .login(&Caller::default(), login("bob", PW))
        .await
        .expect("login");
    assert_eq!(f.iam.verify(&s.token).expect("new").roles, ["guest"]);
    // Setting the same roles again changes nothing.
    f.iam
        .set_roles(&admin, &bob.id, &["guest".to_owned()])
        .expect("roles");
    f.iam.verify(&s.token).expect("still verifies");
}

/// Item 7f: SSO clients cannot take the API's audience, and an SSO token
/// (even one for that audience) is refused by `verify` and reported revoked
/// to services.
#[tokio::test]
async fn sso_tokens_are_not_api_tokens() {
    let f = open();
    let admin = f.admin().await;
    let input = |id: &str| ClientInput {
        client_id: id.to_owned(),
        name: "x".to_owned(),
        redirect_uris: vec!["https://rp.example/cb".to_owned()],
        ..ClientInput::default()
    };
    for reserved in [f.iam.config.audience.clone(), "mcias".to_owned()] {
        let e = f.iam.create_sso_client(&admin, input(&reserved));
        assert!(matches!(e, Err(IamError::Invalid(_))), "{reserved}: {e:?}");
        let e = f.iam.update_sso_client(&admin, input(&reserved));
        assert!(matches!(e, Err(IamError::Invalid(_))), "{reserved}: {e:?}");
    }
    f.iam
        .create_sso_client(&admin, input("wiki"))
        .expect("an ordinary id");
    let account = f
        .iam
        .account(&admin.require().expect("p").account_id)
        .expect("a");
    let tx = Tx::begin(&f.iam.store).expect("tx");
    let aud = f.iam.config.audience.clone();
    let forged = f
        .iam
        .issue(
            &tx,
            &account,
            SSO_KIND,
            Duration::from_secs(60),
            "sso",
            Some(&aud),
            vec![],
        )
        .expect("issue");
    let wiki = f
        .iam
        .issue(
            &tx,
            &account,
            SSO_KIND,
            Duration::from_secs(60),
            "sso",
            Some("wiki"),
            vec![],
        )
        .expect("issue");
    tx.commit().expect("commit");
    assert!(matches!(
        f.iam.verify(&forged.token),
        Err(AuthError::Invalid(_))
    ));
    assert!(f.iam.verify(&wiki.token).is_err());
    assert_eq!(
        f.iam
            .check_revocation(std::slice::from_ref(&forged.jti))
            .expect("check"),
        vec![forged.jti.clone()]
    );
    f.iam
        .userinfo(&wiki.token)
        .expect("the SSO endpoint takes it");
}

/// Item 7l: token errors are fixed messages, not the JWT library's.
#[tokio::test]
async fn token_errors_do_not_echo_library_internals() {
    let f = open();
    let fixed = "invalid token: malformed, or its signature or claims do not verify";
    let good = f
        .iam
        .login(
            &Caller::default(),
            login(&f.admin.username, &f.admin.password),
        )
        .await
        .expect("login")
        .token;
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
    let parts: Vec<&str> = good.split('.').collect();
    for bad in [
        "a.b.c".to_owned(),
        "not a token".to_owned(),
        format!("{}.e30.{}", parts[0], parts[2]),
        format!("{}.{}.", parts[0], parts[1]),
        tampered,
    ] {
        let e = f.iam.verify(&bad).expect_err("refused");
        assert_eq!(e.to_string(), fixed, "{bad}");
    }
}

/// Item 7 (last): `verify` checks that the token's record is the token's:
/// a record naming another account (or generation) does not verify.
#[tokio::test]
async fn verify_checks_the_records_account_against_sub() {
    let f = open();
    let admin = f.admin().await;
    let bob = f
        .iam
        .create_account(&admin, human("bob"))
        .await
        .expect("create");
    let s = f
        .iam
        .login(
            &Caller::default(),
            login(&f.admin.username, &f.admin.password),
        )
        .await
        .expect("login");
    f.iam.verify(&s.token).expect("verifies");
    let mut record: TokenRecord = f
        .iam
        .read()
        .expect("read")
        .get(db::TOKENS, s.jti.as_bytes())
        .expect("get")
        .expect("record");
    record.account_id = bob.id.clone();
    let tx = Tx::begin(&f.iam.store).expect("tx");
    tx.put(db::TOKENS, s.jti.as_bytes(), &record).expect("put");
    tx.commit().expect("commit");
    assert!(matches!(f.iam.verify(&s.token), Err(AuthError::Invalid(_))));
}
