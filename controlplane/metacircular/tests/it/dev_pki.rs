//! `mcd dev`'s dev PKI: the control plane serves a certificate Metacrypt
//! issued from the `dev-pki` mount (whose root is the dev CA); openssl and
//! curl verify the served chain against the CA `mcd dev` reports; `mcctl`
//! issues from the mount with no setup; a restart keeps the certificate.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{Dev, curl, run_mcctl};

/// `openssl s_client` to `addr`: the served chain (PEM, leaf first) and the
/// verification result against `ca`.
fn served(addr: &str, ca: &str) -> (String, String) {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            addr,
            "-servername",
            "localhost",
            "-showcerts",
            "-CAfile",
            ca,
            "-verify_return_error",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("openssl");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn openssl_in(dir: &Path, args: &[&str], stdin: &str) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(args).current_dir(dir);
    let out = crate::support::run_with_stdin(cmd, stdin);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {args:?}: {text}");
    text
}

/// A serial (hex, any case, `:` allowed) as `openssl x509 -serial` prints
/// it: uppercase, without the zero bytes DER drops.
fn openssl_serial(hex: &str) -> String {
    let mut s = hex.replace(':', "").to_ascii_uppercase();
    while s.len() > 2 && s.starts_with("00") {
        s.drain(..2);
    }
    s
}

/// The leaf of an `s_client -showcerts` transcript.
fn leaf(transcript: &str) -> String {
    let start = transcript
        .find("-----BEGIN CERTIFICATE-----")
        .expect("a certificate was served");
    let end = transcript[start..]
        .find("-----END CERTIFICATE-----")
        .expect("end")
        + start
        + "-----END CERTIFICATE-----".len();
    format!("{}\n", &transcript[start..end])
}

fn mcctl_ok(endpoints: &Path, args: &[&str], stdin: &str) -> Value {
    let out = run_mcctl(endpoints, args, stdin);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
}

#[test]
fn dev_pki_serves_a_metacrypt_certificate_and_mcctl_issues_from_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = Dev::start(dir.path(), None);
    let ca = dev.ca();
    let pki = &dev.endpoints["dev_pki"];
    assert_eq!(
        (
            pki["mount"].as_str(),
            pki["role"].as_str(),
            pki["ca_cert"].as_str()
        ),
        (Some("dev-pki"), Some("dev"), Some(ca.as_str())),
        "{}",
        dev.endpoints
    );
    let serial = openssl_serial(pki["controlplane_serial"].as_str().expect("serial"));
    let rest = dev.endpoints["controlplane"]["rest"]
        .as_str()
        .expect("rest")
        .to_owned();
    let addr = rest.trim_start_matches("https://").to_owned();

    // The served chain verifies against the CA mcd dev reports, and its leaf
    // is the one Metacrypt issued (the swap happened before "ready").
    let (transcript, err) = served(&addr, &ca);
    assert!(
        transcript.contains("Verify return code: 0 (ok)"),
        "{transcript}{err}"
    );
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("work");
    let served_leaf = leaf(&transcript);
    let text = openssl_in(
        &work,
        &["x509", "-noout", "-serial", "-ext", "subjectAltName"],
        &served_leaf,
    );
    assert!(text.contains(&format!("serial={serial}")), "{text}");
    assert!(
        text.contains("DNS:localhost") && text.contains("IP Address:127.0.0.1"),
        "{text}"
    );
    std::fs::write(work.join("served.pem"), &served_leaf).expect("write");
    let v = openssl_in(&work, &["verify", "-CAfile", &ca, "served.pem"], "");
    assert!(v.contains("served.pem: OK"), "{v}");
    let (code, body) = curl(&["--cacert", &ca, &format!("{rest}/healthz")]);
    assert_eq!(code, 200, "{body}");

    // mcctl, logged in as the bootstrap admin, issues from the dev mount
    // with no other setup; the certificate chains to the same CA.
    let endpoints = dev.data_dir.join("endpoints.json");
    let password = format!(
        "{}\n",
        dev.endpoints["bootstrap"]["password"]
            .as_str()
            .expect("password")
    );
    let user = dev.endpoints["bootstrap"]["username"]
        .as_str()
        .expect("user");
    mcctl_ok(
        &endpoints,
        &["login", "--username", user, "--json"],
        &password,
    );
    let certs = mcctl_ok(
        &endpoints,
        &["crypt", "pki", "certs", "dev-pki", "--json"],
        "",
    );
    let listed = certs.to_string().to_ascii_uppercase();
    assert!(
        listed.contains(
            &pki["controlplane_serial"]
                .as_str()
                .expect("serial")
                .to_ascii_uppercase()
        ),
        "the served serial is the mount's: {certs}"
    );
    let issued = mcctl_ok(
        &endpoints,
        &[
            "crypt",
            "pki",
            "issue",
            "dev-pki",
            "dev",
            "--common-name",
            "app.test",
            "--alt-name",
            "api.localhost",
            "--json",
        ],
        "",
    );
    let cert = issued["certificate"].as_str().expect("certificate");
    std::fs::write(work.join("app.pem"), cert).expect("write");
    let v = openssl_in(&work, &["verify", "-CAfile", &ca, "app.pem"], "");
    assert!(v.contains("app.pem: OK"), "{v}");
    let out = run_mcctl(
        &endpoints,
        &[
            "crypt",
            "pki",
            "issue",
            "dev-pki",
            "dev",
            "--common-name",
            "app.example.com",
        ],
        "",
    );
    assert!(
        !out.status.success(),
        "a name outside the dev role is refused"
    );

    // A restart keeps the certificate (two thirds of its life are left).
    let (status, _) = dev.stop(rustix::process::Signal::TERM);
    assert!(status.success(), "{status}");
    let again = Dev::start(dir.path(), None);
    assert_eq!(
        again.endpoints["dev_pki"]["controlplane_serial"]
            .as_str()
            .map(openssl_serial),
        Some(serial.clone()),
        "{}",
        again.endpoints
    );
    let (transcript, err) = served(&addr, &ca);
    let text = openssl_in(&work, &["x509", "-noout", "-serial"], &leaf(&transcript));
    assert!(text.contains(&format!("serial={serial}")), "{text}{err}");
}
