//! podman and buildah against MCR: an image built here from local files (a
//! static busybox), `podman login` with an MCIAS password and with an MCIAS
//! token, `push`, `rmi`, `pull` and `run`; `buildah bud` and `buildah from
//! scratch` images pushed and pulled back. TLS is verified with the dev CA
//! through `--cert-dir` (never `--tls-verify=false`). Both tools run as root
//! with runc, cgroupfs and explicit ulimits (environment.md), on the test's
//! own `--root`/`--runroot` and auth file, so nothing touches the host's
//! storage or other tests' containers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::Registry;
use super::skopeo::ok;

/// podman and buildah on one private storage and auth file.
struct Tools {
    dir: PathBuf,
    storage: Vec<String>,
    certs: String,
}

impl Tools {
    fn new(dir: &Path, reg: &Registry) -> Self {
        let d = dir.display();
        std::fs::create_dir_all(dir.join("tmp")).expect("tmp");
        // buildah refuses an auth file that does not exist.
        std::fs::write(dir.join("auth.json"), "{}").expect("auth.json");
        Self {
            dir: dir.to_owned(),
            storage: vec![
                "--root".into(),
                format!("{d}/storage/root"),
                "--runroot".into(),
                format!("{d}/storage/run"),
            ],
            certs: reg.certs.display().to_string(),
        }
    }

    fn cmd(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.env("HOME", &self.dir)
            .env("TMPDIR", self.dir.join("tmp"))
            .env("REGISTRY_AUTH_FILE", self.dir.join("auth.json"))
            .args(&self.storage);
        c
    }

    fn podman(&self, args: &[&str]) -> Output {
        self.cmd("podman")
            .args(PODMAN)
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(args)
            .output()
            .expect("podman is installed (scripts/test installs it)")
    }

    fn buildah(&self, args: &[&str]) -> Output {
        self.cmd("buildah")
            .args(args)
            .output()
            .expect("buildah is installed (scripts/test installs it)")
    }

    /// `podman login --cert-dir` as `user` with a password or an MCIAS token.
    fn login(&self, host: &str, user: &str, secret: &str) -> Output {
        self.podman(&[
            "login",
            "--cert-dir",
            &self.certs,
            "-u",
            user,
            "-p",
            secret,
            host,
        ])
    }

    /// `podman run --rm` of `image` (with `cmd`, if any); its stdout, trimmed.
    fn run(&self, image: &str, cmd: &[&str]) -> String {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ]);
        args.push(image);
        args.extend(cmd);
        ok(&self.podman(&args), "podman run").trim().to_owned()
    }
}

/// Root podman as environment.md says it works here.
const PODMAN: [&str; 6] = [
    "--runtime",
    "runc",
    "--cgroup-manager",
    "cgroupfs",
    "--events-backend",
    "file",
];

/// A root filesystem with a static busybox and a file naming `version`.
fn rootfs(dir: &Path, version: &str) -> PathBuf {
    let root = dir.join(format!("rootfs-{version}"));
    std::fs::create_dir_all(root.join("bin")).expect("mkdir");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static");
    std::fs::write(root.join("version"), format!("{version}\n")).expect("version");
    root
}

/// The error podman or buildah printed, lowercased.
fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_ascii_lowercase()
}

#[test]
fn podman_logs_in_pushes_and_pulls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::start(dir.path());
    let t = Tools::new(&dir.path().join("client"), &reg);
    let host = reg.host.as_str();
    let certs = t.certs.clone();

    // An image from local files: a tarball of busybox, imported.
    let root = rootfs(dir.path(), "v1");
    let tar = dir.path().join("rootfs.tar");
    let mut pack = Command::new("tar");
    pack.args([
        Path::new("-C"),
        &root,
        Path::new("-cf"),
        &tar,
        Path::new("."),
    ]);
    assert!(pack.status().expect("tar").success());
    ok(
        &t.podman(&[
            "import",
            "--change",
            "CMD [\"/bin/busybox\",\"cat\",\"/version\"]",
            &tar.display().to_string(),
            "localhost/mcr-test/bb:v1",
        ]),
        "podman import",
    );

    // A wrong password is refused at login; the right one is accepted.
    let bad = t.podman(&[
        "login",
        "--cert-dir",
        &certs,
        "-u",
        "admin",
        "-p",
        "not-it",
        host,
    ]);
    assert!(!bad.status.success(), "a wrong password logs in");
    assert!(
        stderr(&bad).contains("invalid username/password"),
        "{}",
        stderr(&bad)
    );
    ok(
        &t.login(host, "admin", &reg.cp.password),
        "podman login (password)",
    );
    let image = format!("{host}/apps/bb:v1");
    ok(
        &t.podman(&["tag", "localhost/mcr-test/bb:v1", &image]),
        "tag",
    );
    ok(
        &t.podman(&["push", "--cert-dir", &certs, &image]),
        "podman push",
    );

    // The registry holds it: the manifest podman pushed, by tag.
    let r = reg.raw(
        "GET",
        "/v2/apps/bb/manifests/v1",
        Some(&reg.admin),
        &[
            "accept: application/vnd.oci.image.manifest.v1+json",
            "accept: application/vnd.docker.distribution.manifest.v2+json",
        ],
        None,
    );
    assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
    let pushed = r
        .header("docker-content-digest")
        .expect("digest")
        .to_owned();
    assert_eq!(r.json()["layers"].as_array().map(Vec::len), Some(1));

    // Removed locally, pulled back with the same digest, and it runs.
    ok(
        &t.podman(&["rmi", "--force", &image, "localhost/mcr-test/bb:v1"]),
        "rmi",
    );
    assert!(!t.podman(&["image", "exists", &image]).status.success());
    ok(
        &t.podman(&["pull", "--cert-dir", &certs, &image]),
        "podman pull",
    );
    let digest = ok(
        &t.podman(&["image", "inspect", "--format", "{{.Digest}}", &image]),
        "inspect",
    );
    assert_eq!(digest.trim(), pushed);
    assert_eq!(t.run(&image, &["/bin/busybox", "echo", "ok"]), "ok");
    ok(&t.podman(&["logout", host]), "logout");

    // An MCIAS token as the password (how CI logs in).
    ok(
        &t.login(host, "admin", &reg.admin),
        "podman login (MCIAS token)",
    );
    let v2 = format!("{host}/apps/bb:v2");
    ok(&t.podman(&["tag", &image, &v2]), "tag v2");
    ok(
        &t.podman(&["push", "--cert-dir", &certs, &v2]),
        "push with a token",
    );
    ok(&t.podman(&["logout", host]), "logout");

    // A user without push: DENIED from podman; pulls still work.
    let pw = "a user's long password";
    reg.cp.create_user(&reg.admin, "bob", pw);
    ok(&t.login(host, "bob", pw), "bob logs in");
    let theirs = format!("{host}/apps/bob:v1");
    ok(&t.podman(&["tag", &image, &theirs]), "tag");
    let denied = t.podman(&["push", "--cert-dir", &certs, &theirs]);
    assert!(!denied.status.success(), "bob pushed without push");
    assert!(stderr(&denied).contains("denied"), "{}", stderr(&denied));
    let r = reg.raw("GET", "/v2/apps/bob/tags/list", Some(&reg.admin), &[], None);
    assert_eq!(r.code, 404, "nothing of bob's push is visible");
    ok(&t.podman(&["rmi", "--all", "--force"]), "rmi everything");
    ok(&t.podman(&["pull", "--cert-dir", &certs, &v2]), "bob pulls");
    assert_eq!(t.run(&v2, &[]), "v1");
}

#[test]
fn buildah_pushes_images_it_built_from_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::start(dir.path());
    let t = Tools::new(&dir.path().join("client"), &reg);
    let host = reg.host.as_str();
    let certs = t.certs.clone();
    let creds = format!("admin:{}", reg.cp.password);
    let token = format!("admin:{}", reg.admin);

    // `buildah bud` of a Containerfile that copies local files onto scratch.
    let ctx = rootfs(dir.path(), "bud");
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY version /version\nCMD [\"/bin/busybox\", \"cat\", \"/version\"]\n",
    )
    .expect("Containerfile");
    let built = format!("{host}/apps/built:bud");
    ok(
        &t.buildah(&[
            "bud",
            "--isolation",
            "chroot",
            "--format",
            "oci",
            "-t",
            &built,
            &ctx.display().to_string(),
        ]),
        "buildah bud",
    );
    ok(
        &t.buildah(&["push", "--cert-dir", &certs, "--creds", &creds, &built]),
        "buildah push (bud)",
    );

    // `buildah from scratch` + copy + config + commit, pushed with a token.
    let root = rootfs(dir.path(), "scratch");
    let ctr = ok(&t.buildah(&["from", "scratch"]), "from scratch");
    let ctr = ctr.trim();
    ok(
        &t.buildah(&[
            "copy",
            ctr,
            &root.join("bin/busybox").display().to_string(),
            "/bin/busybox",
        ]),
        "copy busybox",
    );
    ok(
        &t.buildah(&[
            "copy",
            ctr,
            &root.join("version").display().to_string(),
            "/version",
        ]),
        "copy version",
    );
    ok(
        &t.buildah(&["config", "--cmd", "/bin/busybox cat /version", ctr]),
        "config",
    );
    let scratch = format!("{host}/apps/built:scratch");
    ok(&t.buildah(&["commit", ctr, &scratch]), "commit");
    ok(
        &t.buildah(&["push", "--cert-dir", &certs, "--creds", &token, &scratch]),
        "buildah push (scratch)",
    );

    // Both are in the registry and come back runnable through podman.
    let r = reg.raw(
        "GET",
        "/v2/apps/built/tags/list",
        Some(&reg.admin),
        &[],
        None,
    );
    assert_eq!(r.code, 200);
    assert_eq!(r.json()["tags"], serde_json::json!(["bud", "scratch"]));
    ok(&t.buildah(&["rm", "--all"]), "rm containers");
    ok(&t.buildah(&["rmi", "--all", "--force"]), "rmi");
    for (image, version) in [(&built, "bud"), (&scratch, "scratch")] {
        ok(
            &t.podman(&["pull", "--cert-dir", &certs, "--creds", &creds, image]),
            "pull",
        );
        assert_eq!(t.run(image, &[]), version);
    }

    // A pull-only user's buildah push is refused.
    let pw = "a user's long password";
    reg.cp.create_user(&reg.admin, "bob", pw);
    let denied = t.buildah(&[
        "push",
        "--cert-dir",
        &certs,
        "--creds",
        &format!("bob:{pw}"),
        &built,
        &format!("docker://{host}/apps/bob:v1"),
    ]);
    assert!(!denied.status.success(), "bob pushed without push");
    assert!(stderr(&denied).contains("denied"), "{}", stderr(&denied));
}
