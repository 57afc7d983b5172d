//! DEK rotation and the rewrap job against a temporary store: batches save
//! their cursor, a reopened store resumes, stragglers are resealed, old
//! versions go, and every row still opens.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use redb::ReadableDatabase;
use serde_json::{Map, Value, json};

use crate::barrier::rewrap::Step;
use crate::barrier::sealer::put_sealed;
use crate::core::transit::{Batched, EncryptRequest};
use crate::core::{InitInput, KvWrite, Metacrypt, MountInput, UnsealInputBody};
use crate::engines::transit::{DecryptItem, EncryptItem, Input};
use crate::store::{KV_DATA, KV_META, TRANSIT_KEYS, mount_key};
use crate::testing::{PASS, admin};
use mc_kit::store::json::WriteTx;

fn open(path: &Path) -> Arc<Metacrypt> {
    let config = crate::config::MetacryptConfig {
        rewrap_batch_rows: 7,
        rewrap_pause: mc_kit::config::Duration::from_millis(0),
        ..crate::testing::fast_config()
    };
    Arc::new(Metacrypt::open(path, config).expect("open"))
}

fn put(m: &Metacrypt, path: &str, n: u64) {
    let mut data = Map::new();
    data.insert("n".to_owned(), json!(n));
    m.kv_write(
        &admin(),
        "secret",
        path,
        &KvWrite {
            data,
            options: Default::default(),
        },
    )
    .expect("write");
}

fn get(m: &Metacrypt, path: &str) -> Value {
    let r = m.kv_read(&admin(), "secret", path, 0).expect("read");
    r.data.map(Value::Object).unwrap_or(Value::Null)["n"].clone()
}

fn encrypt(m: &Metacrypt, key: &str, pt: &[u8]) -> String {
    let req = EncryptRequest {
        batch: Batched::one(EncryptItem {
            plaintext: Some(Input::text(STANDARD.encode(pt))),
            ..Default::default()
        }),
        kind: None,
    };
    match m
        .transit_encrypt(&admin(), "transit", key, &req)
        .expect("encrypt")
    {
        crate::core::Answer::One(o) => o.ciphertext,
        other => panic!("{other:?}"),
    }
}

fn decrypt(m: &Metacrypt, key: &str, ct: &str) -> Vec<u8> {
    let req = Batched::one(DecryptItem {
        ciphertext: Some(ct.into()),
        ..Default::default()
    });
    match m
        .transit_decrypt(&admin(), "transit", key, &req)
        .expect("decrypt")
    {
        crate::core::Answer::One(o) => o.plaintext.to_vec(),
        other => panic!("{other:?}"),
    }
}

/// The DEK version each row of `mount` in `table` names.
fn row_versions(m: &Metacrypt, table: mc_kit::store::Table, mount: u64) -> Vec<u32> {
    let rx = m.store().db().begin_read().expect("rx");
    let t = rx.open_table(table).expect("table");
    let prefix = mount.to_be_bytes();
    t.range(prefix.as_slice()..)
        .expect("range")
        .map_while(|r| r.ok())
        .take_while(|(k, _)| k.value().starts_with(&prefix))
        .map(|(_, v)| {
            crate::barrier::envelope::parse(v.value())
                .expect("envelope")
                .dek_version
        })
        .collect()
}

fn mount_id(m: &Metacrypt, name: &str) -> u64 {
    m.get_mount(name).expect("mount").id
}

fn versions(m: &Metacrypt, name: &str) -> Vec<u32> {
    m.jobs()
        .expect("jobs")
        .rings
        .into_iter()
        .find(|r| r.mount == name)
        .map(|r| r.versions)
        .unwrap_or_default()
}

async fn unsealed(path: &Path) -> Arc<Metacrypt> {
    let m = open(path);
    m.unseal(
        &admin(),
        UnsealInputBody {
            passphrase: Some(PASS.to_owned()),
            ..Default::default()
        },
    )
    .await
    .expect("unseal");
    m
}

/// A new, initialised store at `db` with `mounts` (name, type).
async fn fresh(db: &Path, mounts: &[(&str, &str)]) -> Arc<Metacrypt> {
    let m = open(db);
    let a = admin();
    m.init(
        &a,
        InitInput {
            passphrase: Some(PASS.to_owned()),
            ..InitInput::default()
        },
    )
    .await
    .expect("init");
    for (name, kind) in mounts {
        m.create_mount(
            &a,
            MountInput {
                name: (*name).into(),
                kind: (*kind).into(),
                description: String::new(),
                config: None,
            },
        )
        .expect("mount");
    }
    m
}

#[tokio::test]
async fn rotation_rewraps_in_batches_resumes_after_reopen_and_drops_old_versions() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("m.redb");
    let m = fresh(&db, &[("secret", "kv"), ("transit", "transit")]).await;
    let a = admin();
    for i in 0..20 {
        put(&m, &format!("app/{i:02}"), i);
    }
    let cts: Vec<(String, String)> = (0..3)
        .map(|i| {
            let k = format!("k{i}");
            let ct = encrypt(&m, &k, format!("pt{i}").as_bytes());
            (k, ct)
        })
        .collect();
    let kv = mount_id(&m, "secret");
    assert!(row_versions(&m, KV_DATA, kv).iter().all(|v| *v == 1));

    // Bad input: an unknown mount, nothing changes.
    assert_eq!(m.rotate_dek(&a, "nope").unwrap_err().http_status(), 404);

    let r = m.rotate_dek(&a, "secret").expect("rotate");
    assert_eq!((r.dek_version, r.rows), (2, 40), "20 meta + 20 data rows");
    m.rotate_dek(&a, "transit").expect("rotate transit");
    m.rotate_dek(&a, "sys").expect("rotate sys");
    assert_eq!(versions(&m, "secret"), [1, 2]);
    // New writes use version 2; old rows still open.
    put(&m, "app/new", 99);
    let meta = m.store().db().begin_read().expect("rx");
    let raw = meta
        .open_table(KV_META)
        .expect("t")
        .get(mount_key(kv, b"app/new").as_slice())
        .expect("get")
        .expect("row")
        .value()
        .to_vec();
    assert_eq!(
        crate::barrier::envelope::parse(&raw)
            .expect("env")
            .dek_version,
        2
    );
    drop(meta);
    assert_eq!(get(&m, "app/03"), json!(3));

    // Two batches of 7, then "kill -9": the cursor was saved with them.
    for _ in 0..2 {
        assert!(matches!(
            m.barrier.rewrap_step(kv, &[KV_META, KV_DATA], 7),
            Ok(Step::More(_))
        ));
    }
    let job = m.barrier.rewrap_jobs().expect("jobs");
    let j = job.iter().find(|j| j.mount == kv).expect("kv job");
    assert_eq!((j.rows_scanned, j.rows_resealed), (14, 14));
    let before = row_versions(&m, KV_META, kv);
    assert_eq!(
        before.iter().filter(|v| **v == 2).count(),
        15,
        "14 + app/new"
    );
    drop(m);

    let m = unsealed(&db).await;
    let jobs = m.jobs().expect("jobs");
    let j = jobs
        .jobs
        .iter()
        .find(|j| j.mount == "secret")
        .expect("resumed");
    assert_eq!((j.rows_scanned, j.target_version), (14, 2), "{jobs:?}");
    assert_eq!(jobs.jobs.len(), 3);
    assert_eq!(m.run_rewrap_jobs().await.expect("run"), 3);
    let jobs = m.jobs().expect("jobs");
    assert!(jobs.jobs.is_empty(), "{jobs:?}");
    for r in &jobs.rings {
        assert_eq!(r.versions, [r.current], "{r:?}");
    }
    assert!(
        jobs.tasks
            .iter()
            .any(|t| t.name == "rewrap secret" && t.outcome.starts_with("ok"))
    );
    for table in [KV_META, KV_DATA] {
        assert!(row_versions(&m, table, kv).iter().all(|v| *v == 2));
    }
    let transit = mount_id(&m, "transit");
    assert!(
        row_versions(&m, TRANSIT_KEYS, transit)
            .iter()
            .all(|v| *v == 2)
    );
    for i in 0..20 {
        assert_eq!(get(&m, &format!("app/{i:02}")), json!(i));
    }
    for (i, (k, ct)) in cts.iter().enumerate() {
        assert_eq!(decrypt(&m, k, ct), format!("pt{i}").as_bytes());
    }
    // After a restart only version 2 is loaded, and everything opens.
    drop(m);
    let m = unsealed(&db).await;
    assert_eq!(versions(&m, "secret"), [2]);
    assert_eq!(get(&m, "app/19"), json!(19));
    assert_eq!(m.list_mounts().expect("mounts").len(), 2, "sys rows open");
}

#[tokio::test]
async fn a_write_with_pre_rotation_keys_is_resealed_and_a_second_rotation_raises_the_target() {
    let dir = tempfile::tempdir().expect("tmp");
    let m = fresh(&dir.path().join("m.redb"), &[("secret", "kv")]).await;
    let a = admin();
    for i in 0..5 {
        put(&m, &format!("p{i}"), i);
    }
    let kv = mount_id(&m, "secret");
    let stale = m.barrier.unsealed().expect("keys");
    m.rotate_dek(&a, "secret").expect("rotate");
    // Scan every table (not yet finished)…
    while let Ok(Step::More(j)) = m.barrier.rewrap_step(kv, &[KV_META, KV_DATA], 100) {
        if j.table >= 2 {
            break;
        }
    }
    // …then a write that took its keys before the rotation commits.
    let tx = WriteTx::begin(&m.store()).expect("tx");
    put_sealed(
        &tx,
        &stale,
        kv,
        KV_DATA,
        &mount_key(kv, b"late"),
        &json!({"x": 1}),
    )
    .expect("put");
    tx.commit().expect("commit");
    drop(stale);
    // The last transaction reseals it before version 1 goes.
    let done = m
        .barrier
        .rewrap_step(kv, &[KV_META, KV_DATA], 100)
        .expect("finish");
    assert_eq!(
        done,
        Step::Done {
            resealed: 11,
            dropped: 1
        }
    );
    assert_eq!(versions(&m, "secret"), [2]);
    let late: Value = crate::barrier::sealer::Snapshot::begin(&m.store())
        .expect("rx")
        .get(
            &m.barrier.unsealed().expect("keys"),
            kv,
            KV_DATA,
            &mount_key(kv, b"late"),
        )
        .expect("opens")
        .expect("row");
    assert_eq!(late, json!({"x": 1}));
    // A second rotation while the job runs raises its target and restarts it.
    m.rotate_dek(&a, "secret").expect("rotate");
    assert!(matches!(
        m.barrier.rewrap_step(kv, &[KV_META, KV_DATA], 3),
        Ok(Step::More(_))
    ));
    m.rotate_dek(&a, "secret").expect("rotate again");
    let j = m.barrier.rewrap_jobs().expect("jobs");
    assert_eq!((j.len(), j[0].target, j[0].rows_scanned), (1, 4, 0));
    assert_eq!(versions(&m, "secret"), [2, 3, 4]);
    let done = loop {
        match m
            .barrier
            .rewrap_step(kv, &[KV_META, KV_DATA], 3)
            .expect("step")
        {
            Step::More(_) => {}
            other => break other,
        }
    };
    assert!(matches!(done, Step::Done { dropped: 2, .. }), "{done:?}");
    assert_eq!(versions(&m, "secret"), [4]);
    assert!(row_versions(&m, KV_DATA, kv).iter().all(|v| *v == 4));
    assert_eq!(get(&m, "p4"), json!(4));
    // Deleting a mount deletes its job; a rotation while sealed is 503.
    m.rotate_dek(&a, "secret").expect("rotate");
    m.delete_mount(&a, "secret").expect("delete");
    assert!(m.barrier.rewrap_jobs().expect("jobs").is_empty());
    m.seal(&a).await.expect("seal");
    assert_eq!(m.rotate_dek(&a, "sys").unwrap_err().http_status(), 503);
}

#[tokio::test]
async fn tasks_flush_counts_and_rotate_keys_whose_period_passed() {
    use crate::engines::transit::wire::Period;
    use crate::engines::transit::{CreateKey, Dialect};
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("m.redb");
    let m = fresh(&db, &[("transit", "transit")]).await;
    let a = admin();
    m.transit_create_key(
        &a,
        "transit",
        "hourly",
        &CreateKey {
            auto_rotate_period: Some(Period::Text("1h".into())),
            ..Default::default()
        },
    )
    .expect("create");
    let ct = encrypt(&m, "hourly", b"one");
    encrypt(&m, "plain", b"two");
    encrypt(&m, "plain", b"three");
    assert_eq!(m.flush_counts().expect("flush"), "2 keys flushed");
    assert_eq!(m.flush_counts().expect("flush"), "0 keys flushed");
    // The counts were stored: after seal and unseal the cache reads them.
    m.seal(&a).await.expect("seal");
    drop(m);
    let m = unsealed(&db).await;
    let mut counts = Vec::new();
    m.run_system("transit", |au| {
        for name in ["hourly", "plain"] {
            let k = m.transit().require(&au, name)?;
            counts.push(k.encryptions(1));
        }
        Ok(())
    })
    .expect("read");
    assert_eq!(counts, [1, 2]);
    // Not due yet; an hour later the hourly key (only) rotates, audited.
    let now = u64::try_from(mc_kit::clock::unix_now()).expect("now");
    assert_eq!(
        m.auto_rotate_at(now).expect("check"),
        "2 keys checked, 0 rotated"
    );
    assert_eq!(
        m.auto_rotate_at(now + 3601).expect("check"),
        "2 keys checked, 1 rotated"
    );
    let k = m
        .transit_read_key(&a, "transit", "hourly", Dialect::Vault)
        .expect("read");
    assert_eq!(k["latest_version"], 2, "{k}");
    let k = m
        .transit_read_key(&a, "transit", "plain", Dialect::Vault)
        .expect("read");
    assert_eq!(k["latest_version"], 1, "{k}");
    assert_eq!(decrypt(&m, "hourly", &ct), b"one");
    let audit = mc_kit::store::json::ReadTx::begin(&m.store())
        .expect("rx")
        .all(crate::store::AUDIT)
        .expect("audit");
    assert!(
        audit
            .iter()
            .any(|e| e.action == "transit.key.auto_rotate" && e.actor.contains("metacrypt-jobs"))
    );
    // Sealed: no task runs.
    m.seal(&a).await.expect("seal");
    assert_eq!(m.flush_counts().unwrap_err().http_status(), 503);
}

#[tokio::test]
async fn acme_tidy_removes_expired_rows_keeps_live_ones_and_is_bounded() {
    use crate::engines::pki::acme::model::{Authz, EabKey, Identifier, Order, kind};
    use crate::engines::pki::acme::{rows, tidy};
    let dir = tempfile::tempdir().expect("tmp");
    let m = fresh(&dir.path().join("m.redb"), &[("pki", "pki")]).await;
    let now = mc_kit::clock::unix_now();
    let cert = rcgen::generate_simple_self_signed(vec!["a.test".to_owned()])
        .expect("cert")
        .cert
        .pem();
    let order = |id: &str, status: &str, expires: i64, chain: Option<&str>| Order {
        id: id.into(),
        account: "acct".into(),
        role: "web".into(),
        status: status.into(),
        identifiers: vec![],
        authzs: vec![],
        expires,
        error: None,
        serial: None,
        chain: chain.map(str::to_owned),
    };
    let authz = |id: &str, order: &str, expires: i64| Authz {
        id: id.into(),
        account: "acct".into(),
        order: order.into(),
        identifier: Identifier {
            kind: "dns".into(),
            value: "a.test".into(),
        },
        status: "pending".into(),
        expires,
        wildcard: false,
        challenges: vec![],
    };
    let eab = |expires: i64, account: Option<&str>| EabKey {
        role: "web".into(),
        hmac: "aGVsbG8".into(),
        mcias_subject: "s".into(),
        mcias_name: "n".into(),
        created: now - 100,
        expires,
        account: account.map(str::to_owned),
    };
    m.run_system("pki", |a| {
        let tx = rows::begin(&a).map_err(|p| crate::error::CryptError::internal(p.detail))?;
        let put_all = || -> Result<(), crate::engines::pki::acme::problem::Problem> {
            rows::put(
                &a,
                &tx,
                kind::ORDER,
                "o-expired",
                &order("o-expired", "pending", now - 10, None),
            )?;
            rows::put(
                &a,
                &tx,
                kind::ORDER,
                "o-live",
                &order("o-live", "pending", now + 900, None),
            )?;
            // Valid, its certificate still good: the account may revoke it.
            rows::put(
                &a,
                &tx,
                kind::ORDER,
                "o-cert",
                &order("o-cert", "valid", now - 10, Some(&cert)),
            )?;
            rows::put(
                &a,
                &tx,
                kind::ORDER,
                "o-nocert",
                &order("o-nocert", "valid", now - 10, None),
            )?;
            rows::put(
                &a,
                &tx,
                kind::AUTHZ,
                "z-gone",
                &authz("z-gone", "o-expired", now - 10),
            )?;
            rows::put(
                &a,
                &tx,
                kind::AUTHZ,
                "z-kept-order",
                &authz("z-kept-order", "o-live", now - 10),
            )?;
            rows::put(
                &a,
                &tx,
                kind::AUTHZ,
                "z-live",
                &authz("z-live", "o-expired", now + 900),
            )?;
            rows::put(&a, &tx, kind::EAB, "e-live", &eab(now + 900, None))?;
            rows::put(&a, &tx, kind::EAB, "e-used", &eab(now + 900, Some("acct")))?;
            rows::put(&a, &tx, kind::EAB, "e-expired", &eab(now - 10, None))?;
            Ok(())
        };
        put_all().map_err(|p| crate::error::CryptError::internal(p.detail))?;
        rows::commit(tx).map_err(|p| crate::error::CryptError::internal(p.detail))
    })
    .expect("rows");
    let before: u64 = tidy::tidied().iter().map(|(_, n)| n).sum();
    // Bounded: a run removes at most its limit (orders first).
    let mut first = tidy::Tidied::default();
    m.run_system("pki", |a| {
        first = tidy::tidy(&a, now, 2).map_err(|p| crate::error::CryptError::internal(p.detail))?;
        Ok(())
    })
    .expect("tidy");
    assert_eq!(first.total(), 2, "{first:?}");
    assert_eq!(
        m.tidy_acme_at(now).expect("tidy"),
        "0 orders, 1 authorizations, 2 EAB keys removed"
    );
    assert_eq!(
        m.tidy_acme_at(now).expect("tidy"),
        "0 orders, 0 authorizations, 0 EAB keys removed"
    );
    let after: u64 = tidy::tidied().iter().map(|(_, n)| n).sum();
    assert!(after >= before + 5, "{before} → {after}");
    let mut left = Vec::new();
    m.run_system("pki", |a| {
        let ids = |k: u8| -> Vec<String> {
            rows::scan_keyed::<Value>(&a, k)
                .map(|r| r.into_iter().map(|(id, _)| id).collect())
                .unwrap_or_default()
        };
        left = [ids(kind::ORDER), ids(kind::AUTHZ), ids(kind::EAB)].concat();
        Ok(())
    })
    .expect("scan");
    left.sort();
    assert_eq!(
        left,
        ["e-live", "o-cert", "o-live", "z-kept-order", "z-live"]
    );
    // Sealed: the task does not run.
    m.seal(&admin()).await.expect("seal");
    assert_eq!(m.tidy_acme_at(now).unwrap_err().http_status(), 503);
}
