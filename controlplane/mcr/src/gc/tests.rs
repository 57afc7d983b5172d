//! GC's invariants against a temporary store and blob directory, with a
//! clock the tests move, including the races the module header names
//! (a blob linked or referenced between a scan and its apply).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::sweep::{self, Progress};
use super::tables::{Counters, GC_PENDING, PendingRow, UNLINKED};
use super::*;
use crate::core::{Actor, Reference};
use crate::model::RepoName;
use crate::registry::digest::{Algorithm, Digest};
use crate::registry::manifest::{self, OCI_MANIFEST};
use crate::storage::Storage;
use crate::store::{BLOBS, LINKS, key2};

const GRACE: i64 = 600;

struct Env {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    core: Core,
    gc: Gc,
    sessions: Sessions,
    offset: Arc<AtomicI64>,
    n: std::sync::atomic::AtomicU32,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let store =
        mc_kit::store::Store::open(&root.join("mcr.redb"), &crate::store::SCHEMA).expect("store");
    let core = Core {
        store: Arc::new(store),
        fs: Storage::open_fs(&root).expect("fs"),
    };
    let offset = Arc::new(AtomicI64::new(0));
    let o = offset.clone();
    let clock: Clock = Arc::new(move || unix_now() + o.load(Ordering::SeqCst));
    Env {
        _dir: dir,
        root,
        core,
        gc: Gc::new(std::time::Duration::from_secs(GRACE as u64), clock),
        sessions: Sessions::new(16, 16, std::time::Duration::from_secs(3600)),
        offset,
        n: std::sync::atomic::AtomicU32::new(0),
    }
}

fn actor() -> Actor {
    Actor {
        account_id: "admin".into(),
        source_ip: "127.0.0.1".into(),
    }
}

fn repo(s: &str) -> RepoName {
    RepoName::parse(s).expect("name")
}

impl Env {
    fn upload(&self, r: &RepoName, bytes: &[u8]) -> Digest {
        let n = self.n.fetch_add(1, Ordering::SeqCst);
        let d = Digest::of(Algorithm::Sha256, bytes);
        let staged = self.root.join(format!("staged-{n}"));
        std::fs::write(&staged, bytes).expect("stage");
        self.core
            .commit_upload(r, &d, staged, &format!("{n:016x}"), bytes.len() as u64)
            .expect("commit");
        d
    }

    fn manifest(
        &self,
        r: &RepoName,
        config: &Digest,
        csize: usize,
        layer: &Digest,
        lsize: usize,
    ) -> R<Digest> {
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": csize},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": lsize}]});
        let bytes = serde_json::to_vec(&m).expect("json");
        let parsed = manifest::parse(OCI_MANIFEST, &bytes).expect("parse");
        let md = Digest::of(Algorithm::Sha256, &bytes);
        self.core
            .put_manifest(r, &md, &parsed, &bytes, &[], &actor())?;
        Ok(md)
    }

    fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }

    fn run(&self) -> RunRow {
        let row = self
            .gc
            .run_now(&self.core, &self.sessions, false, "test")
            .expect("run");
        assert_eq!(row.state, "done", "{:?}", row.error);
        row
    }

    fn objects(&self) -> usize {
        self.core.fs.list_objects().expect("list").len()
    }

    fn has_blob(&self, d: &Digest) -> bool {
        let row = ReadTx::begin(&self.core.store)
            .expect("tx")
            .get(BLOBS, d.to_string().as_bytes())
            .expect("get");
        row.is_some_and(|b| self.core.fs.open_object(&b.object).is_ok())
    }

    fn has_link(&self, r: &RepoName, d: &Digest) -> bool {
        ReadTx::begin(&self.core.store)
            .expect("tx")
            .get(LINKS, &key2(r.as_str(), &d.to_string()))
            .expect("get")
            .is_some()
    }
}

type R<T> = Result<T, crate::error::RegistryError>;

#[test]
fn referenced_blobs_stay_and_unreferenced_ones_go_after_two_graces() {
    let e = env();
    let r = repo("apps/web");
    let cfg = e.upload(&r, b"{}");
    let layer = e.upload(&r, b"layer");
    let stray = e.upload(&r, b"stray");
    let md = e.manifest(&r, &cfg, 2, &layer, 5).expect("put");
    assert_eq!(e.objects(), 3);

    // Within grace nothing goes, not even the stray upload.
    let first = e.run();
    assert_eq!(first.counters.links_removed, 0);
    assert_eq!(e.objects(), 3);

    // After grace the stray link goes; its blob only a grace later.
    e.advance(GRACE + 1);
    let second = e.run();
    assert_eq!(second.counters.links_removed, 1);
    assert_eq!(second.counters.blobs_removed, 0);
    assert!(!e.has_link(&r, &stray));
    assert!(e.has_blob(&stray), "the blob outlives its link by grace");
    e.advance(GRACE + 1);
    let third = e.run();
    assert_eq!(third.counters.blobs_removed, 1);
    assert_eq!(third.counters.bytes_reclaimed, 5);
    assert!(!e.has_blob(&stray));
    assert_eq!(e.objects(), 2);
    assert!(
        e.has_blob(&cfg) && e.has_blob(&layer),
        "referenced blobs stay"
    );
    assert!(e.core.manifest(&r, &Reference::Digest(md.clone())).is_ok());

    // Deleting the manifest makes its blobs collectable, two graces later
    // (the clock back to the core's, which stamps the delete).
    e.offset.store(0, Ordering::SeqCst);
    e.core.delete_manifest(&r, &md, &actor()).expect("delete");
    e.run();
    assert_eq!(e.objects(), 2, "unreferenced just now: grace applies");
    e.advance(GRACE + 1);
    e.run();
    e.advance(GRACE + 1);
    let last = e.run();
    assert_eq!(last.counters.blobs_removed, 2);
    assert_eq!(e.objects(), 0);
    let tx = ReadTx::begin(&e.core.store).expect("tx");
    assert_eq!(tx.len(BLOBS).expect("len"), 0);
    assert_eq!(tx.len(LINKS).expect("len"), 0);
    assert_eq!(tx.len(UNLINKED).expect("len"), 0);
    assert_eq!(tx.len(GC_PENDING).expect("len"), 0);
}

#[test]
fn a_blob_referenced_between_scan_and_apply_keeps_its_link() {
    let e = env();
    let r = repo("apps/web");
    let cfg = e.upload(&r, b"{}");
    let layer = e.upload(&r, b"layer");
    e.advance(GRACE + 1);
    let now = (e.gc.clock)();
    let (cands, _, _) = sweep::scan(&e.core.store, LINKS, None, |l| {
        sweep::link_expired(l, now, GRACE)
    })
    .expect("scan");
    assert_eq!(cands.len(), 2, "both links are candidates at scan time");
    // A push lands between the scan and the apply.
    e.manifest(&r, &cfg, 2, &layer, 5).expect("put");
    let mut p = Progress {
        id: "none",
        phase: "links",
        counters: Counters::default(),
    };
    let keys: Vec<_> = cands.into_iter().map(|(k, _)| k).collect();
    let removed = sweep::remove_links(&e.core.store, &keys, now, GRACE, &mut p).expect("apply");
    assert!(
        removed.is_empty(),
        "re-checked in the write transaction: {removed:?}"
    );
    assert!(e.has_link(&r, &cfg) && e.has_link(&r, &layer));
}

#[test]
fn a_blob_linked_during_the_blob_sweep_is_not_deleted() {
    let e = env();
    let r = repo("apps/web");
    let d = e.upload(&r, b"layer");
    e.advance(GRACE + 1);
    e.run(); // link removed
    e.advance(GRACE + 1);
    let now = (e.gc.clock)();
    let (cands, _, _) = sweep::scan(&e.core.store, BLOBS, None, |b| {
        sweep::blob_expired(b, now, GRACE)
    })
    .expect("scan");
    assert_eq!(cands.len(), 1);
    // An upload of the same digest commits between scan and apply.
    e.upload(&repo("apps/other"), b"layer");
    let mut p = Progress {
        id: "none",
        phase: "blobs",
        counters: Counters::default(),
    };
    let keys: Vec<_> = cands.into_iter().map(|(k, _)| k).collect();
    let (items, objects) =
        sweep::remove_blobs(&e.core.store, &keys, now, GRACE, &mut p).expect("apply");
    assert!(items.is_empty() && objects.is_empty());
    assert!(e.has_blob(&d), "the linked blob and its object stay");
}

#[test]
fn a_manifest_put_within_grace_of_the_link_removal_relinks() {
    let e = env();
    let r = repo("apps/web");
    let cfg = e.upload(&r, b"{}");
    let layer = e.upload(&r, b"layer");
    // The client saw both (201) long ago; GC removes the links now.
    e.advance(GRACE + 1);
    assert_eq!(e.run().counters.links_removed, 2);
    assert!(!e.has_link(&r, &layer));
    // The manifest PUT still succeeds: the blob rows live another grace.
    e.manifest(&r, &cfg, 2, &layer, 5).expect("relinked");
    assert!(e.has_link(&r, &cfg) && e.has_link(&r, &layer));
    e.advance(2 * GRACE + 2);
    e.run();
    e.run();
    assert!(
        e.has_blob(&cfg) && e.has_blob(&layer),
        "referenced again: kept"
    );
    // Another repository never had it: no relink there.
    let err = e
        .manifest(&repo("apps/other"), &cfg, 2, &layer, 5)
        .expect_err("refused");
    assert_eq!(err.code, crate::error::Code::ManifestBlobUnknown);
}

#[test]
fn an_upload_after_gc_deleted_the_blob_stores_a_fresh_copy() {
    let e = env();
    let r = repo("apps/web");
    let d = e.upload(&r, b"layer");
    e.advance(GRACE + 1);
    e.run();
    e.advance(GRACE + 1);
    assert_eq!(e.run().counters.blobs_removed, 1);
    assert!(!e.has_blob(&d));
    let again = e.upload(&r, b"layer");
    assert!(e.has_blob(&again) && e.has_link(&r, &again));
    // A fresh object is never an orphan, whatever the clock says of rows.
    e.run();
    assert!(e.has_blob(&again));
}

#[test]
fn orphans_and_pending_objects_are_deleted_and_fresh_files_kept() {
    let e = env();
    // A crash between rename and commit: an object no row names.
    let staged = e.root.join("crashed");
    std::fs::write(&staged, b"half").expect("write");
    let d = Digest::of(Algorithm::Sha256, b"half");
    let key = Storage::object_key(&d, "00000000000000aa");
    e.core.fs.put_from_file(&staged, &key).expect("put");
    assert_eq!(
        e.run().counters.orphans_removed,
        0,
        "fresh: may be a commit in flight"
    );
    assert_eq!(e.objects(), 1);
    // A crash after a blob row was deleted but before its object was.
    let staged = e.root.join("pending");
    std::fs::write(&staged, b"pend").expect("write");
    let pd = Digest::of(Algorithm::Sha256, b"pend");
    let pkey = Storage::object_key(&pd, "00000000000000bb");
    e.core.fs.put_from_file(&staged, &pkey).expect("put");
    let tx = WriteTx::begin(&e.core.store).expect("tx");
    tx.put(
        GC_PENDING,
        pkey.as_bytes(),
        &PendingRow {
            digest: pd.to_string(),
            deleted_at: 0,
        },
    )
    .expect("put");
    tx.commit().expect("commit");
    e.run();
    assert_eq!(e.objects(), 1, "the pending object went at once");
    e.advance(GRACE + 1);
    let dry =
        e.gc.run_now(&e.core, &e.sessions, true, "test")
            .expect("dry");
    assert_eq!(dry.counters.orphans_removed, 1);
    assert_eq!(dry.items.len(), 1);
    assert_eq!(dry.items[0].digest, key);
    assert_eq!(e.objects(), 1, "a dry run deletes nothing");
    assert_eq!(e.run().counters.orphans_removed, 1);
    assert_eq!(e.objects(), 0);
}

#[test]
fn a_dry_run_lists_what_would_go_and_changes_nothing() {
    let e = env();
    let r = repo("apps/web");
    let d = e.upload(&r, b"stray");
    e.advance(GRACE + 1);
    let dry =
        e.gc.run_now(&e.core, &e.sessions, true, "test")
            .expect("dry");
    assert!(dry.dry_run);
    assert_eq!(dry.counters.links_removed, 1);
    assert_eq!(dry.items[0].kind, "link");
    assert_eq!(dry.items[0].repository, "apps/web");
    assert!(e.has_link(&r, &d));
}

#[test]
fn one_run_at_a_time_and_interrupted_runs_are_marked() {
    let e = env();
    let row = e.gc.begin(&e.core, false, "a").expect("first");
    let err = e.gc.begin(&e.core, false, "b").expect_err("second refused");
    assert!(matches!(err, ApiError::FailedPrecondition(ref m) if m.contains(&row.id)));
    // The process dies here; the next one marks the run interrupted.
    assert_eq!(Gc::mark_interrupted(&e.core).expect("mark"), 1);
    assert_eq!(Gc::get(&e.core, &row.id).expect("get").state, "interrupted");
    let list = Gc::list(&e.core, 10).expect("list");
    assert_eq!(list.len(), 1);
    assert!(matches!(
        Gc::get(&e.core, "gc-nope"),
        Err(ApiError::NotFound(_))
    ));
}

#[test]
fn pushes_racing_gc_runs_never_lose_a_referenced_blob() {
    // Real threads: pushers upload shared and own layers and push manifests
    // while a GC thread runs back to back with a 1 s grace. Every manifest
    // PUT must succeed and every referenced blob must stay readable.
    let e = Arc::new(env());
    let gc = Arc::new(Gc::new(
        std::time::Duration::from_secs(1),
        Arc::new(unix_now),
    ));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let g = {
        let (e, gc, stop) = (e.clone(), gc.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(Ordering::SeqCst) || runs < 2 {
                let row = gc.run_now(&e.core, &e.sessions, false, "t").expect("run");
                assert_eq!(row.state, "done", "{:?}", row.error);
                runs += 1;
            }
            runs
        })
    };
    let pushers: Vec<_> = (0..3)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                let r = repo(&format!("load/r{t}"));
                let mut pushed = Vec::new();
                for i in 0..40 {
                    let cfg = e.upload(&r, b"{}");
                    let body = format!("layer {t} {i}");
                    let layer = e.upload(&r, body.as_bytes());
                    let md = e
                        .manifest(&r, &cfg, 2, &layer, body.len())
                        .expect("push during GC");
                    pushed.push((md, cfg, layer));
                    // Drop an older manifest now and then: its blobs become garbage.
                    if i % 3 == 0 && pushed.len() > 1 {
                        let (old, _, _) = pushed.remove(0);
                        e.core.delete_manifest(&r, &old, &actor()).expect("delete");
                    }
                }
                (r, pushed)
            })
        })
        .collect();
    let results: Vec<_> = pushers
        .into_iter()
        .map(|p| p.join().expect("pusher"))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    stop.store(true, Ordering::SeqCst);
    assert!(g.join().expect("gc") >= 2);
    for (r, pushed) in &results {
        for (md, cfg, layer) in pushed {
            assert!(e.core.manifest(r, &Reference::Digest(md.clone())).is_ok());
            assert!(e.has_blob(cfg) && e.has_blob(layer), "referenced blob lost");
            assert!(e.has_link(r, cfg) && e.has_link(r, layer));
        }
    }
}

#[test]
fn a_cancelled_run_stops_at_a_batch_boundary_and_the_next_run_does_the_work() {
    let e = env();
    let r = repo("apps/web");
    let stray = e.upload(&r, b"stray");
    e.advance(GRACE + 1);
    let row = e.gc.begin(&e.core, false, "admin").expect("begin");
    e.gc.cancel(&e.core, &row.id).expect("cancel a running run");
    let done = e.gc.execute(&e.core, &e.sessions, &row.id, false);
    assert_eq!(done.state, "cancelled");
    assert_eq!(done.error, None);
    assert_eq!(
        done.counters.links_removed, 0,
        "stopped before the first batch"
    );
    assert!(e.has_link(&r, &stray));
    let again =
        e.gc.cancel(&e.core, &row.id)
            .expect_err("no longer running");
    assert!(
        again.to_string().contains("not running (cancelled)"),
        "{again}"
    );
    assert!(e.gc.cancel(&e.core, "gc-no-such-run").is_err());
    // The flag belongs to that run: the next one does the work.
    let next = e.run();
    assert_eq!(
        (next.state.as_str(), next.counters.links_removed),
        ("done", 1)
    );
}
