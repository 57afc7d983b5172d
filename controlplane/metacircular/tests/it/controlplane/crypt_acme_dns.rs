//! ACME dns-01 end to end through the platform's own DNS: MCNS (`mcd
//! dataplane`) serves `example.test` and takes RFC 2136 UPDATEs signed with
//! a TSIG key from its config; the stock `rfc2136` DNS providers of lego
//! (Debian's) and certbot (`python3-certbot-dns-rfc2136`) put the
//! `_acme-challenge` TXT record there, Metacrypt's ACME validates dns-01
//! through MCNS (the mount's `acme.resolver`), and `openssl verify` accepts
//! the certificates against the public CA route. A wildcard name is issued
//! through dns-01 and refused to a client offering only http-01.

use std::process::Command;

use serde_json::json;

use super::crypt_acme::{
    certbot, eab, free_port, lego, lego_env, serve_acme, start_mcns, verify_issued,
};
use super::crypt_pki::{ok, start_with_pki_mount};

/// The UPDATE key's secret (32 bytes, base64), hmac-sha256.
const SECRET: &str = "YWNtZS11cGRhdGUta2V5LWZvci1leGFtcGxlLnRlc3Q=";

/// The TXT values at `name` as MCNS answers them.
fn txt(port: u16, name: &str) -> String {
    let out = Command::new("dig")
        .args(["+short", "+norec", "-p", &port.to_string(), "@127.0.0.1"])
        .args([name, "TXT"])
        .output()
        .expect("dig is installed (bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn serial(port: u16) -> u32 {
    let out = Command::new("dig")
        .args(["+short", "+norec", "-p", &port.to_string(), "@127.0.0.1"])
        .args(["example.test", "SOA"])
        .output()
        .expect("dig");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no SOA: {text}"))
}

#[test]
fn crypt_acme_dns01_lego_and_certbot_rfc2136_through_mcns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (_dp, dns) = start_mcns(
        d,
        &format!(
            "[[dns.tsig_keys]]\nname = \"acme-upd\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\nupdate_zones = [\"example.test\"]\n\
             [[dns.zones]]\nname = \"example.test\"\nnameservers = [\"ns1.example.test\"]\nrecords = [\"ns1 A 127.0.0.1\"]\n"
        ),
    );
    let (cp, admin) = start_with_pki_mount(d);
    ok(cp.call(
        "POST",
        "/v1/crypt/pki/root/generate",
        Some(&admin),
        Some(json!({"common_name": "DNS-01 Test Root"})),
    ));
    ok(cp.call(
        "POST",
        "/v1/crypt/pki/roles/web",
        Some(&admin),
        Some(
            json!({"allowed_domains": ["example.test"], "allow_subdomains": true,
                    "allow_wildcard": true, "ttl": "1h"}),
        ),
    ));
    let http_port = free_port();
    serve_acme(
        &cp,
        &admin,
        json!({"roles": ["web"], "http_port": http_port, "resolver": format!("127.0.0.1:{dns}"), "timeout": 5}),
    );
    let (_, ca) =
        crate::support::curl(&["--cacert", &cp.ca, &format!("{}/v1/pki/pki/ca", cp.rest)]);
    std::fs::write(d.join("acme-ca.pem"), ca).expect("ca");
    let s0 = serial(dns);

    // A wildcard is offered dns-01 only: lego with just an http-01 solver fails.
    let http = format!("127.0.0.1:{http_port}");
    let resolver = format!("127.0.0.1:{dns}");
    for (path, solver) in [
        ("lego-http", ["--http", "--http.port", &http, "run"]),
        ("lego", ["--dns", "rfc2136", "--dns.resolvers", &resolver]),
    ] {
        let (kid, hmac) = eab(&cp, &admin);
        let mut args = vec!["--path", path, "--eab", "--kid", &kid, "--hmac", &hmac];
        args.extend(["--domains", "*.example.test"]);
        args.extend(solver);
        if path == "lego-http" {
            // A wildcard is offered dns-01 only: an http-01 solver cannot.
            let (good, text) = lego(&cp, d, &args);
            assert!(
                !good && text.contains("could not determine solvers"),
                "{text}"
            );
            continue;
        }
        // lego's rfc2136 provider: UPDATE+TSIG into MCNS, no propagation wait
        // (MCNS answers at once; lego would ask port 53).
        args.extend(["--dns.disable-cp", "run"]);
        let (good, text) = lego_env(
            &cp,
            d,
            &args,
            &[
                ("RFC2136_NAMESERVER", resolver.as_str()),
                ("RFC2136_TSIG_KEY", "acme-upd"),
                ("RFC2136_TSIG_SECRET", SECRET),
                ("RFC2136_TSIG_ALGORITHM", "hmac-sha256."),
                ("RFC2136_PROPAGATION_TIMEOUT", "10"),
                ("RFC2136_POLLING_INTERVAL", "1"),
                ("RFC2136_SEQUENCE_INTERVAL", "1"),
            ],
        );
        assert!(good, "{text}");
    }
    verify_issued(d, "lego/certificates/_.example.test.crt", "*.example.test");
    // lego removed its TXT record through UPDATE as well.
    assert_eq!(txt(dns, "_acme-challenge.example.test"), "");
    let s1 = serial(dns);
    assert!(s1 >= s0 + 2, "an add and a delete: {s0} -> {s1}");

    // certbot's dns-rfc2136 plugin (TCP UPDATEs, a TSIG-signed SOA query).
    let (kid2, hmac2) = eab(&cp, &admin);
    let cb = d.join("certbot");
    std::fs::create_dir_all(&cb).expect("dir");
    let creds = cb.join("rfc2136.ini");
    std::fs::write(
        &creds,
        format!(
            "dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = {dns}\n\
             dns_rfc2136_name = acme-upd\ndns_rfc2136_secret = {SECRET}\n\
             dns_rfc2136_algorithm = HMAC-SHA256\n"
        ),
    )
    .expect("credentials");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (good, text) = certbot(
        &cp,
        &cb,
        &[
            "certonly",
            "--agree-tos",
            "-m",
            "ops@example.test",
            "--eab-kid",
            &kid2,
            "--eab-hmac-key",
            &hmac2,
            "--authenticator",
            "dns-rfc2136",
            "--dns-rfc2136-credentials",
            &creds.display().to_string(),
            "--dns-rfc2136-propagation-seconds",
            "1",
            "-d",
            "www.example.test",
        ],
    );
    assert!(good, "{text}");
    let cert = cb.join("etc/live/www.example.test/cert.pem");
    verify_issued(d, &cert.display().to_string(), "www.example.test");
    assert_eq!(txt(dns, "_acme-challenge.www.example.test"), "");
    assert!(serial(dns) >= s1 + 2);
}
