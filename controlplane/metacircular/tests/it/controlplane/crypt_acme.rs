//! Metacrypt's ACME server (RFC 8555) end to end with lego (Debian's), on
//! 127.0.0.1: with an EAB key an MCIAS admin created, lego obtains a
//! certificate through HTTP-01 (its own challenge server on a high port,
//! which the mount's `acme.http_port` points validation at), `openssl
//! verify` accepts it against the public CA route, lego renews it (a new
//! serial) and revokes it (the public CRL lists the serial); a second
//! account, whose EAB key `mcctl crypt pki acme-eab` made, obtains one
//! through TLS-ALPN-01. Refusals carry the RFC's
//! problem types: a wrong EAB MAC (`unauthorized`), a challenge nobody
//! answers (`connection`), a name outside the role (`rejectedIdentifier`),
//! and, from a hand-built JWS client, a replayed nonce (`badNonce`) and a
//! bad signature (`malformed`).

use std::path::Path;
use std::process::Command;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use super::crypt::endpoints;
use super::crypt_pki::{ok, openssl, start_with_pki_mount};
use super::iam::Controlplane;

pub(super) use crate::ports::free_port;

/// lego against the mount's `web` directory; its combined output.
pub(super) fn lego(cp: &Controlplane, dir: &Path, args: &[&str]) -> (bool, String) {
    lego_env(cp, dir, args, &[])
}

/// [`lego`] with environment variables (a DNS provider's settings).
pub(super) fn lego_env(
    cp: &Controlplane,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, String) {
    let server = format!("{}/v1/acme/pki/web/directory", cp.rest);
    let out = Command::new("lego")
        .args([
            "--server",
            &server,
            "--email",
            "ops@acme.test",
            "--accept-tos",
        ])
        .args(args)
        .env("LEGO_CA_CERTIFICATES", &cp.ca)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("lego is installed (scripts/test installs it)");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// certbot (`args[0]` is its subcommand) against the mount's `web`
/// directory, its state under `cb`; (success, stdout + stderr).
pub(super) fn certbot(cp: &Controlplane, cb: &Path, args: &[&str]) -> (bool, String) {
    let server = format!("{}/v1/acme/pki/web/directory", cp.rest);
    let out = Command::new("certbot")
        .args(args)
        .args(["--non-interactive", "--server", &server])
        .arg("--config-dir")
        .arg(cb.join("etc"))
        .arg("--work-dir")
        .arg(cb.join("work"))
        .arg("--logs-dir")
        .arg(cb.join("logs"))
        .env("REQUESTS_CA_BUNDLE", &cp.ca)
        .output()
        .expect("certbot is installed (scripts/test installs it)");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// `openssl verify` of `cert` against `<d>/acme-ca.pem`, and its SAN `name`.
pub(super) fn verify_issued(d: &Path, cert: &str, name: &str) {
    let (good, text) = openssl(d, &["verify", "-CAfile", "acme-ca.pem", cert]);
    assert!(good && text.contains(": OK"), "{text}");
    let (_, text) = openssl(
        d,
        &["x509", "-in", cert, "-noout", "-ext", "subjectAltName"],
    );
    assert!(text.contains(&format!("DNS:{name}")), "{text}");
}

/// MCNS (`mcd dataplane` under `<d>/mcns`) on a free 127.0.0.1 port, with
/// `rest` after the `[dns]` listen line; the process and the port.
pub(super) fn start_mcns(d: &Path, rest: &str) -> (crate::peers::Dataplane, u16) {
    let dir = d.join("mcns");
    std::fs::create_dir_all(&dir).expect("dir");
    let port = crate::dataplane::dns::free_dns_port();
    let toml = format!("[dns]\nlisten = [\"127.0.0.1:{port}\"]\n{rest}");
    (crate::peers::Dataplane::start(&dir, "off", &toml), port)
}

pub(super) fn root_and_web_role(cp: &Controlplane, admin: &str, ips: bool) {
    ok(cp.call(
        "POST",
        "/v1/crypt/pki/root/generate",
        Some(admin),
        Some(json!({"common_name": "ACME Test Root"})),
    ));
    ok(cp.call(
        "POST",
        "/v1/crypt/pki/roles/web",
        Some(admin),
        Some(
            json!({"allowed_domains": ["acme.test"], "allow_subdomains": true,
                    "allow_ip_sans": ips, "ttl": "1h"}),
        ),
    ));
}

/// Sets the pki mount's `acme` config section.
pub(super) fn serve_acme(cp: &Controlplane, admin: &str, acme: Value) {
    ok(cp.call(
        "PATCH",
        "/v1/crypt/sys/mounts/pki",
        Some(admin),
        Some(json!({"config": {"acme": acme}})),
    ));
}

pub(super) fn eab(cp: &Controlplane, admin: &str) -> (String, String) {
    let e = ok(cp.call(
        "POST",
        "/v1/crypt/pki/acme/web/eab",
        Some(admin),
        Some(json!({})),
    ));
    (
        e["key_id"].as_str().expect("kid").to_owned(),
        e["hmac_key"].as_str().expect("hmac").to_owned(),
    )
}

pub(super) fn serial(dir: &Path, cert: &str) -> String {
    let (good, text) = openssl(dir, &["x509", "-in", cert, "-noout", "-serial"]);
    assert!(good, "{text}");
    text.trim().trim_start_matches("serial=").to_owned()
}

/// A fresh nonce from HEAD new-nonce.
pub(super) fn nonce(cp: &Controlplane) -> String {
    let url = format!("{}/v1/acme/pki/web/new-nonce", cp.rest);
    let out = Command::new("curl")
        .args(["-sS", "-I", "--max-time", "10", "--cacert", &cp.ca, &url])
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&out.stdout);
    head.lines()
        .find_map(|l| l.strip_prefix("replay-nonce: "))
        .unwrap_or_else(|| {
            panic!(
                "no replay-nonce header: {head}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .trim()
        .to_owned()
}

/// A new-account JWS signed by `key` (`tamper` breaks the signature).
fn new_account_jws(cp: &Controlplane, key: &EcdsaKeyPair, nonce: &str, tamper: bool) -> String {
    let p = key.public_key().as_ref();
    let jwk = json!({"kty":"EC","crv":"P-256","x":B64.encode(&p[1..33]),"y":B64.encode(&p[33..])});
    let url = format!("{}/v1/acme/pki/web/new-account", cp.rest);
    let protected =
        B64.encode(json!({"alg":"ES256","nonce":nonce,"url":url,"jwk":jwk}).to_string());
    let payload = B64.encode(json!({"termsOfServiceAgreed": true}).to_string());
    let mut sig = key
        .sign(
            &SystemRandom::new(),
            format!("{protected}.{payload}").as_bytes(),
        )
        .expect("sign")
        .as_ref()
        .to_vec();
    if tamper {
        sig[0] ^= 1;
    }
    json!({"protected":protected,"payload":payload,"signature":B64.encode(sig)}).to_string()
}

/// POSTs a JWS; the status and the problem document.
pub(super) fn post_jws(cp: &Controlplane, path: &str, body: &str) -> (u16, Value) {
    let url = format!("{}/v1/acme/pki/web/{path}", cp.rest);
    let (code, text) = crate::support::curl(&[
        "--cacert",
        &cp.ca,
        "-H",
        "content-type: application/jose+json",
        "--data",
        body,
        &url,
    ]);
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub(super) fn problem_type(v: &Value) -> &str {
    v["type"].as_str().unwrap_or_default()
}

#[test]
fn crypt_acme_lego_http01_tls_alpn01_renew_revoke_and_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (cp, admin) = start_with_pki_mount(d);
    root_and_web_role(&cp, &admin, true);
    // Before the mount serves the role, the directory is 404.
    let dir_url = format!("{}/v1/acme/pki/web/directory", cp.rest);
    assert_eq!(crate::support::curl(&["--cacert", &cp.ca, &dir_url]).0, 404);
    let (http_port, tls_port, dead_port) = (free_port(), free_port(), free_port());
    serve_acme(
        &cp,
        &admin,
        json!({"roles": ["web"], "http_port": http_port, "tls_alpn_port": tls_port, "timeout": 5}),
    );
    let (code, text) = crate::support::curl(&["--cacert", &cp.ca, &dir_url]);
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("\"externalAccountRequired\":true"), "{text}");
    let (_, ca) =
        crate::support::curl(&["--cacert", &cp.ca, &format!("{}/v1/pki/pki/ca", cp.rest)]);
    std::fs::write(d.join("acme-ca.pem"), ca).expect("ca");

    // HTTP-01: obtain, verify, renew (a new serial), revoke (in the CRL).
    let (kid, hmac) = eab(&cp, &admin);
    let http = format!("127.0.0.1:{http_port}");
    let account = ["--path", "lego1", "--eab", "--kid", &kid, "--hmac", &hmac];
    let mut run = account.to_vec();
    run.extend([
        "--domains",
        "127.0.0.1",
        "--http",
        "--http.port",
        &http,
        "run",
    ]);
    let (good, text) = lego(&cp, d, &run);
    assert!(good, "{text}");
    let cert = "lego1/certificates/127.0.0.1.crt";
    let (good, text) = openssl(d, &["verify", "-CAfile", "acme-ca.pem", cert]);
    assert!(good && text.contains(": OK"), "{text}");
    let first = serial(d, cert);
    let mut renew = account.to_vec();
    renew.extend(["--domains", "127.0.0.1", "--http", "--http.port", &http]);
    renew.extend(["renew", "--days", "3650", "--no-random-sleep"]);
    let (good, text) = lego(&cp, d, &renew);
    assert!(good, "{text}");
    let second = serial(d, cert);
    assert_ne!(first, second, "renew issued a new certificate");
    let mut revoke = account.to_vec();
    revoke.extend(["--domains", "127.0.0.1", "revoke"]);
    let (good, text) = lego(&cp, d, &revoke);
    assert!(good, "{text}");
    let (_, crl) =
        crate::support::curl(&["--cacert", &cp.ca, &format!("{}/v1/pki/pki/crl", cp.rest)]);
    std::fs::write(d.join("acme-crl.pem"), crl).expect("crl");
    let (good, text) = openssl(d, &["crl", "-in", "acme-crl.pem", "-noout", "-text"]);
    assert!(good && text.contains(&second), "{second} not in {text}");

    // TLS-ALPN-01 with a second account, its EAB key made with mcctl (gRPC).
    let eps = endpoints(d, &cp);
    let login = format!("{}\n", cp.password);
    let out = crate::support::run_mcctl(&eps, &["login", "--username", "admin"], &login);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = crate::support::run_mcctl(
        &eps,
        &["crypt", "pki", "acme-eab", "pki", "web", "--json"],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e: Value = serde_json::from_slice(&out.stdout).expect("json");
    let kid2 = e["key_id"].as_str().expect("kid").to_owned();
    let hmac2 = e["hmac_key"].as_str().expect("hmac").to_owned();
    let tls = format!("127.0.0.1:{tls_port}");
    let (good, text) = lego(
        &cp,
        d,
        &[
            "--path",
            "lego2",
            "--eab",
            "--kid",
            &kid2,
            "--hmac",
            &hmac2,
            "--domains",
            "127.0.0.1",
            "--tls",
            "--tls.port",
            &tls,
            "run",
        ],
    );
    assert!(good, "{text}");
    let (good, text) = openssl(
        d,
        &[
            "verify",
            "-CAfile",
            "acme-ca.pem",
            "lego2/certificates/127.0.0.1.crt",
        ],
    );
    assert!(good, "{text}");

    // Refusals, each with the RFC's problem type.
    let (kid3, _) = eab(&cp, &admin);
    let wrong = B64.encode([7u8; 32]);
    let (good, text) = lego(
        &cp,
        d,
        &[
            "--path",
            "lego3",
            "--eab",
            "--kid",
            &kid3,
            "--hmac",
            &wrong,
            "--domains",
            "127.0.0.1",
            "--http",
            "--http.port",
            &http,
            "run",
        ],
    );
    assert!(
        !good && text.contains("urn:ietf:params:acme:error:unauthorized"),
        "{text}"
    );
    let (kid4, hmac4) = eab(&cp, &admin);
    let dead = format!("127.0.0.1:{dead_port}");
    let (good, text) = lego(
        &cp,
        d,
        &[
            "--path",
            "lego4",
            "--eab",
            "--kid",
            &kid4,
            "--hmac",
            &hmac4,
            "--domains",
            "127.0.0.1",
            "--http",
            "--http.port",
            &dead,
            "run",
        ],
    );
    assert!(
        !good && text.contains("urn:ietf:params:acme:error:connection"),
        "{text}"
    );
    let mut outside = account.to_vec();
    outside.extend([
        "--domains",
        "www.other.test",
        "--http",
        "--http.port",
        &http,
        "run",
    ]);
    let (good, text) = lego(&cp, d, &outside);
    assert!(
        !good && text.contains("urn:ietf:params:acme:error:rejectedIdentifier"),
        "{text}"
    );

    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("key");
    let n = nonce(&cp);
    let (code, p) = post_jws(&cp, "new-account", &new_account_jws(&cp, &key, &n, true));
    assert_eq!(
        (code, problem_type(&p)),
        (400, "urn:ietf:params:acme:error:malformed"),
        "{p}"
    );
    let n = nonce(&cp);
    let body = new_account_jws(&cp, &key, &n, false);
    let (code, p) = post_jws(&cp, "new-account", &body);
    assert_eq!(
        (code, problem_type(&p)),
        (400, "urn:ietf:params:acme:error:externalAccountRequired"),
        "{p}"
    );
    let (code, p) = post_jws(&cp, "new-account", &body);
    assert_eq!(
        (code, problem_type(&p)),
        (400, "urn:ietf:params:acme:error:badNonce"),
        "{p}"
    );
}

/// certbot (`--standalone`, HTTP-01) obtains a certificate for a DNS name
/// that the validator resolves through MCNS (`mcd dataplane` serving the
/// `acme.test` zone, named as the mount's `acme.resolver`), and `openssl
/// verify` accepts it against the public CA route.
#[test]
fn crypt_acme_certbot_standalone_http01_through_mcns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (_dp, dns_port) = start_mcns(
        d,
        "[[dns.zones]]\nname = \"acme.test\"\nrecords = [\"www A 127.0.0.1\"]\n",
    );
    let (cp, admin) = start_with_pki_mount(d);
    root_and_web_role(&cp, &admin, false);
    let http_port = free_port();
    serve_acme(
        &cp,
        &admin,
        json!({"roles": ["web"], "http_port": http_port, "resolver": format!("127.0.0.1:{dns_port}")}),
    );
    let (_, ca) =
        crate::support::curl(&["--cacert", &cp.ca, &format!("{}/v1/pki/pki/ca", cp.rest)]);
    std::fs::write(d.join("acme-ca.pem"), ca).expect("ca");
    let (kid, hmac) = eab(&cp, &admin);
    let port = http_port.to_string();
    let cb = d.join("certbot");
    let (good, text) = certbot(
        &cp,
        &cb,
        &[
            "certonly",
            "--standalone",
            "--agree-tos",
            "-m",
            "ops@acme.test",
            "--eab-kid",
            &kid,
            "--eab-hmac-key",
            &hmac,
            "--http-01-address",
            "127.0.0.1",
            "--http-01-port",
            &port,
            "-d",
            "www.acme.test",
        ],
    );
    assert!(good, "{text}");
    let cert = cb.join("etc/live/www.acme.test/cert.pem");
    verify_issued(d, &cert.display().to_string(), "www.acme.test");
}
