//! Metacrypt's ssh engine (SSH CA) end to end with OpenSSH: `mcd
//! controlplane` signs user and host certificates; a real `sshd` on a
//! 127.0.0.1 port trusts the CA key and reads the KRL, both fetched from
//! the public routes without a token, and an `AuthorizedPrincipalsFile`.
//! `ssh` logs in with a certificate for an allowed principal and runs a
//! command; it is refused with a certificate for another principal, an
//! expired one and revoked ones (by serial and by key id). `ssh-keygen -L`
//! shows the fields; the host certificate is accepted through an
//! `@cert-authority` known_hosts line; profile violations are 400 and
//! change nothing; `mcctl crypt ssh` makes the host profile and signs the
//! host key over gRPC.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::crypt::{PASSPHRASE, endpoints, mcctl_json, start};
use super::iam::Controlplane;

fn ok(answer: (u16, Value)) -> Value {
    assert_eq!(answer.0, 200, "{}", answer.1);
    answer.1
}

/// A public route's bytes (no token) into `file`.
fn download(cp: &Controlplane, path: &str, file: &Path) {
    let url = format!("{}{path}", cp.rest);
    let out = Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "--max-time",
            "10",
            "--cacert",
            &cp.ca,
            "-o",
        ])
        .arg(file)
        .arg(&url)
        .output()
        .expect("curl");
    assert!(out.status.success(), "{path}: {out:?}");
}

fn keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen (scripts/test installs openssh-client)");
    assert!(out.status.success(), "{out:?}");
    path
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read")
}

/// `sshd -D -e` on `port`, killed on drop.
struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sshd(dir: &Path, port: u16) -> Sshd {
    // Privilege separation needs this directory when sshd runs as root.
    let _ = std::fs::create_dir_all("/run/sshd");
    let d = dir.display();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\nHostCertificate {d}/host-cert.pub\n\
         TrustedUserCAKeys {d}/ca.pub\nRevokedKeys {d}/revoked.krl\n\
         AuthorizedPrincipalsFile {d}/principals\nAuthorizedKeysFile none\n\
         PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         UsePAM no\nStrictModes no\nPidFile none\nPermitRootLogin prohibit-password\nLogLevel VERBOSE\n"
    );
    std::fs::write(dir.join("sshd_config"), config).expect("config");
    let log = std::fs::File::create(dir.join("sshd.log")).expect("log");
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("sshd (scripts/test installs openssh-server)");
    let sshd = Sshd(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "sshd did not listen: {}",
            text(&dir.join("sshd.log"))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sshd
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `ssh` with key `key` and its certificate `cert`, trusting hosts only
/// through the known_hosts `@cert-authority` line; (success, output).
fn ssh(dir: &Path, port: u16, key: &Path, cert: &Path) -> (bool, String) {
    let out = Command::new("ssh")
        .args(["-F", "/dev/null", "-p", &port.to_string(), "-i"])
        .arg(key)
        .arg("-o")
        .arg(format!("CertificateFile={}", cert.display()))
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            dir.join("known_hosts").display()
        ))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "AddressFamily=inet",
            "-o",
            "ConnectTimeout=10",
        ])
        .arg(format!("{}@localhost", whoami()))
        .arg("echo metacircular-ssh-$((6*7))")
        .stdin(Stdio::null())
        .output()
        .expect("ssh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && text.contains("metacircular-ssh-42"),
        text,
    )
}

/// Signs `key`'s public half under `profile`; writes `<key>-cert.pub`.
fn sign(
    cp: &Controlplane,
    token: &str,
    key: &Path,
    profile: &str,
    extra: Value,
) -> (Value, PathBuf) {
    let mut body = json!({"public_key": text(&key.with_extension("pub"))});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let signed = ok(cp.call(
        "POST",
        &format!("/v1/crypt/ssh/sign-key/{profile}"),
        Some(token),
        Some(body),
    ));
    let cert = PathBuf::from(format!("{}-cert.pub", key.display()));
    std::fs::write(
        &cert,
        format!("{}\n", signed["certificate"].as_str().expect("cert")),
    )
    .expect("cert");
    (signed, cert)
}

#[test]
fn crypt_ssh_sshd_trusts_the_ca_and_the_krl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let cp = start(d);
    let admin = cp.token("admin", &cp.password);
    ok(cp.call(
        "POST",
        "/v1/crypt/sys/init",
        Some(&admin),
        Some(json!({"passphrase": PASSPHRASE})),
    ));
    ok(cp.call(
        "POST",
        "/v1/crypt/sys/mounts",
        Some(&admin),
        Some(json!({"name": "ssh", "type": "ssh"})),
    ));
    let ca = ok(cp.call(
        "POST",
        "/v1/crypt/ssh/ca",
        Some(&admin),
        Some(json!({"key_type": "ed25519"})),
    ));
    ok(cp.call(
        "POST",
        "/v1/crypt/ssh/profiles/ops",
        Some(&admin),
        Some(
            json!({"allowed_principals": ["alice", "deploy-*"], "ttl": "10m", "max_ttl": "1h",
            "allowed_extensions": ["permit-pty"]}),
        ),
    ));

    // The host profile and host certificate through mcctl (gRPC).
    let ep = endpoints(d, &cp);
    let host = keygen(d, "host");
    mcctl_json(
        &ep,
        &["login", "--username", "admin", "--json"],
        &format!("{}\n", cp.password),
    );
    let cli = |args: &[&str]| {
        let mut all = vec!["crypt", "ssh"];
        all.extend_from_slice(args);
        all.push("--json");
        mcctl_json(&ep, &all, "")
    };
    let p = cli(&[
        "profile-put",
        "ssh",
        "hosts",
        "--cert-type",
        "host",
        "--allowed-principal",
        "localhost",
        "--max-ttl",
        "24h",
    ]);
    assert_eq!(p["cert_type"], "host", "{p}");
    let host_cert = d.join("host-cert.pub");
    let hc = cli(&[
        "sign",
        "ssh",
        "hosts",
        "--public-key-file",
        &host.with_extension("pub").display().to_string(),
        "--principal",
        "localhost",
        "--ttl",
        "1h",
        "--out",
        &host_cert.display().to_string(),
    ]);
    assert_eq!(hc["principals"], json!(["localhost"]), "{hc}");

    // sshd's files: the CA key and the KRL from the public routes, no token.
    download(&cp, "/v1/ssh/ssh/ca", &d.join("ca.pub"));
    assert_eq!(
        text(&d.join("ca.pub")).trim(),
        ca["public_key"].as_str().expect("key")
    );
    download(&cp, "/v1/ssh/ssh/krl", &d.join("revoked.krl"));
    std::fs::write(d.join("principals"), "alice\n").expect("principals");
    let port = crate::peers::free_port();
    std::fs::write(
        d.join("known_hosts"),
        format!(
            "@cert-authority [localhost]:{port} {}\n",
            text(&d.join("ca.pub")).trim()
        ),
    )
    .expect("known_hosts");
    let _sshd = start_sshd(d, port);

    // An allowed principal logs in and runs a command; ssh-keygen -L shows the fields.
    let alice = keygen(d, "alice");
    let (signed, alice_cert) = sign(
        &cp,
        &admin,
        &alice,
        "ops",
        json!({"principals": ["alice"], "key_id": "alice-laptop"}),
    );
    let (good, out) = ssh(d, port, &alice, &alice_cert);
    assert!(good, "{out}\n{}", text(&d.join("sshd.log")));
    let listed = Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(&alice_cert)
        .output()
        .expect("ssh-keygen -L");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    for needle in [
        "ssh-ed25519-cert-v01@openssh.com user certificate".to_owned(),
        format!("Serial: {}", signed["serial"]),
        "Key ID: \"alice-laptop\"".to_owned(),
        "alice".to_owned(),
        "permit-pty".to_owned(),
    ] {
        assert!(listed.contains(&needle), "{needle:?} not in {listed}");
    }
    let host_listed = Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(&host_cert)
        .output()
        .expect("-L");
    assert!(String::from_utf8_lossy(&host_listed.stdout).contains("host certificate"));

    // Another principal (allowed by the profile, not by sshd's file): refused.
    let deploy = keygen(d, "deploy");
    let (_, deploy_cert) = sign(
        &cp,
        &admin,
        &deploy,
        "ops",
        json!({"principals": ["deploy-web"]}),
    );
    let (good, out) = ssh(d, port, &deploy, &deploy_cert);
    assert!(!good && out.contains("Permission denied"), "{out}");

    // Expired: a one-second certificate, used once it has expired.
    let late = keygen(d, "late");
    let (signed, late_cert) = sign(
        &cp,
        &admin,
        &late,
        "ops",
        json!({"principals": ["alice"], "ttl": 1}),
    );
    let expiry = signed["valid_before"].as_u64().expect("valid_before");
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_secs())
        .unwrap_or_default()
        <= expiry + 1
    {
        std::thread::sleep(Duration::from_millis(250));
    }
    let (good, out) = ssh(d, port, &late, &late_cert);
    assert!(!good && out.contains("Permission denied"), "{out}");
    // Tidy (mcctl) removes the expired certificate's record, and only it.
    let late_serial = signed["serial"].clone();
    let tidied = cli(&["tidy", "ssh"]);
    assert_eq!(tidied["removed"], 1, "{tidied}");
    let issued = ok(cp.call("GET", "/v1/crypt/ssh/issued", Some(&admin), None));
    let serials = issued["serials"].as_array().cloned().unwrap_or_default();
    assert!(!serials.contains(&late_serial), "{issued}");
    assert_eq!(serials.len(), 3, "host, alice, deploy: {issued}");

    // Revoked by serial and by key id: after the KRL is fetched again, refused.
    let bob = keygen(d, "bob");
    let (bob_signed, bob_cert) = sign(&cp, &admin, &bob, "ops", json!({"principals": ["alice"]}));
    let carol = keygen(d, "carol");
    let (_, carol_cert) = sign(
        &cp,
        &admin,
        &carol,
        "ops",
        json!({"principals": ["alice"], "key_id": "carol-lost-laptop"}),
    );
    assert!(ssh(d, port, &bob, &bob_cert).0);
    assert!(ssh(d, port, &carol, &carol_cert).0);
    let r = ok(cp.call(
        "POST",
        "/v1/crypt/ssh/krl/revoke",
        Some(&admin),
        Some(json!({"serials": [bob_signed["serial"]], "key_ids": ["carol-lost-laptop"]})),
    ));
    assert_eq!(r["krl_version"], 2, "{r}");
    download(&cp, "/v1/ssh/ssh/krl", &d.join("revoked.krl"));
    let (good, out) = ssh(d, port, &bob, &bob_cert);
    assert!(!good, "{out}");
    let (good, out) = ssh(d, port, &carol, &carol_cert);
    assert!(!good, "{out}");
    let (good, out) = ssh(d, port, &alice, &alice_cert);
    assert!(good, "{out}");
    let log = text(&d.join("sshd.log"));
    assert!(log.contains("revoked"), "{log}");

    // Profile violations: 400 naming the reason; nothing signed.
    let before = ok(cp.call("GET", "/v1/crypt/ssh/issued", Some(&admin), None));
    let refused = |extra: Value, needle: &str| {
        let mut body = json!({"public_key": text(&alice.with_extension("pub"))});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (code, answer) = cp.call(
            "POST",
            "/v1/crypt/ssh/sign-key/ops",
            Some(&admin),
            Some(body),
        );
        assert_eq!(code, 400, "{answer}");
        let e = answer["error"].as_str().unwrap_or_default();
        assert!(e.contains(needle), "{needle:?} not in {e}");
    };
    refused(
        json!({"principals": ["root"]}),
        "not allowed by the profile",
    );
    refused(json!({"principals": ["alice"], "ttl": "2h"}), "max_ttl");
    refused(
        json!({"principals": ["alice"], "extensions": ["permit-agent-forwarding"]}),
        "not allowed",
    );
    assert_eq!(
        ok(cp.call("GET", "/v1/crypt/ssh/issued", Some(&admin), None)),
        before
    );

    // Without a rule an account gets 403; the public routes need no token.
    cp.create_user(&admin, "mallory", "mallory's long password");
    let mallory = cp.token("mallory", "mallory's long password");
    let (code, _) = cp.call(
        "POST",
        "/v1/crypt/ssh/sign-key/ops",
        Some(&mallory),
        Some(json!({"public_key": text(&alice.with_extension("pub")), "principals": ["alice"]})),
    );
    assert_eq!(code, 403);

    // Sealed: engine routes answer 503, the CA key and the KRL are still served.
    ok(cp.call("POST", "/v1/crypt/sys/seal", Some(&admin), None));
    let (code, _) = cp.call("GET", "/v1/crypt/ssh/ca", Some(&admin), None);
    assert_eq!(code, 503);
    download(&cp, "/v1/ssh/ssh/ca", &d.join("ca-sealed.pub"));
    assert_eq!(text(&d.join("ca-sealed.pub")), text(&d.join("ca.pub")));
    download(&cp, "/v1/ssh/ssh/krl", &d.join("sealed.krl"));
    assert_eq!(
        std::fs::read(d.join("sealed.krl")).ok(),
        std::fs::read(d.join("revoked.krl")).ok()
    );
}
