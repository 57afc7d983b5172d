//! MCR on the S3-compatible backend, against a real S3-speaking server:
//! moto's server mode (`moto_server`, PyPI `moto[server]`, installed by
//! scripts/test) on 127.0.0.1. skopeo pushes (a streamed PATCH upload) and
//! pulls, a monolithic and a chunked multipart-sized upload, a `Range`
//! read, fsck finding an object deleted and one added behind MCR's back,
//! and GC removing every object from the bucket after the image is
//! deleted. The bucket is listed with curl over S3's own API.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mc_service::tls::{DevCa, TlsFiles};

use super::{Fixture, Mcctl, Registry, sha256, skopeo};
use crate::ports::free_port;
use crate::support::curl;

const BUCKET: &str = "mcr-blobs";
const PREFIX: &str = "reg/";
/// moto checks no signature; MCR signs with these all the same.
const ACCESS_KEY: &str = "testing";
const SECRET: &str = "moto-accepts-any-secret";

/// `moto_server` on 127.0.0.1, killed on drop.
struct Moto {
    child: Child,
    url: String,
    /// The CA curl trusts when moto serves https.
    ca: Option<String>,
}

impl Moto {
    fn start(dir: &Path) -> Self {
        Self::start_with(dir, None)
    }

    /// Over https with `tls` (a leaf and its key) when given; `ca` verifies it.
    fn start_with(dir: &Path, tls: Option<(&TlsFiles, &Path)>) -> Self {
        let port = free_port();
        let log = std::fs::File::create(dir.join("moto.log")).expect("log");
        let mut cmd = Command::new("moto_server");
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        if let Some((t, _)) = tls {
            cmd.arg("--ssl-cert")
                .arg(&t.cert)
                .arg("--ssl-key")
                .arg(&t.key);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("moto_server is installed (scripts/test installs moto[server])");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let me = Self {
            child,
            url: format!("{scheme}://127.0.0.1:{port}"),
            ca: tls.map(|(_, ca)| ca.display().to_string()),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while me.get(&me.url).0 != 200 {
            assert!(Instant::now() < deadline, "moto_server never answered");
            std::thread::sleep(Duration::from_millis(100));
        }
        let (code, body) = me.s3(&["-X", "PUT", &format!("{}/{BUCKET}", me.url)]);
        assert_eq!(code, 200, "create the bucket: {body}");
        me
    }

    /// curl, trusting moto's CA when it serves https.
    fn get(&self, url: &str) -> (u16, String) {
        match &self.ca {
            Some(ca) => curl(&["--cacert", ca, url]),
            None => curl(&[url]),
        }
    }

    /// curl signing its request with SigV4 as MCR's access key.
    fn s3(&self, args: &[&str]) -> (u16, String) {
        let user = format!("{ACCESS_KEY}:{SECRET}");
        let sign = ["--aws-sigv4", "aws:amz:us-east-1:s3", "--user", &user];
        let ca = self.ca.as_deref().map(|c| ["--cacert", c]);
        curl(&[&sign[..], ca.as_ref().map_or(&[][..], |c| &c[..]), args].concat())
    }

    /// The object keys under MCR's prefix, through ListObjectsV2.
    fn keys(&self) -> Vec<String> {
        let url = format!(
            "{}/{BUCKET}?list-type=2&prefix={PREFIX}blobs/&max-keys=1000",
            self.url
        );
        let (code, xml) = self.s3(&[&url]);
        assert_eq!(code, 200, "{xml}");
        xml.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_owned()))
            .collect()
    }

    fn object(&self, key: &str) -> String {
        format!("{}/{BUCKET}/{key}", self.url)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `[mcr]` keys for the bucket at `url`, with `extra` keys.
fn s3_keys(url: &str, secret: &Path, extra: &str) -> String {
    format!(
        "gc_grace = \"1s\"\ngc_interval = \"0s\"\nstorage = \"s3\"\ns3_endpoint = \"{url}\"\n\
         s3_bucket = \"{BUCKET}\"\ns3_prefix = \"{PREFIX}\"\ns3_access_key_id = \"{ACCESS_KEY}\"\n\
         s3_secret_access_key_file = \"{}\"\n{extra}",
        secret.display()
    )
}

/// An upload through raw requests: one POST with the body (monolithic) when
/// `chunks` is 1, else POST + one PATCH per chunk with `Content-Range` +
/// PUT. Returns the digest.
fn upload(reg: &Registry, repo: &str, bytes: &[u8], chunks: usize) -> String {
    let digest = sha256(bytes);
    let t = Some(reg.admin.as_str());
    let uploads = format!("/v2/{repo}/blobs/uploads/");
    if chunks == 1 {
        let path = format!("{uploads}?digest={digest}");
        let ct = "content-type: application/octet-stream";
        let r = reg.raw("POST", &path, t, &[ct], Some(bytes));
        assert_eq!(
            r.code,
            201,
            "monolithic: {}",
            String::from_utf8_lossy(&r.body)
        );
        return digest;
    }
    let r = reg.raw("POST", &uploads, t, &[], None);
    assert_eq!(r.code, 202);
    let mut location = r.header("location").expect("location").to_owned();
    let size = bytes.len().div_ceil(chunks);
    for (i, chunk) in bytes.chunks(size).enumerate() {
        let first = i * size;
        let range = format!("content-range: {first}-{}", first + chunk.len() - 1);
        let ct = "content-type: application/octet-stream";
        let r = reg.raw("PATCH", &location, t, &[&range, ct], Some(chunk));
        assert_eq!(
            r.code,
            202,
            "chunk {i}: {}",
            String::from_utf8_lossy(&r.body)
        );
        location = r.header("location").expect("location").to_owned();
    }
    let r = reg.raw("PUT", &format!("{location}&digest={digest}"), t, &[], None);
    assert_eq!(r.code, 201, "close: {}", String::from_utf8_lossy(&r.body));
    digest
}

#[test]
fn registry_on_s3_round_trips_checks_and_collects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let moto = Moto::start(d);
    let secret = d.join("s3-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("secret");
    let mcr = s3_keys(&moto.url, &secret, "");
    // skopeo's push: each blob a POST and a streamed PATCH, then PUT.
    let Fixture { reg, v1, .. } = Registry::with_image(d, &mcr, &["apps/s3:v1"]);
    assert!(
        !d.join("mcr/blobs").exists(),
        "nothing stored on the local disk"
    );
    assert_eq!(moto.keys().len(), 4, "config and three layers");

    // A monolithic upload, and one of 20 MiB in two chunks (a multipart
    // upload to S3, parts of 16 MiB).
    let small = upload(&reg, "apps/s3", b"a monolithic blob", 1);
    let big: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    let big_digest = upload(&reg, "apps/s3", &big, 2);
    let keys = moto.keys();
    assert_eq!(keys.len(), 6, "{keys:?}");
    assert!(
        keys.iter().all(|k| k.starts_with("reg/blobs/sha256/")),
        "{keys:?}"
    );

    // Whole and ranged reads are served from the bucket.
    let t = Some(reg.admin.as_str());
    let whole = reg.raw(
        "GET",
        &format!("/v2/apps/s3/blobs/{big_digest}"),
        t,
        &[],
        None,
    );
    assert_eq!(whole.code, 200);
    assert_eq!(sha256(&whole.body), big_digest);
    let r = reg.raw(
        "GET",
        &format!("/v2/apps/s3/blobs/{big_digest}"),
        t,
        &["range: bytes=17000000-17000099"],
        None,
    );
    assert_eq!(r.code, 206);
    assert_eq!(r.body, &big[17_000_000..17_000_100]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 17000000-17000099/{}", big.len()).as_str())
    );

    // skopeo pulls the image back and verifies every digest.
    let out = d.join("pulled");
    super::gc::pull(&reg, d, "apps/s3:v1", &out);
    let index = std::fs::read_to_string(out.join("index.json")).expect("index");
    assert!(index.contains(&v1), "{index}");

    // fsck and status see the bucket; then an object deleted and one added
    // behind MCR's back are found.
    let mcctl = Mcctl::new(&reg, d);
    let status = mcctl.run(&["registry", "status"]);
    assert_eq!(status["backend"], "s3", "{status}");
    // The two raw uploads are in no manifest: what GC would reclaim.
    assert_eq!(status["reclaimable_blobs"], 2, "{status}");
    assert_eq!(status["reclaimable_bytes"], 17 + big.len(), "{status}");
    let clean = mcctl.run(&["registry", "fsck", "--verify-content"]);
    assert_eq!(
        (&clean["clean"], &clean["blobs_checked"]),
        (&true.into(), &6.into()),
        "{clean}"
    );
    let small_key = keys
        .iter()
        .find(|k| k.contains(small.trim_start_matches("sha256:")))
        .expect("the small blob's object");
    let (code, _) = moto.s3(&["-X", "DELETE", &moto.object(small_key)]);
    assert_eq!(code, 204);
    let stray = format!(
        "{PREFIX}blobs/sha256/ab/{}.00000000000000ff",
        "ab".repeat(32)
    );
    let (code, _) = moto.s3(&["-X", "PUT", "--data-binary", "stray", &moto.object(&stray)]);
    assert_eq!(code, 200);
    let found = mcctl.output(&["registry", "fsck"]);
    assert!(!found.status.success(), "fsck exits non-zero on findings");
    let v: serde_json::Value = serde_json::from_slice(&found.stdout).expect("json");
    assert_eq!(v["missing"]["count"], 1, "{v}");
    assert_eq!(v["orphans"]["count"], 1, "{v}");
    assert_eq!(v["missing"]["items"][0]["digest"], small.as_str(), "{v}");

    // Delete the image; GC (grace 1 s) unlinks, then removes every blob
    // and the stray object from the bucket.
    let certs = reg.certs.display().to_string();
    let creds = format!("admin:{}", reg.cp.password);
    super::skopeo::ok(
        &skopeo(
            d,
            &[
                "delete",
                "--cert-dir",
                &certs,
                "--creds",
                &creds,
                &format!("docker://{}/apps/s3:v1", reg.host),
            ],
        ),
        "delete",
    );
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(2100));
        let run = mcctl.run(&["registry", "gc", "start"]);
        assert_eq!(run["state"], "done", "{run}");
    }
    let left = moto.keys();
    assert!(left.is_empty(), "GC left objects in the bucket: {left:?}");
    let after = mcctl.run(&["registry", "fsck"]);
    assert_eq!(after["clean"], true, "{after}");
}

/// A self-hosted store over https with its own CA: without `s3_ca_cert`
/// the registry says why it cannot reach it (`status`); with it, skopeo
/// pushes and pulls through the bucket.
#[test]
fn registry_on_s3_over_https_trusts_its_ca_cert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let own = d.join("s3-ca");
    std::fs::create_dir_all(&own).expect("dir");
    let ca = DevCa::load_or_create(&own).expect("the store's own CA");
    let leaf = ca
        .issue(&own, "moto", &["127.0.0.1", "localhost"])
        .expect("leaf");
    let moto = Moto::start_with(d, Some((&leaf, &ca.cert_path)));
    assert!(moto.url.starts_with("https://"));
    let secret = d.join("s3-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("secret");

    // Without the CA: the control plane starts (MCIAS must not depend on
    // the bucket) and `status` names the TLS failure.
    let untrusting = d.join("untrusting");
    std::fs::create_dir_all(&untrusting).expect("dir");
    let reg = Registry::start_mcr(&untrusting, &s3_keys(&moto.url, &secret, ""));
    let status = Mcctl::new(&reg, &untrusting).run(&["registry", "status"]);
    let why = status["backend_error"].as_str().unwrap_or_default();
    assert!(why.contains("certificate"), "{status}");
    drop(reg);

    let trusting = d.join("trusting");
    std::fs::create_dir_all(&trusting).expect("dir");
    let extra = format!("s3_ca_cert = \"{}\"", ca.cert_path.display());
    let Fixture { reg, v1, .. } = Registry::with_image(
        &trusting,
        &s3_keys(&moto.url, &secret, &extra),
        &["apps/tls:v1"],
    );
    let status = Mcctl::new(&reg, &trusting).run(&["registry", "status"]);
    assert_eq!(
        (&status["backend"], &status["backend_error"]),
        (&"s3".into(), &"".into()),
        "{status}"
    );
    assert_eq!(
        moto.keys().len(),
        4,
        "config and three layers in the bucket"
    );
    let out = trusting.join("pulled");
    super::gc::pull(&reg, &trusting, "apps/tls:v1", &out);
    let index = std::fs::read_to_string(out.join("index.json")).expect("index");
    assert!(index.contains(&v1), "{index}");
}
