//! The kv engine, mounts and `run` against a temporary store.

use serde_json::{Map, Value, json};

use crate::core::{
    Caller, KvDelete, KvMetadataInput, KvOptions, KvWrite, Metacrypt, MountInput, PolicyRule,
};
use crate::error::CryptError;
use crate::policy::{Capability, Effect};
use crate::testing::{caller, unsealed};

fn mount(m: &Metacrypt, admin: &Caller, name: &str, config: Value) {
    m.create_mount(
        admin,
        MountInput {
            name: name.to_owned(),
            kind: "kv".to_owned(),
            description: String::new(),
            config: Some(config),
        },
    )
    .expect("mount");
}

fn data(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("object"),
    }
}

fn write(cas: Option<u64>, v: Value) -> KvWrite {
    KvWrite {
        data: data(v),
        options: KvOptions { cas },
    }
}

fn invalid(r: Result<impl std::fmt::Debug, CryptError>) -> String {
    match r {
        Err(CryptError::Invalid(i)) => i.to_string(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn versions_cas_delete_undelete_destroy_and_max_versions() {
    let (_d, m, admin) = unsealed().await;
    mount(&m, &admin, "secret", json!({"max_versions": 3}));
    let w1 = m
        .kv_write(
            &admin,
            "secret",
            "app/db",
            &write(Some(0), json!({"pw": "1"})),
        )
        .expect("v1");
    assert_eq!(w1.version, 1);
    assert!(
        invalid(m.kv_write(
            &admin,
            "secret",
            "app/db",
            &write(Some(0), json!({"pw": "x"}))
        ))
        .contains("did not match")
    );
    for i in 2..=5 {
        let w = m
            .kv_write(
                &admin,
                "secret",
                "app/db",
                &write(None, json!({"pw": i.to_string()})),
            )
            .expect("write");
        assert_eq!(w.version, i);
    }
    let meta = m
        .kv_read_metadata(&admin, "secret", "app/db")
        .expect("meta");
    assert_eq!((meta.current_version, meta.oldest_version), (5, 3));
    assert_eq!(meta.versions.len(), 3, "max_versions prunes");
    assert!(matches!(
        m.kv_read(&admin, "secret", "app/db", 1),
        Err(CryptError::NotFound(_))
    ));
    let r = m.kv_read(&admin, "secret", "app/db", 0).expect("read");
    assert_eq!(r.data, Some(data(json!({"pw": "5"}))));

    // Patch merges into the current version.
    let p = m
        .kv_patch(
            &admin,
            "secret",
            "app/db",
            &write(Some(5), json!({"user": "u", "pw": null})),
        )
        .expect("patch");
    assert_eq!(p.version, 6);
    let r = m.kv_read(&admin, "secret", "app/db", 0).expect("read");
    assert_eq!(r.data, Some(data(json!({"user": "u"}))));

    // Soft delete, undelete, destroy.
    m.kv_delete_latest(&admin, "secret", "app/db")
        .expect("delete");
    let r = m.kv_read(&admin, "secret", "app/db", 0).expect("read");
    assert!(r.data.is_none() && r.metadata.deletion_time > 0);
    m.kv_undelete(&admin, "secret", "app/db", &KvDelete { versions: vec![6] })
        .expect("undelete");
    assert!(
        m.kv_read(&admin, "secret", "app/db", 6)
            .expect("read")
            .data
            .is_some()
    );
    m.kv_destroy(&admin, "secret", "app/db", &KvDelete { versions: vec![6] })
        .expect("destroy");
    let r = m.kv_read(&admin, "secret", "app/db", 6).expect("read");
    assert!(r.data.is_none() && r.metadata.destroyed);
    m.kv_undelete(&admin, "secret", "app/db", &KvDelete { versions: vec![6] })
        .expect("undelete of destroyed is a no-op");
    assert!(
        m.kv_read(&admin, "secret", "app/db", 6)
            .expect("read")
            .data
            .is_none()
    );

    // cas_required on the path.
    m.kv_write_metadata(
        &admin,
        "secret",
        "app/db",
        &KvMetadataInput {
            cas_required: Some(true),
            custom_metadata: Some([("owner".to_owned(), "ops".to_owned())].into()),
            ..KvMetadataInput::default()
        },
    )
    .expect("meta write");
    assert!(
        invalid(m.kv_write(&admin, "secret", "app/db", &write(None, json!({"a": 1}))))
            .contains("required")
    );
    m.kv_write(&admin, "secret", "app/db", &write(Some(6), json!({"a": 1})))
        .expect("with cas");

    // List: immediate children, folders with a trailing slash.
    m.kv_write(
        &admin,
        "secret",
        "app/web/key",
        &write(None, json!({"k": 1})),
    )
    .expect("w");
    m.kv_write(&admin, "secret", "top", &write(None, json!({"k": 1})))
        .expect("w");
    assert_eq!(
        m.kv_list(&admin, "secret", "").expect("list").keys,
        ["app/", "top"]
    );
    assert_eq!(
        m.kv_list(&admin, "secret", "app/").expect("list").keys,
        ["db", "web/"]
    );
    assert!(matches!(
        m.kv_list(&admin, "secret", "nothing/"),
        Err(CryptError::NotFound(_))
    ));
    m.kv_delete_metadata(&admin, "secret", "app/db")
        .expect("delete all");
    assert!(matches!(
        m.kv_read(&admin, "secret", "app/db", 0),
        Err(CryptError::NotFound(_))
    ));
}

#[tokio::test]
async fn bad_input_is_refused_by_field_and_changes_nothing() {
    let (_d, m, admin) = unsealed().await;
    mount(&m, &admin, "secret", Value::Null);
    for bad in [
        "",
        "/a",
        "a/",
        "a//b",
        "a/../b",
        "a\u{0}b",
        &"x/".repeat(40),
    ] {
        let e = invalid(m.kv_write(&admin, "secret", bad, &write(None, json!({"a": 1}))));
        assert!(e.starts_with("path"), "{bad:?}: {e}");
    }
    let big = "x".repeat((1 << 20) + 1);
    assert!(
        invalid(m.kv_write(&admin, "secret", "a", &write(None, json!({ "v": big }))))
            .starts_with("data")
    );
    assert!(matches!(
        m.kv_read(&admin, "secret", "a", 0),
        Err(CryptError::NotFound(_))
    ));
    assert!(
        invalid(m.kv_write_metadata(
            &admin,
            "secret",
            "a",
            &KvMetadataInput {
                max_versions: Some(101),
                ..KvMetadataInput::default()
            }
        ))
        .starts_with("max_versions")
    );
    // A mount config is validated by the engine.
    let e = m.create_mount(
        &admin,
        MountInput {
            name: "other".to_owned(),
            kind: "kv".to_owned(),
            description: String::new(),
            config: Some(json!({"max_versions": 0})),
        },
    );
    assert!(invalid(e).starts_with("config.max_versions"));
    for (name, kind) in [("sys", "kv"), ("Bad", "kv"), ("ok", "nope")] {
        let e = m.create_mount(
            &admin,
            MountInput {
                name: name.to_owned(),
                kind: kind.to_owned(),
                ..MountInput::default()
            },
        );
        assert!(matches!(e, Err(CryptError::Invalid(_))), "{name} {kind}");
    }
    assert_eq!(m.list_mounts().expect("list").len(), 1);
}

#[tokio::test]
async fn policy_gates_every_kv_operation_and_upsert_needs_create_or_update() {
    let (_d, m, admin) = unsealed().await;
    mount(&m, &admin, "secret", Value::Null);
    m.kv_write(&admin, "secret", "app/a", &write(None, json!({"a": 1})))
        .expect("w");
    let carol = caller("carol", &["dev"]);
    let denied = |r: Result<(), CryptError>| matches!(r, Err(CryptError::Forbidden(_)));
    // No rule: every path, even an unknown mount, is 403 (nothing leaks).
    assert!(denied(m.kv_read(&carol, "secret", "app/a", 0).map(|_| ())));
    assert!(denied(m.kv_read(&carol, "nomount", "app/a", 0).map(|_| ())));
    assert!(denied(m.kv_list(&carol, "secret", "").map(|_| ())));
    assert!(denied(
        m.kv_write(&carol, "secret", "app/b", &write(None, json!({})))
            .map(|_| ())
    ));

    let mut rule = PolicyRule {
        id: String::new(),
        priority: 10,
        effect: Effect::Allow,
        enabled: true,
        description: "dev".to_owned(),
        accounts: vec![],
        roles: vec!["dev".to_owned()],
        tags: vec![],
        account_types: vec![],
        paths: vec![
            "secret/data/app/*".to_owned(),
            "secret/metadata/+".to_owned(),
        ],
        capabilities: vec![Capability::Read, Capability::Create, Capability::List],
    };
    let created = m.create_rule(&admin, rule.clone()).expect("rule");
    assert!(m.kv_read(&carol, "secret", "app/a", 0).is_ok());
    assert!(
        m.kv_write(&carol, "secret", "app/new", &write(None, json!({})))
            .is_ok()
    );
    // Create does not cover updating an existing secret.
    assert!(denied(
        m.kv_write(&carol, "secret", "app/a", &write(None, json!({})))
            .map(|_| ())
    ));
    assert!(m.kv_list(&carol, "secret", "app").is_ok());
    assert!(denied(m.kv_list(&carol, "secret", "app/x/").map(|_| ())));
    // A deny rule wins over the allow.
    rule.effect = Effect::Deny;
    rule.id = String::new();
    rule.paths = vec!["secret/data/app/a".to_owned()];
    rule.capabilities = vec![];
    m.create_rule(&admin, rule).expect("deny");
    assert!(denied(m.kv_read(&carol, "secret", "app/a", 0).map(|_| ())));
    assert!(m.kv_read(&carol, "secret", "app/new", 0).is_ok());
    // A scoped token is narrowed further.
    let mut scoped = carol.clone();
    if let Some(p) = scoped.principal.as_mut() {
        p.scopes = vec!["crypt:read:secret/data/app/n*".to_owned()];
    }
    assert!(m.kv_read(&scoped, "secret", "app/new", 0).is_ok());
    assert!(denied(
        m.kv_write(&scoped, "secret", "app/new2", &write(None, json!({})))
            .map(|_| ())
    ));
    // An admin is admitted by the seeded rule; deleting it removes that.
    m.delete_rule(&admin, "r-admin").expect("delete seeded");
    assert!(denied(m.kv_read(&admin, "secret", "app/a", 0).map(|_| ())));
    m.delete_rule(&admin, &created.id).expect("delete");
    assert!(denied(
        m.kv_read(&carol, "secret", "app/new", 0).map(|_| ())
    ));
}

#[tokio::test]
async fn operations_on_a_mount_of_another_type_or_no_mount_are_404_and_seal_is_503() {
    let (_d, m, admin) = unsealed().await;
    assert!(matches!(
        m.kv_read(&admin, "secret", "a", 0),
        Err(CryptError::NotFound(_))
    ));
    mount(&m, &admin, "secret", Value::Null);
    m.kv_write(&admin, "secret", "a", &write(None, json!({"v": 1})))
        .expect("w");
    m.seal(&admin).await.expect("seal");
    for r in [
        m.kv_read(&admin, "secret", "a", 0).map(|_| ()),
        m.list_mounts().map(|_| ()),
        m.list_rules().map(|_| ()),
    ] {
        assert!(matches!(r, Err(CryptError::Unavailable(s)) if s == "sealed"));
    }
    m.unseal(
        &admin,
        crate::core::UnsealInputBody {
            passphrase: Some("a long enough passphrase".to_owned()),
            ..Default::default()
        },
    )
    .await
    .expect("unseal");
    // After unseal, the mount, its ring, the policy and the data are back.
    assert_eq!(
        m.kv_read(&admin, "secret", "a", 0).expect("read").data,
        Some(data(json!({"v": 1})))
    );
    m.delete_mount(&admin, "secret").expect("unmount");
    assert!(matches!(
        m.kv_read(&admin, "secret", "a", 0),
        Err(CryptError::NotFound(_))
    ));
    // A new mount of the same name is empty: the old rows are gone.
    mount(&m, &admin, "secret", Value::Null);
    assert!(matches!(
        m.kv_read(&admin, "secret", "a", 0),
        Err(CryptError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_kv_row_moved_to_another_path_version_or_mount_does_not_open() {
    use crate::store::{KV_DATA, KV_META, mount_key};
    let (_d, m, admin) = unsealed().await;
    mount(&m, &admin, "one", Value::Null);
    mount(&m, &admin, "two", Value::Null);
    for (mt, p) in [("one", "a"), ("one", "b"), ("two", "a")] {
        m.kv_write(
            &admin,
            mt,
            p,
            &write(None, json!({"who": format!("{mt}/{p}")})),
        )
        .expect("w");
        m.kv_write(&admin, mt, p, &write(None, json!({"v": 2})))
            .expect("w2");
    }
    let id = |name: &str| m.get_mount(name).expect("mount").id;
    let (one, two) = (id("one"), id("two"));
    let dkey = |mount: u64, p: &str, v: u64| {
        let mut k = mount_key(mount, p.as_bytes());
        k.push(0);
        k.extend_from_slice(&v.to_be_bytes());
        k
    };
    let store = m.store();
    let copy = |table, from: &[u8], to: &[u8]| {
        let tx = mc_kit::store::json::WriteTx::begin(&store).expect("tx");
        let v = tx.get_raw(table, from).expect("get").expect("row");
        tx.put_raw(table, to, &v).expect("put");
        tx.commit().expect("commit");
    };
    let internal =
        |r: Result<crate::core::KvRead, CryptError>| matches!(r, Err(CryptError::Internal(_)));
    // Version 1 of one/a copied over version 1 of one/b: another path.
    copy(KV_DATA, &dkey(one, "a", 1), &dkey(one, "b", 1));
    assert!(internal(m.kv_read(&admin, "one", "b", 1)));
    // Version 1 over version 2 of the same path.
    copy(KV_DATA, &dkey(one, "a", 1), &dkey(one, "a", 2));
    assert!(internal(m.kv_read(&admin, "one", "a", 2)));
    // one/a's metadata over two/a's: another mount (and another key ring).
    copy(KV_META, &mount_key(one, b"a"), &mount_key(two, b"a"));
    assert!(internal(m.kv_read(&admin, "two", "a", 0)));
    // Untouched rows still open.
    assert!(m.kv_read(&admin, "one", "a", 1).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mounts_created_during_mek_rotations_keep_their_rings_across_unseal() {
    let (_d, m, admin) = unsealed().await;
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (m, admin) = (m.clone(), admin.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            for i in 0..5 {
                let name = format!("m{t}-{i}");
                mount(&m, &admin, &name, Value::Null);
                m.kv_write(&admin, &name, "k", &write(None, json!({"n": name})))
                    .expect("write");
                if t == 0 {
                    m.rotate_mek(&admin).expect("rotate");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    m.seal(&admin).await.expect("seal");
    m.unseal(
        &admin,
        crate::core::UnsealInputBody {
            passphrase: Some("a long enough passphrase".to_owned()),
            ..Default::default()
        },
    )
    .await
    .expect("unseal");
    assert_eq!(m.list_mounts().expect("mounts").len(), 20);
    for t in 0..4 {
        for i in 0..5 {
            let name = format!("m{t}-{i}");
            let r = m.kv_read(&admin, &name, "k", 0).expect("read");
            assert_eq!(r.data, Some(data(json!({ "n": name }))));
        }
    }
}

#[tokio::test]
async fn delete_version_after_reads_as_deleted_then_the_task_destroys_it() {
    let (_d, m, admin) = unsealed().await;
    // Over ten years is refused, at the mount and on a path.
    let e = m.create_mount(
        &admin,
        MountInput {
            name: "long".to_owned(),
            kind: "kv".to_owned(),
            description: String::new(),
            config: Some(json!({"delete_version_after": 400_000_000u64})),
        },
    );
    assert!(invalid(e).contains("delete_version_after"));
    mount(&m, &admin, "secret", json!({"delete_version_after": 3600}));
    let meta = |delete_version_after| KvMetadataInput {
        delete_version_after: Some(delete_version_after),
        ..KvMetadataInput::default()
    };
    assert!(
        invalid(m.kv_write_metadata(&admin, "secret", "a", &meta(400_000_000)))
            .starts_with("delete_version_after")
    );
    // The mount's hour: the deletion time is set at write, still to come.
    let v1 = m
        .kv_write(&admin, "secret", "a", &write(None, json!({"v": 1})))
        .expect("v1");
    assert_eq!(v1.deletion_time, v1.created_time + 3600);
    let r = m.kv_read(&admin, "secret", "a", 1).expect("read");
    assert_eq!(r.data, Some(data(json!({"v": 1}))));
    // A path may shorten the mount's (the shorter wins), here to 1 s.
    m.kv_write_metadata(&admin, "secret", "a", &meta(1))
        .expect("meta");
    let v2 = m
        .kv_write(&admin, "secret", "a", &write(None, json!({"v": 2})))
        .expect("v2");
    assert_eq!(v2.deletion_time, v2.created_time + 1);
    assert_eq!(
        m.kv_read_metadata(&admin, "secret", "a")
            .expect("meta")
            .delete_version_after,
        1
    );
    // A version a caller soft-deletes is never destroyed by the task.
    m.kv_write(&admin, "secret", "b", &write(None, json!({"v": 1})))
        .expect("b");
    m.kv_delete_latest(&admin, "secret", "b").expect("delete b");
    // Past its deletion time, v2 reads as deleted (the clock moves on).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = m.kv_read(&admin, "secret", "a", 2).expect("read");
    assert!(r.data.is_none() && !r.metadata.destroyed, "{r:?}");
    // The task destroys v2 only; v1's hour has not passed.
    let now = mc_kit::clock::unix_now();
    let out = m.expire_kv_at(now).expect("task");
    assert_eq!(out, "1 versions destroyed on 1 paths");
    let r = m.kv_read(&admin, "secret", "a", 2).expect("read");
    assert!(r.data.is_none() && r.metadata.destroyed, "{r:?}");
    assert!(
        m.kv_read(&admin, "secret", "a", 1)
            .expect("v1")
            .data
            .is_some()
    );
    // An hour on, v1 goes too; b (soft-deleted by a caller) stays undeletable.
    let out = m.expire_kv_at(now + 3601).expect("task");
    assert_eq!(out, "1 versions destroyed on 1 paths");
    m.kv_undelete(&admin, "secret", "b", &KvDelete { versions: vec![1] })
        .expect("undelete b");
    assert!(
        m.kv_read(&admin, "secret", "b", 0)
            .expect("b")
            .data
            .is_some()
    );
    // Audited as a destroy by the jobs' principal.
    let audit = mc_kit::store::json::ReadTx::begin(&m.store())
        .expect("rx")
        .all(crate::store::AUDIT)
        .expect("audit");
    assert!(
        audit.iter().any(|e| e.action == "kv.destroy"
            && e.actor.contains("metacrypt-jobs")
            && e.detail.contains("delete_version_after")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn expiry_runs_in_bounded_batches_over_every_path() {
    let (_d, m, admin) = unsealed().await;
    mount(&m, &admin, "secret", json!({"delete_version_after": 60}));
    for i in 0..7 {
        m.kv_write(
            &admin,
            "secret",
            &format!("p{i}"),
            &write(None, json!({"i": i})),
        )
        .expect("write");
    }
    let now = mc_kit::clock::unix_now() + 61;
    // Batches of 3 paths: three transactions cover all 7.
    let pass = || {
        let mut done = crate::engines::kv::expiry::Expired::default();
        m.run_system("kv", |a| {
            done = crate::engines::kv::expiry::destroy_expired(&a, now, 3)?;
            Ok(())
        })
        .expect("pass");
        done
    };
    let done = pass();
    assert_eq!((done.paths, done.versions), (7, 7));
    let again = pass();
    assert_eq!(again.versions, 0);
}
