//! MCDoc: `mcd mcdoc` serving (a copy of) this repository's `docs/` to
//! curl, and its OCI image built by `scripts/mcdoc-image` from local files
//! running under root Podman (runc, cgroupfs, explicit ulimits, the test's
//! own storage). Loopback only.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_port;
use crate::support::{curl, mcd};

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `cp -r` of this repository's docs/ into `dir`.
fn copy_docs(dir: &Path) -> PathBuf {
    let docs = dir.join("docs");
    let st = Command::new("cp")
        .arg("-r")
        .arg(repo().join("docs"))
        .arg(&docs)
        .status()
        .expect("cp");
    assert!(st.success());
    docs
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `url` until it answers 200 (bounded).
pub(crate) fn wait_200(url: &str, extra: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut args = extra.to_vec();
        args.push(url);
        let (code, body) = curl(&args);
        if code == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} never answered: {code} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn mcdoc_serves_this_repositorys_docs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = copy_docs(dir.path());
    let port = free_port();
    let server = Server(
        Command::new(mcd())
            .args(["mcdoc", "--dir"])
            .arg(&docs)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--title",
                "MC <docs>",
            ])
            // An env override of the config: poll fast.
            .env("MC_SITE_POLL", "200ms")
            .stdin(Stdio::null())
            .spawn()
            .expect("mcd mcdoc"),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_200(&format!("{base}/healthz"), &[]);

    // The index: the generated listing and the nav of the whole tree.
    let (code, body) = curl(&[&format!("{base}/")]);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("<title>MC &lt;docs&gt; · MC &lt;docs&gt;</title>"),
        "{body}"
    );
    for link in [
        "/ARCHITECTURE",
        "/design/",
        "/design/mcp",
        "/design/mcdoc",
        "/first-hour",
    ] {
        assert!(
            body.contains(&format!("href=\"{link}\"")),
            "{link} in the nav: {body}"
        );
    }
    // A page: its title, GitHub ids, .md links rewritten, a table.
    let (code, body) = curl(&[&format!("{base}/ARCHITECTURE")]);
    assert_eq!(code, 200);
    assert!(
        body.contains("<title>Architecture · MC &lt;docs&gt;</title>"),
        "{body}"
    );
    assert!(
        !body.contains("href=\"design/proxy.md\"") && body.contains("href=\"design/proxy\""),
        "links rewritten"
    );
    assert!(
        body.contains("<h2 id=\"code-map\">Code Map</h2>"),
        "heading ids"
    );
    // Highlighted shell in the first hour; the stylesheet has its classes.
    let (code, body) = curl(&[&format!("{base}/first-hour")]);
    assert_eq!(code, 200);
    assert!(
        body.contains("class=\"language-sh\"") && body.contains("<span class=\"hl-"),
        "highlighted"
    );
    let (code, css) = curl(&[&format!("{base}/_mcdoc/style.css")]);
    assert_eq!(code, 200);
    assert!(css.contains(".hl-"));
    // The same page by its file name; a directory redirects to its slash.
    assert_eq!(curl(&[&format!("{base}/design/mcp.md")]).0, 200);
    let (code, _) = curl(&["-o", "/dev/null", &format!("{base}/design")]);
    assert_eq!(code, 308);
    // Headers: no script may run.
    let (_, head) = curl(&["-D", "-", "-o", "/dev/null", &format!("{base}/design/mcp")]);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'"),
        "{head}"
    );

    // Traversal: nothing outside the tree, nothing hidden, whatever the spelling.
    std::fs::write(docs.join(".secret.md"), "# hidden").expect("write");
    for bad in [
        "/../Cargo.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/design/..%2f..%2fCargo.toml",
        "/..%2f..%2f..%2fetc%2fhostname",
        "/.secret",
        "/.secret.md",
        "/nope",
    ] {
        let (code, body) = curl(&["--path-as-is", &format!("{base}{bad}")]);
        assert_eq!(code, 404, "{bad}: {body}");
        assert!(
            !body.contains("[workspace]") && !body.contains("root:") && !body.contains("hidden"),
            "{bad}"
        );
    }
    // Only GET and HEAD.
    let (code, _) = curl(&["-X", "POST", &format!("{base}/ARCHITECTURE")]);
    assert_eq!(code, 405);

    // A change to a cached page is served after the next poll; raw HTML stays text.
    let (code, before) = curl(&[&format!("{base}/design/mcdoc")]);
    assert!(code == 200 && !before.contains("fresh-section"));
    let page = docs.join("design/mcdoc.md");
    let mut text = std::fs::read_to_string(&page).expect("read");
    text.push_str("\n## Fresh section\n\n<script>alert(1)</script>\n");
    std::fs::write(&page, text).expect("write");
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (_, body) = curl(&[&format!("{base}/design/mcdoc")]);
        if body.contains("id=\"fresh-section\"") {
            break body;
        }
        assert!(Instant::now() < deadline, "the change was never served");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!body.contains("<script>") && body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let (code, metrics) = curl(&[&format!("{base}/metrics")]);
    assert_eq!(code, 200);
    for line in [
        "mc_mcdoc_reloads_total ",
        "mc_mcdoc_renders_total ",
        "mc_mcdoc_cache_hits_total ",
    ] {
        let n: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        assert!(n >= 1, "{line} in {metrics}");
    }
    drop(server);

    // A bad config value exits 2 naming the key.
    let out = Command::new(mcd())
        .args(["mcdoc", "--dir"])
        .arg(&docs)
        .env("MC_SITE_POLL", "1ms")
        .output()
        .expect("mcd");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("site.poll"));
}

/// `scripts/mcdoc-image` into `out` (tag `tag`) from this test's `mcd`.
pub(crate) fn build_image(out: &Path, tag: &str, push: &[&str]) -> String {
    let o = Command::new(repo().join("scripts/mcdoc-image"))
        .arg("--out")
        .arg(out)
        .args(["--tag", tag, "--mcd"])
        .arg(mcd())
        .arg("--docs")
        .arg(repo().join("docs"))
        .args(push)
        .output()
        .expect("scripts/mcdoc-image");
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "mcdoc-image: {stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

#[test]
fn the_mcdoc_image_is_built_from_local_files_and_serves_under_podman() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    let podman = |args: &[&str]| {
        Command::new("podman")
            .args([
                "--runtime",
                "runc",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ])
            .args([
                "--root",
                &format!("{d}/root"),
                "--runroot",
                &format!("{d}/run"),
            ])
            .args(["--tmpdir", &format!("{d}/tmp")])
            .args(args)
            .output()
            .expect("podman is installed (scripts/test installs it)")
    };
    let oci = dir.path().join("oci");
    let said = build_image(&oci, "7", &[]);
    assert!(said.contains(":7 sha256:"), "{said}");
    // The same inputs make the same image.
    let again = build_image(&dir.path().join("oci2"), "7", &[]);
    assert_eq!(
        said.split_whitespace().nth(2),
        again.split_whitespace().nth(2),
        "reproducible"
    );

    // Into the test's own Podman storage, under a name of our choosing.
    let info = podman(&["info", "--format", "{{.Store.GraphDriverName}}"]);
    let driver = String::from_utf8_lossy(&info.stdout).trim().to_owned();
    let id = "localhost/mcdoc:7";
    let copied = Command::new("skopeo")
        .args(["copy", "--quiet", &format!("oci:{}:7", oci.display())])
        .arg(format!(
            "containers-storage:[{driver}@{d}/root+{d}/run]{id}"
        ))
        .output()
        .expect("skopeo is installed (scripts/test installs it)");
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let port = free_port();
    let run = podman(&[
        "run",
        "-d",
        "--name",
        "mcdoc-image-test",
        "-p",
        &format!("127.0.0.1:{port}:8080"),
        "-e",
        "PORT=8080",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        id,
    ]);
    let _cleanup = Cleanup(Box::new(move || {
        let _ = podman(&["rm", "--all", "--force", "--time", "0"]);
    }));
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_200(&format!("{base}/healthz"), &[]);
    let (code, body) = curl(&[&format!("{base}/design/mcp")]);
    assert_eq!(code, 200);
    assert!(
        body.contains("<title>MCP: design · Metacircular</title>"),
        "{body}"
    );
}

struct Cleanup<'a>(Box<dyn Fn() + 'a>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        (self.0)();
    }
}
