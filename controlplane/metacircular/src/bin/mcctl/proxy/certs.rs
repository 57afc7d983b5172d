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
    /// Certificates the proxy gets from Metacrypt's PKI or an ACME CA and renews itself.
    #[command(subcommand)]
    Managed(ManagedCommand),
}

#[derive(Subcommand)]
pub(crate) enum ManagedCommand {
    /// Manage NAME: a key made on this host, a CSR signed by MOUNT's ROLE
    /// (or ordered from an ACME directory, HTTP-01 answered on the proxy's
    /// plain-HTTP listeners), renewed at two thirds of its lifetime.
    /// Answers after the first attempt.
    Add {
        name: String,
        /// A DNS name (repeat; the first is the common name).
        #[arg(long = "dns", required = true)]
        dns_names: Vec<String>,
        /// The Metacrypt pki mount.
        #[arg(long, required_unless_present = "acme_directory")]
        mount: Option<String>,
        /// The mount's role that signs.
        #[arg(long, required_unless_present = "acme_directory")]
        role: Option<String>,
        /// e.g. `720h` (default: the role's).
        #[arg(long, value_parser = parse_secs)]
        ttl: Option<u64>,
        /// An ACME directory URL (https://…/directory) instead of a mount and role.
        #[arg(long, conflicts_with_all = ["mount", "role", "ttl"])]
        acme_directory: Option<String>,
        /// External Account Binding key id (with --eab-hmac-file).
        #[arg(long, requires_all = ["acme_directory", "eab_hmac_file"])]
        eab_kid: Option<String>,
        /// A file holding the EAB HMAC key (base64url, as the CA gave it).
        #[arg(long, requires = "eab_kid")]
        eab_hmac_file: Option<PathBuf>,
    },
    /// Stop managing NAME; the installed certificate stays, unmanaged.
    Remove { name: String },
    /// An attempt now (issue or renew); shows its outcome.
    Renew { name: String },
}

fn parse_secs(s: &str) -> Result<u64, String> {
    let d: mc_kit::config::Duration = s.parse()?;
    Ok(d.get().as_secs())
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
    #[serde(skip_serializing_if = "Option::is_none")]
    managed: Option<ManagedView>,
}

#[derive(Serialize)]
struct ManagedView {
    source: String,
    dns_names: Vec<String>,
    next_renewal_unix: i64,
    failures: u32,
    last_error: String,
    last_success_unix: i64,
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
            managed: c.managed.map(|m| ManagedView {
                source: m.source,
                dns_names: m.dns_names,
                next_renewal_unix: m.next_attempt_unix,
                failures: m.failures,
                last_error: m.last_error,
                last_success_unix: m.last_success_unix,
            }),
        }
    }
}

impl CertView {
    /// `-`, or the source, next renewal and the last error.
    fn managed_line(&self) -> String {
        let Some(m) = &self.managed else {
            return "-".to_owned();
        };
        let mut s = format!("{} renew {}", m.source, utc(m.next_renewal_unix));
        if m.failures > 0 {
            s.push_str(&format!(" FAILING x{}: {}", m.failures, m.last_error));
        }
        s
    }
}

const TABLE: Table = Table(&[
    Col::left("NAME", 24),
    Col::left("KEY", 12),
    Col::left("ORIGIN", 8),
    Col::left("EXPIRES", 30),
    Col::left("NAMES / SHA-256", 40),
    Col::left("MANAGED", 0),
]);

pub(super) async fn run(c: &mut Client, out: Out, cmd: CertCommand) -> anyhow::Result<()> {
    match cmd {
        CertCommand::List => list(c, out).await,
        CertCommand::Put { name, chain, key } => put(c, out, name, chain, key).await,
        CertCommand::Remove { name } => remove(c, out, name).await,
        CertCommand::Managed(cmd) => managed(c, out, cmd).await,
    }
}

async fn managed(c: &mut Client, out: Out, cmd: ManagedCommand) -> anyhow::Result<()> {
    let cert = match cmd {
        ManagedCommand::Add {
            name,
            dns_names,
            mount,
            role,
            ttl,
            acme_directory,
            eab_kid,
            eab_hmac_file,
        } => {
            let eab_hmac = match eab_hmac_file {
                Some(f) => std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?
                    .trim()
                    .to_owned(),
                None => String::new(),
            };
            c.put_managed_certificate(pb::PutManagedCertificateRequest {
                name,
                dns_names,
                mount: mount.unwrap_or_default(),
                role: role.unwrap_or_default(),
                ttl_seconds: ttl.unwrap_or(0),
                acme_directory: acme_directory.unwrap_or_default(),
                eab_kid: eab_kid.unwrap_or_default(),
                eab_hmac,
            })
            .await
            .map_err(refused)?
        }
        ManagedCommand::Renew { name } => c
            .renew_managed_certificate(pb::RemoveCertificateRequest { name })
            .await
            .map_err(refused)?,
        ManagedCommand::Remove { name } => {
            let removed = c
                .remove_managed_certificate(pb::RemoveCertificateRequest { name: name.clone() })
                .await
                .map_err(refused)?
                .into_inner()
                .removed;
            if !removed {
                bail!("no managed certificate {name}");
            }
            return out.done(
                &serde_json::json!({ "unmanaged": name }),
                &format!("certificate {name} is no longer managed (still installed)"),
            );
        }
    };
    let cert = CertView::from(cert.into_inner());
    let failing = cert.managed.as_ref().is_some_and(|m| m.failures > 0);
    let line = if cert.not_after_unix > 0 {
        format!(
            "managed certificate {}: expires {}; {}",
            cert.name,
            utc(cert.not_after_unix),
            cert.managed_line()
        )
    } else {
        format!(
            "managed certificate {}: none issued yet; {}",
            cert.name,
            cert.managed_line()
        )
    };
    out.done(&cert, &line)?;
    if failing {
        bail!("the attempt failed; the installed certificate (if any) is still served");
    }
    Ok(())
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
            let expires = if c.not_after_unix == 0 {
                "none issued".to_owned()
            } else {
                format!("{} (in {days}d)", utc(c.not_after_unix))
            };
            row![
                c.name,
                c.key_algorithm,
                c.origin,
                expires,
                format!(
                    "{} {}",
                    c.dns_names.join(","),
                    c.sha256_fingerprint.get(..16).unwrap_or_default()
                ),
                c.managed_line()
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
