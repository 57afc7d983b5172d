//! ORAS against MCR: the `oras` Python SDK (PyPI, installed by scripts/test)
//! pushes an artifact and referrers of it with a `subject`, lists the
//! referrers API (end-12) with and without `artifactType`, and pulls a
//! referrer back (`oras_referrers.py`): pushes with an MCIAS token as the
//! bearer, reads with a username and password through the token endpoint. TLS is verified with the dev CA.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::Registry;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/it/controlplane/mcr/oras_referrers.py"
);
const SIG: &str = "application/vnd.example.signature.v1";
const SBOM: &str = "application/vnd.example.sbom.v1+json";

/// Runs the script; what it saw.
fn run(reg: &Registry, dir: &Path) -> Value {
    let work = dir.join("oras");
    std::fs::create_dir_all(&work).expect("workdir");
    let mut cmd = Command::new("python3");
    // scripts/test installs oras with `pip --user`: keep its site-packages
    // visible whatever HOME the test runs with.
    if std::env::var_os("PYTHONUSERBASE").is_none()
        && let Some(home) = std::env::var_os("HOME")
    {
        cmd.env("PYTHONUSERBASE", Path::new(&home).join(".local"));
    }
    let out = cmd
        .arg(SCRIPT)
        .args([&reg.host, &reg.cp.ca, "admin", &reg.cp.password, &reg.admin])
        .arg(&work)
        .env("DOCKER_CONFIG", dir.join("docker"))
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "oras script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON object")
}

/// The (digest, artifactType) pairs of a referrers answer, sorted.
fn listed(answer: &Value) -> Vec<(String, String)> {
    let mut v: Vec<_> = answer["index"]["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|d| {
            (
                d["digest"].as_str().unwrap_or("").to_owned(),
                d["artifactType"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn oras_pushes_referrers_and_the_referrers_api_lists_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::start(dir.path());
    let seen = run(&reg, dir.path());

    let subject = seen["subject"]["digest"].as_str().expect("subject");
    assert_eq!(seen["subject"]["sdk_digest"], subject, "{seen}");
    for r in ["sig", "sbom"] {
        assert_eq!(
            seen[r]["oci_subject"], subject,
            "OCI-Subject on {r}: {seen}"
        );
    }
    let sig = seen["sig"]["digest"].as_str().expect("sig").to_owned();
    let sbom = seen["sbom"]["digest"].as_str().expect("sbom").to_owned();

    let all = &seen["referrers"];
    assert_eq!(all["status"], 200, "{all}");
    assert_eq!(
        all["content_type"], "application/vnd.oci.image.index.v1+json",
        "{all}"
    );
    assert_eq!(all["filters"], Value::Null, "{all}");
    let mut want = vec![
        (sig.clone(), SIG.to_owned()),
        (sbom.clone(), SBOM.to_owned()),
    ];
    want.sort();
    assert_eq!(listed(all), want);

    let filtered = &seen["referrers_sbom"];
    assert_eq!(filtered["filters"], "artifactType", "{filtered}");
    assert_eq!(listed(filtered), vec![(sbom, SBOM.to_owned())]);

    // Pushed before its subject existed, and listed for it.
    let early = &seen["referrers_early"];
    assert_eq!(
        listed(early),
        vec![(
            seen["early"]["digest"].as_str().expect("early").to_owned(),
            SIG.to_owned()
        )]
    );

    // The SDK pulled the signature back by digest.
    assert_eq!(seen["pulled"]["sig.txt"], "a signature\n", "{seen}");

    // The registry agrees with what the SDK reported: the referrer's subject.
    let r = reg.raw(
        "GET",
        &format!("/v2/art/app/manifests/{sig}"),
        Some(&reg.admin),
        &[],
        None,
    );
    assert_eq!(r.code, 200);
    assert_eq!(r.json()["subject"]["digest"], subject);
}
