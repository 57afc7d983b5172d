//! MCIAS end to end: `mcd controlplane` with curl (REST and gRPC over
//! HTTP/2) and mcctl, on 127.0.0.1.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::free_port;
use crate::support::curl;

mod access;
mod accounts;
mod cli;
mod mcctl;
pub(crate) mod passkey;
mod security;
mod sso;
mod totp;
pub(crate) use totp::oathtool;
mod ui;
mod verifier;

pub(crate) struct Controlplane {
    child: Child,
    pub(crate) rest: String,
    pub(crate) grpc: String,
    pub(crate) ca: String,
    pub(crate) password: String,
}

impl Controlplane {
    pub(crate) fn start(dir: &Path, mcias: &str) -> Self {
        Self::start_with(dir, mcias, "", Stdio::inherit())
    }

    /// [`Self::start`] with more `[server]` keys and the process's stderr.
    pub(crate) fn start_with(dir: &Path, mcias: &str, server: &str, stderr: Stdio) -> Self {
        let ca = mc_service::tls::DevCa::load_or_create(dir).expect("ca");
        let tls = ca
            .issue(dir, "cp", &["localhost", "127.0.0.1"])
            .expect("cert");
        let (rest, grpc) = (free_port(), free_port());
        let d = dir.display();
        let config = dir.join("controlplane.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{d}\"\n[server]\nrest = \"127.0.0.1:{rest}\"\ngrpc = \"127.0.0.1:{grpc}\"\nadmin_socket = \"{d}/cp.sock\"\ndrain = \"1s\"\n{server}\n\
                 [tls]\ncert = \"{}\"\nkey = \"{}\"\n[log]\nlevel = \"warn\"\n[mcias]\n{mcias}",
                tls.cert.display(),
                tls.key.display()
            ),
        )
        .expect("config");
        let child = Command::new(crate::support::mcd())
            .args(["controlplane", "--config"])
            .arg(&config)
            .stdin(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn");
        let mut me = Self {
            child,
            rest: format!("https://127.0.0.1:{rest}"),
            grpc: format!("https://127.0.0.1:{grpc}"),
            ca: ca.cert_path.display().to_string(),
            password: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while curl(&["--cacert", &me.ca, &format!("{}/healthz", me.rest)]).0 != 200 {
            assert!(Instant::now() < deadline, "controlplane never became ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        let creds: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("mcias/bootstrap.json")).expect("bootstrap"),
        )
        .expect("json");
        me.password = creds["password"].as_str().expect("password").to_owned();
        me
    }

    /// A REST call; `token` as bearer, `body` as JSON.
    /// Writes an `endpoints.json` at `path` for `mcctl` to reach this
    /// control plane.
    pub(crate) fn write_endpoints(&self, path: &Path) {
        let json = serde_json::json!({
            "controlplane": {"grpc": self.grpc, "rest": self.rest},
            "ca_cert": self.ca,
        });
        std::fs::write(path, json.to_string()).expect("endpoints");
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        crate::support::rest_call(&self.rest, &self.ca, method, path, token, body)
    }

    fn login(&self, user: &str, password: &str, service: Option<&str>) -> (u16, serde_json::Value) {
        let mut b = serde_json::json!({"username": user, "password": password});
        if let Some(s) = service {
            b["service_name"] = s.into();
        }
        self.call("POST", "/v1/auth/login", None, Some(b))
    }

    /// A password login from another loopback source address (`127.0.0.2`…).
    fn login_from(&self, source: &str, user: &str, password: &str) -> (u16, serde_json::Value) {
        let url = format!("{}/v1/auth/login", self.rest);
        let body = serde_json::json!({"username": user, "password": password}).to_string();
        let (code, text) = curl(&[
            "--interface",
            source,
            "--cacert",
            &self.ca,
            "-H",
            "content-type: application/json",
            "--data",
            &body,
            &url,
        ]);
        (
            code,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Creates a human account with the `user` role (as `admin`).
    pub(crate) fn create_user(&self, admin: &str, user: &str, password: &str) {
        let (code, body) = self.call(
            "POST",
            "/v1/iam/accounts",
            Some(admin),
            Some(serde_json::json!({"username": user, "password": password, "roles": ["user"]})),
        );
        assert_eq!(code, 201, "{body}");
    }

    pub(crate) fn token(&self, user: &str, password: &str) -> String {
        let (code, body) = self.login(user, password, None);
        assert_eq!(code, 200, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// A gRPC call without a message body of interest; returns `grpc-status`.
    pub(crate) fn grpc_status(&self, path: &str, token: Option<&str>) -> String {
        crate::support::grpc_status(&self.grpc, &self.ca, path, token)
    }
}

impl Drop for Controlplane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails unless each "action result" of `wants` is in the audit log.
fn assert_audited(cp: &Controlplane, admin: &str, action: &str, wants: &[&str]) {
    let seen = audit_seen(cp, admin, action);
    for want in wants {
        assert!(
            seen.iter().any(|s| s == want),
            "audit lacks {want}: {seen:?}"
        );
    }
}

/// The audit log as "action result" lines (newest first).
fn audit_seen(cp: &Controlplane, admin: &str, action: &str) -> Vec<String> {
    let (_, audit) = cp.call(
        "GET",
        &format!("/v1/iam/audit?limit=1000&action={action}"),
        Some(admin),
        None,
    );
    audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap_or(""),
                e["result"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Opens the UI login page with cookie jar `jar` (which keeps the
/// sign-in cookie) and returns the form's token (`csrf`).
fn login_form_token(cp: &Controlplane, jar: &str) -> String {
    let (code, html) = curl(&[
        "--cacert",
        &cp.ca,
        "-c",
        jar,
        "-b",
        jar,
        &format!("{}/ui/login", cp.rest),
    ]);
    assert_eq!(code, 200, "{html}");
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the login form has a token")
        .to_owned()
}

pub(crate) fn jwt_kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().expect("header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("b64");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    v["kid"].as_str().expect("kid").to_owned()
}
