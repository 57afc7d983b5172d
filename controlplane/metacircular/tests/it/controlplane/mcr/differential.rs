//! MCR against Debian's `docker-registry` (distribution 2.8): one request
//! script, written from the distribution-spec's MUSTs, runs against both
//! (distribution with TLS from the same dev CA, deletes enabled, no auth;
//! MCR with the admin's MCIAS token as the bearer). Each step's observation
//! (status, error code, the headers the spec names, normalised) must be
//! equal, except the steps in [`DIFFERENCES`], where distribution is behind
//! the spec: those assert the spec's answer for MCR and record
//! distribution's.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Registry, Response, request, sha256, sha512};
use crate::peers::free_port;

/// Where distribution 2.8 is behind the spec: step, MCR's (spec) answer, why.
const DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "monolithic",
        "201",
        "spec end-4b: one POST uploads; 2.8 opens a session (202), the spec's fallback",
    ),
    (
        "chunk-out-of-order",
        "416",
        "spec end-5: 416 and the current Range; 2.8 answers 202 and appends the bytes",
    ),
    (
        "tags",
        "lexical order",
        "spec end-8: tags in lexical order; 2.8 lists them in storage order",
    ),
    (
        "tags-pages",
        "pages of n, Link",
        "spec end-8: n and last paginate with a Link; 2.8.2 ignores n",
    ),
    (
        "sha512-upload",
        "201",
        "spec: sha512 digests are supported; 2.8 opens a session instead (202)",
    ),
    (
        "subject-push",
        "201 oci-subject",
        "spec end-7: OCI-Subject on a push with a subject; 2.8 has none",
    ),
    (
        "referrers",
        "200 index",
        "spec end-12: the referrers API; 2.8 answers 404",
    ),
    (
        "tag-delete",
        "202",
        "spec end-9: DELETE of a tag; 2.8 refuses it",
    ),
];

/// distribution's `registry serve`, killed on drop.
struct Distribution(Child);

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `docker-registry` on 127.0.0.1 with a leaf from the dev CA in `dir`.
fn distribution(dir: &Path, ca: &str) -> (Distribution, String) {
    let own = dir.join("distribution");
    std::fs::create_dir_all(&own).expect("dir");
    let tls = mc_service::tls::DevCa::load_or_create(dir)
        .expect("ca")
        .issue(&own, "registry", &["localhost", "127.0.0.1"])
        .expect("leaf");
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port();
        let config = own.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {}\n    key: {}\n",
                own.join("data").display(),
                tls.cert.display(),
                tls.key.display()
            ),
        )
        .expect("config");
        let log = own.join(format!("log-{port}"));
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("docker-registry is installed (scripts/test installs it)");
        let mut d = Distribution(child);
        let base = format!("https://127.0.0.1:{port}");
        // A hang guard, not a timing check.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if request(&base, ca, "GET", "/v2/", None, &[], None).code == 200 {
                return (d, base);
            }
            if let Ok(Some(_)) = d.0.try_wait() {
                break; // the port was taken meanwhile: another one
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        last = std::fs::read_to_string(&log).unwrap_or_default();
    }
    panic!("docker-registry never answered; its log:\n{last}");
}

/// One registry under test.
struct Target<'a> {
    base: &'a str,
    ca: &'a str,
    token: Option<&'a str>,
}

impl Target<'_> {
    fn call(&self, method: &str, path: &str, headers: &[&str], body: Option<&[u8]>) -> Response {
        request(self.base, self.ca, method, path, self.token, headers, body)
    }
}

/// The path part of a `Location` (distribution answers absolute URLs).
fn location(r: &Response) -> String {
    let l = r.header("location").unwrap_or("");
    match l.find("/v2/") {
        Some(i) => l[i..].to_owned(),
        None => l.to_owned(),
    }
}

/// `path` with `param` added to its query.
fn with(path: &str, param: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{param}")
}

/// The normalised observation of one answer: status, error code, and the
/// named headers' values (`*` records presence only).
fn observe(r: &Response, headers: &[&str]) -> Value {
    let mut v = json!({"status": r.code});
    if r.code >= 400 && !r.body.is_empty() {
        v["code"] = r.error_code().into();
    }
    for h in headers {
        let (name, presence) = match h.strip_prefix('*') {
            Some(n) => (n, true),
            None => (*h, false),
        };
        v[name] = match (r.header(name), presence) {
            (None, _) => Value::Null,
            (Some(_), true) => true.into(),
            (Some(x), false) => x.into(),
        };
    }
    v
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// An image manifest over `config` and `layers` (digest, size).
fn manifest(config: (&str, usize), layers: &[(&str, usize)], subject: Option<Value>) -> Vec<u8> {
    let layers: Vec<Value> = layers
        .iter()
        .map(|(d, s)| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}))
        .collect();
    let mut m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": layers});
    if let Some(s) = subject {
        m["subject"] = s;
    }
    serde_json::to_vec(&m).expect("json")
}

/// The script: every step's name and observation, in order.
fn script(t: &Target<'_>) -> Vec<(&'static str, Value)> {
    let mut seen = Vec::new();
    let mut step = |name: &'static str, v: Value| seen.push((name, v));
    let ct = "content-type: application/octet-stream";
    step(
        "ping",
        observe(
            &t.call("GET", "/v2/", &[], None),
            &["docker-distribution-api-version"],
        ),
    );

    // Monolithic upload (end-4b); the blob's HEAD, GET and Range.
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let cd = sha256(&config);
    let r = t.call(
        "POST",
        &format!("/v2/diff/app/blobs/uploads/?digest={cd}"),
        &[ct],
        Some(&config),
    );
    step(
        "monolithic",
        json!([observe(&r, &["docker-content-digest"]), location(&r)]),
    );
    if r.code == 202 {
        // The spec's client: a session instead of a single POST upload.
        let r = t.call(
            "PUT",
            &with(&location(&r), &format!("digest={cd}")),
            &[ct],
            Some(&config),
        );
        assert_eq!(r.code, 201, "the fallback PUT");
    }
    let r = t.call("HEAD", &format!("/v2/diff/app/blobs/{cd}"), &[], None);
    step(
        "blob-head",
        observe(&r, &["content-length", "docker-content-digest"]),
    );
    let r = t.call(
        "GET",
        &format!("/v2/diff/app/blobs/{cd}"),
        &["range: bytes=2-5"],
        None,
    );
    step(
        "blob-range",
        json!([
            observe(&r, &["content-range", "content-length"]),
            String::from_utf8_lossy(&r.body)
        ]),
    );
    let missing = sha256(b"never uploaded");
    let r = t.call("GET", &format!("/v2/diff/app/blobs/{missing}"), &[], None);
    step("blob-unknown", observe(&r, &[]));

    // POST then PUT (end-4a, end-6).
    let one = b"layer one, POST then PUT".to_vec();
    let d1 = sha256(&one);
    let r = t.call("POST", "/v2/diff/app/blobs/uploads/", &[], None);
    step("open", observe(&r, &["*location", "*docker-upload-uuid"]));
    let r = t.call(
        "PUT",
        &with(&location(&r), &format!("digest={d1}")),
        &[ct],
        Some(&one),
    );
    step("put", observe(&r, &["docker-content-digest"]));

    // Chunked (end-5 with Content-Range), status (end-13), close (end-6).
    let two: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let d2 = sha256(&two);
    let r = t.call("POST", "/v2/diff/app/blobs/uploads/", &[], None);
    let mut at = location(&r);
    for (a, b) in [(0usize, 60_000usize), (60_000, 100_000)] {
        let range = format!("content-range: {a}-{}", b - 1);
        let r = t.call("PATCH", &at, &[ct, &range], Some(&two[a..b]));
        step("chunk", observe(&r, &["range", "*location"]));
        at = location(&r);
    }
    let r = t.call("GET", &at, &[], None);
    step(
        "upload-status",
        observe(&r, &["range", "*docker-upload-uuid"]),
    );
    let r = t.call("PUT", &with(&at, &format!("digest={d2}")), &[], Some(b""));
    step("close", observe(&r, &["docker-content-digest"]));
    let r = t.call("POST", "/v2/diff/app/blobs/uploads/", &[], None);
    let r = t.call(
        "PATCH",
        &location(&r),
        &[ct, "content-range: 0-4"],
        Some(b"01234"),
    );
    let r = t.call(
        "PATCH",
        &location(&r),
        &[ct, "content-range: 10-14"],
        Some(b"abcde"),
    );
    step("chunk-out-of-order", observe(&r, &["range"]));

    // Streamed PATCH (no Content-Range), then a wrong digest at close.
    let r = t.call("POST", "/v2/diff/app/blobs/uploads/", &[], None);
    let r = t.call("PATCH", &location(&r), &[ct], Some(b"streamed bytes"));
    step("stream", observe(&r, &["range"]));
    let r = t.call(
        "PUT",
        &with(&location(&r), &format!("digest={missing}")),
        &[],
        None,
    );
    step("digest-mismatch", observe(&r, &[]));
    let r = t.call(
        "POST",
        &format!("/v2/diff/app/blobs/uploads/?digest={}", sha512(b"x")),
        &[ct],
        Some(b"x"),
    );
    step("sha512-upload", observe(&r, &["docker-content-digest"]));

    // Manifests (end-7, end-3): by tag, by digest, invalid, missing blobs.
    let m = manifest(
        (&cd, config.len()),
        &[(&d1, one.len()), (&d2, two.len())],
        None,
    );
    let md = sha256(&m);
    let mt = format!("content-type: {OCI_MANIFEST}");
    let r = t.call("PUT", "/v2/diff/app/manifests/v1", &[&mt], Some(&m));
    step(
        "manifest-put",
        json!([observe(&r, &["docker-content-digest"]), location(&r)]),
    );
    let r = t.call(
        "GET",
        "/v2/diff/app/manifests/v1",
        &[&format!("accept: {OCI_MANIFEST}")],
        None,
    );
    step(
        "manifest-get",
        json!([
            observe(&r, &["content-type", "docker-content-digest"]),
            r.body == m
        ]),
    );
    let r = t.call(
        "HEAD",
        &format!("/v2/diff/app/manifests/{md}"),
        &[&format!("accept: {OCI_MANIFEST}")],
        None,
    );
    step(
        "manifest-head",
        observe(
            &r,
            &["content-type", "content-length", "docker-content-digest"],
        ),
    );
    let r = t.call(
        "GET",
        "/v2/diff/app/manifests/nope",
        &[&format!("accept: {OCI_MANIFEST}")],
        None,
    );
    step("manifest-unknown", observe(&r, &[]));
    let r = t.call(
        "PUT",
        "/v2/diff/app/manifests/bad",
        &[&mt],
        Some(b"{not json"),
    );
    step("manifest-invalid", observe(&r, &[]));
    let dangling = manifest((&cd, config.len()), &[(&missing, 14)], None);
    let r = t.call(
        "PUT",
        "/v2/diff/app/manifests/dangling",
        &[&mt],
        Some(&dangling),
    );
    step("manifest-blob-unknown", observe(&r, &[]));

    // A referrer: OCI-Subject (end-7) and the referrers API (end-12).
    let subject = json!({"mediaType": OCI_MANIFEST, "digest": md, "size": m.len()});
    let sig = manifest((&cd, config.len()), &[(&d1, one.len())], Some(subject));
    let r = t.call(
        "PUT",
        &format!("/v2/diff/app/manifests/{}", sha256(&sig)),
        &[&mt],
        Some(&sig),
    );
    step("subject-push", observe(&r, &["oci-subject"]));
    let r = t.call("GET", &format!("/v2/diff/app/referrers/{md}"), &[], None);
    step(
        "referrers",
        json!([
            observe(&r, &["content-type"]),
            r.json()["manifests"][0]["digest"]
        ]),
    );

    // Tags (end-8): n/last pagination followed through Link.
    for tag in ["a", "b", "c", "d"] {
        let r = t.call(
            "PUT",
            &format!("/v2/diff/app/manifests/{tag}"),
            &[&mt],
            Some(&m),
        );
        step("tag-push", observe(&r, &["docker-content-digest"]));
    }
    let r = t.call("GET", "/v2/diff/app/tags/list", &[], None);
    let mut set: Vec<String> = serde_json::from_value(r.json()["tags"].clone()).unwrap_or_default();
    step("tags", json!([observe(&r, &["*link"]), r.json()]));
    set.sort();
    step("tags-set", json!(set));
    let mut pages = Vec::new();
    let mut next = Some("/v2/diff/app/tags/list?n=2".to_owned());
    while let Some(path) = next.take() {
        let r = t.call("GET", &path, &[], None);
        pages.push(json!([r.code, r.json()["tags"]]));
        next = r.header("link").and_then(|l| {
            let s = l.find('<')? + 1;
            let e = l.find('>')?;
            Some(l[s..e].to_owned())
        });
        assert!(pages.len() < 10, "Link loops");
    }
    step("tags-pages", json!(pages));
    let r = t.call("GET", "/v2/diff/none/tags/list", &[], None);
    step("tags-unknown-repo", observe(&r, &[]));

    // Cross-repository mount (end-11): known → 201, unknown → 202 session.
    let r = t.call(
        "POST",
        &format!("/v2/diff/other/blobs/uploads/?mount={d1}&from=diff/app"),
        &[],
        None,
    );
    step(
        "mount",
        json!([observe(&r, &["docker-content-digest"]), location(&r)]),
    );
    let r = t.call(
        "POST",
        &format!("/v2/diff/other/blobs/uploads/?mount={missing}&from=diff/app"),
        &[],
        None,
    );
    step("mount-unknown", observe(&r, &["*location"]));

    // Deletes (end-9, end-10).
    let r = t.call("DELETE", "/v2/diff/app/manifests/a", &[], None);
    step("tag-delete", observe(&r, &[]));
    let r = t.call(
        "DELETE",
        &format!("/v2/diff/app/manifests/{}", sha256(&sig)),
        &[],
        None,
    );
    step("referrer-delete", observe(&r, &[]));
    let r = t.call("DELETE", &format!("/v2/diff/app/manifests/{md}"), &[], None);
    step("manifest-delete", observe(&r, &[]));
    let r = t.call(
        "GET",
        &format!("/v2/diff/app/manifests/{md}"),
        &[&format!("accept: {OCI_MANIFEST}")],
        None,
    );
    step("manifest-deleted", observe(&r, &[]));
    let r = t.call("DELETE", &format!("/v2/diff/other/blobs/{d1}"), &[], None);
    step("blob-delete", observe(&r, &[]));
    let r = t.call("HEAD", &format!("/v2/diff/other/blobs/{d1}"), &[], None);
    step("blob-deleted", observe(&r, &[]));
    seen
}

/// MCR's answer at a step in [`DIFFERENCES`], asserted the spec's way.
fn assert_spec(step: &str, v: &Value) {
    let status = |v: &Value| v["status"].as_u64().unwrap_or(0);
    match step {
        "chunk-out-of-order" => {
            assert_eq!(status(v), 416, "{v}");
            assert_eq!(v["range"], "0-4", "the current range: {v}");
        }
        "monolithic" => {
            assert_eq!(status(&v[0]), 201, "{v}");
            assert!(
                v[1].as_str()
                    .is_some_and(|l| l.starts_with("/v2/diff/app/blobs/sha256:")),
                "{v}"
            );
        }
        "sha512-upload" => {
            assert_eq!(status(v), 201, "{v}");
            assert_eq!(v["docker-content-digest"], sha512(b"x"));
        }
        "subject-push" => {
            assert_eq!(status(v), 201, "{v}");
            assert!(
                v["oci-subject"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("sha256:")),
                "{v}"
            );
        }
        "referrers" => {
            assert_eq!(status(&v[0]), 200, "{v}");
            assert_eq!(
                v[0]["content-type"],
                "application/vnd.oci.image.index.v1+json"
            );
            assert!(
                v[1].as_str().is_some_and(|s| s.starts_with("sha256:")),
                "{v}"
            );
        }
        "tags" => assert_eq!(
            v[1]["tags"],
            json!(["a", "b", "c", "d", "v1"]),
            "lexical: {v}"
        ),
        "tags-pages" => assert_eq!(
            v,
            &json!([[200, ["a", "b"]], [200, ["c", "d"]], [200, ["v1"]]]),
            "n pages through Link"
        ),
        "tag-delete" => assert_eq!(status(v), 202, "{v}"),
        other => panic!("no spec assertion for {other}"),
    }
}

#[test]
fn differential_against_docker_registry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::start(dir.path());
    let (_distribution, base) = distribution(dir.path(), &reg.cp.ca);
    let ours = script(&Target {
        base: &reg.cp.rest,
        ca: &reg.cp.ca,
        token: Some(&reg.admin),
    });
    let theirs = script(&Target {
        base: &base,
        ca: &reg.cp.ca,
        token: None,
    });
    for ((step, mcr), (_, dist)) in ours.iter().zip(&theirs) {
        eprintln!("{step}\n  mcr:          {mcr}\n  distribution: {dist}");
    }
    assert_eq!(ours.len(), theirs.len());
    let mut compared = 0;
    let mut recorded = Vec::new();
    for ((step, mcr), (step2, dist)) in ours.iter().zip(&theirs) {
        assert_eq!(step, step2);
        if let Some((_, _, why)) = DIFFERENCES.iter().find(|(s, _, _)| s == step) {
            assert_spec(step, mcr);
            recorded.push(format!("{step}: distribution {dist} ({why})"));
            continue;
        }
        assert_eq!(
            mcr, dist,
            "step {step}: MCR (left) differs from distribution 2.8 (right)"
        );
        compared += 1;
    }
    assert_eq!(recorded.len(), DIFFERENCES.len(), "{recorded:#?}");
    assert!(compared >= 25, "{compared} steps compared");
    eprintln!(
        "where distribution 2.8 is behind the spec:\n{}",
        recorded.join("\n")
    );
}
