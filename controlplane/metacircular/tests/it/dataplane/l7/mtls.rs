//! Client certificates on L7 routes: a certificate from the route's CA
//! reaches the backend, which sees the identity in X-Forwarded-Client-Cert;
//! no certificate or one from another CA is refused in the handshake; a
//! client's own X-Forwarded-Client-Cert never reaches a backend.

use super::backends::Backends;
use super::{Pki, Site, add_l7, curl, route};

/// The backend's `x-forwarded-client-cert` lines in a `/headers` echo.
fn xfcc(body: &str) -> Vec<&str> {
    body.lines()
        .filter_map(|l| l.strip_prefix("x-forwarded-client-cert: "))
        .collect()
}

fn client_certificates_verified_and_identity_passed(io: &str) {
    let site = Site::new();
    let (client, client_key, _) = site.pki.leaf("client", &["client.example"]);
    let other_dir = site.dir.path().join("other");
    std::fs::create_dir(&other_dir).expect("dir");
    let other = Pki::new(&other_dir);
    let (intruder, intruder_key, _) = other.leaf("intruder", &["client.example"]);
    let backends = Backends::new();
    let plain = backends.http("plain");
    let ca = site.pki.ca();
    let routes = [
        route(
            "mtls.l7.test",
            plain,
            &format!("certificate = \"site\", client_ca_file = \"{ca}\""),
        ),
        route("open.l7.test", plain, "certificate = \"site\""),
    ]
    .concat();
    let (dp, proxy) = site.start(io, &routes);
    let with_cert = ["--cert", client.as_str(), "--key", client_key.as_str()];
    let forged = "X-Forwarded-Client-Cert: Hash=00;Subject=\"CN=admin\"";

    for version in ["--http2", "--http1.1"] {
        let mut args = vec![version, "-H", forged];
        args.extend(with_cert);
        let (code, body) = curl(proxy, &ca, "mtls.l7.test", "/headers", &args);
        assert_eq!(code, 200, "{version}: {body}");
        let seen = xfcc(&body);
        assert_eq!(seen.len(), 1, "exactly the proxy's header: {body}");
        assert!(
            seen[0].starts_with("Hash=")
                && seen[0].contains(";Subject=\"CN=client leaf\"")
                && seen[0].contains(";DNS=\"client.example\"")
                && !seen[0].contains("admin"),
            "{version}: {}",
            seen[0]
        );
        // Without a certificate, or with one from another CA: no HTTP at all.
        let (code, body) = curl(proxy, &ca, "mtls.l7.test", "/headers", &[version]);
        assert_eq!(code, 0, "no certificate is refused: {body}");
        let (code, body) = curl(
            proxy,
            &ca,
            "mtls.l7.test",
            "/headers",
            &[version, "--cert", &intruder, "--key", &intruder_key],
        );
        assert_eq!(code, 0, "another CA's certificate is refused: {body}");
        // A route without client certificates drops the forged header too.
        let (code, body) = curl(
            proxy,
            &ca,
            "open.l7.test",
            "/headers",
            &[version, "-H", forged],
        );
        assert_eq!(code, 200, "{body}");
        assert!(xfcc(&body).is_empty(), "{body}");
    }

    // Requested, not required, through mcctl: clients without a
    // certificate are served without an identity.
    let optional = ["--client-ca", ca.as_str(), "--client-cert-optional"];
    let out = add_l7(&dp, "optional.l7.test", plain, &optional);
    assert!(out.status.success(), "{out:?}");
    let (code, body) = curl(proxy, &ca, "optional.l7.test", "/headers", &["-H", forged]);
    assert_eq!(code, 200, "{body}");
    assert!(xfcc(&body).is_empty(), "{body}");
    let (code, body) = curl(proxy, &ca, "optional.l7.test", "/headers", &with_cert);
    assert_eq!(code, 200, "{body}");
    assert_eq!(xfcc(&body).len(), 1, "{body}");
    let (code, _) = curl(
        proxy,
        &ca,
        "optional.l7.test",
        "/headers",
        &["--cert", &intruder, "--key", &intruder_key],
    );
    assert_eq!(code, 0, "a certificate that is offered must verify");

    // A CA that is not PEM is refused by name; nothing changes.
    let bogus = site.dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").expect("write");
    let bogus = bogus.display().to_string();
    let out = add_l7(
        &dp,
        "optional.l7.test",
        plain,
        &["--replace", "--client-ca", &bogus],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("client_ca_pem"),
        "{err}"
    );
    let (code, _) = curl(proxy, &ca, "optional.l7.test", "/headers", &[]);
    assert_eq!(code, 200, "the route is unchanged");
}
both_drivers!(client_certificates_verified_and_identity_passed);
