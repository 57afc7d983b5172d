//! MCR end to end: `mcd controlplane` serving `/v2/` on 127.0.0.1 with TLS
//! (the dev CA, given to skopeo as a certificate directory, never
//! `--tls-verify=false`), driven by skopeo and raw curl requests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mc_mcr::registry::digest::{Algorithm, Digest};

use super::iam::Controlplane;
use crate::support::curl;

mod api;
mod differential;
mod disk;
mod gc;
mod inspect;
mod oras;
mod podman;
mod policy;
mod s3;
mod skopeo;
mod ui;

/// A control plane with MCR, its admin's MCIAS token and a cert dir for clients.
pub(super) struct Registry {
    pub cp: Controlplane,
    pub host: String,
    pub certs: PathBuf,
    pub admin: String,
    dir: PathBuf,
}

impl Registry {
    pub(super) fn start(dir: &Path) -> Self {
        let cp = Controlplane::start(dir, "");
        Self::around(cp, dir)
    }

    /// [`Self::start`] with `[mcr]` keys (e.g. a short GC grace).
    pub(super) fn start_mcr(dir: &Path, mcr: &str) -> Self {
        let cp = Controlplane::start(dir, &format!("\n[mcr]\n{mcr}\n"));
        Self::around(cp, dir)
    }

    fn around(cp: Controlplane, dir: &Path) -> Self {
        let host = cp.rest.trim_start_matches("https://").to_owned();
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs).expect("certs");
        std::fs::copy(&cp.ca, certs.join("ca.crt")).expect("ca.crt");
        let admin = cp.token("admin", &cp.password);
        Self {
            cp,
            host,
            certs,
            admin,
            dir: dir.to_owned(),
        }
    }

    /// The prologue most tests share: a registry (with `[mcr]` keys `mcr`,
    /// none when empty), the test layout ([`skopeo::layout`]: `v1` with
    /// three layers, the two-platform index `multi`) and `v1` pushed by the
    /// admin with skopeo to each of `dests` (`repo:tag`).
    pub(super) fn with_image(dir: &Path, mcr: &str, dests: &[&str]) -> Fixture {
        let reg = if mcr.is_empty() {
            Self::start(dir)
        } else {
            Self::start_mcr(dir, mcr)
        };
        let (src, v1, multi) = skopeo::layout(dir);
        let admin = format!("admin:{}", reg.cp.password);
        for dest in dests {
            let out = reg.copy(dir, &src, "v1", dest, Some(&admin));
            skopeo::ok(&out, &format!("push {dest}"));
        }
        Fixture {
            reg,
            src,
            v1,
            multi,
            admin,
        }
    }

    /// skopeo `copy` of the `oci:` layout's `tag` to `dest` (`repo:tag`),
    /// with `--dest-creds creds` or none.
    pub(super) fn copy(
        &self,
        dir: &Path,
        src: &Path,
        tag: &str,
        dest: &str,
        creds: Option<&str>,
    ) -> Output {
        let certs = self.certs.display().to_string();
        let src_ref = format!("oci:{}:{tag}", src.display());
        let dest = format!("docker://{}/{dest}", self.host);
        let mut args = vec!["copy", "--preserve-digests", "--dest-cert-dir", &certs];
        if let Some(c) = creds {
            args.extend(["--dest-creds", c]);
        } else {
            args.push("--dest-no-creds");
        }
        args.extend([src_ref.as_str(), dest.as_str()]);
        skopeo(dir, &args)
    }

    /// Kills the control plane with SIGKILL and starts it again on the same data.
    pub(super) fn kill_and_restart(self) -> Self {
        let dir = self.dir.clone();
        drop(self.cp); // Drop sends SIGKILL.
        Self::start(&dir)
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cp.rest)
    }

    /// A raw request: status, response headers (lowercased names) and body.
    pub(super) fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[&str],
        body: Option<&[u8]>,
    ) -> Response {
        request(
            &self.cp.rest,
            &self.cp.ca,
            method,
            path,
            token,
            headers,
            body,
        )
    }
}

/// What [`Registry::with_image`] sets up.
pub(super) struct Fixture {
    pub reg: Registry,
    /// The `oci:` layout of [`skopeo::layout`].
    pub src: PathBuf,
    /// The digests of the layout's `v1` and `multi`.
    pub v1: String,
    pub multi: String,
    /// `admin:<password>`, for skopeo's `--creds`.
    pub admin: String,
}

/// A raw request to the registry at `base` (`https://host:port`), trusting `ca`.
pub(super) fn request(
    base: &str,
    ca: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[&str],
    body: Option<&[u8]>,
) -> Response {
    let hdr = tempfile::NamedTempFile::new().expect("temp");
    let data = tempfile::NamedTempFile::new().expect("temp");
    let url = format!("{base}{path}");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "30", "--cacert", ca, "-X", method])
        .arg("-D")
        .arg(hdr.path())
        .args(["-o", "-", "-w", "\n%{http_code}"]);
    if method == "HEAD" {
        cmd.arg("-I");
    }
    if let Some(t) = token {
        cmd.args(["-H", &format!("authorization: Bearer {t}")]);
    }
    for h in headers {
        cmd.args(["-H", h]);
    }
    if let Some(b) = body {
        std::fs::write(data.path(), b).expect("body");
        cmd.arg("--data-binary")
            .arg(format!("@{}", data.path().display()));
    }
    let out = cmd.arg(&url).output().expect("curl");
    let mut stdout = out.stdout;
    let pos = stdout.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    let code = String::from_utf8_lossy(&stdout[pos + 1..])
        .trim()
        .parse()
        .unwrap_or(0);
    stdout.truncate(pos);
    let raw_headers = std::fs::read_to_string(hdr.path()).unwrap_or_default();
    let headers = raw_headers
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        code,
        headers,
        body: stdout,
    }
}

pub(super) struct Response {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(super) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The first error code of a registry error body.
    pub(super) fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

pub(super) fn sha256(bytes: &[u8]) -> String {
    Digest::of(Algorithm::Sha256, bytes).to_string()
}

pub(super) fn sha512(bytes: &[u8]) -> String {
    Digest::of(Algorithm::Sha512, bytes).to_string()
}

/// Runs skopeo with a private HOME, auth file and an accept-anything policy.
pub(super) fn skopeo(dir: &Path, args: &[&str]) -> Output {
    let policy = dir.join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .expect("policy");
    Command::new("skopeo")
        .arg("--policy")
        .arg(&policy)
        .args(args)
        .env("HOME", dir)
        .env("REGISTRY_AUTH_FILE", dir.join("auth.json"))
        .output()
        .expect("skopeo is installed (scripts/test installs it)")
}

#[test]
fn every_registry_route_refuses_anonymous_callers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::start(dir.path());
    let map = mc_mcr::methods::map();
    let pw = "a user's long password";
    reg.cp.create_user(&reg.admin, "user1", pw);
    let user = reg.cp.token("user1", pw);
    let mut checked = 0;
    let mut admin_checked = 0;
    let mut ui_seen = 0;
    for (key, req) in map.entries() {
        if key.starts_with('/') {
            // gRPC mc.registry.v1: anonymous → UNAUTHENTICATED; admin-only
            // with a user token → PERMISSION_DENIED.
            let anon = reg.cp.grpc_status(key, None);
            assert!(anon.starts_with("16|"), "{key} without credentials: {anon}");
            if req == mc_mcr::methods::ADMIN {
                let u = reg.cp.grpc_status(key, Some(&user));
                assert!(u.starts_with("7|"), "{key} with a user token: {u}");
                admin_checked += 1;
            }
            checked += 1;
            continue;
        }
        let (method, path) = key.split_once(' ').expect("REST key");
        if path.starts_with("/v1/registry/") {
            // The admin API: the platform's 401/403 `{"error": …}`.
            let path = path
                .replace("{repo}", "apps%2Fweb")
                .replace("{ns}", "apps")
                .replace("{reference}", "latest")
                .replace("{id}", "admins");
            let (code, body) = reg.cp.call(method, &path, None, None);
            assert_eq!(code, 401, "{key} without credentials: {body}");
            assert!(body["error"].is_string(), "{key}: {body}");
            if req == mc_mcr::methods::ADMIN {
                let (code, body) = reg.cp.call(method, &path, Some(&user), None);
                assert_eq!(code, 403, "{key} with a user token: {body}");
                admin_checked += 1;
            } else {
                assert_eq!(req, mc_mcr::methods::READ, "{key}");
            }
            checked += 1;
            continue;
        }
        if path.starts_with("/ui/registry/") {
            // The web UI: Public in the map, its guard swept by `ui.rs`.
            assert_eq!(req, mc_service::auth::Requirement::Public, "{key}");
            assert!(mc_mcr::ui::ROUTES.contains(&(method, path)), "{key}");
            ui_seen += 1;
            continue;
        }
        assert_eq!(req, mc_service::auth::Requirement::Delegated, "{key}");
        let endpoint = match method {
            "POST" => "apps/web/blobs/uploads/",
            "PATCH" => "apps/web/blobs/uploads/00000000-0000-4000-8000-000000000000",
            _ => "apps/web/manifests/latest",
        };
        let path = path.replace("{*path}", endpoint);
        let r = reg.raw(method, &path, None, &[], None);
        assert_eq!(r.code, 401, "{key} without credentials");
        let challenge = r.header("www-authenticate").unwrap_or("");
        assert!(
            challenge.starts_with("Bearer realm=\"") && challenge.contains("service=\""),
            "{key}: {challenge}"
        );
        if path != "/v2/" {
            assert!(
                challenge.contains("scope=\"repository:apps/web:"),
                "{key}: {challenge}"
            );
        }
        if method != "HEAD" {
            assert_eq!(r.error_code(), "UNAUTHORIZED", "{key}");
        }
        assert_eq!(
            r.header("docker-distribution-api-version"),
            Some("registry/2.0")
        );
        checked += 1;
    }
    // 8 /v2 entries; the admin API, GC (4 REST + 4 gRPC), retention (5 REST + 4 gRPC)
    // and storage (2 REST + 2 gRPC); the streaming GC Watch (+ 1); manifest
    // show (1 REST + 1 gRPC, READ).
    assert_eq!(checked, 8 + (16 + 8) + (16 + 7) + 4 + 2 + 1 + 2);
    assert_eq!(ui_seen, mc_mcr::ui::ROUTES.len());
    assert_eq!(admin_checked, (13 + 8) + (13 + 7) + 4 + 2 + 1);
    // A bad token is no better than none; an MCIAS token opens /v2/.
    assert_eq!(
        reg.raw("GET", "/v2/", Some("mcr1.nope"), &[], None).code,
        401
    );
    assert_eq!(
        reg.raw("GET", "/v2/", Some(&reg.admin), &[], None).code,
        200
    );
    // The catalog and the token endpoint are under /v2 too.
    assert_eq!(reg.raw("GET", "/v2/_catalog", None, &[], None).code, 401);
    // Without credentials the token endpoint issues an anonymous token,
    // which grants nothing on a repository that is not public.
    let url = reg.url("/v2/token?scope=repository:apps/web:pull");
    let (code, body) = curl(&["--cacert", &reg.cp.ca, &url]);
    assert_eq!(code, 200, "an anonymous token: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let anon = v["token"].as_str().expect("token");
    let r = reg.raw(
        "GET",
        "/v2/apps/web/manifests/latest",
        Some(anon),
        &[],
        None,
    );
    assert_eq!((r.code, r.error_code().as_str()), (401, "UNAUTHORIZED"));
}

#[test]
fn mcd_dev_serves_the_registry_and_names_it_in_endpoints_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = crate::support::Dev::start(dir.path(), None);
    let reg = &dev.endpoints["registry"];
    let host = reg["host"].as_str().expect("registry.host");
    assert!(host.starts_with("127.0.0.1:"), "{reg}");
    assert_eq!(reg["url"], format!("https://{host}/v2/"));
    assert_eq!(reg["realm"], format!("https://{host}/v2/token"));
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-D", "-", "--cacert", &dev.ca()])
        .arg(reg["url"].as_str().expect("url"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(
        text.starts_with("http/2 401") || text.starts_with("http/1.1 401"),
        "{text}"
    );
    assert!(text.contains("www-authenticate: bearer realm="), "{text}");
}

/// `mcctl --json` against this control plane, as its admin.
pub(super) struct Mcctl {
    endpoints: std::path::PathBuf,
    token: String,
}

impl Mcctl {
    pub(super) fn new(reg: &Registry, dir: &Path) -> Self {
        let endpoints = dir.join("endpoints.json");
        std::fs::write(
            &endpoints,
            serde_json::json!({"controlplane": {"grpc": reg.cp.grpc}, "ca_cert": reg.cp.ca})
                .to_string(),
        )
        .expect("endpoints");
        Self {
            endpoints,
            token: reg.admin.clone(),
        }
    }

    /// `mcctl --json ARGS`, whatever its exit.
    pub(super) fn output(&self, args: &[&str]) -> Output {
        Command::new(crate::support::mcctl())
            .arg("--endpoints")
            .arg(&self.endpoints)
            .arg("--json")
            .args(args)
            .env("MC_TOKEN", &self.token)
            .output()
            .expect("mcctl")
    }

    /// `mcctl --json ARGS`, which must succeed: its one JSON document.
    pub(super) fn run(&self, args: &[&str]) -> serde_json::Value {
        let out = self.output(args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "mcctl {args:?}: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&stdout).expect("one JSON document")
    }
}
