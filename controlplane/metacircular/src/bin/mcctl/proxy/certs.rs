//! `mcctl proxy certs …`: certificates for L7 routes (keys are never shown).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use mc_proto::proxy::v1 as pb;
use serde::Serialize;

use super::{Client, refused};
use crate::enums::name_or;
use crate::output::{Col, Out, Table, row, utc};

#[derive(Subcommand)]
pub(crate) enum CertCommand {
    List,
    /// Store or replace a certificate; routes using it serve it from the next handshake.
    Put {
        name: String,
        /// PEM: the leaf first, then its intermediates.
        #[arg(long)]
        chain: PathBuf,
        /// PEM private key (PKCS#8, SEC1 or PKCS#1).
        #[arg(long)]
        key: PathBuf,
    },
    Remove {
        name: String,
    },
}

#[derive(Serialize)]
struct CertView {
    name: String,
    dns_names: Vec<String>,
    not_before_unix: i64,
    not_after_unix: i64,
    key_algorithm: String,
    sha256_fingerprint: String,
    origin: String,
}

impl From<pb::Certificate> for CertView {
    fn from(c: pb::Certificate) -> Self {
        Self {
            origin: name_or::<pb::Origin>(c.origin, "?"),
            name: c.name,
            dns_names: c.dns_names,
            not_before_unix: c.not_before_unix,
            not_after_unix: c.not_after_unix,
            key_algorithm: c.key_algorithm,
            sha256_fingerprint: c.sha256_fingerprint,
        }
    }
}

const TABLE: Table = Table(&[
    Col::left("NAME", 24),
    Col::left("KEY", 12),
    Col::left("ORIGIN", 8),
    Col::left("EXPIRES", 30),
    Col::left("NAMES / SHA-256", 0),
]);

pub(super) async fn run(c: &mut Client, out: Out, cmd: CertCommand) -> anyhow::Result<()> {
    match cmd {
        CertCommand::List => list(c, out).await,
        CertCommand::Put { name, chain, key } => put(c, out, name, chain, key).await,
        CertCommand::Remove { name } => remove(c, out, name).await,
    }
}

async fn list(c: &mut Client, out: Out) -> anyhow::Result<()> {
    let cs: Vec<CertView> = c
        .list_certificates(pb::ListCertificatesRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .certificates
        .into_iter()
        .map(CertView::from)
        .collect();
    out.show(&cs, || {
        let now = mc_kit::clock::unix_now();
        TABLE.print(cs.iter().map(|c| {
            let days = (c.not_after_unix - now) / 86_400;
            row![
                c.name,
                c.key_algorithm,
                c.origin,
                format!("{} (in {days}d)", utc(c.not_after_unix)),
                format!(
                    "{} {}",
                    c.dns_names.join(","),
                    c.sha256_fingerprint.get(..16).unwrap_or_default()
                )
            ]
        }));
    })
}

async fn put(
    c: &mut Client,
    out: Out,
    name: String,
    chain: PathBuf,
    key: PathBuf,
) -> anyhow::Result<()> {
    let chain_pem =
        std::fs::read_to_string(&chain).with_context(|| format!("reading {}", chain.display()))?;
    let key_pem =
        std::fs::read_to_string(&key).with_context(|| format!("reading {}", key.display()))?;
    let cert = CertView::from(
        c.put_certificate(pb::PutCertificateRequest {
            name,
            chain_pem,
            key_pem,
        })
        .await
        .map_err(refused)?
        .into_inner(),
    );
    let line = format!(
        "certificate {} ({}, {}) sha256 {}",
        cert.name,
        cert.key_algorithm,
        cert.dns_names.join(","),
        cert.sha256_fingerprint
    );
    out.done(&cert, &line)
}

async fn remove(c: &mut Client, out: Out, name: String) -> anyhow::Result<()> {
    let removed = c
        .remove_certificate(pb::RemoveCertificateRequest { name: name.clone() })
        .await
        .map_err(refused)?
        .into_inner()
        .removed;
    if !removed {
        bail!("no certificate {name}");
    }
    out.done(
        &serde_json::json!({ "removed": name }),
        &format!("removed certificate {name}"),
    )
}
