//! pebble (Debian's, the reference ACME server; `PEBBLE_VA_ALWAYS_VALID`
//! unset, so it really validates) beside MC-Proxy: its validator resolves
//! `*.pebble.test` through the data plane's own MCNS zone and connects to
//! the proxy's plain-HTTP listener (pebble's `httpPort`).
//!
//! - `lego --http` completes through the plain listener: the challenge is
//!   relayed to lego's own server by the hostname's route on that listener
//!   (issue 18's acceptance line); `openssl verify` accepts the result
//!   against pebble's root.
//! - The proxy's ACME source obtains a managed certificate from pebble,
//!   HTTP-01 answered by the listener itself; `openssl s_client
//!   -verify_return_error` verifies the served chain against pebble's root.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Pki;
use super::backends::Backends;
use super::managed::{add_acme, entry_of, route_to, served_serial_of};
use crate::peers::free_port;

/// A running pebble; killed when dropped.
struct Pebble {
    child: Child,
    directory: String,
    /// pebble's issuing root (fetched from its management API).
    root: String,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Pebble {
    /// pebble on free ports with a TLS certificate from `pki`, validating
    /// HTTP-01 on `http_port` of what `dns` (an `ip:port`) resolves.
    fn start(d: &Path, pki: &Pki, http_port: u16, dns: &str) -> Self {
        let (acme, mgmt, tls) = (free_port(), free_port(), free_port());
        let (chain, key, _) = pki.leaf("pebble", &["127.0.0.1", "localhost"]);
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt}"),
            "certificate": chain, "privateKey": key,
            "httpPort": http_port, "tlsPort": tls,
            "ocspResponderURL": "", "externalAccountBindingRequired": false,
        }});
        let path = d.join("pebble.json");
        std::fs::write(&path, config.to_string()).expect("pebble config");
        let child = Command::new("pebble")
            .arg("-config")
            .arg(&path)
            .args(["-dnsserver", dns])
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble is installed (scripts/test installs it)");
        let me = Self {
            child,
            directory: format!("https://127.0.0.1:{acme}/dir"),
            root: d.join("pebble-root.pem").display().to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (code, _) = crate::support::curl(&["--cacert", &pki.ca(), &me.directory]);
            if code == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "pebble did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let (code, root) = crate::support::curl(&[
            "--cacert",
            &pki.ca(),
            &format!("https://127.0.0.1:{mgmt}/roots/0"),
        ]);
        assert_eq!(code, 200, "{root}");
        std::fs::write(&me.root, root).expect("root");
        me
    }
}

#[test]
fn pebble_lego_through_the_plain_listener_and_the_proxys_acme_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let pki = Pki::new(d);
    let (tls, plain, lego_port) = (free_port(), free_port(), free_port());
    let dns = crate::dataplane::dns::free_dns_port();
    let pebble = Pebble::start(d, &pki, plain, &format!("127.0.0.1:{dns}"));
    let backends = Backends::new();
    let app = backends.http("app");
    let dp_dir = d.join("dp");
    std::fs::create_dir_all(&dp_dir).expect("dir");
    let toml = format!(
        "certificate_authorities = [\"{root}\"]\n\
         [proxy.acme]\nca_cert = \"{ca}\"\n\
         [[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{tls}\"\n\
         [[proxy.listeners]]\nname = \"plain\"\naddress = \"127.0.0.1:{plain}\"\nkind = \"http\"\n\
         [[proxy.routes]]\nlistener = \"plain\"\nhostname = \"lego.pebble.test\"\nbackends = [\"127.0.0.1:{lego_port}\"]\n\
         [dns]\nlisten = [\"127.0.0.1:{dns}\"]\n\
         [[dns.zones]]\nname = \"pebble.test\"\nrecords = [\"lego A 127.0.0.1\", \"app A 127.0.0.1\"]\n",
        root = pebble.root,
        ca = pki.ca(),
    );
    let dp = crate::peers::Dataplane::start(&dp_dir, "auto", &toml);
    let proxy = dp.listen("public");

    // lego's own challenge server, reached through the plain listener's
    // route for its hostname.
    let out = Command::new("lego")
        .args(["--server", &pebble.directory, "--email", "ops@pebble.test"])
        .args([
            "--accept-tos",
            "--path",
            "lego",
            "--domains",
            "lego.pebble.test",
        ])
        .args([
            "--http",
            "--http.port",
            &format!("127.0.0.1:{lego_port}"),
            "run",
        ])
        .env("LEGO_CA_CERTIFICATES", pki.ca())
        .current_dir(d)
        .output()
        .expect("lego is installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let certs = d.join("lego/certificates");
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile", &pebble.root, "-untrusted"])
        .arg(certs.join("lego.pebble.test.issuer.crt"))
        .arg(certs.join("lego.pebble.test.crt"))
        .output()
        .expect("openssl");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // The proxy's own ACME source: HTTP-01 answered by the plain listener
    // itself (no route for the name there).
    let host = "app.pebble.test";
    let out = add_acme(&dp, host, &pebble.directory, &["--json"]);
    assert!(out.status.success(), "{out:?}");
    let added = String::from_utf8_lossy(&out.stdout);
    assert!(added.contains("acme:https://127.0.0.1"), "{added}");
    let entry = entry_of(&dp, host);
    assert_eq!(entry["managed"]["failures"], 0, "{entry}");
    route_to(&dp, host, app);
    let serial = served_serial_of(proxy, &pebble.root, host);
    assert!(
        !serial.is_empty(),
        "the served chain verifies against pebble's root"
    );
}
