//! Bakes `git describe` into the binary so every `--version` names the exact commit.
//!
//! Invariant: this script never writes to the repository. `git describe
//! --dirty` (and a plain `git status`) refresh and rewrite `.git/index`; when
//! the script also watched the index, its own run made the next build stale
//! and a fresh clone's second build recompiled mc-kit and everything above
//! it. So the dirty check runs with `GIT_OPTIONAL_LOCKS=0` (git then keeps
//! its refreshed index in memory), and only what names the commit is
//! watched: `HEAD`, the branch it points to, and `packed-refs`. A `-dirty`
//! suffix therefore reflects the work tree when this script last ran (a
//! commit or checkout reruns it), not every later edit.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `git ARGS` (no optional locks, so no index write), its trimmed stdout if it succeeded.
fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
}

/// `git rev-parse --git-path NAME`, absolute (refs resolve to the common
/// dir, so this also works in a `git worktree`).
fn git_path(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(git(&["rev-parse", "--git-path", name])?);
    if p.is_absolute() {
        Some(p)
    } else {
        std::env::current_dir().ok().map(|d| d.join(p))
    }
}

fn watch(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}

fn main() {
    let mut describe = git(&["describe", "--tags", "--always"])
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    // Tracked files differing from HEAD (untracked ones do not count, as with --dirty).
    if describe != "unknown"
        && git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty())
    {
        describe.push_str("-dirty");
    }
    println!("cargo:rustc-env=MC_GIT_DESCRIBE={describe}");
    println!("cargo:rerun-if-changed=build.rs");
    // A watched path that does not exist makes cargo rerun every build: only
    // existing ones. A branch that is only packed is watched through its
    // directory, where a commit creates its loose ref.
    if let Some(head) = git_path("HEAD").filter(|p| p.exists()) {
        watch(&head);
    }
    if let Some(packed) = git_path("packed-refs").filter(|p| p.exists()) {
        watch(&packed);
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]).and_then(|r| git_path(&r)) {
        if branch.exists() {
            watch(&branch);
        } else if let Some(dir) = branch.parent().filter(|d| d.exists()) {
            watch(dir);
        }
    }
}
