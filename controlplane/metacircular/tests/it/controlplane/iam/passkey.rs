//! Passkeys end to end: a software authenticator (webauthn-authenticator-rs
//! `SoftPasskey`) registers with a running MCIAS and logs in; replayed and
//! stale-counter assertions (a cloned authenticator) are refused; login
//! policy applies; mcctl lists and removes passkeys over gRPC.

use std::process::Command;

use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{CreationChallengeResponse, RequestChallengeResponse};

use super::Controlplane;

pub(crate) struct Soft {
    key: SoftPasskey,
    origin: Url,
}

impl Soft {
    /// A new software passkey for the relying party at `origin`.
    pub(crate) fn new(origin: &str) -> Self {
        Self {
            key: SoftPasskey::new(true),
            origin: Url::parse(origin).expect("origin"),
        }
    }

    /// The same key, now talking to a relying party at another origin.
    pub(crate) fn at(&mut self, origin: &str) {
        self.origin = Url::parse(origin).expect("origin");
    }

    pub(crate) fn register(&mut self, options: &Value) -> Value {
        let options: CreationChallengeResponse =
            serde_json::from_value(options.clone()).expect("creation options");
        let cred = self
            .key
            .do_registration(self.origin.clone(), options)
            .expect("soft passkey registers");
        serde_json::to_value(cred).expect("json")
    }

    pub(crate) fn assert(&mut self, options: &Value) -> Value {
        let options: RequestChallengeResponse =
            serde_json::from_value(options.clone()).expect("request options");
        let cred = self
            .key
            .do_authentication(self.origin.clone(), options)
            .expect("soft passkey signs");
        serde_json::to_value(cred).expect("json")
    }
}

fn begin_login(cp: &Controlplane, user: &str, service: &str) -> (String, Value) {
    let (code, b) = cp.call(
        "POST",
        "/v1/auth/passkey/begin",
        None,
        Some(json!({"username": user, "service_name": service})),
    );
    assert_eq!(code, 200, "{b}");
    (
        b["challenge_id"].as_str().expect("id").to_owned(),
        b["options"].clone(),
    )
}

fn finish_login(cp: &Controlplane, challenge: &str, credential: &Value) -> (u16, Value) {
    cp.call(
        "POST",
        "/v1/auth/passkey/finish",
        None,
        Some(json!({"challenge_id": challenge, "credential": credential})),
    )
}

#[test]
fn soft_passkey_registers_logs_in_and_stale_counters_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "requests_per_minute_per_ip = 10000\n");
    let admin = cp.token("admin", &cp.password);
    let pw = "alice's long password";
    cp.create_user(&admin, "alice", pw);
    let alice = cp.token("alice", pw);
    let port = cp.rest.rsplit(':').next().expect("port");
    let mut soft = Soft {
        key: SoftPasskey::new(true),
        origin: Url::parse(&format!("https://localhost:{port}")).expect("origin"),
    };

    // Registration needs the password.
    let (code, _) = cp.call(
        "POST",
        "/v1/iam/passkeys/register/begin",
        Some(&alice),
        Some(json!({"password": "wrong"})),
    );
    assert_eq!(code, 401);
    let (code, begin) = cp.call(
        "POST",
        "/v1/iam/passkeys/register/begin",
        Some(&alice),
        Some(json!({"password": pw})),
    );
    assert_eq!(code, 200, "{begin}");
    assert_eq!(begin["options"]["publicKey"]["rp"]["id"], "localhost");
    assert_eq!(
        begin["options"]["publicKey"]["authenticatorSelection"]["residentKey"],
        "preferred"
    );
    let challenge = begin["challenge_id"].as_str().expect("id");
    let credential = soft.register(&begin["options"]);
    let finish = json!({"challenge_id": challenge, "credential": credential, "name": "soft key"});
    let (code, key) = cp.call(
        "POST",
        "/v1/iam/passkeys/register/finish",
        Some(&alice),
        Some(finish.clone()),
    );
    assert_eq!(code, 201, "{key}");
    assert_eq!(key["name"], "soft key");
    // The ceremony is single use.
    let (code, _) = cp.call(
        "POST",
        "/v1/iam/passkeys/register/finish",
        Some(&alice),
        Some(finish),
    );
    assert_eq!(code, 400);
    let (code, list) = cp.call("GET", "/v1/iam/passkeys", Some(&alice), None);
    assert_eq!(
        (code, list["passkeys"].as_array().map(Vec::len)),
        (200, Some(1))
    );

    // Without a username: a discoverable-credential request (no allow list,
    // a modal request rather than autofill).
    let (code, b) = cp.call(
        "POST",
        "/v1/auth/passkey/begin",
        None,
        Some(json!({"username": ""})),
    );
    assert_eq!(code, 200, "{b}");
    assert!(
        b.get("mediation").is_none() && b["options"].get("mediation").is_none(),
        "{b}"
    );
    assert!(
        b["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{b}"
    );

    // A passkey is a second factor: the password alone no longer logs in.
    let (code, body) = cp.login("alice", pw, None);
    assert_eq!(
        (code, body["passkey_required"].as_bool()),
        (401, Some(true)),
        "{body}"
    );

    // Passwordless login with the passkey.
    let (c1, o1) = begin_login(&cp, "alice", "");
    let a1 = soft.assert(&o1);
    let (code, session) = finish_login(&cp, &c1, &a1);
    assert_eq!(code, 200, "{session}");
    let token = session["token"].as_str().expect("token");
    let (code, me) = cp.call("GET", "/v1/iam/whoami", Some(token), None);
    assert_eq!((code, me["username"].as_str()), (200, Some("alice")));
    // Replays: the same answer again (the challenge is used), and the same
    // answer to a new challenge (it signed another one).
    assert_eq!(finish_login(&cp, &c1, &a1).0, 400);
    let (c2, _) = begin_login(&cp, "alice", "");
    assert_eq!(finish_login(&cp, &c2, &a1).0, 401);
    // Another origin (a site on another port of the host relaying the
    // challenge: the authenticator signs, the server refuses).
    let (c3, o3) = begin_login(&cp, "alice", "");
    let mut phish = Soft {
        key: std::mem::replace(&mut soft.key, SoftPasskey::new(true)),
        origin: Url::parse("https://localhost:1").expect("url"),
    };
    let bad = phish.assert(&o3);
    soft.key = phish.key;
    assert_eq!(finish_login(&cp, &c3, &bad).0, 401);

    // A cloned authenticator: two assertions, the later one (higher
    // counter) used first; the earlier, stale one is then refused.
    let (c4, o4) = begin_login(&cp, "alice", "");
    let (c5, o5) = begin_login(&cp, "alice", "");
    let older = soft.assert(&o4);
    let newer = soft.assert(&o5);
    assert_eq!(finish_login(&cp, &c5, &newer).0, 200);
    let (code, body) = finish_login(&cp, &c4, &older);
    assert_eq!(code, 401, "{body}");

    // Login policy applies to passkey logins as to passwords.
    let (code, _) = cp.call(
        "POST",
        "/v1/iam/policy",
        Some(&admin),
        Some(json!({"priority": 10, "effect": "deny", "service_names": ["mcr"], "actions": ["auth:login"]})),
    );
    assert_eq!(code, 201);
    let (c6, o6) = begin_login(&cp, "alice", "mcr");
    assert_eq!(finish_login(&cp, &c6, &soft.assert(&o6)).0, 403);

    super::assert_audited(
        &cp,
        &admin,
        "",
        &[
            "mfa.passkey.register ok",
            "mfa.passkey.register bad_credentials",
            "auth.login ok",
            "auth.passkey bad_assertion",
            "auth.passkey stale_counter",
            "auth.login denied",
            "auth.login passkey_required",
        ],
    );

    // gRPC via mcctl: an admin lists and removes alice's passkey.
    let endpoints = dir.path().join("endpoints.json");
    std::fs::write(
        &endpoints,
        json!({"controlplane": {"grpc": cp.grpc, "rest": cp.rest}, "ca_cert": cp.ca}).to_string(),
    )
    .expect("endpoints");
    let mcctl = |args: &[&str]| {
        Command::new(crate::support::mcctl())
            .arg("--endpoints")
            .arg(&endpoints)
            .args(args)
            .env("MC_TOKEN", &admin)
            .output()
            .expect("mcctl")
    };
    let out = mcctl(&["iam", "passkeys", "list", "--account", "alice"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("soft key"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = key["id"].as_str().expect("id");
    let out = mcctl(&["iam", "passkeys", "remove", id, "--account", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No passkey left: a decoy (issue 12, item 7b) that names no real credential.
    let (code, decoy) = cp.call(
        "POST",
        "/v1/auth/passkey/begin",
        None,
        Some(json!({"username": "alice"})),
    );
    assert_eq!(code, 200, "{decoy}");
    let (code, _) = cp.call(
        "POST",
        "/v1/auth/passkey/finish",
        None,
        Some(json!({"challenge_id": decoy["challenge_id"], "credential": {}})),
    );
    assert!(
        code == 400 || code == 401,
        "the decoy finishes nothing: {code}"
    );
    assert_eq!(
        cp.login("alice", pw, None).0,
        200,
        "the password alone works again"
    );
    // A user cannot look at someone else's passkeys.
    let (code, _) = cp.call(
        "GET",
        "/v1/iam/passkeys?account_id=admin",
        Some(&alice),
        None,
    );
    assert_eq!(code, 403);
}
