//! skopeo against MCR: a multi-layer image and a two-platform index built
//! here from local files as `oci:` layouts, copied in (`docker://`) with
//! both credential forms (password, MCIAS token), inspected, listed, copied
//! back out with the same digests, and deleted. TLS is verified with the
//! dev CA through `--dest-cert-dir`/`--src-cert-dir`/`--cert-dir`.

use std::path::Path;
use std::process::Command;

use super::{Registry, sha256, skopeo};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Writes a blob into the layout; returns (digest, size).
pub(super) fn blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let d = sha256(bytes);
    let hex = d.trim_start_matches("sha256:");
    std::fs::write(layout.join("blobs/sha256").join(hex), bytes).expect("blob");
    (d, bytes.len())
}

/// A gzip'd tar of one file: (compressed bytes, diff_id).
pub(super) fn layer(work: &Path, name: &str, content: &str) -> (Vec<u8>, String) {
    let src = work.join(format!("src-{name}"));
    std::fs::create_dir_all(&src).expect("src");
    std::fs::write(src.join(name), content).expect("file");
    let tar = work.join(format!("{name}.tar"));
    let ok = Command::new("tar")
        .args([
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cf",
        ])
        .arg(&tar)
        .arg("-C")
        .arg(&src)
        .arg(name)
        .status()
        .expect("tar")
        .success();
    assert!(ok, "tar");
    let raw = std::fs::read(&tar).expect("tar bytes");
    let gz = Command::new("gzip")
        .args(["-n", "-c"])
        .arg(&tar)
        .output()
        .expect("gzip");
    assert!(gz.status.success());
    (gz.stdout, sha256(&raw))
}

/// An image manifest for `arch` with `n` layers; returns (digest, size).
pub(super) fn image(layout: &Path, work: &Path, arch: &str, n: usize) -> (String, usize) {
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for i in 0..n {
        let (gz, diff) = layer(
            work,
            &format!("{arch}-{i}"),
            &format!("layer {i} for {arch}\n"),
        );
        let (d, size) = blob(layout, &gz);
        layers.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": size}));
        diff_ids.push(diff);
    }
    let config = serde_json::json!({"architecture": arch, "os": "linux",
        "config": {"Cmd": ["/hello"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let (cd, cs) = blob(layout, &serde_json::to_vec(&config).expect("json"));
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": layers});
    blob(layout, &serde_json::to_vec(&manifest).expect("json"))
}

/// An `oci:` layout with `v1` (three layers) and `multi` (amd64 + arm64).
pub(super) fn layout(dir: &Path) -> (std::path::PathBuf, String, String) {
    let layout = dir.join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("layout");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let (v1, v1_size) = image(&layout, dir, "amd64", 3);
    let (amd, amd_size) = image(&layout, dir, "amd64", 1);
    let (arm, arm_size) = image(&layout, dir, "arm64", 2);
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": amd, "size": amd_size, "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": OCI_MANIFEST, "digest": arm, "size": arm_size, "platform": {"os": "linux", "architecture": "arm64"}}]});
    let (multi, multi_size) = blob(&layout, &serde_json::to_vec(&index).expect("json"));
    let top = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": v1, "size": v1_size, "annotations": {"org.opencontainers.image.ref.name": "v1"}},
        {"mediaType": OCI_INDEX, "digest": multi, "size": multi_size, "annotations": {"org.opencontainers.image.ref.name": "multi"}}]});
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&top).expect("json"),
    )
    .expect("index");
    (layout, v1, multi)
}

pub(super) fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The digest a layout's index.json names for `tag`.
fn tagged(layout: &Path, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index"))
            .expect("json");
    index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .and_then(|m| m["digest"].as_str())
        .expect("tag in layout")
        .to_owned()
}

#[test]
fn skopeo_copies_images_and_indexes_in_and_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::start(dir.path());
    let d = dir.path();
    let (src, v1, multi) = layout(d);
    let certs = reg.certs.display().to_string();
    let host = &reg.host;
    let password = format!("admin:{}", reg.cp.password);
    let token = format!("admin:{}", reg.admin);
    let src_ref = |tag: &str| format!("oci:{}:{tag}", src.display());

    // In: the image with a password, the index (--all) with an MCIAS token.
    ok(
        &skopeo(
            d,
            &[
                "copy",
                "--preserve-digests",
                "--dest-cert-dir",
                &certs,
                "--dest-creds",
                &password,
                &src_ref("v1"),
                &format!("docker://{host}/apps/web:v1"),
            ],
        ),
        "copy image in",
    );
    ok(
        &skopeo(
            d,
            &[
                "copy",
                "--all",
                "--preserve-digests",
                "--dest-cert-dir",
                &certs,
                "--dest-creds",
                &token,
                &src_ref("multi"),
                &format!("docker://{host}/apps/multi:v1"),
            ],
        ),
        "copy index in",
    );

    // Inspect: the stored bytes are the layout's.
    let raw = ok(
        &skopeo(
            d,
            &[
                "inspect",
                "--raw",
                "--cert-dir",
                &certs,
                "--creds",
                &password,
                &format!("docker://{host}/apps/web:v1"),
            ],
        ),
        "inspect --raw",
    );
    assert_eq!(sha256(raw.as_bytes()), v1);
    let info: serde_json::Value = serde_json::from_str(&ok(
        &skopeo(
            d,
            &[
                "inspect",
                "--cert-dir",
                &certs,
                "--creds",
                &token,
                &format!("docker://{host}/apps/web:v1"),
            ],
        ),
        "inspect",
    ))
    .expect("json");
    assert_eq!(info["Digest"], v1.as_str());
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(3));
    assert_eq!(info["Architecture"], "amd64");
    let raw = ok(
        &skopeo(
            d,
            &[
                "inspect",
                "--raw",
                "--cert-dir",
                &certs,
                "--creds",
                &password,
                &format!("docker://{host}/apps/multi:v1"),
            ],
        ),
        "inspect index",
    );
    assert_eq!(sha256(raw.as_bytes()), multi);
    let arm: serde_json::Value = serde_json::from_str(&ok(
        &skopeo(
            d,
            &[
                "inspect",
                "--override-arch",
                "arm64",
                "--cert-dir",
                &certs,
                "--creds",
                &password,
                &format!("docker://{host}/apps/multi:v1"),
            ],
        ),
        "inspect arm64",
    ))
    .expect("json");
    assert_eq!(
        (
            arm["Architecture"].as_str(),
            arm["Layers"].as_array().map(Vec::len)
        ),
        (Some("arm64"), Some(2))
    );

    // Out: the same digests, every blob byte-identical.
    let out = d.join("out");
    let out_ref = |tag: &str| format!("oci:{}:{tag}", out.display());
    ok(
        &skopeo(
            d,
            &[
                "copy",
                "--preserve-digests",
                "--src-cert-dir",
                &certs,
                "--src-creds",
                &token,
                &format!("docker://{host}/apps/web:v1"),
                &out_ref("v1"),
            ],
        ),
        "copy image out",
    );
    ok(
        &skopeo(
            d,
            &[
                "copy",
                "--all",
                "--preserve-digests",
                "--src-cert-dir",
                &certs,
                "--src-creds",
                &password,
                &format!("docker://{host}/apps/multi:v1"),
                &out_ref("multi"),
            ],
        ),
        "copy index out",
    );
    assert_eq!(tagged(&out, "v1"), v1);
    assert_eq!(tagged(&out, "multi"), multi);
    let mut copied = 0;
    for e in std::fs::read_dir(out.join("blobs/sha256"))
        .expect("blobs")
        .flatten()
    {
        let bytes = std::fs::read(e.path()).expect("blob");
        let name = e.file_name().to_string_lossy().into_owned();
        assert_eq!(sha256(&bytes), format!("sha256:{name}"));
        assert_eq!(
            std::fs::read(src.join("blobs/sha256").join(&name)).expect("in source"),
            bytes
        );
        copied += 1;
    }
    // Every blob of the source came back (v1 and multi share one layer).
    let source = std::fs::read_dir(src.join("blobs/sha256"))
        .expect("blobs")
        .count();
    assert_eq!((copied, source), (12, 12));

    // list-tags; a pull-only user can read but not push.
    ok(
        &skopeo(
            d,
            &[
                "copy",
                "--dest-cert-dir",
                &certs,
                "--dest-creds",
                &password,
                &src_ref("v1"),
                &format!("docker://{host}/apps/web:v2"),
            ],
        ),
        "second tag",
    );
    let tags: serde_json::Value = serde_json::from_str(&ok(
        &skopeo(
            d,
            &[
                "list-tags",
                "--cert-dir",
                &certs,
                "--creds",
                &token,
                &format!("docker://{host}/apps/web"),
            ],
        ),
        "list-tags",
    ))
    .expect("json");
    assert_eq!(tags["Tags"], serde_json::json!(["v1", "v2"]));
    let pw = "a user's long password";
    reg.cp.create_user(&reg.admin, "bob", pw);
    let bob = format!("bob:{pw}");
    ok(
        &skopeo(
            d,
            &[
                "inspect",
                "--raw",
                "--cert-dir",
                &certs,
                "--creds",
                &bob,
                &format!("docker://{host}/apps/web:v1"),
            ],
        ),
        "a user pulls",
    );
    let denied = skopeo(
        d,
        &[
            "copy",
            "--dest-cert-dir",
            &certs,
            "--dest-creds",
            &bob,
            &src_ref("v1"),
            &format!("docker://{host}/apps/bob:v1"),
        ],
    );
    assert!(!denied.status.success(), "a user cannot push");
    let bad = skopeo(
        d,
        &[
            "inspect",
            "--cert-dir",
            &certs,
            "--creds",
            "admin:wrong-password",
            &format!("docker://{host}/apps/web:v1"),
        ],
    );
    assert!(!bad.status.success(), "bad credentials");

    // delete: the manifest and its tags go.
    ok(
        &skopeo(
            d,
            &[
                "delete",
                "--cert-dir",
                &certs,
                "--creds",
                &password,
                &format!("docker://{host}/apps/web:v1"),
            ],
        ),
        "delete",
    );
    let gone = skopeo(
        d,
        &[
            "inspect",
            "--raw",
            "--cert-dir",
            &certs,
            "--creds",
            &password,
            &format!("docker://{host}/apps/web:v2"),
        ],
    );
    assert!(
        !gone.status.success(),
        "v2 named the same manifest: gone too"
    );
    let r = reg.raw(
        "GET",
        &format!("/v2/apps/web/manifests/{v1}"),
        Some(&reg.admin),
        &[],
        None,
    );
    assert_eq!((r.code, r.error_code().as_str()), (404, "MANIFEST_UNKNOWN"));
}
