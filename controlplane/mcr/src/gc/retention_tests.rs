//! Retention against a temporary store: keep_last by `updated_at`,
//! keep_tags, referrers-schema tags, untagged age with index children and
//! referrers, dry runs, and a tag moved after the plan.

use std::sync::Arc;

use super::retention::{Rule, repo_glob};
use crate::core::{Actor, Core, Reference};
use crate::model::RepoName;
use crate::registry::digest::{Algorithm, Digest};
use crate::registry::manifest::{self, OCI_INDEX, OCI_MANIFEST};
use crate::storage::Storage;
use crate::store::TAGS;

fn actor() -> Actor {
    Actor {
        account_id: "admin".into(),
        source_ip: String::new(),
    }
}

struct Env {
    _dir: tempfile::TempDir,
    core: Core,
    repo: RepoName,
    n: std::cell::Cell<u32>,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = mc_kit::store::Store::open(&dir.path().join("mcr.redb"), &crate::store::SCHEMA)
        .expect("store");
    let core = Core {
        store: Arc::new(store),
        fs: Storage::open_fs(dir.path()).expect("fs"),
    };
    Env {
        _dir: dir,
        core,
        repo: RepoName::parse("apps/web").expect("name"),
        n: std::cell::Cell::new(0),
    }
}

impl Env {
    fn blob(&self, bytes: &[u8]) -> Digest {
        let n = self.n.get();
        self.n.set(n + 1);
        let d = Digest::of(Algorithm::Sha256, bytes);
        let staged = self._dir.path().join(format!("s{n}"));
        std::fs::write(&staged, bytes).expect("stage");
        self.core
            .commit_upload(
                &self.repo,
                &d,
                staged,
                &format!("{n:016x}"),
                bytes.len() as u64,
            )
            .expect("commit");
        d
    }

    /// An image with one unique layer, optionally with a subject, tagged `tags`.
    fn image(&self, name: &str, subject: Option<&Digest>, tags: &[&str]) -> Digest {
        let cfg = self.blob(b"{}");
        let layer = self.blob(name.as_bytes());
        let mut m = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg.to_string(), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": name.len()}]});
        if let Some(s) = subject {
            m["subject"] =
                serde_json::json!({"mediaType": OCI_MANIFEST, "digest": s.to_string(), "size": 1});
        }
        self.put(OCI_MANIFEST, &serde_json::to_vec(&m).expect("json"), tags)
    }

    fn index(&self, children: &[&Digest], tags: &[&str]) -> Digest {
        let list: Vec<_> = children
            .iter()
            .map(|d| {
                let size = self
                    .core
                    .manifest(&self.repo, &Reference::Digest((*d).clone()))
                    .expect("child")
                    .bytes
                    .len();
                serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": size,
                    "platform": {"architecture": "amd64", "os": "linux"}})
            })
            .collect();
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list});
        self.put(OCI_INDEX, &serde_json::to_vec(&m).expect("json"), tags)
    }

    fn put(&self, media: &str, bytes: &[u8], tags: &[&str]) -> Digest {
        let parsed = manifest::parse(media, bytes).expect("parse");
        let d = Digest::of(Algorithm::Sha256, bytes);
        let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
        self.core
            .put_manifest(&self.repo, &d, &parsed, bytes, &tags, &actor())
            .expect("put");
        d
    }

    /// Sets a tag's `updated_at` (the store stamps pushes with the clock).
    fn age_tag(&self, tag: &str, at: i64) {
        let tx = mc_kit::store::json::WriteTx::begin(&self.core.store).expect("tx");
        let k = crate::store::key2(self.repo.as_str(), tag);
        let mut row = tx.get(TAGS, &k).expect("get").expect("tag");
        row.updated_at = at;
        tx.put(TAGS, &k, &row).expect("put");
        tx.commit().expect("commit");
    }

    fn tags(&self) -> Vec<String> {
        self.core
            .tags(&self.repo, None, 1000)
            .expect("tags")
            .unwrap_or_default()
    }

    fn has(&self, d: &Digest) -> bool {
        self.core
            .manifest(&self.repo, &Reference::Digest(d.clone()))
            .is_ok()
    }

    fn rule(&self, r: Rule) {
        self.core.retention_put(r, true).expect("rule");
    }
}

fn rule(id: &str) -> Rule {
    Rule {
        id: id.into(),
        repositories: vec!["apps/**".into()],
        keep_last: None,
        keep_tags: vec![],
        untagged_older_than: None,
        enabled: true,
    }
}

#[test]
fn keep_last_and_keep_tags_then_untagged_age() {
    let e = env();
    let now = mc_kit::clock::unix_now();
    for (i, t) in ["a1", "a2", "a3", "a4", "v1.0"].iter().enumerate() {
        e.image(t, None, &[t]);
        e.age_tag(t, now - 1000 + i as i64);
    }
    let sig = format!("sha256-{}", "ab".repeat(32));
    e.image("sig", None, &[&sig]);
    e.age_tag(&sig, 1);
    e.rule(Rule {
        keep_last: Some(2),
        keep_tags: vec!["v*".into()],
        untagged_older_than: Some("1h".into()),
        ..rule("r1")
    });
    // Dry run: lists, changes nothing.
    let dry = e.core.retention_run(None, true, "t", now).expect("dry");
    let gone: Vec<_> = dry.tags.iter().map(|t| t.tag.as_str()).collect();
    assert_eq!(gone, ["a1", "a2"], "the two oldest non-kept tags");
    assert_eq!(dry.manifests_deleted, 0, "just pushed: younger than 1h");
    assert_eq!(e.tags().len(), 6);
    let real = e.core.retention_run(None, false, "t", now).expect("run");
    assert_eq!(real.tags_deleted, 2);
    assert_eq!(
        e.tags(),
        ["a3", "a4", &sig, "v1.0"]
            .map(String::from)
            .to_vec()
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    // Two hours later the untagged manifests go, and their unique layers count.
    let later = e
        .core
        .retention_run(None, false, "t", now + 7200)
        .expect("run");
    assert_eq!(later.manifests_deleted, 2);
    assert!(later.bytes > 0);
    assert_eq!(e.tags().len(), 4, "tagged manifests stay");
}

#[test]
fn untagged_indexes_free_their_children_and_referrers_follow_their_subject() {
    let e = env();
    let now = mc_kit::clock::unix_now();
    let amd = e.image("amd", None, &[]);
    let arm = e.image("arm", None, &[]);
    let idx = e.index(&[&amd, &arm], &[]);
    let subject = e.image("subject", None, &["keep"]);
    let sig = e.image("sig", Some(&subject), &[]);
    let orphan_sig = e.image("orphan-sig", Some(&idx), &[]);
    e.rule(Rule {
        untagged_older_than: Some("1m".into()),
        ..rule("r1")
    });
    let r = e
        .core
        .retention_run(None, false, "t", now + 120)
        .expect("run");
    assert_eq!(r.manifests_deleted, 4, "{r:?}");
    assert!(!e.has(&idx) && !e.has(&amd) && !e.has(&arm));
    assert!(!e.has(&orphan_sig), "its subject went in an earlier round");
    assert!(
        e.has(&subject) && e.has(&sig),
        "the referrer of a kept subject stays"
    );
}

#[test]
fn a_tag_moved_after_the_plan_is_not_deleted_and_other_repos_are_untouched() {
    let e = env();
    let now = mc_kit::clock::unix_now();
    e.image("x", None, &["old"]);
    e.age_tag("old", now - 100);
    e.image("y", None, &["new"]);
    e.rule(Rule {
        repositories: vec!["other/*".into()],
        keep_last: Some(0),
        ..rule("elsewhere")
    });
    let r = e.core.retention_run(None, false, "t", now).expect("run");
    assert_eq!(r.repositories, 0);
    assert_eq!(e.tags().len(), 2);
    // The plan saw `old` at one time; a push moves it: the delete is skipped.
    let tag_row = crate::store::scan(e.core.store.db(), TAGS, "apps/web", None, 10).expect("scan");
    let (_, old) = tag_row.into_iter().find(|(t, _)| t == "old").expect("old");
    e.age_tag("old", now - 50);
    let deleted = e
        .core
        .delete_tag_if(
            &e.repo,
            "old",
            &old.digest,
            old.updated_at,
            &actor(),
            "registry.retention",
        )
        .expect("delete_if");
    assert!(!deleted);
    assert!(e.tags().contains(&"old".to_owned()));
}

#[test]
fn rules_are_validated_and_globs_match_by_component() {
    assert!(repo_glob("apps/**", "apps/web/api"));
    assert!(repo_glob("apps/**", "apps"));
    assert!(repo_glob("apps/*", "apps/web"));
    assert!(!repo_glob("apps/*", "apps/web/api"));
    assert!(repo_glob("**/web", "x/y/web"));
    assert!(!repo_glob("app", "apps"));
    let e = env();
    let bad = [
        Rule {
            id: "".into(),
            ..rule("x")
        },
        Rule {
            repositories: vec![],
            ..rule("x")
        },
        Rule {
            keep_last: Some(1),
            untagged_older_than: Some("soon".into()),
            ..rule("x")
        },
        rule("nothing-to-do"),
        Rule {
            keep_last: Some(1),
            keep_tags: vec!["a/b".into()],
            ..rule("x")
        },
    ];
    for r in bad {
        assert!(e.core.retention_put(r.clone(), true).is_err(), "{r:?}");
    }
    e.rule(Rule {
        keep_last: Some(3),
        ..rule("ok")
    });
    assert!(
        e.core
            .retention_put(
                Rule {
                    keep_last: Some(3),
                    ..rule("ok")
                },
                true
            )
            .is_err(),
        "duplicate id"
    );
    assert_eq!(e.core.retention_rules().expect("list").len(), 1);
    e.core.retention_delete("ok").expect("delete");
    assert!(e.core.retention_delete("ok").is_err());
}
