//! MCR's online GC end to end (docs/design/mcr.md, "Tests"): skopeo pushes,
//! deletes and pulls in loops while GC runs every second with a 3 s grace,
//! with zero client failures, nothing referenced lost and everything
//! unreferenced gone afterwards (counted as files under the blob
//! directory); and a `kill -9` mid-push that leaves no partial blob while
//! the restarted registry serves everything acknowledged.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::skopeo::{blob, image, ok};
use super::{Mcctl, Registry, skopeo};

/// Files under `<data_dir>/mcr/blobs` (each stored copy of a blob).
fn blob_files(dir: &Path) -> usize {
    fn walk(p: &Path) -> usize {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| {
                        let p = e.path();
                        if p.is_dir() { walk(&p) } else { 1 }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&dir.join("mcr/blobs"))
}

/// An `oci:` layout holding one image of `n` unique layers tagged `latest`.
pub(super) fn one_image(dir: &Path, name: &str, n: usize) -> PathBuf {
    image_layout(dir, name, name, n).0
}

/// An `oci:` layout `layout-<name>` holding one image of `n` layers built
/// for `arch` (layouts of one `arch` share their first layers byte for
/// byte), tagged `latest`; the layout and the image's digest.
pub(super) fn image_layout(dir: &Path, name: &str, arch: &str, n: usize) -> (PathBuf, String) {
    let layout = dir.join(format!("layout-{name}"));
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("layout");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let work = dir.join(format!("work-{name}"));
    std::fs::create_dir_all(&work).expect("work");
    let (d, size) = image(&layout, &work, arch, n);
    let top = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": size,
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&top).expect("json"),
    )
    .expect("index");
    let _ = blob; // the layout's blobs are written by `image`
    (layout, d)
}

pub(super) fn copy_in(reg: &Registry, d: &Path, layout: &Path, dest: &str) {
    let certs = reg.certs.display().to_string();
    let creds = format!("admin:{}", reg.admin);
    ok(
        &skopeo(
            d,
            &[
                "copy",
                "--preserve-digests",
                "--dest-cert-dir",
                &certs,
                "--dest-creds",
                &creds,
                &format!("oci:{}:latest", layout.display()),
                &format!("docker://{}/{dest}", reg.host),
            ],
        ),
        &format!("push {dest}"),
    );
}

/// Pulls `src` into a fresh `oci:` layout (skopeo verifies every digest).
pub(super) fn pull(reg: &Registry, d: &Path, src: &str, out: &Path) {
    let certs = reg.certs.display().to_string();
    let creds = format!("admin:{}", reg.admin);
    let _ = std::fs::remove_dir_all(out);
    ok(
        &skopeo(
            d,
            &[
                "copy",
                "--src-cert-dir",
                &certs,
                "--src-creds",
                &creds,
                &format!("docker://{}/{src}", reg.host),
                &format!("oci:{}:x", out.display()),
            ],
        ),
        &format!("pull {src}"),
    );
}

#[test]
fn gc_under_load_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let reg = Registry::start_mcr(d, "gc_grace = \"3s\"\ngc_interval = \"1s\"");
    let stable = one_image(d, "stable", 3);
    copy_in(&reg, d, &stable, "load/stable:v1");
    const ROUNDS: usize = 5;
    // Layouts first (tar/gzip), so the loops below are registry traffic only.
    let layouts: Vec<Vec<PathBuf>> = (0..2)
        .map(|t| {
            (0..ROUNDS)
                .map(|i| one_image(d, &format!("p{t}r{i}"), 2))
                .collect()
        })
        .collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for (t, mine) in layouts.iter().enumerate() {
            let reg = &reg;
            s.spawn(move || {
                let sd = d.join(format!("pusher{t}"));
                std::fs::create_dir_all(&sd).expect("dir");
                for (i, layout) in mine.iter().enumerate() {
                    copy_in(reg, &sd, layout, &format!("load/p{t}:r{i}"));
                    // The previous round's manifest goes: its layers become garbage.
                    if i > 0 {
                        let certs = reg.certs.display().to_string();
                        let creds = format!("admin:{}", reg.admin);
                        ok(
                            &skopeo(
                                &sd,
                                &[
                                    "delete",
                                    "--cert-dir",
                                    &certs,
                                    "--creds",
                                    &creds,
                                    &format!("docker://{}/load/p{t}:r{}", reg.host, i - 1),
                                ],
                            ),
                            "delete previous round",
                        );
                    }
                    pull(reg, &sd, &format!("load/p{t}:r{i}"), &sd.join("out"));
                }
            });
        }
        let (reg, stop) = (&reg, &stop);
        s.spawn(move || {
            let pd = d.join("puller");
            std::fs::create_dir_all(&pd).expect("dir");
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) || n < 3 {
                pull(reg, &pd, "load/stable:v1", &pd.join("out"));
                // GC on demand too (refused while the scheduled one runs).
                let (code, body) = reg.cp.call(
                    "POST",
                    "/v1/registry/gc",
                    Some(&reg.admin),
                    Some(serde_json::json!({})),
                );
                assert!(code == 202 || code == 409, "{code} {body}");
                n += 1;
            }
        });
        // The pushers finish first (scope joins them); then stop the puller.
        std::thread::sleep(Duration::from_millis(10));
        let _ = &stop;
        // Wait for the two pusher threads by polling their last tags.
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let done = (0..2).all(|t| {
                reg.raw(
                    "HEAD",
                    &format!("/v2/load/p{t}/manifests/r{}", ROUNDS - 1),
                    Some(&reg.admin),
                    &[],
                    None,
                )
                .code
                    == 200
            });
            if done {
                break;
            }
            assert!(Instant::now() < deadline, "pushers never finished");
            std::thread::sleep(Duration::from_millis(200));
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    // Referenced: stable (3 layers + config) and each pusher's last round
    // (2 layers + config). Everything else goes within two graces and a
    // GC interval or so; wait (bounded) for the count to settle there.
    let want = 4 + 2 * 3;
    let deadline = Instant::now() + Duration::from_secs(60);
    while blob_files(d) != want {
        assert!(
            Instant::now() < deadline,
            "blob files: {} (want {want})",
            blob_files(d)
        );
        // On demand as well as scheduled (409 while one runs).
        let (code, body) = reg.cp.call(
            "POST",
            "/v1/registry/gc",
            Some(&reg.admin),
            Some(serde_json::json!({})),
        );
        assert!(code == 202 || code == 409, "{code} {body}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // And nothing referenced went: every remaining tag pulls, digests checked.
    pull(&reg, d, "load/stable:v1", &d.join("final-stable"));
    for t in 0..2 {
        pull(
            &reg,
            d,
            &format!("load/p{t}:r{}", ROUNDS - 1),
            &d.join(format!("final-{t}")),
        );
    }
    let (code, runs) = reg
        .cp
        .call("GET", "/v1/registry/gc?limit=100", Some(&reg.admin), None);
    assert_eq!(code, 200);
    let runs = runs["runs"].as_array().expect("runs").clone();
    assert!(
        runs.iter()
            .any(|r| r["counters"]["blobs_removed"].as_u64() > Some(0)),
        "{runs:?}"
    );
    assert!(runs.iter().all(|r| r["state"] != "failed"), "{runs:?}");
    assert!(
        runs.iter().any(|r| r["by"] == "gc-scheduler"),
        "the scheduler ran GC too: {runs:?}"
    );
}

#[test]
fn kill_9_during_push_leaves_nothing_partial_and_keeps_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let reg = Registry::with_image(d, "", &["apps/acked:v1"]).reg;
    let before = blob_files(d);
    assert_eq!(before, 4);
    // A large upload in flight: POST a session, PATCH 32 MiB slowly.
    let big = d.join("big");
    std::fs::write(&big, vec![7u8; 32 << 20]).expect("big");
    let r = reg.raw(
        "POST",
        "/v2/apps/big/blobs/uploads/",
        Some(&reg.admin),
        &[],
        None,
    );
    assert_eq!(r.code, 202);
    let location = r.header("location").expect("location").to_owned();
    let mut patch = std::process::Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            &reg.cp.ca,
            "-X",
            "PATCH",
            "--limit-rate",
            "4M",
        ])
        .args(["-H", &format!("authorization: Bearer {}", reg.admin)])
        .args(["-H", "content-type: application/octet-stream"])
        .arg("--data-binary")
        .arg(format!("@{}", big.display()))
        .arg(reg.url(&location))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("curl");
    // Wait until bytes have reached the session's staged file, then kill -9.
    let uploads = d.join("mcr/uploads");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let staged: u64 = std::fs::read_dir(&uploads)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::metadata(e.path().join("data")).ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        if staged > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let reg = reg.kill_and_restart();
    let _ = patch.kill();
    let _ = patch.wait();
    // Nothing partial is visible: no new blob file, the digest is unknown.
    assert_eq!(blob_files(d), before, "no partial blob under blobs/");
    let digest = super::sha256(&std::fs::read(&big).expect("big"));
    let head = reg.raw(
        "HEAD",
        &format!("/v2/apps/big/blobs/{digest}"),
        Some(&reg.admin),
        &[],
        None,
    );
    assert_eq!(head.code, 404);
    // Everything acknowledged is served, digests verified by skopeo; a GC
    // run right after the restart removes none of it.
    pull(&reg, d, "apps/acked:v1", &d.join("after"));
    let (code, run) = reg.cp.call(
        "POST",
        "/v1/registry/gc",
        Some(&reg.admin),
        Some(serde_json::json!({})),
    );
    assert_eq!(code, 202, "{run}");
    let id = run["id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, r) = reg.cp.call(
            "GET",
            &format!("/v1/registry/gc/{id}"),
            Some(&reg.admin),
            None,
        );
        if r["state"] != "running" {
            assert_eq!(r["state"], "done", "{r}");
            break;
        }
        assert!(Instant::now() < deadline, "GC run never ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(blob_files(d), before);
    pull(&reg, d, "apps/acked:v1", &d.join("after-gc"));
}

/// Every stored blob file under `<data_dir>/mcr/blobs`, sorted.
fn blob_paths(dir: &Path) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out)
            } else {
                out.push(p)
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("mcr/blobs"), &mut out);
    out.sort();
    out
}

#[test]
fn fsck_and_status_report_a_damaged_blob_store_through_mcctl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let reg = Registry::with_image(d, "", &["apps/fsck:latest"]).reg;
    let mcctl = Mcctl::new(&reg, d);

    let status = mcctl.run(&["registry", "status"]);
    assert_eq!(status["repositories"], 1, "{status}");
    assert_eq!(status["blobs"], 4, "config and three layers: {status}");
    let clean = mcctl.run(&["registry", "fsck", "--verify-content"]);
    assert_eq!(clean["clean"], true, "{clean}");
    assert_eq!(clean["blobs_checked"], 4, "{clean}");

    // One file altered (same length), one removed.
    let files = blob_paths(d);
    assert_eq!(files.len(), 4, "{files:?}");
    let len = std::fs::metadata(&files[0]).expect("meta").len();
    std::fs::write(&files[0], vec![b'!'; usize::try_from(len).expect("len")]).expect("alter");
    std::fs::remove_file(&files[1]).expect("remove");

    let quick = mcctl.output(&["registry", "fsck"]);
    assert!(!quick.status.success(), "fsck exits non-zero on problems");
    let v: serde_json::Value = serde_json::from_slice(&quick.stdout).expect("json");
    assert_eq!(v["clean"], false, "{v}");
    assert_eq!(v["missing"]["count"], 1, "{v}");
    assert_eq!(v["content_mismatch"]["count"], 0, "not hashed: {v}");
    let full = mcctl.output(&["registry", "fsck", "--verify-content"]);
    assert!(!full.status.success());
    let v: serde_json::Value = serde_json::from_slice(&full.stdout).expect("json");
    assert_eq!(v["content_mismatch"]["count"], 1, "{v}");
    let object = v["content_mismatch"]["items"][0]["object"]
        .as_str()
        .unwrap_or_default();
    assert!(
        files[0].to_string_lossy().ends_with(object),
        "{object} is {}",
        files[0].display()
    );
    // Over REST too, for admins only.
    let (code, body) = reg.cp.call(
        "POST",
        "/v1/registry/fsck",
        Some(&reg.admin),
        Some(serde_json::json!({})),
    );
    assert_eq!(
        (code, &body["missing"]["count"]),
        (200, &serde_json::json!(1)),
        "{body}"
    );
    let (code, _) = reg.cp.call("GET", "/v1/registry/status", None, None);
    assert_eq!(code, 401);
}

#[test]
fn retention_rules_run_on_their_own_every_retention_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let dests = ["apps/ret:v1", "apps/ret:v2", "apps/ret:v3"];
    let reg = Registry::with_image(d, "retention_interval = \"1s\"", &dests).reg;
    let mcctl = Mcctl::new(&reg, d);
    let rule = mcctl.run(&[
        "registry",
        "retention",
        "set",
        "keep-one",
        "--repo",
        "apps/**",
        "--keep-last",
        "1",
    ]);
    assert_eq!(rule["id"], "keep-one", "{rule}");
    // Nobody asks for a run: the scheduler applies the rule.
    let deadline = Instant::now() + Duration::from_secs(60);
    let tags = loop {
        let tags = mcctl.run(&["registry", "tags", "list", "apps/ret"]);
        if tags.as_array().map(Vec::len) == Some(1) || Instant::now() > deadline {
            break tags;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(tags.as_array().map(Vec::len), Some(1), "{tags}");
    let audit = mcctl.run(&["registry", "audit", "--action", "registry.retention"]);
    let rows = audit.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 2, "two tags removed: {audit}");
    assert!(
        rows.iter().all(|r| r["actor"] == "retention-scheduler"),
        "{audit}"
    );
}
