//! Policy changes, quotas and the admin operations against a temporary store.

use std::sync::Arc;

use mc_kit::store::Store;
use mc_kit::store::json::ReadTx;
use mc_service::auth::Principal;

use super::{Actor, Core};
use crate::error::Code;
use crate::model::RepoName;
use crate::policy::{Action, Effect, NamespaceSettings, Policy, RepoSettings, Rule};
use crate::registry::digest::{Algorithm, Digest};
use crate::registry::manifest::{self, OCI_MANIFEST};
use crate::storage::Storage;

fn setup(dir: &std::path::Path) -> (Core, Policy) {
    let store = Arc::new(Store::open(&dir.join("mcr.redb"), &crate::store::SCHEMA).expect("store"));
    let policy = Policy::load(store.clone()).expect("policy");
    (
        Core {
            store,
            fs: Storage::open_fs(dir).expect("fs"),
        },
        policy,
    )
}

fn actor() -> Actor {
    Actor {
        account_id: "admin-id".into(),
        source_ip: "127.0.0.1".into(),
    }
}

fn user(name: &str, roles: &[&str]) -> Principal {
    Principal {
        account_id: format!("id-{name}"),
        username: name.into(),
        account_type: "human".into(),
        roles: roles.iter().map(|s| (*s).to_owned()).collect(),
        tags: vec![],
        jti: "j".into(),
        expires_at: 0,
        scopes: vec![],
    }
}

fn upload(
    c: &Core,
    dir: &std::path::Path,
    repo: &RepoName,
    bytes: &[u8],
    n: u32,
) -> Result<Digest, crate::error::RegistryError> {
    let d = Digest::of(Algorithm::Sha256, bytes);
    let staged = dir.join(format!("staged-{n}"));
    std::fs::write(&staged, bytes).expect("stage");
    c.commit_upload(repo, &d, staged, &format!("{n:016x}"), bytes.len() as u64)?;
    Ok(d)
}

fn image(config: &Digest, layer: &Digest, layer_size: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": layer_size}]}))
    .expect("json")
}

fn audit_actions(c: &Core) -> Vec<String> {
    c.audit_query(None, 1000, None, None)
        .expect("audit")
        .into_iter()
        .map(|e| e.action)
        .collect()
}

#[test]
fn a_new_store_is_seeded_and_rule_changes_apply_at_once_and_are_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (c, policy) = setup(dir.path());
    let ids: Vec<String> = c
        .policy_rules()
        .expect("rules")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["admins", "pull-all"]);
    let bob = user("bob", &[]);
    assert!(policy.allows(&bob, "apps/web", Action::Pull));
    assert!(!policy.allows(&bob, "apps/web", Action::Push));

    let rule: Rule = serde_json::from_value(serde_json::json!({
        "effect": "allow", "accounts": ["bob"], "repositories": ["apps/*"], "actions": ["push"]
    }))
    .expect("rule");
    let created = c
        .create_rule(&policy, rule.clone(), &actor())
        .expect("create");
    assert!(created.id.starts_with("r-"), "{}", created.id);
    assert!(
        policy.allows(&bob, "apps/web", Action::Push),
        "the snapshot reloads"
    );
    assert!(!policy.allows(&bob, "other/web", Action::Push));

    let mut deny = rule.clone();
    deny.effect = Effect::Deny;
    deny.id = "no-bob".into();
    c.create_rule(&policy, deny.clone(), &actor())
        .expect("create");
    assert!(!policy.allows(&bob, "apps/web", Action::Push), "deny wins");
    let dup = c.create_rule(&policy, deny.clone(), &actor());
    assert_eq!(dup.err().map(|e| e.status.as_u16()), Some(409));

    deny.enabled = false;
    c.update_rule(&policy, "no-bob", deny, &actor())
        .expect("update");
    assert!(policy.allows(&bob, "apps/web", Action::Push));
    c.delete_rule(&policy, &created.id, &actor())
        .expect("delete");
    assert!(!policy.allows(&bob, "apps/web", Action::Push));
    assert_eq!(
        c.delete_rule(&policy, &created.id, &actor())
            .err()
            .map(|e| e.status.as_u16()),
        Some(404)
    );

    let mut bad = rule;
    bad.repositories = vec!["Apps/*".into()];
    assert!(c.create_rule(&policy, bad, &actor()).is_err());
    assert_eq!(
        c.policy_rules().expect("rules").len(),
        3,
        "a refused rule changes nothing"
    );
    let actions = audit_actions(&c);
    for a in [
        "registry.policy.create",
        "registry.policy.update",
        "registry.policy.delete",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    let only = c
        .audit_query(None, 10, Some("registry.policy.d"), None)
        .expect("audit");
    assert_eq!(only.len(), 1);
}

#[test]
fn public_pull_per_repository_and_namespace_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (c, policy) = setup(dir.path());
    assert!(!policy.is_public("apps/web"), "off unless set");
    c.set_repo_settings(
        "apps/web",
        &RepoSettings {
            public_pull: Some(true),
            quota_bytes: 0,
            ..Default::default()
        },
        &actor(),
    )
    .expect("set");
    assert!(policy.is_public("apps/web"));
    assert!(!policy.is_public("apps/api"));
    c.set_namespace_settings(
        "apps",
        &NamespaceSettings {
            public_pull: true,
            quota_bytes: 0,
        },
        &actor(),
    )
    .expect("set");
    assert!(policy.is_public("apps/api"), "the namespace's default");
    c.set_repo_settings(
        "apps/secret",
        &RepoSettings {
            public_pull: Some(false),
            quota_bytes: 0,
            ..Default::default()
        },
        &actor(),
    )
    .expect("set");
    assert!(!policy.is_public("apps/secret"), "the repository overrides");
    assert!(
        audit_actions(&c)
            .iter()
            .any(|a| a == "registry.namespace.update")
    );
}

#[test]
fn quotas_refuse_links_and_manifests_with_denied_and_commit_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (c, _policy) = setup(dir.path());
    let repo = RepoName::parse("apps/web").expect("name");
    let cfg = upload(&c, dir.path(), &repo, b"{}", 1).expect("config");
    let layer = vec![7_u8; 1000];
    let ld = upload(&c, dir.path(), &repo, &layer, 2).expect("layer");
    assert_eq!(c.quota("apps/web").expect("quota").used_bytes, 1002);

    c.set_repo_settings(
        "apps/web",
        &RepoSettings {
            public_pull: None,
            quota_bytes: 1500,
            ..Default::default()
        },
        &actor(),
    )
    .expect("quota");
    let big = vec![8_u8; 600];
    let e = upload(&c, dir.path(), &repo, &big, 3).expect_err("over quota");
    assert_eq!((e.status.as_u16(), e.code), (403, Code::Denied));
    assert!(e.message.contains("quota exceeded"), "{}", e.message);
    let bd = Digest::of(Algorithm::Sha256, &big);
    assert!(
        c.blob(&repo, &bd).expect("read").is_none(),
        "nothing visible"
    );
    assert_eq!(c.quota("apps/web").expect("quota").used_bytes, 1002);

    // A manifest is charged too: allow exactly the blobs, not the manifest.
    let bytes = image(&cfg, &ld, layer.len());
    let md = Digest::of(Algorithm::Sha256, &bytes);
    let parsed = manifest::parse(OCI_MANIFEST, &bytes).expect("parse");
    c.set_repo_settings(
        "apps/web",
        &RepoSettings {
            public_pull: None,
            quota_bytes: 1002 + bytes.len() as u64 - 1,
            ..Default::default()
        },
        &actor(),
    )
    .expect("quota");
    let e = c
        .put_manifest(&repo, &md, &parsed, &bytes, &["v1".into()], &actor())
        .expect_err("over quota");
    assert_eq!(e.code, Code::Denied);
    let tags = c.tags(&repo, None, 10).expect("tags").unwrap_or_default();
    assert!(tags.is_empty(), "no tag became visible");
    c.set_repo_settings("apps/web", &RepoSettings::default(), &actor())
        .expect("quota");
    c.put_manifest(&repo, &md, &parsed, &bytes, &["v1".into()], &actor())
        .expect("within quota");
    assert_eq!(
        c.quota("apps/web").expect("quota").used_bytes,
        1002 + bytes.len() as u64
    );

    // The namespace counts every repository in it, not apps-other.
    let other = RepoName::parse("apps/other").expect("name");
    let sibling = RepoName::parse("apps-other").expect("name");
    upload(&c, dir.path(), &sibling, &[1_u8; 5000], 4).expect("sibling namespace");
    c.set_namespace_settings(
        "apps",
        &NamespaceSettings {
            public_pull: false,
            quota_bytes: 1002 + bytes.len() as u64 + 10,
        },
        &actor(),
    )
    .expect("ns quota");
    let q = c.quota("apps/other").expect("quota");
    assert_eq!(q.namespace_used_bytes, 1002 + bytes.len() as u64);
    let e = upload(&c, dir.path(), &other, &[2_u8; 11], 5).expect_err("namespace full");
    assert_eq!(e.code, Code::Denied);
    upload(&c, dir.path(), &other, &[2_u8; 10], 6).expect("fits exactly");
    let e = super::quota::check_upload_size(&c.store, "apps/other", 1).expect_err("413");
    assert_eq!((e.status.as_u16(), e.code), (413, Code::SizeInvalid));
}

#[test]
fn admin_listings_are_filtered_by_pull_and_delete_removes_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (c, policy) = setup(dir.path());
    let web = RepoName::parse("apps/web").expect("name");
    let secret = RepoName::parse("secret/x").expect("name");
    for (i, r) in [&web, &secret].into_iter().enumerate() {
        let n = u32::try_from(i).expect("small") * 10;
        let cfg = upload(&c, dir.path(), r, b"{}", n + 1).expect("cfg");
        let ld = upload(&c, dir.path(), r, b"layer", n + 2).expect("layer");
        let bytes = image(&cfg, &ld, 5);
        let md = Digest::of(Algorithm::Sha256, &bytes);
        let parsed = manifest::parse(OCI_MANIFEST, &bytes).expect("parse");
        c.put_manifest(
            r,
            &md,
            &parsed,
            &bytes,
            &["v1".into(), "latest".into()],
            &actor(),
        )
        .expect("push");
    }
    let deny: Rule = serde_json::from_value(serde_json::json!({
        "id": "no-secret", "effect": "deny", "roles": ["user"], "repositories": ["secret/**"], "actions": ["pull"]
    }))
    .expect("rule");
    c.create_rule(&policy, deny, &actor()).expect("create");
    let bob = user("bob", &["user"]);
    let admin = user("root", &["admin"]);
    let names = |p: &Principal, prefix: &str| -> Vec<String> {
        c.list_repositories(&policy, p, prefix, None, 100)
            .expect("list")
            .into_iter()
            .map(|r| r.name)
            .collect()
    };
    assert_eq!(names(&admin, ""), ["apps/web", "secret/x"]);
    assert_eq!(names(&bob, ""), ["apps/web"]);
    assert_eq!(names(&admin, "secret"), ["secret/x"]);
    assert!(
        c.repository(&policy, &bob, "secret/x").is_err(),
        "hidden = unknown"
    );
    let info = c.repository(&policy, &admin, "apps/web").expect("get");
    assert_eq!((info.tag_count, info.manifest_count), (2, 1));
    assert!(info.size_bytes > 7);
    let tags = c
        .list_tags(&policy, &bob, "apps/web", None, 100)
        .expect("tags");
    assert_eq!(
        tags.iter().map(|t| t.tag.as_str()).collect::<Vec<_>>(),
        ["latest", "v1"]
    );
    assert!(
        tags.iter()
            .all(|t| t.updated_at > 0 && t.updated_by == "admin-id")
    );

    c.delete_repository(&web, &actor()).expect("delete");
    assert!(c.repository(&policy, &admin, "apps/web").is_err());
    assert_eq!(c.quota("apps/web").expect("quota").used_bytes, 0);
    let layer = Digest::of(Algorithm::Sha256, b"layer").to_string();
    let blob = ReadTx::begin(&c.store)
        .expect("tx")
        .get(crate::store::BLOBS, layer.as_bytes())
        .expect("get")
        .expect("still stored for secret/x");
    assert_eq!(blob.links, 1, "one link left");
    assert!(
        audit_actions(&c)
            .iter()
            .any(|a| a == "registry.repo.delete")
    );
}

#[test]
fn immutable_tags_are_created_but_never_moved_or_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (c, _policy) = setup(dir.path());
    let repo = RepoName::parse("apps/web").expect("name");
    let cfg = upload(&c, dir.path(), &repo, b"{}", 1).expect("config");
    let one = upload(&c, dir.path(), &repo, b"one", 2).expect("layer");
    let two = upload(&c, dir.path(), &repo, b"two", 3).expect("layer");
    let push = |layer: &Digest, tags: &[&str]| {
        let bytes = image(&cfg, layer, 3);
        let md = Digest::of(Algorithm::Sha256, &bytes);
        let parsed = manifest::parse(OCI_MANIFEST, &bytes).expect("parse");
        let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
        c.put_manifest(&repo, &md, &parsed, &bytes, &tags, &actor())
            .map(|()| md)
    };
    let row_of = |t: &str| {
        ReadTx::begin(&c.store)
            .expect("read")
            .get(crate::store::TAGS, &crate::store::key2("apps/web", t))
            .expect("tag")
    };
    let tag_of = |t: &str| row_of(t).map(|r| r.digest);
    let m1 = push(&one, &["v1", "latest"]).expect("first push");
    c.set_repo_settings(
        "apps/web",
        &RepoSettings {
            immutable_tags: vec!["v*".into()],
            ..Default::default()
        },
        &actor(),
    )
    .expect("settings");

    // The same manifest again is fine; moving v1 is refused and changes nothing.
    push(&one, &["v1"]).expect("same digest");
    let e = push(&two, &["latest", "v1"]).expect_err("v1 moves");
    assert_eq!((e.status.as_u16(), e.code), (403, Code::Denied));
    assert!(e.message.contains("immutable"), "{}", e.message);
    assert_eq!(tag_of("v1"), Some(m1.to_string()));
    assert_eq!(
        tag_of("latest"),
        Some(m1.to_string()),
        "the whole push refused"
    );
    let m2 = push(&two, &["latest", "v2"]).expect("new tags are created");
    assert_eq!(tag_of("v2"), Some(m2.to_string()));

    // Deleting it, alone, with its manifest or with the repository: refused.
    let e = c.delete_tag(&repo, "v1", &actor()).expect_err("delete v1");
    assert_eq!(e.code, Code::Denied);
    let e = c
        .delete_manifest(&repo, &m1, &actor())
        .expect_err("delete m1");
    assert_eq!(e.code, Code::Denied);
    let row = row_of("v1").expect("v1");
    assert_eq!(row.digest, m1.to_string());
    let gone = c
        .delete_tag_if(
            &repo,
            "v1",
            &row.digest,
            row.updated_at,
            &actor(),
            "registry.retention",
        )
        .expect("retention");
    assert!(!gone, "retention skips an immutable tag");
    let e = c
        .delete_repository(&repo, &actor())
        .expect_err("repository");
    assert_eq!(e.code, Code::Denied);
    assert_eq!(tag_of("v1"), Some(m1.to_string()));

    // Mutable tags still move; clearing the globs frees v1.
    c.delete_tag(&repo, "latest", &actor()).expect("latest");
    c.set_repo_settings("apps/web", &RepoSettings::default(), &actor())
        .expect("clear");
    c.delete_tag(&repo, "v1", &actor())
        .expect("v1 after clearing");
}
