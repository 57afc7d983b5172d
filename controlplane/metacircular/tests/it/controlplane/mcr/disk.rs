//! `[mcr] min_free`: with more free space asked for than the disk has,
//! every upload is refused with 507 before anything is written (skopeo's
//! push fails, raw monolithic and session POSTs are refused), and nothing
//! is left behind: no upload session, no blob, no repository.

use super::{Mcctl, Registry, sha256};

/// Entries under `dir` (recursively counting files only).
fn files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() { files(&p) } else { 1 }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn min_free_refuses_uploads_cleanly_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // 1 EiB: more than any disk here has free.
    let reg = Registry::start_mcr(d, "min_free = 1152921504606846976");
    let (src, _, _) = super::skopeo::layout(d);
    let admin = format!("admin:{}", reg.cp.password);
    let out = reg.copy(d, &src, "v1", "apps/full:v1", Some(&admin));
    assert!(!out.status.success(), "the push must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("507") || err.contains("disk space"), "{err}");

    let t = Some(reg.admin.as_str());
    let body = b"a blob that does not fit";
    let r = reg.raw(
        "POST",
        &format!("/v2/apps/full/blobs/uploads/?digest={}", sha256(body)),
        t,
        &["content-type: application/octet-stream"],
        Some(body),
    );
    assert_eq!((r.code, r.error_code().as_str()), (507, "UNKNOWN"));
    let message = r.json()["errors"][0]["message"].to_string();
    assert!(message.contains("out of disk space"), "{message}");
    let r = reg.raw("POST", "/v2/apps/full/blobs/uploads/", t, &[], None);
    assert_eq!(r.code, 507, "no session opened");

    // Nothing staged, stored or created.
    assert_eq!(files(&d.join("mcr/uploads")), 0);
    assert_eq!(files(&d.join("mcr/blobs")), 0);
    let mcctl = Mcctl::new(&reg, d);
    assert_eq!(
        mcctl.run(&["registry", "repos", "list"]),
        serde_json::json!([])
    );
    let status = mcctl.run(&["registry", "status"]);
    assert_eq!(status["blobs"], 0, "{status}");
    assert!(
        status["data_free_bytes"].as_u64().unwrap_or(0) > 0,
        "{status}"
    );
}
