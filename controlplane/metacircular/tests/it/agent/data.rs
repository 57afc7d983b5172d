//! Service data end to end: two agents on this host (separate data roots,
//! Podman storage, port ranges; the second publishes on 127.0.0.2) under
//! one control plane and one data plane; a counter service (busybox httpd
//! CGI keeping its count in `/srv/counter/data/count`). `mcctl snapshot`,
//! `restore` (the count back), `migrate --to second` (count intact, served
//! from the second node, the first one's copy gone), a migration that
//! fails on its target (the source serves again), and the refusals:
//! hostile archives to `ImportServiceData` write nothing, an import while
//! the service runs, a bad digest, the wrong kind of caller.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use mc_proto::deploy::v1 as pb;

use super::master::{json, refused};
use super::{HOST, Node, agent_files, req, system_token};

/// A second node: its own `mcd agent`, storage and data root.
struct Peer {
    agent: Child,
    podman_args: Vec<String>,
    dir: PathBuf,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.agent.kill();
        let _ = self.agent.wait();
        let _ = podman(
            &self.podman_args,
            &["rm", "--all", "--force", "--time", "0"],
        );
    }
}

fn podman(base: &[String], args: &[&str]) -> std::process::Output {
    Command::new("podman")
        .args(base)
        .args(args)
        .output()
        .expect("podman is installed")
}

fn start_peer(node: &Node, name: &str) -> Peer {
    let root = node.dir.parent().expect("test dir");
    let ag = root.join(name);
    std::fs::create_dir_all(&ag).expect("mkdir");
    let token = system_token(&node._cp, &node.admin, &format!("agent-{name}"));
    std::fs::write(ag.join("token"), token).expect("token");
    let files = agent_files(
        &ag,
        name,
        &root.join("cp"),
        &node._cp,
        &root.join("dp"),
        "127.0.0.2",
    );
    let agent = super::spawn_agent(&files.config);
    Peer {
        agent,
        podman_args: files.podman_args,
        dir: ag,
    }
}

/// `localhost/mcp-test/counter:1` from local files into one storage: a
/// static busybox, an index page, and two CGI scripts (`inc` adds one to
/// `/data/count` and prints it, `get` prints it).
fn counter_image(base: &[String], dir: &Path) -> String {
    let root = dir.join("counter-rootfs");
    for d in ["bin", "www/cgi-bin"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static");
    let _ = std::os::unix::fs::symlink("busybox", root.join("bin/sh"));
    std::fs::write(root.join("www/index.html"), "counter\n").expect("page");
    let head = "#!/bin/sh\necho 'Content-Type: text/plain'\necho\n";
    let inc = format!(
        "{head}n=$(/bin/busybox cat /data/count 2>/dev/null)\nn=$((${{n:-0}}+1))\n\
         echo \"$n\" > /data/count.new && /bin/busybox mv /data/count.new /data/count && echo \"$n\"\n"
    );
    let get = format!("{head}/bin/busybox cat /data/count\n");
    for (name, body) in [("inc", inc), ("get", get)] {
        let p = root.join("www/cgi-bin").join(name);
        std::fs::write(&p, body).expect("cgi");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let tar = dir.join("counter-rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
    let tag = "localhost/mcp-test/counter:1".to_owned();
    let out = podman(base, &["import", &tar.display().to_string(), &tag]);
    assert!(
        out.status.success(),
        "podman import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    tag
}

fn counter_toml(dir: &Path, image: &str) -> PathBuf {
    let path = dir.join("counter.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"counter\"\nnode = \"test\"\n[[components]]\nname = \"app\"\nimage = \"{image}\"\n\
             command = [\"/bin/busybox\", \"sh\", \"-c\", \"exec /bin/busybox httpd -f -p $PORT -h /www\"]\n\
             volumes = [\"data:/data\"]\nhealth = {{ http = \"/\", timeout = 10 }}\n\
             [[components.routes]]\nname = \"http\"\nmode = \"l7\"\nhostname = \"{HOST}\"\n"
        ),
    )
    .expect("counter.toml");
    path
}

/// `path` through MC-Proxy, retried (bounded) until it answers 200: the
/// proxy keeps a backend that refused connections down for a while.
fn call(node: &Node, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = crate::dataplane::l7::curl(node.proxy, &node.pki_ca, HOST, path, &[]);
        if code == 200 {
            return body;
        }
        assert!(Instant::now() < deadline, "{path}: {code} {body}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn wait_nodes(e: &Path, admin: &str, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let nodes = json(e, admin, &["nodes"]);
        let healthy = nodes
            .as_array()
            .map_or(0, |a| a.iter().filter(|n| n["health"] == "healthy").count());
        if healthy == want {
            return;
        }
        assert!(Instant::now() < deadline, "nodes: {nodes}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A tar whose one entry is written raw (name and link unchecked).
fn raw_tar(name: &str, kind: tar::EntryType, link: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_old();
    let old = h.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    let data: &[u8] = if kind == tar::EntryType::Regular {
        b"x"
    } else {
        b""
    };
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).expect("append");
    b.into_inner().expect("tar")
}

fn sha256(b: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b)
        .as_ref()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// `ImportServiceData` of `archive` for `service` as the master; the
/// status code of a refusal, or 0.
fn import(node: &Node, service: &str, archive: Vec<u8>, sha: Option<String>) -> tonic::Code {
    let total = archive.len() as u64;
    let sha = sha.unwrap_or_else(|| sha256(&archive));
    let chunks = vec![
        pb::DataChunk {
            service: service.to_owned(),
            force: true,
            data: archive,
            ..pb::DataChunk::default()
        },
        pb::DataChunk {
            total_bytes: total,
            sha256: sha,
            ..pb::DataChunk::default()
        },
    ];
    node.block(|mut c, t| async move {
        match c
            .import_service_data(req(tokio_stream::iter(chunks), &t))
            .await
        {
            Ok(_) => tonic::Code::Ok,
            Err(s) => s.code(),
        }
    })
}

#[test]
fn snapshot_restore_and_migrate_keep_the_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path());
    let cp = &node._cp;
    let endpoints = dir.path().join("endpoints.json");
    cp.write_endpoints(&endpoints);
    let e = endpoints.as_path();
    let admin = node.admin.as_str();
    let peer = start_peer(&node, "second");
    wait_nodes(e, admin, 2);
    let image = counter_image(&node.podman_args, &node.dir);
    assert_eq!(counter_image(&peer.podman_args, &peer.dir), image);

    // Deploy on `test`, count to 3.
    let toml = counter_toml(dir.path(), &image);
    let d = json(e, admin, &["deploy", &toml.display().to_string()]);
    assert_eq!(d["success"], true, "{d}");
    assert_eq!(call(&node, "/"), "counter\n");
    for want in 1..=3 {
        assert_eq!(call(&node, "/cgi-bin/inc"), format!("{want}\n"));
    }
    let srv_a = node.dir.join("srv/counter/data/count");
    assert_eq!(std::fs::read_to_string(&srv_a).expect("count"), "3\n");

    // Snapshot, kept on the master with its digest.
    let s = json(e, admin, &["snapshot", "counter"]);
    let id = s["id"].as_str().expect("id").to_owned();
    assert_eq!(s["node"], "test", "{s}");
    assert!(s["bytes"].as_u64() > Some(0), "{s}");
    let file = dir
        .path()
        .join(format!("cp/mcp/snapshots/counter/{id}.tar"));
    let out = Command::new("sha256sum")
        .arg(&file)
        .output()
        .expect("sha256sum");
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        line.starts_with(s["sha256"].as_str().expect("sha")),
        "{line} vs {s}"
    );
    let out = Command::new("tar")
        .arg("-tf")
        .arg(&file)
        .output()
        .expect("tar");
    assert!(String::from_utf8_lossy(&out.stdout).contains("data/count"));
    // The service kept serving (paused, not stopped, for the copy).
    assert_eq!(call(&node, "/cgi-bin/inc"), "4\n");
    assert_eq!(call(&node, "/cgi-bin/inc"), "5\n");
    let list = json(e, admin, &["snapshots", "counter"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // Restore: the count is 3 again, and the service serves.
    let r = json(e, admin, &["restore", &id]);
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(call(&node, "/cgi-bin/get"), "3\n");

    // Refusals: nothing changes.
    refused(
        e,
        admin,
        &["migrate", "counter", "--to", "test"],
        &["already runs on test"],
    );
    refused(
        e,
        admin,
        &["migrate", "counter", "--to", "nowhere"],
        &["no registered node"],
    );
    refused(
        e,
        admin,
        &["restore", "counter-1-00000000"],
        &["no snapshot"],
    );
    refused(e, &node.user, &["snapshot", "counter"], &["admin"]);
    refused(
        e,
        &node.agent_token,
        &["migrate", "counter", "--to", "second"],
        &["human"],
    );
    let (code, _) = cp.call(
        "POST",
        "/v1/mcp/services/counter/snapshots",
        Some(&node.user),
        None,
    );
    assert_eq!(code, 403);
    let (code, body) = cp.call(
        "POST",
        "/v1/mcp/services/counter/migrate",
        Some(admin),
        Some(serde_json::json!({"node": "Bad Name"})),
    );
    assert_eq!(code, 400, "{body}");
    // The agent: no import while the service runs, none with a bad digest,
    // and hostile archives are refused with nothing written.
    let ok_tar = raw_tar("data/x", tar::EntryType::Regular, "");
    assert_eq!(
        import(&node, "counter", ok_tar.clone(), None),
        tonic::Code::FailedPrecondition
    );
    assert_eq!(
        import(&node, "fresh", ok_tar.clone(), Some("00".repeat(32))),
        tonic::Code::InvalidArgument
    );
    let before = std::fs::read_dir(node.dir.join("srv"))
        .expect("srv")
        .count();
    for (why, archive) in [
        ("../", raw_tar("../../escaped", tar::EntryType::Regular, "")),
        (
            "absolute",
            raw_tar("/tmp/escaped-by-mcp-test", tar::EntryType::Regular, ""),
        ),
        (
            "device node",
            raw_tar("data/null", tar::EntryType::Char, ""),
        ),
        ("fifo", raw_tar("data/fifo", tar::EntryType::Fifo, "")),
        (
            "escaping symlink",
            raw_tar("data/out", tar::EntryType::Symlink, "../../../.."),
        ),
        (
            "hard link out",
            raw_tar("data/pw", tar::EntryType::Link, "../../etc/passwd"),
        ),
    ] {
        assert_eq!(
            import(&node, "evil", archive, None),
            tonic::Code::InvalidArgument,
            "{why}"
        );
        assert!(!node.dir.join("srv/evil").exists(), "{why}");
    }
    assert_eq!(
        std::fs::read_dir(node.dir.join("srv"))
            .expect("srv")
            .count(),
        before
    );
    assert!(!node.dir.join("escaped").exists() && !Path::new("/tmp/escaped-by-mcp-test").exists());
    assert_eq!(import(&node, "fresh", ok_tar, None), tonic::Code::Ok);
    assert_eq!(
        std::fs::read_to_string(node.dir.join("srv/fresh/data/x")).expect("x"),
        "x"
    );

    // Migrate to `second`: the count intact, served from there.
    let m = json(e, admin, &["migrate", "counter", "--to", "second"]);
    assert_eq!(m["success"], true, "{m}");
    assert!(
        m["snapshot_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("counter-")),
        "{m}"
    );
    assert_eq!(call(&node, "/cgi-bin/get"), "3\n");
    let st = json(e, admin, &["status", "counter"]);
    assert_eq!(st["node"], "second", "{st}");
    assert!(
        !node.dir.join("srv/counter").exists(),
        "the source's copy is gone"
    );
    assert_eq!(
        std::fs::read_to_string(peer.dir.join("srv/counter/data/count")).expect("count"),
        "3\n"
    );
    let ps = |base: &[String]| {
        String::from_utf8_lossy(&podman(base, &["ps", "--format", "{{.Names}} {{.Ports}}"]).stdout)
            .into_owned()
    };
    assert!(!ps(&node.podman_args).contains("counter-app"));
    let there = ps(&peer.podman_args);
    assert!(
        there.contains("counter-app") && there.contains("127.0.0.2:"),
        "{there}"
    );
    assert_eq!(call(&node, "/cgi-bin/inc"), "4\n");

    // A migration whose target cannot start it (its image is gone there):
    // the target's copy is removed and the source serves again.
    let out = podman(&node.podman_args, &["rmi", "--force", &image]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = super::master::mcctl(e, admin, &["--json", "migrate", "counter", "--to", "test"]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let steps = v["steps"].as_array().expect("steps");
    let step = |name: &str| steps.iter().find(|s| s["step"] == name).cloned();
    assert_eq!(
        step("restore-source").map(|s| s["success"].clone()),
        Some(true.into()),
        "{v}"
    );
    assert_eq!(
        step("remove-target").map(|s| s["success"].clone()),
        Some(true.into()),
        "{v}"
    );
    assert!(!node.dir.join("srv/counter").exists(), "{v}");
    assert_eq!(json(e, admin, &["status", "counter"])["node"], "second");
    assert_eq!(call(&node, "/cgi-bin/inc"), "5\n");
}
