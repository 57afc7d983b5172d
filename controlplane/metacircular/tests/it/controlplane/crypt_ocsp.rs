//! Metacrypt's OCSP responder end to end (`mcd controlplane`, `openssl
//! ocsp`): a root and a role; `openssl ocsp -url` against the public
//! `/v1/pki/{mount}/ocsp` route reports an issued certificate good (the
//! response verified against the public CA, the nonce checked), revoked
//! after a revocation, and an unknown serial unknown; a GET with the
//! base64 request in the path answers the same; garbage is answered
//! `malformedRequest`.

use std::process::Command;

use base64::Engine as _;
use serde_json::json;

use super::crypt::{PASSPHRASE, start};
use super::crypt_pki::{ok, openssl};

/// curl writing the body to `out`; the HTTP status.
fn curl_to(out: &str, args: &[&str]) -> u16 {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", out, "-w", "%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed (scripts/test installs it)");
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn crypt_ocsp_good_then_revoked_unknown_get_and_malformed() {
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
        Some(json!({"name": "pki", "type": "pki"})),
    ));
    let root = ok(cp.call(
        "POST",
        "/v1/crypt/pki/root/generate",
        Some(&admin),
        Some(json!({"common_name": "OCSP Test Root", "key_type": "ec-p256", "ttl": "8760h"})),
    ));
    ok(cp.call(
        "POST",
        "/v1/crypt/pki/roles/web",
        Some(&admin),
        Some(
            json!({"issuer": "root", "allowed_domains": ["example.test"],
            "allow_subdomains": true, "ttl": "1h", "max_ttl": "24h"}),
        ),
    ));
    let issued = ok(cp.call(
        "POST",
        "/v1/crypt/pki/issue/web",
        Some(&admin),
        Some(json!({"common_name": "www.example.test"})),
    ));
    let serial = issued["serial"].as_str().expect("serial").to_owned();
    let ca = root["certificate"].as_str().expect("ca");
    std::fs::write(d.join("ocsp-ca.pem"), ca).expect("write");
    std::fs::write(
        d.join("ocsp-leaf.pem"),
        issued["certificate"].as_str().expect("cert"),
    )
    .expect("write");
    // One trust file: the PKI root (verifies OCSP responses) and the
    // control plane's TLS CA (verifies the https connection).
    let tls_ca = std::fs::read_to_string(&cp.ca).expect("tls ca");
    std::fs::write(d.join("ocsp-trust.pem"), format!("{ca}{tls_ca}")).expect("write");
    let url = format!("{}/v1/pki/pki/ocsp", cp.rest);

    let ask = |target: &[&str]| {
        let mut args = vec!["ocsp", "-issuer", "ocsp-ca.pem"];
        args.extend_from_slice(target);
        args.extend_from_slice(&["-url", &url, "-CAfile", "ocsp-trust.pem", "-resp_text"]);
        openssl(d, &args)
    };
    let (good, text) = ask(&["-cert", "ocsp-leaf.pem"]);
    assert!(good, "{text}");
    assert!(text.contains("Response verify OK"), "{text}");
    assert!(text.contains("ocsp-leaf.pem: good"), "{text}");
    assert!(text.contains("Next Update:"), "{text}");
    // openssl sends a nonce by default and checks the echo ("WARNING: no
    // nonce in response" otherwise); the response text shows it.
    assert!(text.contains("OCSP Nonce"), "{text}");
    assert!(!text.contains("WARNING"), "{text}");

    // An unknown serial (one the mount never issued).
    let (good, text) = ask(&["-serial", "0x4142434445464748494a4b4c4d4e4f50"]);
    assert!(good, "{text}");
    assert!(text.contains(": unknown"), "{text}");

    // Revoke, then the same question reports revoked with its time.
    ok(cp.call(
        "POST",
        "/v1/crypt/pki/revoke",
        Some(&admin),
        Some(json!({"serial": serial})),
    ));
    let (good, text) = ask(&["-cert", "ocsp-leaf.pem"]);
    assert!(good, "{text}");
    assert!(text.contains("Response verify OK"), "{text}");
    assert!(text.contains("ocsp-leaf.pem: revoked"), "{text}");
    assert!(text.contains("Revocation Time:"), "{text}");

    // GET: the same request, base64 then URL-encoded in the path.
    let (made, text) = openssl(
        d,
        &[
            "ocsp",
            "-issuer",
            "ocsp-ca.pem",
            "-cert",
            "ocsp-leaf.pem",
            "-no_nonce",
            "-reqout",
            "ocsp-req.der",
        ],
    );
    assert!(made, "{text}");
    let req = std::fs::read(d.join("ocsp-req.der")).expect("req");
    let b64 = base64::engine::general_purpose::STANDARD
        .encode(&req)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let resp = d.join("ocsp-get.der");
    let resp_path = resp.to_str().expect("utf-8 path");
    let code = curl_to(resp_path, &["--cacert", &cp.ca, &format!("{url}/{b64}")]);
    assert_eq!(code, 200);
    let (good, text) = openssl(
        d,
        &[
            "ocsp",
            "-respin",
            "ocsp-get.der",
            "-issuer",
            "ocsp-ca.pem",
            "-cert",
            "ocsp-leaf.pem",
            "-CAfile",
            "ocsp-ca.pem",
        ],
    );
    assert!(good, "{text}");
    assert!(text.contains("ocsp-leaf.pem: revoked"), "{text}");

    // Garbage in a POST body: a malformedRequest OCSP response, not an
    // HTTP error.
    std::fs::write(d.join("ocsp-bad.der"), b"\x30\x03bad").expect("write");
    let bad = d.join("ocsp-bad.der");
    let body = format!("@{}", bad.to_str().expect("utf-8 path"));
    let code = curl_to(
        resp_path,
        &[
            "--cacert",
            &cp.ca,
            "-H",
            "Content-Type: application/ocsp-request",
            "--data-binary",
            &body,
            &url,
        ],
    );
    assert_eq!(code, 200);
    let (_, text) = openssl(
        d,
        &["ocsp", "-respin", resp_path, "-resp_text", "-noverify"],
    );
    assert!(text.contains("malformedrequest"), "{text}");
}
