//! `mcctl dev …`: helpers for the platform `mcd dev` runs on this machine.
//!
//! `dev cert` issues a server certificate from the dev CA that `mcd dev`
//! created (`ca.pem` and `ca-key.pem` beside endpoints.json's `ca_cert`) and
//! that its data plane trusts, so an L7 route in dev needs no other CA. It
//! reads the CA's key from disk, so it works only where the dev data dir is;
//! it never creates a CA. (Metacrypt issues from the same CA too: `mcd dev`
//! imports it as the root of the `dev-pki` mount, role `dev`.)

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use mc_proto::proxy::v1 as pb;
use mc_service::tls::DevCa;
use serde::Serialize;

use crate::endpoints::Endpoints;
use crate::output::Out;

/// More names than any real certificate carries is a mistake.
const MAX_NAMES: usize = 100;

#[derive(Subcommand)]
pub(crate) enum DevCommand {
    /// Issue a certificate for the NAMEs given from mcd dev's CA: writes
    /// STEM.pem (the leaf, then the CA) and STEM-key.pem (0600).
    Cert {
        /// DNS names (`*.example.test` for a wildcard) or IP addresses; the
        /// first is also the subject's common name.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Directory the files are written to.
        #[arg(long, default_value = ".", value_name = "DIR")]
        out: PathBuf,
        /// File name stem (default: the first name, `*.` written `wildcard.`).
        #[arg(long)]
        stem: Option<String>,
        /// Also store it in MC-Proxy under this name, for `proxy routes add --cert NAME`.
        #[arg(long, value_name = "CERT")]
        put: Option<String>,
        /// Replace files that already exist.
        #[arg(long)]
        force: bool,
        /// Days the certificate is valid for, from today (browsers refuse
        /// more than 398, Apple's systems more than 825).
        #[arg(long, default_value_t = 397, value_parser = clap::value_parser!(u32).range(1..=825))]
        days: u32,
    },
}

#[derive(Serialize)]
struct Issued {
    names: Vec<String>,
    chain: PathBuf,
    key: PathBuf,
    ca: PathBuf,
    /// The MC-Proxy certificate name it was stored as, with `--put`.
    stored_as: Option<String>,
}

pub(crate) async fn run(e: &Endpoints, out: Out, cmd: DevCommand) -> anyhow::Result<()> {
    match cmd {
        DevCommand::Cert {
            names,
            out: dir,
            stem,
            put,
            force,
            days,
        } => {
            let files = Files { dir, stem, force };
            cert(e, out, names, files, put, days).await
        }
    }
}

/// The dev CA's directory: where endpoints.json's `ca_cert` lives.
fn ca_dir(e: &Endpoints) -> anyhow::Result<PathBuf> {
    let ca = e
        .json
        .get("ca_cert")
        .and_then(|v| v.as_str())
        .with_context(|| {
            format!(
                "{} names no ca_cert: `mcctl dev` works with the platform `mcd dev` runs",
                e.path.display()
            )
        })?;
    Ok(Path::new(ca)
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default())
}

fn default_stem(first: &str) -> String {
    match first.strip_prefix("*.") {
        Some(rest) => format!("wildcard.{rest}"),
        None => first.to_owned(),
    }
}

/// Where `dev cert` writes: `--out`, `--stem`, `--force`.
struct Files {
    dir: PathBuf,
    stem: Option<String>,
    force: bool,
}

async fn cert(
    e: &Endpoints,
    out: Out,
    names: Vec<String>,
    Files { dir, stem, force }: Files,
    put: Option<String>,
    days: u32,
) -> anyhow::Result<()> {
    if names.len() > MAX_NAMES {
        bail!("at most {MAX_NAMES} names per certificate");
    }
    for n in &names {
        mc_service::tls::check_san(n)?;
    }
    let first = names.first().context("name at least one NAME")?.clone();
    let stem = stem.unwrap_or_else(|| default_stem(&first));
    if stem.is_empty() || stem.contains('/') || stem.starts_with('.') {
        bail!("--stem `{stem}`: a file name without `/` that does not start with `.`");
    }
    let ca_dir = ca_dir(e)?;
    let ca = DevCa::load(&ca_dir)?.with_context(|| {
        format!(
            "no dev CA in {} (ca.pem and ca-key.pem): `mcctl dev cert` issues from the CA `mcd dev` created",
            ca_dir.display()
        )
    })?;
    if !dir.is_dir() {
        bail!("--out {}: not a directory", dir.display());
    }
    let chain = dir.join(format!("{stem}.pem"));
    let key = dir.join(format!("{stem}-key.pem"));
    if !force && let Some(existing) = [&chain, &key].into_iter().find(|p| p.exists()) {
        bail!(
            "{} exists; pass --force to replace it (or --stem for other file names)",
            existing.display()
        );
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let files = ca.issue_for_days(&dir, &stem, &refs, days)?;
    if let Some(cert_name) = &put {
        let chain_pem = std::fs::read_to_string(&files.cert)
            .with_context(|| format!("reading {}", files.cert.display()))?;
        let key_pem = std::fs::read_to_string(&files.key)
            .with_context(|| format!("reading {}", files.key.display()))?;
        crate::proxy::client(e, None)
            .await?
            .put_certificate(pb::PutCertificateRequest {
                name: cert_name.clone(),
                chain_pem,
                key_pem,
            })
            .await
            .map_err(crate::proxy::refused)?;
    }
    let view = Issued {
        names,
        chain: files.cert,
        key: files.key,
        ca: ca.cert_path,
        stored_as: put,
    };
    out.show(&view, || {
        println!(
            "issued a dev certificate for {} (signed by {})",
            view.names.join(", "),
            view.ca.display()
        );
        println!("  chain: {}", view.chain.display());
        println!("  key:   {}", view.key.display());
        if let Some(c) = &view.stored_as {
            println!(
                "stored in MC-Proxy as `{c}`: mcctl proxy routes add {first} --mode l7 --cert {c} --backend HOST:PORT"
            );
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_file_names() {
        assert_eq!(default_stem("app.example.test"), "app.example.test");
        assert_eq!(default_stem("*.example.test"), "wildcard.example.test");
    }
}
