use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};

use super::*;

const ITEMS: Table = TableDefinition::new("items");
const MIRROR: Table = TableDefinition::new("mirror");

fn create_items(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(ITEMS).map(drop).map_err(StoreError::other)
}
fn create_mirror(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(MIRROR).map(drop).map_err(StoreError::other)
}

const V1: &[Migration] = &[Migration {
    to_version: 1,
    description: "items",
    apply: create_items,
}];
const V2: &[Migration] = &[
    Migration {
        to_version: 1,
        description: "items",
        apply: create_items,
    },
    Migration {
        to_version: 2,
        description: "mirror",
        apply: create_mirror,
    },
];
const SCHEMA_V1: Schema = Schema {
    name: "test",
    migrations: V1,
};
const SCHEMA: Schema = Schema {
    name: "test",
    migrations: V2,
};

fn put(store: &Store, table: Table, k: u64, v: &[u8]) {
    let txn = store.db().begin_write().expect("begin");
    txn.open_table(table)
        .expect("table")
        .insert(k.to_be_bytes().as_slice(), v)
        .expect("insert");
    txn.commit().expect("commit");
}

fn count(store: &Store, table: Table) -> u64 {
    let txn = store.db().begin_read().expect("read");
    txn.open_table(table).expect("table").len().expect("len")
}

#[test]
fn creates_owner_only_file_and_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("svc").join("svc.redb");
    let _store = Store::open(&path, &SCHEMA).expect("open");
    let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dmode = fs::metadata(path.parent().expect("dir"))
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dmode, 0o700);
}

#[test]
fn tightens_permissive_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("svc.redb");
    drop(Store::open(&path, &SCHEMA).expect("open"));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    drop(Store::open(&path, &SCHEMA).expect("reopen"));
    assert_eq!(
        fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn migrations_run_in_order_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("svc.redb");
    let store = Store::open(&path, &SCHEMA_V1).expect("open v1");
    assert_eq!(store.version().expect("version"), 1);
    put(&store, ITEMS, 1, b"one");
    drop(store);
    let store = Store::open(&path, &SCHEMA).expect("open v2");
    assert_eq!(store.version().expect("version"), 2);
    assert_eq!(count(&store, ITEMS), 1, "data survives a migration");
    assert_eq!(count(&store, MIRROR), 0);
}

#[test]
fn refuses_downgrade_and_foreign_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("svc.redb");
    drop(Store::open(&path, &SCHEMA).expect("open"));
    let err = Store::open(&path, &SCHEMA_V1).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooNew {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    let other = Schema {
        name: "other",
        migrations: V2,
    };
    let err = Store::open(&path, &other).unwrap_err();
    assert!(matches!(err, StoreError::WrongSchema { .. }), "{err}");
}

#[test]
fn misnumbered_migrations_are_refused() {
    const BAD: &[Migration] = &[Migration {
        to_version: 2,
        description: "x",
        apply: create_items,
    }];
    let dir = tempfile::tempdir().expect("tempdir");
    let err = Store::open(
        &dir.path().join("s.redb"),
        &Schema {
            name: "t",
            migrations: BAD,
        },
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::BadMigrations(_)), "{err}");
}

#[test]
fn second_open_is_refused_as_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("svc.redb");
    let _store = Store::open(&path, &SCHEMA).expect("open");
    let err = Store::open(&path, &SCHEMA).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
}

#[test]
fn a_released_store_can_be_opened_again_and_the_old_handle_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("svc.redb");
    let old = Store::open(&path, &SCHEMA).expect("open");
    put(&old, ITEMS, 1, b"before");
    old.release().expect("release");
    assert!(old.is_released());
    // The successor opens the file while the old handle still lives.
    let new = Store::open(&path, &SCHEMA).expect("open after release");
    assert_eq!(count(&new, ITEMS), 1);
    // The old handle can neither write nor read any more.
    let write = || -> Result<(), Box<dyn std::error::Error>> {
        let txn = old.db().begin_write()?;
        txn.open_table(ITEMS)?
            .insert(2_u64.to_be_bytes().as_slice(), b"late".as_slice())?;
        txn.commit()?;
        Ok(())
    };
    assert!(write().is_err(), "a released store committed");
    put(&new, ITEMS, 3, b"after");
    drop(old);
    assert_eq!(count(&new, ITEMS), 2);
    drop(new);
    let reopened = Store::open(&path, &SCHEMA).expect("reopen");
    assert_eq!(count(&reopened, ITEMS), 2);
}

/// Child side of `acknowledged_writes_survive_sigkill`: writes until killed,
/// printing each key only after its commit returned.
#[test]
fn crash_writer_child() {
    let Ok(path) = std::env::var("MC_KIT_CRASH_WRITER_PATH") else {
        return;
    };
    let store = Store::open(Path::new(&path), &SCHEMA).expect("open");
    let value = vec![0xAB_u8; 512];
    for k in 0_u64.. {
        put(&store, ITEMS, k, &value);
        println!("ack {k}");
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crash.redb");
    let exe = std::env::current_exe().expect("exe");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "store::tests::crash_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MC_KIT_CRASH_WRITER_PATH", &path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn writer");
    let stdout = child.stdout.take().expect("stdout");
    let mut last_ack = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(n) = line.strip_prefix("ack ") {
            let n: u64 = n.trim().parse().expect("number");
            last_ack = Some(n);
            if n >= 300 {
                break;
            }
        }
    }
    // SIGKILL mid-loop: the writer is committing its next key right now.
    // Child::kill sends SIGKILL on Unix.
    child.kill().expect("kill -9");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "writer must have been killed");
    let last_ack = last_ack.expect("writer acknowledged writes");

    let store = Store::open(&path, &SCHEMA).expect("reopen after SIGKILL");
    let txn = store.db().begin_read().expect("read");
    let items = txn.open_table(ITEMS).expect("table");
    for k in 0..=last_ack {
        assert!(
            items
                .get(k.to_be_bytes().as_slice())
                .expect("get")
                .is_some(),
            "acknowledged key {k} lost"
        );
    }
}

#[test]
fn snapshot_during_writes_is_consistent_and_restores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("live.redb");
    let store = Arc::new(Store::open(&path, &SCHEMA).expect("open"));
    let stop = Arc::new(AtomicBool::new(false));
    // Each transaction writes key k to both tables: a consistent copy has equal counts.
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut k = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                let txn = store.db().begin_write().expect("begin");
                for table in [ITEMS, MIRROR] {
                    txn.open_table(table)
                        .expect("t")
                        .insert(k.to_be_bytes().as_slice(), [7_u8; 64].as_slice())
                        .expect("ins");
                }
                txn.commit().expect("commit");
                k += 1;
            }
            k
        })
    };
    while count(&store, ITEMS) < 50 {
        std::thread::yield_now();
    }
    let snap = dir.path().join("snaps").join("s1.redb");
    fs::create_dir_all(snap.parent().expect("p")).expect("mkdir");
    let stats = store.snapshot_to(&snap).expect("snapshot");
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("writer");
    assert_eq!(stats.tables, 3, "items, mirror, mc_meta");
    assert!(stats.entries > 0);
    assert_eq!(
        fs::metadata(&snap).expect("meta").permissions().mode() & 0o777,
        0o600
    );

    // Restoring over a store that a service holds open is refused, and changes nothing.
    let err = Store::restore(&snap, &path, &SCHEMA).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert_eq!(count(&store, ITEMS), written);
    drop(store);

    Store::restore(&snap, &path, &SCHEMA).expect("restore");
    let restored = Store::open(&path, &SCHEMA).expect("open restored");
    let (a, b) = (count(&restored, ITEMS), count(&restored, MIRROR));
    assert_eq!(a, b, "snapshot mixes two transactions");
    assert!(a >= 50 && a <= written, "snapshot holds {a} of {written}");
    assert_eq!(restored.version().expect("v"), 2);
    let mut keep = path.as_os_str().to_owned();
    keep.push(".pre-restore");
    assert!(PathBuf::from(keep).exists(), "previous file kept");
}

#[test]
fn restore_refuses_foreign_snapshot_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let other_path = dir.path().join("other.redb");
    let other = Store::open(
        &other_path,
        &Schema {
            name: "other",
            migrations: V1,
        },
    )
    .expect("open other");
    let snap = dir.path().join("other-snap.redb");
    other.snapshot_to(&snap).expect("snap");
    let path = dir.path().join("mine.redb");
    let mine = Store::open(&path, &SCHEMA).expect("open");
    put(&mine, ITEMS, 9, b"keep");
    drop(mine);
    let err = Store::restore(&snap, &path, &SCHEMA).unwrap_err();
    assert!(matches!(err, StoreError::WrongSchema { .. }), "{err}");
    let mine = Store::open(&path, &SCHEMA).expect("reopen");
    assert_eq!(count(&mine, ITEMS), 1);

    let garbage = dir.path().join("garbage.redb");
    fs::write(&garbage, b"not a database").expect("write");
    assert!(Store::restore(&garbage, &path, &SCHEMA).is_err());
}
