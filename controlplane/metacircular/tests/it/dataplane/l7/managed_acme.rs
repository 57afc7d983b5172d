//! Managed certificates from an ACME CA, end to end on both I/O drivers:
//! Metacrypt's ACME server (`mcd controlplane`, a pki mount serving role
//! `web` with EAB) is the CA; `mcd dataplane` is the client, answering
//! HTTP-01 on its own plain-HTTP listener (the validator resolves
//! `app.acme.test` through the same data plane's MCNS zone and connects to
//! the listener's port). `openssl s_client -verify_return_error` verifies the
//! served chain against the mount's root; a renewal (the stored account,
//! the single-use EAB key already spent) changes the serial under a curl
//! loop with no failed request. Bad input is refused, naming the field.

use serde_json::{Value, json};

use super::backends::Backends;
use super::managed::{Load, add_acme, entry_of, ok, route_to, served_serial_of};
use crate::controlplane::iam::Controlplane;

const HOST: &str = "app.acme.test";

/// Metacrypt with a pki mount whose role `web` is served over ACME, with
/// HTTP-01 validation sent to `http_port` on what `resolver` answers.
/// (control plane, root PEM path, directory URL, EAB key id, EAB HMAC key).
fn acme_ca(
    d: &std::path::Path,
    http_port: u16,
    resolver: u16,
) -> (Controlplane, String, String, String, String) {
    let cp = Controlplane::start(
        d,
        "[metacrypt]\nargon2_memory_kib = 19456\nargon2_iterations = 2\n",
    );
    let admin = cp.token("admin", &cp.password);
    let call = |method: &str, path: &str, body: Value| ok(&cp, &admin, method, path, body);
    call(
        "POST",
        "/v1/crypt/sys/init",
        json!({"passphrase": "an ACME source passphrase"}),
    );
    call(
        "POST",
        "/v1/crypt/sys/mounts",
        json!({"name": "pki", "type": "pki"}),
    );
    call(
        "POST",
        "/v1/crypt/pki/root/generate",
        json!({"common_name": "ACME Source Test Root"}),
    );
    call(
        "POST",
        "/v1/crypt/pki/roles/web",
        json!({"allowed_domains": ["acme.test"], "allow_subdomains": true, "ttl": "1h"}),
    );
    call(
        "PATCH",
        "/v1/crypt/sys/mounts/pki",
        json!({"config": {"acme": {"roles": ["web"], "http_port": http_port,
            "resolver": format!("127.0.0.1:{resolver}"), "timeout": 5}}}),
    );
    let e = call("POST", "/v1/crypt/pki/acme/web/eab", json!({}));
    let (kid, hmac) = (
        e["key_id"].as_str().expect("kid").to_owned(),
        e["hmac_key"].as_str().expect("hmac").to_owned(),
    );
    let (code, pem) =
        crate::support::curl(&["--cacert", &cp.ca, &format!("{}/v1/pki/pki/ca", cp.rest)]);
    assert_eq!(code, 200, "{pem}");
    let root = d.join("acme-root.pem");
    std::fs::write(&root, pem).expect("root");
    let directory = format!("{}/v1/acme/pki/web/directory", cp.rest);
    (cp, root.display().to_string(), directory, kid, hmac)
}

fn managed_certificate_from_acme_via_http01_on_the_plain_listener(io: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cp_dir, dp_dir) = (dir.path().join("cp"), dir.path().join("dp"));
    std::fs::create_dir_all(&cp_dir).expect("dir");
    std::fs::create_dir_all(&dp_dir).expect("dir");
    let (tls, plain) = (crate::peers::free_port(), crate::peers::free_port());
    let dns = crate::dataplane::dns::free_dns_port();
    let (cp, root, directory, kid, hmac) = acme_ca(&cp_dir, plain, dns);
    let backends = Backends::new();
    let app = backends.http("app");
    let toml = format!(
        "certificate_authorities = [\"{root}\"]\n\
         [proxy.acme]\nca_cert = \"{ca}\"\n\
         [[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{tls}\"\n\
         [[proxy.listeners]]\nname = \"plain\"\naddress = \"127.0.0.1:{plain}\"\nkind = \"http\"\n\
         [dns]\nlisten = [\"127.0.0.1:{dns}\"]\n\
         [[dns.zones]]\nname = \"acme.test\"\nrecords = [\"app A 127.0.0.1\"]\n",
        ca = cp.ca,
    );
    let dp = crate::peers::Dataplane::start(&dp_dir, io, &toml);
    let proxy = dp.listen("public");
    let hmac_file = dp_dir.join("eab.hmac");
    std::fs::write(&hmac_file, format!("{hmac}\n")).expect("hmac");
    let hmac_path = hmac_file.display().to_string();

    // Refused, naming the field, storing nothing: a non-https directory,
    // a mount beside a directory, an EAB key id without its HMAC key.
    let bad = add_acme(&dp, HOST, "http://127.0.0.1:1/directory", &[]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("acme_directory"),
        "{bad:?}"
    );
    for extra in [["--mount", "pki"], ["--eab-kid", kid.as_str()]] {
        let out = add_acme(&dp, HOST, &directory, &extra);
        assert!(!out.status.success(), "{extra:?} {out:?}");
    }
    assert_eq!(entry_of(&dp, HOST), Value::Null, "nothing stored");

    // Issued at once: account (EAB), order, HTTP-01 on the plain
    // listener, finalize. openssl verifies the chain against the root.
    let out = add_acme(
        &dp,
        HOST,
        &directory,
        &["--eab-kid", &kid, "--eab-hmac-file", &hmac_path, "--json"],
    );
    assert!(out.status.success(), "{out:?}");
    let added = String::from_utf8_lossy(&out.stdout);
    assert!(added.contains(&format!("acme:{directory}")), "{added}");
    let entry = entry_of(&dp, HOST);
    assert_eq!(entry["managed"]["failures"], 0, "{entry}");
    route_to(&dp, HOST, app);
    let first = served_serial_of(proxy, &root, HOST);
    assert!(
        !first.is_empty(),
        "the served chain verifies against the root"
    );
    // No challenge is open once the order ends: a challenge path is
    // redirected to https like any other request for the name.
    let (code, _) = crate::support::curl(&[
        "--resolve",
        &format!("{HOST}:{plain}:127.0.0.1"),
        &format!("http://{HOST}:{plain}/.well-known/acme-challenge/x"),
    ]);
    assert_eq!(code, 308);

    // Renewed under load, with the stored account (the EAB key is spent):
    // a new serial, no failed request.
    let load = Load::start(proxy, &root, HOST);
    let renewed = dp.ok(&["proxy", "certs", "managed", "renew", HOST, "--json"]);
    let second = served_serial_of(proxy, &root, HOST);
    let (good, failed) = load.stop();
    assert!(
        !second.is_empty() && second != first,
        "{first} → {second}: {renewed}"
    );
    assert_eq!(failed, 0, "no request failed across the renewal");
    assert!(good > 0);
    let entry = entry_of(&dp, HOST);
    assert_eq!(entry["managed"]["failures"], 0, "{entry}");
    assert!(
        entry["managed"]["next_renewal_unix"].as_i64() < entry["not_after_unix"].as_i64(),
        "{entry}"
    );
}

#[test]
fn managed_acme_http01_io_uring() {
    managed_certificate_from_acme_via_http01_on_the_plain_listener("auto");
}

#[test]
fn managed_acme_http01_epoll() {
    managed_certificate_from_acme_via_http01_on_the_plain_listener("off");
}
