//! Operator-experience regressions (issue 19): what a new user did with
//! `mcctl`, and the behaviour they should have met.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::controlplane::iam::Controlplane;
use crate::support::{mcctl, run_mcctl};

/// An endpoints file for a bare control plane, and `mcctl` against it.
struct Cli {
    endpoints: PathBuf,
}

impl Cli {
    fn new(dir: &Path, cp: &Controlplane) -> Self {
        let endpoints = dir.join("endpoints.json");
        std::fs::write(
            &endpoints,
            serde_json::json!({"controlplane": {"grpc": cp.grpc, "rest": cp.rest}, "ca_cert": cp.ca})
                .to_string(),
        )
        .expect("endpoints");
        Self { endpoints }
    }

    /// `mcctl ARGS` with `stdin` piped in (not a terminal).
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        run_mcctl(&self.endpoints, args, stdin)
    }

    /// `mcctl ARGS` must succeed; its stdout.
    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `mcctl ARGS` must fail; its stderr.
    fn fails(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{args:?} must fail: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        err
    }
}

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

/// Defect 8: a login from a script. `--password-stdin` and `--password-file`
/// work; an empty password (stdin not a terminal, nothing piped) is refused
/// before anything is sent, so it does not count toward the lockout (here
/// one failure locks); `mcctl iam password` changes the password.
#[test]
fn mcctl_login_password_stdin_and_iam_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "lockout_after = 1\nlockout = \"1h\"\n");
    let cli = Cli::new(dir.path(), &cp);
    let admin = ["login", "--username", "admin"];

    // What the new user did: no terminal, nothing on stdin.
    for (extra, stdin) in [(&[][..], ""), (&["--password-stdin"][..], "\n")] {
        let err = cli.fails(&[&admin[..], extra].concat(), stdin);
        assert!(
            err.contains("empty password") && err.contains("--password-stdin"),
            "{err}"
        );
    }
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").expect("write");
    let err = cli.fails(
        &[
            &admin[..],
            &["--password-file", empty.to_str().expect("utf-8")],
        ]
        .concat(),
        "",
    );
    assert!(err.contains("empty password"), "{err}");

    // Nothing was sent: with lockout_after = 1 any failure would have locked it.
    let login = cli.ok(
        &[&admin[..], &["--password-stdin", "--json"]].concat(),
        &format!("{}\n", cp.password),
    );
    assert!(login.contains("token_file"), "{login}");
    let file = dir.path().join("pw");
    std::fs::write(&file, format!("{}\n", cp.password)).expect("write");
    cli.ok(
        &[
            &admin[..],
            &["--password-file", file.to_str().expect("utf-8")],
        ]
        .concat(),
        "",
    );

    // Change the password: current then new, two lines of stdin.
    let new = "a much longer new password 19";
    cli.ok(
        &["iam", "password", "--password-stdin"],
        &format!("{}\n{new}\n", cp.password),
    );
    // An empty new password is refused client-side.
    let err = cli.fails(
        &["iam", "password", "--password-stdin"],
        &format!("{new}\n\n"),
    );
    assert!(err.contains("empty password"), "{err}");
    // The new one works (the old one is tried last: it locks the account).
    cli.ok(
        &[&admin[..], &["--password-stdin"]].concat(),
        &format!("{new}\n"),
    );
    let err = cli.fails(
        &[&admin[..], &["--password-stdin"]].concat(),
        &format!("{}\n", cp.password),
    );
    assert!(!err.contains("empty password"), "{err}");
}

/// Defect 4: the README's `sso update` example changed only the redirect URI
/// and `--disabled`, yet dropped the client's tags (which feed login policy)
/// and reset its id_token algorithm. Only the flags given change.
#[test]
fn mcctl_sso_update_changes_only_the_flags_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cp = Controlplane::start(dir.path(), "");
    let cli = Cli::new(dir.path(), &cp);
    cli.ok(
        &["login", "--username", "admin", "--password-stdin"],
        &format!("{}\n", cp.password),
    );
    cli.ok(
        &[
            "iam",
            "sso",
            "create",
            "grafana",
            "--redirect-uri",
            "https://grafana.example.net/login",
            "--name",
            "Grafana",
            "--tag",
            "ops",
            "--tag",
            "dash",
            "--id-token-alg",
            "EdDSA",
        ],
        "",
    );
    let get = || -> serde_json::Value {
        let list: serde_json::Value =
            serde_json::from_str(&cli.ok(&["--json", "iam", "sso", "list"], "")).expect("json");
        list.as_array()
            .and_then(|l| l.iter().find(|c| c["client_id"] == "grafana"))
            .cloned()
            .expect("grafana listed")
    };

    cli.ok(
        &["iam", "sso", "update", "grafana", "--name", "Dashboards"],
        "",
    );
    let c = get();
    assert_eq!(c["name"], "Dashboards", "{c}");
    assert_eq!(c["tags"], serde_json::json!(["dash", "ops"]), "{c}");
    assert_eq!(c["id_token_signed_response_alg"], "EdDSA", "{c}");
    assert_eq!(
        c["redirect_uris"],
        serde_json::json!(["https://grafana.example.net/login"]),
        "{c}"
    );
    assert_eq!(c["enabled"], true, "{c}");

    // The README's example: the redirect URI and disabled change, nothing else.
    cli.ok(
        &[
            "iam",
            "sso",
            "update",
            "grafana",
            "--redirect-uri",
            "https://grafana.example.net/cb",
            "--disabled",
        ],
        "",
    );
    let c = get();
    assert_eq!(c["tags"], serde_json::json!(["dash", "ops"]), "{c}");
    assert_eq!(c["id_token_signed_response_alg"], "EdDSA", "{c}");
    assert_eq!(c["name"], "Dashboards", "{c}");
    assert_eq!(
        c["redirect_uris"],
        serde_json::json!(["https://grafana.example.net/cb"]),
        "{c}"
    );
    assert_eq!(c["enabled"], false, "{c}");

    // Tags and enabled can still be changed on purpose.
    cli.ok(
        &["iam", "sso", "update", "grafana", "--no-tags", "--enabled"],
        "",
    );
    let c = get();
    assert_eq!(c["tags"], serde_json::json!([]), "{c}");
    assert_eq!(c["enabled"], true, "{c}");
    assert_eq!(c["id_token_signed_response_alg"], "EdDSA", "{c}");
}

/// The API routes of the only listener, as `hostname -> backends`.
fn api_routes(dp: &crate::peers::Dataplane) -> std::collections::BTreeMap<String, Vec<String>> {
    let list: serde_json::Value =
        serde_json::from_str(&dp.ok(&["--json", "proxy", "routes", "list"])).expect("json");
    list.as_array()
        .expect("array")
        .iter()
        .map(|r| {
            let backends = r["backends"]
                .as_array()
                .expect("backends")
                .iter()
                .map(|b| b.as_str().expect("str").to_owned())
                .collect();
            (r["hostname"].as_str().expect("str").to_owned(), backends)
        })
        .collect()
}

/// Defect 3: `routes import` of a small file replaced every API route on the
/// listener, and their L7 policies. Now it merges; `--replace` shows what it
/// would remove (routes and policies) and needs
/// `--yes` without a terminal; `routes add` on a hostname that has a route
/// with other settings needs `--replace`.
#[test]
fn mcctl_routes_import_merges_and_replace_is_explicit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = crate::peers::free_port();
    let pki = crate::dataplane::l7::Pki::new(dir.path());
    let dp = crate::peers::Dataplane::start(
        dir.path(),
        "auto",
        &format!(
            "certificate_authorities = [\"{}\"]\n[[proxy.listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{listen}\"\n",
            pki.ca()
        ),
    );
    let add = |host: &str, backend: &str, extra: &[&str]| {
        dp.mcctl(
            &[
                &["proxy", "routes", "add", host, "--backend", backend][..],
                extra,
            ]
            .concat(),
        )
    };
    // a.test L4; b.test L7 with a policy (what a replace would take with it).
    let (chain, key, _) = pki.leaf("site", &["b.test"]);
    dp.ok(&[
        "proxy", "certs", "put", "site", "--chain", &chain, "--key", &key,
    ]);
    let out = add("a.test", "127.0.0.1:1001", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = add(
        "b.test",
        "127.0.0.1:1002",
        &["--mode", "l7", "--cert", "site"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dp.ok(&[
        "proxy",
        "policies",
        "add",
        "b.test",
        "--block-user-agent",
        "BadBot",
    ]);
    let policies = || -> usize {
        let v: serde_json::Value =
            serde_json::from_str(&dp.ok(&["--json", "proxy", "policies", "list"])).expect("json");
        v.as_array().expect("array").len()
    };
    assert_eq!(policies(), 1);

    // `routes add` on an existing hostname with other backends: refused,
    // naming --replace; nothing changed. The same route again is a no-op.
    let out = add("a.test", "127.0.0.1:2001", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "silently replaced: {err}");
    assert!(
        err.contains("already exists") && err.contains("--replace"),
        "{err}"
    );
    assert_eq!(api_routes(&dp)["a.test"], ["127.0.0.1:1001"]);
    assert!(
        add("a.test", "127.0.0.1:1001", &[]).status.success(),
        "idempotent"
    );
    assert!(
        add("a.test", "127.0.0.1:2001", &["--replace"])
            .status
            .success()
    );
    assert_eq!(api_routes(&dp)["a.test"], ["127.0.0.1:2001"]);

    // What the new user did: import a file naming one new and one existing host.
    let file = dir.path().join("table.json");
    std::fs::write(
        &file,
        serde_json::json!([
            {"hostname": "a.test", "backends": ["127.0.0.1:3001"]},
            {"hostname": "c.test", "backends": ["127.0.0.1:3003"]},
        ])
        .to_string(),
    )
    .expect("table");
    let file = file.to_str().expect("utf-8");
    let out = dp.ok(&["proxy", "routes", "import", file]);
    assert!(out.contains("1 added, 1 changed, 0 removed"), "{out}");
    let routes = api_routes(&dp);
    assert_eq!(routes["a.test"], ["127.0.0.1:3001"], "{routes:?}");
    assert_eq!(
        routes["b.test"],
        ["127.0.0.1:1002"],
        "b.test kept: {routes:?}"
    );
    assert_eq!(routes["c.test"], ["127.0.0.1:3003"], "{routes:?}");
    assert_eq!(policies(), 1, "b.test's L7 policy kept");

    // --replace without a terminal and without --yes: refused, names what it
    // would remove and the flag; nothing changed.
    let before = api_routes(&dp);
    let out = dp.mcctl(&["proxy", "routes", "import", "--replace", file]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("b.test")
            && err.contains("1 L7 policy")
            && err.contains("--yes")
            && err.contains("nothing changed"),
        "{err}"
    );
    assert_eq!(api_routes(&dp), before);
    assert_eq!(policies(), 1);

    // --replace --yes: the file is the table now.
    let out = dp.mcctl(&[
        "--json",
        "proxy",
        "routes",
        "import",
        "--replace",
        "--yes",
        file,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        view["removed_hostnames"],
        serde_json::json!(["b.test"]),
        "{view}"
    );
    assert_eq!(view["policies_removed"], 1, "{view}");
    assert_eq!(policies(), 0);
    let routes = api_routes(&dp);
    assert_eq!(
        routes.keys().collect::<Vec<_>>(),
        ["a.test", "c.test"],
        "{routes:?}"
    );
    // Nothing to remove: --replace needs no confirmation.
    dp.ok(&["proxy", "routes", "import", "--replace", file]);
}

/// Defect 9: the version build script (`dataplane/kit/build.rs`) ran `git
/// describe --dirty`, which rewrites `.git/index`, and watched that index, so
/// a fresh clone's second build recompiled mc-kit and all above it. Compiled
/// and run in a repository with a stat-dirty file (as after a clone or a
/// `touch`): the index is not written, and the index is not watched.
#[test]
fn version_build_script_leaves_the_git_index_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).expect("mkdir");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(&repo)
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q"]);
    std::fs::write(repo.join("a.txt"), "a\n").expect("write");
    git(&["add", "a.txt"]);
    git(&["commit", "-q", "-m", "one"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dataplane/kit/build.rs");
    let bin = dir.path().join("build-script");
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()))
        .args(["--edition", "2024", "-o"])
        .arg(&bin)
        .arg(&script)
        .output()
        .expect("rustc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Same content, new mtime: git must refresh the index to call it clean.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(repo.join("a.txt"), "a\n").expect("touch");
    let index = repo.join(".git/index");
    let before = std::fs::metadata(&index)
        .expect("index")
        .modified()
        .expect("mtime");
    for _ in 0..2 {
        let out = Command::new(&bin)
            .current_dir(&repo)
            .output()
            .expect("build script");
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("MC_GIT_DESCRIBE="), "{text}");
        assert!(!text.contains("MC_GIT_DESCRIBE=unknown"), "{text}");
        assert!(!text.contains("-dirty"), "clean tree called dirty: {text}");
        assert!(text.contains("/HEAD"), "HEAD watched: {text}");
        assert!(
            !text.contains("index"),
            "the index must not be watched: {text}"
        );
    }
    let after = std::fs::metadata(&index)
        .expect("index")
        .modified()
        .expect("mtime");
    assert_eq!(before, after, "the build script rewrote .git/index");

    // A real change is still reported.
    std::fs::write(repo.join("a.txt"), "b\n").expect("edit");
    let out = Command::new(&bin)
        .current_dir(&repo)
        .output()
        .expect("build script");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("-dirty"),
        "{out:?}"
    );
}
