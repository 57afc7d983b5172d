//! The admin read views end to end: `mcctl registry manifests show` (gRPC)
//! and its REST twin on skopeo-pushed content (an image, a two-platform
//! index, a referrer pushed with raw requests), and the reclaimable bytes
//! per repository against what GC then frees, with a layer shared by two
//! repositories that must never be counted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::api::push_blob;
use super::gc::{copy_in, image_layout, pull};
use super::skopeo::ok;
use super::{Fixture, Mcctl, Registry, sha256, skopeo};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// `mcctl --json ARGS` that must fail: its stderr.
fn refused(mcctl: &Mcctl, args: &[&str]) -> String {
    let out = mcctl.output(args);
    assert!(!out.status.success(), "mcctl {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn manifests_show_describes_images_indexes_and_referrers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let Fixture {
        reg,
        src,
        v1,
        multi,
        admin,
    } = Registry::with_image(d, "", &["apps/web:v1", "apps/web:stable"]);
    let certs = reg.certs.display().to_string();
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
                &admin,
                &format!("oci:{}:multi", src.display()),
                &format!("docker://{}/apps/web:multi", reg.host),
            ],
        ),
        "copy the index in",
    );
    // A referrer of v1 (an SBOM-like artifact), pushed by digest.
    let cfg = push_blob(&reg, "apps/web", b"{}");
    let layer = push_blob(&reg, "apps/web", b"sbom!");
    let v1_size = reg
        .raw(
            "HEAD",
            &format!("/v2/apps/web/manifests/{v1}"),
            Some(&reg.admin),
            &[],
            None,
        )
        .header("content-length")
        .and_then(|l| l.parse::<u64>().ok())
        .expect("v1's length");
    let art = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg, "size": 2},
        "layers": [{"mediaType": "application/vnd.example.sbom.layer", "digest": layer, "size": 5}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": v1, "size": v1_size},
        "annotations": {"org.example.kind": "sbom"}});
    let art_bytes = serde_json::to_vec(&art).expect("json");
    let art_digest = sha256(&art_bytes);
    let r = reg.raw(
        "PUT",
        &format!("/v2/apps/web/manifests/{art_digest}"),
        Some(&reg.admin),
        &[&format!("content-type: {OCI_MANIFEST}")],
        Some(&art_bytes),
    );
    assert_eq!(r.code, 201, "{}", String::from_utf8_lossy(&r.body));

    let mcctl = Mcctl::new(&reg, d);
    // The image by tag: three layers, its config, both tags, the referrer.
    let m = mcctl.run(&["registry", "manifests", "show", "apps/web", "v1"]);
    assert_eq!(m["digest"], v1.as_str(), "{m}");
    assert_eq!(m["media_type"], OCI_MANIFEST, "{m}");
    assert_eq!(m["size"], v1_size, "{m}");
    assert_eq!(m["layers"].as_array().map(Vec::len), Some(3), "{m}");
    assert_eq!(
        m["config"]["media_type"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(m["tags"], serde_json::json!(["stable", "v1"]), "{m}");
    assert_eq!(m["manifests"], serde_json::json!([]), "{m}");
    assert_eq!(m["referrers"][0]["digest"], art_digest.as_str(), "{m}");
    assert_eq!(
        m["referrers"][0]["artifact_type"],
        "application/vnd.example.sbom"
    );
    assert_eq!(m["pushed_by"].as_str().map(str::is_empty), Some(false));
    // Every layer the manifest names is listed with its size and type.
    let stored = reg.raw(
        "GET",
        &format!("/v2/apps/web/manifests/{v1}"),
        Some(&reg.admin),
        &[],
        None,
    );
    let stored = stored.json();
    for (i, l) in stored["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .enumerate()
    {
        assert_eq!(m["layers"][i]["digest"], l["digest"], "{m}");
        assert_eq!(m["layers"][i]["size"], l["size"], "{m}");
        assert_eq!(m["layers"][i]["media_type"], l["mediaType"], "{m}");
    }

    // The same by digest, and over REST (the gRPC twin's core call).
    let by_digest = mcctl.run(&["registry", "manifests", "show", "apps/web", &v1]);
    assert_eq!(by_digest, m);
    let (code, rest) = reg.cp.call(
        "GET",
        "/v1/registry/repositories/apps%2Fweb/manifests/v1",
        Some(&reg.admin),
        None,
    );
    assert_eq!(code, 200, "{rest}");
    for key in ["digest", "media_type", "size", "layers", "config", "tags"] {
        assert_eq!(rest[key], m[key], "{key}: {rest}");
    }
    assert_eq!(rest["referrers"][0]["digest"], art_digest.as_str());

    // The index: platforms, no layers.
    let idx = mcctl.run(&["registry", "manifests", "show", "apps/web", "multi"]);
    assert_eq!(
        (&idx["digest"], &idx["media_type"]),
        (&multi.as_str().into(), &OCI_INDEX.into()),
        "{idx}"
    );
    let platforms: Vec<_> = idx["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|p| p["platform"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{idx}");
    assert_eq!(idx["layers"], serde_json::json!([]));

    // The artifact: its type, subject and annotations; no tags.
    let a = mcctl.run(&["registry", "manifests", "show", "apps/web", &art_digest]);
    assert_eq!(a["artifact_type"], "application/vnd.example.sbom", "{a}");
    assert_eq!(a["subject"]["digest"], v1.as_str(), "{a}");
    assert_eq!(a["annotations"]["org.example.kind"], "sbom", "{a}");
    assert_eq!(a["tags"], serde_json::json!([]));

    // Unknown and malformed references: a clear error and a non-zero exit.
    let e = refused(
        &mcctl,
        &["registry", "manifests", "show", "apps/web", "nope"],
    );
    assert!(e.contains("apps/web:nope is not known"), "{e}");
    let missing = sha256(b"never pushed");
    let e = refused(
        &mcctl,
        &["registry", "manifests", "show", "apps/web", &missing],
    );
    assert!(e.contains("is not known"), "{e}");
    let e = refused(
        &mcctl,
        &["registry", "manifests", "show", "apps/web", "sha256:zz"],
    );
    assert!(e.contains("reference"), "{e}");
    let e = refused(
        &mcctl,
        &["registry", "manifests", "show", "apps/none", "v1"],
    );
    assert!(e.contains("is not known"), "{e}");
    let (code, body) = reg.cp.call(
        "GET",
        "/v1/registry/repositories/apps%2Fweb/manifests/nope",
        Some(&reg.admin),
        None,
    );
    assert_eq!(code, 404, "{body}");
    assert!(body["error"].is_string(), "{body}");
}

/// [`image_layout`] of `n` layers for the arch `shared`, and its manifest.
fn shared_image(dir: &Path, name: &str, n: usize) -> (PathBuf, serde_json::Value) {
    let (layout, digest) = image_layout(dir, name, "shared", n);
    let hex = digest.trim_start_matches("sha256:");
    let manifest = std::fs::read(layout.join("blobs/sha256").join(hex)).expect("manifest");
    (
        layout,
        serde_json::from_slice(&manifest).expect("manifest json"),
    )
}

#[test]
fn reclaimable_bytes_per_repository_exclude_shared_layers_and_match_gc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let reg = Registry::start_mcr(d, "gc_grace = \"1s\"\ngc_interval = \"0s\"");
    let (a, _) = shared_image(d, "a", 1);
    let (b, manifest_b) = shared_image(d, "b", 2);
    copy_in(&reg, d, &a, "one/a:latest");
    copy_in(&reg, d, &b, "two/b:latest");
    let mcctl = Mcctl::new(&reg, d);
    let listed = mcctl.run(&["registry", "repos", "list"]);
    for r in listed.as_array().expect("repositories") {
        assert_eq!(r["reclaimable_bytes"], 0, "all referenced: {r}");
    }

    // two/b's own layer and config become reclaimable; the layer it shares
    // with one/a does not.
    let creds = format!("admin:{}", reg.cp.password);
    let certs = reg.certs.display().to_string();
    ok(
        &skopeo(
            d,
            &[
                "delete",
                "--cert-dir",
                &certs,
                "--creds",
                &creds,
                &format!("docker://{}/two/b:latest", reg.host),
            ],
        ),
        "delete two/b",
    );
    let shared = &manifest_b["layers"][0];
    let own = &manifest_b["layers"][1];
    let size = |v: &serde_json::Value| v["size"].as_u64().expect("size");
    let expected = size(own) + size(&manifest_b["config"]);
    assert!(size(shared) > 0);

    let two = mcctl.run(&["registry", "repos", "show", "two/b"]);
    assert_eq!(
        (&two["reclaimable_blobs"], &two["reclaimable_bytes"]),
        (&2.into(), &expected.into()),
        "{two}"
    );
    let one = mcctl.run(&["registry", "repos", "show", "one/a"]);
    assert_eq!(one["reclaimable_bytes"], 0, "{one}");
    let listed = mcctl.run(&["registry", "repos", "list"]);
    let two_listed = listed
        .as_array()
        .expect("repositories")
        .iter()
        .find(|r| r["name"] == "two/b")
        .cloned()
        .unwrap_or_default();
    assert_eq!(two_listed["reclaimable_bytes"], expected, "{listed}");
    let (code, rest) = reg.cp.call(
        "GET",
        "/v1/registry/repositories/two%2Fb",
        Some(&reg.admin),
        None,
    );
    assert_eq!((code, &rest["reclaimable_bytes"]), (200, &expected.into()));
    let status = mcctl.run(&["registry", "status"]);
    assert_eq!(status["reclaimable_bytes"], expected, "{status}");
    assert_eq!(
        status["reclaimable_by_repository"],
        serde_json::json!([{"repository": "two/b", "blobs": 2, "bytes": expected}]),
        "{status}"
    );

    // GC (grace 1 s: one run unlinks, the next deletes) frees exactly that.
    let mut freed = 0;
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(2100));
        let run = mcctl.run(&["registry", "gc", "start"]);
        assert_eq!(run["state"], "done", "{run}");
        freed += run["counters"]["bytes_reclaimed"].as_u64().unwrap_or(0);
    }
    assert_eq!(freed, expected);
    let after = mcctl.run(&["registry", "status"]);
    assert_eq!(after["reclaimable_bytes"], 0, "{after}");
    assert_eq!(after["blobs"], 2, "one/a's layer and config: {after}");
    pull(&reg, d, "one/a:latest", &d.join("pulled"));
}
