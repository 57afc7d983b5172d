//! Metacrypt's transit engine end to end: `mcd controlplane` with curl
//! (REST, gRPC over HTTP/2), `mcctl crypt keys|encrypt|decrypt|sign|verify`
//! and openssl verifying a signature against the public key the API shows.
//! Covers create, encrypt/decrypt, batch status, rotate, rewrap,
//! min_decryption_version refusal, policy 403, and the sealed answer.

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::iam::Controlplane;

const CONFIG: &str = "requests_per_minute_per_ip = 1000\nfailures_per_minute_per_ip = 1000\n\
    [metacrypt]\nargon2_memory_kib = 19456\nargon2_iterations = 2\n";

const PASSPHRASE: &str = "a metacrypt test passphrase";

fn mcctl(eps: &Path, args: &[&str], stdin: &str) -> Output {
    crate::support::run_mcctl(eps, args, stdin)
}

fn mcctl_ok(eps: &Path, args: &[&str], stdin: &str) -> String {
    let out = mcctl(eps, args, stdin);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn mcctl_json(eps: &Path, args: &[&str], stdin: &str) -> Value {
    let text = mcctl_ok(eps, args, stdin);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
}

#[test]
fn crypt_transit_keys_encrypt_sign_batches_policy_and_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), CONFIG);
    let admin = cp.token("admin", &cp.password);
    let call = |method: &str, path: &str, token: &str, body: Option<Value>| {
        cp.call(method, path, Some(token), body)
    };
    let (code, body) = call(
        "POST",
        "/v1/crypt/sys/init",
        &admin,
        Some(json!({"passphrase": PASSPHRASE})),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = call(
        "POST",
        "/v1/crypt/sys/mounts",
        &admin,
        Some(json!({"name": "transit", "type": "transit"})),
    );
    assert_eq!(code, 200, "{body}");

    let eps = dir.path().join("endpoints.json");
    std::fs::write(
        &eps,
        json!({"controlplane": {"grpc": cp.grpc, "rest": cp.rest}, "ca_cert": cp.ca}).to_string(),
    )
    .expect("endpoints");
    mcctl_json(
        &eps,
        &["login", "--username", "admin", "--json"],
        &format!("{}\n", cp.password),
    );

    // mcctl: create, encrypt (stdin), decrypt (raw bytes on stdout).
    let k = mcctl_json(
        &eps,
        &["crypt", "keys", "create", "transit", "app", "--json"],
        "",
    );
    assert_eq!(
        (k["type"].as_str(), k["latest_version"].as_u64()),
        (Some("aes256-gcm"), Some(1)),
        "{k}"
    );
    let ct1 = mcctl_ok(
        &eps,
        &["crypt", "encrypt", "transit", "app"],
        "hello transit",
    )
    .trim()
    .to_owned();
    assert!(ct1.starts_with("vault:v1:"), "{ct1}");
    assert_eq!(
        mcctl_ok(&eps, &["crypt", "decrypt", "transit", "app", &ct1], ""),
        "hello transit"
    );
    let listed = mcctl_json(&eps, &["crypt", "keys", "list", "transit", "--json"], "");
    assert_eq!(listed, json!(["app"]));

    // REST: Vault's fields; a batch with a bad item is 400, or the override with a success.
    let b64 = |s: &str| STANDARD.encode(s);
    let batch = json!({"batch_input": [{"plaintext": b64("a"), "reference": "one"}, {"plaintext": "%%", "reference": "two"}]});
    let (code, body) = call(
        "POST",
        "/v1/crypt/transit/encrypt/app",
        &admin,
        Some(batch.clone()),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["batch_results"][0]["reference"], "one");
    assert!(
        body["batch_results"][0]["ciphertext"]
            .as_str()
            .expect("ct")
            .starts_with("vault:v1:")
    );
    assert_eq!(
        body["batch_results"][1]["error"], "plaintext: not base64",
        "{body}"
    );
    let mut partial = batch.clone();
    partial["partial_failure_response_code"] = json!(207);
    assert_eq!(
        call(
            "POST",
            "/v1/crypt/transit/encrypt/app",
            &admin,
            Some(partial)
        )
        .0,
        207
    );
    let (code, body) = call(
        "POST",
        "/v1/crypt/transit/decrypt/app",
        &admin,
        Some(json!({"ciphertext": "nope"})),
    );
    assert_eq!(
        (code, body["error"].as_str()),
        (400, Some("ciphertext: invalid ciphertext: no prefix"))
    );

    // Rotate, rewrap, then refuse the old version.
    let k = mcctl_json(
        &eps,
        &["crypt", "keys", "rotate", "transit", "app", "--json"],
        "",
    );
    assert_eq!(k["latest_version"], 2, "{k}");
    let (code, body) = call(
        "POST",
        "/v1/crypt/transit/rewrap/app",
        &admin,
        Some(json!({"ciphertext": ct1})),
    );
    assert_eq!(code, 200, "{body}");
    let ct2 = body["ciphertext"].as_str().expect("rewrapped").to_owned();
    assert!(ct2.starts_with("vault:v2:"), "{ct2}");
    mcctl_json(
        &eps,
        &[
            "crypt",
            "keys",
            "config",
            "transit",
            "app",
            "--min-decryption-version",
            "2",
            "--json",
        ],
        "",
    );
    let (code, body) = call(
        "POST",
        "/v1/crypt/transit/decrypt/app",
        &admin,
        Some(json!({"ciphertext": ct1})),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("disallowed by policy (too old)"),
        "{body}"
    );
    assert_eq!(
        mcctl_ok(&eps, &["crypt", "decrypt", "transit", "app", &ct2], ""),
        "hello transit"
    );
    let refused = mcctl(&eps, &["crypt", "keys", "delete", "transit", "app"], "");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("deletion is not allowed"));

    // Sign with mcctl; openssl verifies against the public key the API shows.
    mcctl_json(
        &eps,
        &[
            "crypt",
            "keys",
            "create",
            "transit",
            "sig",
            "--type",
            "ecdsa-p256",
            "--json",
        ],
        "",
    );
    let sig = mcctl_ok(
        &eps,
        &[
            "crypt",
            "sign",
            "transit",
            "sig",
            "--hash-algorithm",
            "sha2-384",
        ],
        "pay alice",
    )
    .trim()
    .to_owned();
    let (code, key) = call("GET", "/v1/crypt/transit/keys/sig", &admin, None);
    assert_eq!(code, 200, "{key}");
    let pem = key["keys"]["1"]["public_key"].as_str().expect("public key");
    let work = dir.path().join("ossl");
    std::fs::create_dir_all(&work).expect("dir");
    std::fs::write(work.join("pub.pem"), pem).expect("pem");
    std::fs::write(work.join("msg"), "pay alice").expect("msg");
    let der = STANDARD
        .decode(sig.trim_start_matches("vault:v1:"))
        .expect("base64 signature");
    std::fs::write(work.join("sig"), der).expect("sig");
    let ossl = Command::new("openssl")
        .current_dir(&work)
        .args([
            "dgst",
            "-sha384",
            "-verify",
            "pub.pem",
            "-signature",
            "sig",
            "msg",
        ])
        .output()
        .expect("openssl");
    assert!(
        ossl.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&ossl.stderr)
    );
    let verify = |input: &str| {
        mcctl(
            &eps,
            &[
                "crypt",
                "verify",
                "transit",
                "sig",
                &sig,
                "--hash-algorithm",
                "sha2-384",
            ],
            input,
        )
    };
    assert!(verify("pay alice").status.success());
    assert!(
        !verify("pay mallory").status.success(),
        "a changed input does not verify"
    );

    // Policy: an account without rules gets 403 on every transit path.
    cp.create_user(&admin, "carol", "carol's long password");
    let carol = cp.token("carol", "carol's long password");
    for (method, path, body) in [
        (
            "POST",
            "/v1/crypt/transit/encrypt/app",
            Some(json!({"plaintext": b64("x")})),
        ),
        (
            "POST",
            "/v1/crypt/transit/decrypt/app",
            Some(json!({"ciphertext": ct2})),
        ),
        ("GET", "/v1/crypt/transit/keys", None),
        ("GET", "/v1/crypt/transit/keys/app", None),
        ("POST", "/v1/crypt/transit/keys/app/rotate", None),
        (
            "POST",
            "/v1/crypt/transit/sign/sig",
            Some(json!({"input": b64("x")})),
        ),
        ("POST", "/v1/crypt/transit/random", None),
    ] {
        let (code, body) = call(method, path, &carol, body);
        assert_eq!(
            (code, body["error"].as_str()),
            (403, Some("permission denied")),
            "{method} {path}"
        );
    }
    assert_eq!(
        cp.grpc_status("/mc.crypt.v1.Transit/Encrypt", Some(&carol))
            .split('|')
            .next(),
        Some("7")
    );

    // Sealed: every transit route and RPC answers sealed and names nothing.
    let (code, _) = call("POST", "/v1/crypt/sys/seal", &admin, None);
    assert_eq!(code, 200);
    for (method, path) in [
        ("POST", "/v1/crypt/transit/encrypt/app"),
        ("POST", "/v1/crypt/transit/decrypt/app"),
        ("GET", "/v1/crypt/transit/keys/app"),
        ("POST", "/v1/crypt/nosuchmount/hash"),
    ] {
        // No body: the guard answers before reading one, and a client still
        // sending when the connection closes may see a reset instead.
        let (code, body) = call(method, path, &admin, None);
        assert_eq!(
            (code, body),
            (503, json!({"error": "sealed"})),
            "{method} {path}"
        );
    }
    assert_eq!(
        cp.grpc_status("/mc.crypt.v1.Transit/Encrypt", Some(&admin)),
        "14|sealed"
    );
    let (code, body) = call(
        "POST",
        "/v1/crypt/sys/unseal",
        &admin,
        Some(json!({"passphrase": PASSPHRASE})),
    );
    assert_eq!(code, 200, "{body}");
    // After unseal the key comes back from its sealed row.
    assert_eq!(
        mcctl_ok(&eps, &["crypt", "decrypt", "transit", "app", &ct2], ""),
        "hello transit"
    );
}
