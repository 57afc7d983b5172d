//! `mcd dev`'s dev PKI. Once the platform is ready, the supervisor acts as
//! an operator would, as the bootstrap admin over the control plane's gRPC:
//! it waits for Metacrypt's dev auto-unseal, then makes sure of a pki mount
//! [`MOUNT`] whose root is the dev CA (`ca.pem` + `ca-key.pem`, imported: the
//! one trust anchor of everything `mcd dev` serves, already in endpoints.json
//! as `ca_cert`), a role [`ROLE`] for `localhost`, `*.localhost`, names under
//! `test` and IP addresses, and a control-plane certificate issued from that
//! role. The certificate is written over the control plane's `[tls]` files
//! and the control plane is sent SIGHUP, which makes it serve the new pair
//! from the next handshake on. Later starts keep the issued certificate
//! while Metacrypt still knows it and a third of its lifetime is left. A
//! `[tls]` the operator pointed at other files is left alone.
//!
//! Invariant: nothing here can stop the platform. Any failure (a changed
//! admin password, a sealed Metacrypt) is reported and the control plane
//! keeps the certificate it started with, which the same CA signed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mc_proto::crypt::v1 as crypt;
use mc_proto::iam::v1 as iam;
use serde_json::{Value, json};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

pub(crate) const MOUNT: &str = "dev-pki";
pub(crate) const ROLE: &str = "dev";
/// The control plane's certificate lifetime; it is re-issued with a third left.
const CERT_TTL_SECS: i64 = 30 * 86_400;
const UNSEAL_WAIT: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct Bearer(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut().insert("authorization", self.0.clone());
        Ok(r)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// What the supervisor needs to know about the control plane.
pub(crate) struct Target<'a> {
    pub grpc: std::net::SocketAddr,
    pub ca_cert: &'a Path,
    pub ca_key: &'a Path,
    pub tls_cert: &'a Path,
    pub tls_key: &'a Path,
    pub username: &'a str,
    pub password: &'a str,
    pub pid: Option<u32>,
    /// `[tls]` still names the files `mcd dev` generated: only then are they replaced.
    pub manage_tls: bool,
}

async fn channel(t: &Target<'_>) -> anyhow::Result<Channel> {
    let ca =
        std::fs::read(t.ca_cert).with_context(|| format!("reading {}", t.ca_cert.display()))?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    Ok(Endpoint::from_shared(format!("https://{}", t.grpc))?
        .tls_config(tls)?
        .connect()
        .await?)
}

async fn login(ch: Channel, t: &Target<'_>) -> anyhow::Result<Bearer> {
    let reply = iam::auth_client::AuthClient::new(ch)
        .login(iam::LoginRequest {
            username: t.username.to_owned(),
            password: t.password.to_owned(),
            ..Default::default()
        })
        .await
        .map_err(|s| anyhow::anyhow!("login as {}: {}", t.username, s.message()))?
        .into_inner();
    match reply.result {
        Some(iam::login_response::Result::Session(s)) => {
            Ok(Bearer(format!("Bearer {}", s.token).parse()?))
        }
        _ => bail!("login as {} needs a second factor", t.username),
    }
}

async fn wait_unsealed(ch: &Authed) -> anyhow::Result<()> {
    let mut barrier = crypt::barrier_client::BarrierClient::new(ch.clone());
    let deadline = Instant::now() + UNSEAL_WAIT;
    loop {
        let s = barrier.status(crypt::StatusRequest {}).await?.into_inner();
        if s.state == "unsealed" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("Metacrypt is still {} after {UNSEAL_WAIT:?}", s.state);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `Ok` also when the thing already exists (a later start).
fn done_or_exists<T>(
    r: Result<tonic::Response<T>, tonic::Status>,
    what: &str,
) -> anyhow::Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(s)
            if matches!(
                s.code(),
                tonic::Code::AlreadyExists | tonic::Code::FailedPrecondition
            ) =>
        {
            Ok(())
        }
        Err(s) => bail!("{what}: {}", s.message()),
    }
}

fn pki_request(name: &str, body: Value) -> crypt::PkiRequest {
    crypt::PkiRequest {
        mount: MOUNT.to_owned(),
        name: name.to_owned(),
        json: body.to_string(),
    }
}

/// The mount, its root (the dev CA) and the role; idempotent.
async fn ensure_mount(ch: &Authed, t: &Target<'_>) -> anyhow::Result<()> {
    let mut mounts = crypt::mounts_client::MountsClient::new(ch.clone());
    let r = mounts
        .create(crypt::CreateMountRequest {
            name: MOUNT.to_owned(),
            r#type: "pki".to_owned(),
            description: "mcd dev: the dev CA as a pki root".to_owned(),
            config_json: String::new(),
        })
        .await;
    done_or_exists(r, "creating the dev-pki mount")?;
    let mut pki = crypt::pki_client::PkiClient::new(ch.clone());
    let read =
        |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    let import = json!({"certificate": read(t.ca_cert)?, "private_key": read(t.ca_key)?});
    done_or_exists(
        pki.import_root(pki_request("", import)).await,
        "importing the dev CA as the root",
    )?;
    let role = json!({
        "allowed_domains": ["localhost", "test"],
        "allow_subdomains": true,
        "allow_wildcard": true,
        "allow_localhost": true,
        "allow_ip_sans": true,
        "ttl": "720h",
        "max_ttl": "8760h",
        "server": true,
        "client": true,
    });
    pki.put_role(pki_request(ROLE, role))
        .await
        .map_err(|s| anyhow::anyhow!("the dev role: {}", s.message()))?;
    Ok(())
}

/// Where the serial and expiry of the issued control-plane certificate are kept.
fn record_path(tls_cert: &Path) -> PathBuf {
    tls_cert.with_extension("metacrypt.json")
}

/// The recorded certificate, if Metacrypt still has it unrevoked with a third of its life left.
async fn still_good(ch: &Authed, t: &Target<'_>) -> Option<Value> {
    let text = std::fs::read_to_string(record_path(t.tls_cert)).ok()?;
    let rec: Value = serde_json::from_str(&text).ok()?;
    let serial = rec["serial"].as_str()?;
    let left = rec["not_after"].as_i64()? - mc_kit::clock::unix_now();
    if left < CERT_TTL_SECS / 3 {
        return None;
    }
    let mut pki = crypt::pki_client::PkiClient::new(ch.clone());
    let got = pki.get_cert(pki_request(serial, json!({}))).await.ok()?;
    let cert: Value = serde_json::from_str(&got.into_inner().json).ok()?;
    cert["revoked_at"].is_null().then_some(rec)
}

/// Writes `text` to `path` through a temporary file and a rename (0600 from
/// creation for the key), so the control plane never reads half a file.
fn replace(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// Issues the control plane's certificate, installs it and signals the control plane.
async fn issue(ch: &Authed, t: &Target<'_>) -> anyhow::Result<Value> {
    let mut pki = crypt::pki_client::PkiClient::new(ch.clone());
    let body = json!({
        "common_name": "localhost",
        "alt_names": ["localhost"],
        "ip_sans": ["127.0.0.1"],
        "ttl": format!("{CERT_TTL_SECS}"),
    });
    let issued = pki
        .issue(pki_request(ROLE, body))
        .await
        .map_err(|s| anyhow::anyhow!("issuing the control plane's certificate: {}", s.message()))?;
    let issued: Value = serde_json::from_str(&issued.into_inner().json)?;
    let (Some(cert), Some(chain), Some(key)) = (
        issued["certificate"].as_str(),
        issued["ca_chain"].as_str(),
        issued["private_key"].as_str(),
    ) else {
        bail!("Metacrypt's issue answer lacks certificate, ca_chain or private_key");
    };
    replace(t.tls_key, key)?;
    replace(t.tls_cert, &format!("{}\n{}", cert.trim_end(), chain))?;
    let rec = json!({"serial": issued["serial"], "not_after": issued["not_after"]});
    replace(&record_path(t.tls_cert), &rec.to_string())?;
    if let Some(pid) = t.pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
        rustix::process::kill_process(pid, rustix::process::Signal::HUP)
            .context("signalling the control plane to reload [tls]")?;
    }
    Ok(rec)
}

/// Makes sure of the dev PKI and the control plane's certificate from it;
/// what endpoints.json reports under `dev_pki`.
pub(crate) async fn ensure(t: &Target<'_>) -> anyhow::Result<Value> {
    let ch = channel(t)
        .await
        .context("reaching the control plane's gRPC")?;
    let bearer = login(ch.clone(), t).await?;
    let authed = InterceptedService::new(ch, bearer);
    wait_unsealed(&authed).await?;
    ensure_mount(&authed, t).await?;
    let rec = match (t.manage_tls, still_good(&authed, t).await) {
        (false, _) => json!({"serial": null}),
        (true, Some(rec)) => rec,
        (true, None) => issue(&authed, t).await?,
    };
    Ok(json!({
        "mount": MOUNT,
        "role": ROLE,
        "ca_cert": t.ca_cert,
        "controlplane_serial": rec["serial"],
    }))
}
