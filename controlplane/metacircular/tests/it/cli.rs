//! Argument and config errors: clear messages, non-zero exits, nothing started.

use crate::support::{mcctl, mcd, run};

#[test]
fn bad_arguments_print_usage_and_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (bin, args) in [
        (mcd(), vec![]),
        (mcd(), vec!["frobnicate"]),
        (mcd(), vec!["controlplane"]),
        (mcctl(), vec![]),
        (mcctl(), vec!["frobnicate"]),
    ] {
        let out = run(&bin, &args, dir.path());
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Usage"),
            "{args:?}: usage expected"
        );
    }
}

#[test]
fn version_names_the_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bin in [mcd(), mcctl()] {
        let out = run(&bin, &["--version"], dir.path());
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(env!("CARGO_PKG_VERSION")) && text.contains('('),
            "{text}"
        );
    }
}

#[test]
fn config_errors_name_key_and_file_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    let good = format!(
        "data_dir = \"{d}\"\n[admin]\nsocket = \"{d}/dp.sock\"\nmetrics = \"127.0.0.1:0\"\n"
    );
    let cases = [
        (format!("{good}bogus_key = 1\n"), "bogus_key", "unknown key"),
        (
            format!("data_dir = \"{d}\"\n[admin]\nsocket = \"{d}/dp.sock\"\n"),
            "admin.metrics",
            "missing",
        ),
        (
            good.replace("127.0.0.1:0", "not-an-address"),
            "admin.metrics",
            "bad value",
        ),
        (
            good.replace(&format!("data_dir = \"{d}\""), "data_dir = \"relative\""),
            "data_dir",
            "absolute",
        ),
    ];
    for (text, key, what) in cases {
        let file = dir.path().join("dataplane.toml");
        std::fs::write(&file, text).expect("write");
        let out = run(
            &mcd(),
            &["dataplane", "--config", file.to_str().expect("utf8")],
            dir.path(),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(key) && err.contains(&file.display().to_string()) && err.contains(what),
            "{err}"
        );
        assert!(
            !dir.path().join("dp.sock").exists(),
            "nothing may start on a bad config"
        );
    }
    // --check-config accepts a good file without starting anything.
    let file = dir.path().join("dataplane.toml");
    std::fs::write(&file, &good).expect("write");
    let out = run(
        &mcd(),
        &[
            "dataplane",
            "--config",
            file.to_str().expect("utf8"),
            "--check-config",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An env override beats the file (and is validated like it).
    let out = std::process::Command::new(mcd())
        .args([
            "dataplane",
            "--config",
            file.to_str().expect("utf8"),
            "--check-config",
        ])
        .env("MC_ADMIN_METRICS", "nonsense")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MC_ADMIN_METRICS"));
}
