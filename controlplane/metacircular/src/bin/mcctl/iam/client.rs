//! Reaching MCIAS: the TLS channel (verified against the platform CA from the
//! endpoints file), the saved bearer token, and gRPC errors as operators read them.
//!
//! Invariant: the token file is written 0600 and `$MC_TOKEN` wins over it.

use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::endpoints::Endpoints;

/// A channel that sends the saved token with every call.
pub(crate) type Authed = InterceptedService<Channel, Bearer>;

#[derive(Clone)]
pub(crate) struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    /// The `authorization` header value.
    pub(crate) fn value(&self) -> MetadataValue<tonic::metadata::Ascii> {
        self.0.clone()
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut().insert("authorization", self.0.clone());
        Ok(r)
    }
}

pub(crate) fn token_path(endpoints: &Endpoints) -> PathBuf {
    endpoints.path.with_file_name("mcctl-token")
}

pub(crate) fn saved_token(endpoints: &Endpoints) -> anyhow::Result<String> {
    if let Ok(t) = std::env::var("MC_TOKEN")
        && !t.is_empty()
    {
        return Ok(t);
    }
    let path = token_path(endpoints);
    std::fs::read_to_string(&path)
        .map(|t| t.trim().to_owned())
        .map_err(|_| anyhow::anyhow!("not logged in: run `mcctl login` (or set MC_TOKEN)"))
}

pub(crate) fn save_token(endpoints: &Endpoints, token: &str) -> anyhow::Result<PathBuf> {
    let path = token_path(endpoints);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(token.as_bytes())?;
    Ok(path)
}

/// Where a password comes from: `--password-stdin`, `--password-file FILE`,
/// else the terminal (no echo), else one line of piped stdin.
#[derive(clap::Args, Clone, Default)]
pub(crate) struct PasswordSource {
    /// Read the password from stdin (one line; for scripts and pipes).
    #[arg(long, conflicts_with = "password_file")]
    pub(crate) password_stdin: bool,
    /// Read the password from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
}

impl PasswordSource {
    fn source(&self) -> crate::secret::Source<'_> {
        crate::secret::Source {
            kind: crate::secret::Kind {
                noun: "password",
                flag: "password",
            },
            stdin: self.password_stdin,
            file: self.password_file.as_deref(),
        }
    }

    /// `count` passwords (one per line from stdin or the file, else one
    /// prompt each), each refused if empty before anything is sent: an
    /// empty password can never log in, and a login attempt with one would
    /// count toward the account's lockout.
    pub(crate) fn read(&self, prompts: &[&str]) -> anyhow::Result<Vec<String>> {
        self.source().read(prompts)
    }

    /// One password, refused if empty.
    pub(crate) fn one(&self, prompt: &str) -> anyhow::Result<String> {
        self.source().one(prompt)
    }
}

/// A secret from the terminal without echo, or one line of stdin when piped.
pub(crate) fn read_secret(prompt: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt).context("reading the password");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub(crate) async fn channel(endpoints: &Endpoints) -> anyhow::Result<Channel> {
    let url = endpoints
        .json
        .pointer("/controlplane/grpc")
        .and_then(|v| v.as_str())
        .context("endpoints file has no controlplane.grpc")?;
    let ca_path = endpoints
        .json
        .get("ca_cert")
        .and_then(|v| v.as_str())
        .context("endpoints file has no ca_cert")?;
    let ca = std::fs::read(ca_path).with_context(|| format!("reading {ca_path}"))?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    Endpoint::from_shared(url.to_owned())?
        .tls_config(tls)?
        .connect()
        .await
        .with_context(|| format!("cannot reach the control plane at {url}"))
}

/// The channel and the saved token, or "not logged in".
pub(crate) async fn authed(endpoints: &Endpoints) -> anyhow::Result<(Channel, Bearer)> {
    let token = saved_token(endpoints)?;
    let value = format!("Bearer {token}")
        .parse()
        .context("the saved token is not valid ASCII")?;
    Ok((channel(endpoints).await?, Bearer(value)))
}

/// A gRPC error as the operator should read it.
pub(crate) fn refused(s: tonic::Status) -> anyhow::Error {
    match s.code() {
        tonic::Code::Unauthenticated => {
            anyhow::anyhow!("{} (log in again with `mcctl login`)", s.message())
        }
        _ => anyhow::anyhow!("{}", s.message()),
    }
}
