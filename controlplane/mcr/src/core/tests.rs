//! Core operations against a temporary store and blob directory.

use std::sync::Arc;

use super::*;
use crate::registry::digest::Algorithm;
use crate::registry::manifest::{self, OCI_INDEX, OCI_MANIFEST};

fn core(dir: &std::path::Path) -> Core {
    let store = Store::open(&dir.join("mcr.redb"), &crate::store::SCHEMA).expect("store");
    Core {
        store: Arc::new(store),
        fs: Storage::open_fs(dir).expect("fs"),
    }
}

fn actor() -> Actor {
    Actor {
        account_id: "admin".into(),
        source_ip: "127.0.0.1".into(),
    }
}

fn upload(c: &Core, dir: &std::path::Path, repo: &RepoName, bytes: &[u8], n: u32) -> Digest {
    let d = Digest::of(Algorithm::Sha256, bytes);
    let staged = dir.join(format!("staged-{n}"));
    std::fs::write(&staged, bytes).expect("stage");
    c.commit_upload(repo, &d, staged, &format!("{n:016x}"), bytes.len() as u64)
        .expect("commit");
    d
}

fn image(config: &Digest, layer: &Digest, subject: Option<&Digest>) -> Vec<u8> {
    let mut m = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": 5}]});
    if let Some(s) = subject {
        m["subject"] =
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": s.to_string(), "size": 1});
    }
    serde_json::to_vec(&m).expect("json")
}

#[test]
fn push_pull_reference_counts_and_deletes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = core(dir.path());
    let repo = RepoName::parse("apps/web").expect("name");
    let other = RepoName::parse("apps/other").expect("name");
    let cfg = upload(&c, dir.path(), &repo, b"{}", 1);
    let layer = upload(&c, dir.path(), &repo, b"layer", 2);
    // A second upload of the same bytes links, keeps one object.
    upload(&c, dir.path(), &repo, b"layer", 3);
    assert!(c.blob(&repo, &layer).expect("read").is_some());
    assert!(
        c.blob(&other, &layer).expect("read").is_none(),
        "visible only where linked"
    );

    let bytes = image(&cfg, &layer, None);
    let parsed = manifest::parse(OCI_MANIFEST, &bytes).expect("parse");
    let md = Digest::of(Algorithm::Sha256, &bytes);
    // Not pushable where the blobs are not linked.
    let err = c
        .put_manifest(&other, &md, &parsed, &bytes, &["v1".into()], &actor())
        .expect_err("refused");
    assert_eq!(err.code, Code::ManifestBlobUnknown);
    c.put_manifest(&repo, &md, &parsed, &bytes, &["v1".into()], &actor())
        .expect("put");
    let served = c
        .manifest(&repo, &Reference::Tag("v1".into()))
        .expect("get");
    assert_eq!(served.bytes, bytes, "stored exactly as received");
    assert_eq!(served.digest, md.to_string());

    // A referenced blob cannot be deleted; a referrer is listed.
    assert_eq!(
        c.delete_blob(&repo, &layer, &actor())
            .err()
            .map(|e| e.status),
        Some(StatusCode::METHOD_NOT_ALLOWED)
    );
    let sbom = image(&cfg, &layer, Some(&md));
    let sd = Digest::of(Algorithm::Sha256, &sbom);
    let p = manifest::parse(OCI_MANIFEST, &sbom).expect("parse");
    c.put_manifest(&repo, &sd, &p, &sbom, &[], &actor())
        .expect("referrer");
    let refs = c.referrers(&repo, &md, None, 10).expect("referrers");
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0]["digest"], sd.to_string());
    assert_eq!(
        refs[0]["artifactType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert!(
        c.referrers(&repo, &md, Some("x/y"), 10)
            .expect("filter")
            .is_empty()
    );

    // An index pins its child.
    let index = serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": md.to_string(), "size": bytes.len()}]}),
    )
    .expect("json");
    let id = Digest::of(Algorithm::Sha256, &index);
    let pi = manifest::parse(OCI_INDEX, &index).expect("parse");
    c.put_manifest(&repo, &id, &pi, &index, &["multi".into()], &actor())
        .expect("index");
    assert_eq!(
        c.delete_manifest(&repo, &md, &actor())
            .err()
            .map(|e| e.status),
        Some(StatusCode::METHOD_NOT_ALLOWED)
    );
    c.delete_manifest(&repo, &id, &actor()).expect("index goes");
    c.delete_manifest(&repo, &sd, &actor())
        .expect("referrer goes");
    c.delete_manifest(&repo, &md, &actor())
        .expect("now the child goes");
    assert!(
        c.manifest(&repo, &Reference::Tag("v1".into())).is_err(),
        "its tag went with it"
    );
    c.delete_blob(&repo, &layer, &actor())
        .expect("unreferenced now");
    assert!(c.blob(&repo, &layer).expect("read").is_none());

    assert_eq!(
        c.catalog(None, 10).expect("catalog"),
        vec!["apps/web".to_owned()]
    );
    assert_eq!(c.tags(&repo, None, 10).expect("tags"), Some(vec![]));
    assert_eq!(c.tags(&other, None, 10).expect("tags"), None);
}

#[test]
fn tags_page_in_byte_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = core(dir.path());
    let repo = RepoName::parse("a").expect("name");
    let cfg = upload(&c, dir.path(), &repo, b"{}", 1);
    let layer = upload(&c, dir.path(), &repo, b"layer", 2);
    let bytes = image(&cfg, &layer, None);
    let parsed = manifest::parse(OCI_MANIFEST, &bytes).expect("parse");
    let md = Digest::of(Algorithm::Sha256, &bytes);
    let tags: Vec<String> = ["b", "A", "a", "c", "B"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    c.put_manifest(&repo, &md, &parsed, &bytes, &tags, &actor())
        .expect("put");
    assert_eq!(
        c.tags(&repo, None, 3).expect("tags"),
        Some(vec!["A".into(), "B".into(), "a".into()])
    );
    assert_eq!(
        c.tags(&repo, Some("a"), 3).expect("tags"),
        Some(vec!["b".into(), "c".into()])
    );
}

#[test]
fn reclaimable_counts_blobs_no_manifest_of_any_repository_references() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = core(dir.path());
    let (a, b) = (
        RepoName::parse("one/a").expect("name"),
        RepoName::parse("two/b").expect("name"),
    );
    let cfg_a = upload(&c, dir.path(), &a, b"{}", 1);
    let shared = upload(&c, dir.path(), &a, b"layer", 2);
    upload(&c, dir.path(), &b, b"layer", 3);
    let cfg_b = upload(&c, dir.path(), &b, b"[]", 4);
    upload(&c, dir.path(), &b, b"spare", 5);
    let mut pushed = Vec::new();
    for (repo, cfg) in [(&a, &cfg_a), (&b, &cfg_b)] {
        let bytes = image(cfg, &shared, None);
        let parsed = manifest::parse(OCI_MANIFEST, &bytes).expect("parse");
        let md = Digest::of(Algorithm::Sha256, &bytes);
        c.put_manifest(repo, &md, &parsed, &bytes, &["v1".into()], &actor())
            .expect("put");
        pushed.push(md);
    }
    let of = |repo: &RepoName| {
        let r = c
            .reclaimable(repo.as_str(), &mut None)
            .expect("reclaimable");
        (r.blobs, r.bytes)
    };
    // Only the upload no manifest names.
    assert_eq!((of(&a), of(&b)), ((0, 0), (1, 5)));

    // b's manifest goes: its config joins; the layer a still uses does not.
    c.delete_manifest(&b, &pushed[1], &actor()).expect("delete");
    assert_eq!((of(&a), of(&b)), ((0, 0), (2, 7)));
    let s = c.status().expect("status");
    assert_eq!((s.reclaimable_blobs, s.reclaimable_bytes), (2, 7));
    assert_eq!(
        s.reclaimable_by_repository
            .iter()
            .map(|r| (r.repository.as_str(), r.blobs, r.bytes))
            .collect::<Vec<_>>(),
        [("two/b", 2, 7)]
    );

    // With a's manifest gone too, the shared layer counts in both.
    c.delete_manifest(&a, &pushed[0], &actor()).expect("delete");
    assert_eq!((of(&a), of(&b)), ((2, 7), (3, 12)));
    let s = c.status().expect("status");
    assert_eq!((s.reclaimable_blobs, s.reclaimable_bytes), (4, 14));
    assert_eq!(
        s.reclaimable_by_repository
            .iter()
            .map(|r| (r.repository.as_str(), r.bytes))
            .collect::<Vec<_>>(),
        [("two/b", 12), ("one/a", 7)]
    );
}
