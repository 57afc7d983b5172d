//! Operator-experience regressions (issue 19): what a new user did with
//! `mcctl`, and the behaviour they should have met.

use std::process::{Command, Stdio};

use crate::support::mcctl;

/// Defect 10: `mcctl endpoints | head` with the reader already gone: mcctl
/// stops quietly like other Unix tools (no panic message, no backtrace).
#[test]
fn mcctl_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoints = dir.path().join("endpoints.json");
    std::fs::write(
        &endpoints,
        serde_json::json!({"controlplane": {"grpc": "https://127.0.0.1:1", "rest": "https://127.0.0.1:1"}, "ca_cert": "/nonexistent"})
            .to_string(),
    )
    .expect("endpoints");
    // The read end is closed before mcctl starts: its first write meets EPIPE.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(mcctl())
        .arg("--endpoints")
        .arg(&endpoints)
        .arg("endpoints")
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("mcctl");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "mcctl panicked: {err}");
    assert!(err.is_empty(), "expected a quiet exit, stderr: {err}");
    assert!(
        out.status.success() || out.status.code() == Some(141),
        "status {:?}",
        out.status
    );
}
