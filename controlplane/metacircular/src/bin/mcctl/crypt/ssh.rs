//! `mcctl crypt ssh …`: the ssh engine (SSH CA) over `mc.crypt.v1.SshCa`:
//! the CA key, profiles, signing a public key into a user or host
//! certificate, issued certificates, revocation into the KRL. Requests
//! are the REST bodies as JSON; answers print as JSON with `--json`, else
//! as `key: value` lines. `sign --out FILE` writes the certificate line
//! where `ssh` looks for it (`id_ed25519-cert.pub`).

use clap::Subcommand;
use mc_proto::crypt::v1 as pb;
use pb::ssh_ca_client::SshCaClient;
use serde_json::{Value, json};

use crate::iam::client::{Authed, refused};
use crate::output::Out;

#[derive(Subcommand)]
pub(crate) enum SshCommand {
    /// Generate the mount's CA key (ed25519, ecdsa-p256, ecdsa-p384), or import one.
    CaCreate {
        mount: String,
        #[arg(long, default_value = "ed25519", conflicts_with = "import")]
        key_type: String,
        /// An unencrypted OpenSSH private key file to import instead.
        #[arg(long)]
        import: Option<std::path::PathBuf>,
    },
    /// The CA: public key, next serial, KRL version.
    Ca {
        mount: String,
    },
    /// The mount's profiles.
    Profiles {
        mount: String,
    },
    /// One profile.
    Profile {
        mount: String,
        name: String,
    },
    /// Create or replace a profile (what may be signed under it).
    ProfilePut {
        mount: String,
        name: String,
        /// `user` or `host`.
        #[arg(long, default_value = "user")]
        cert_type: String,
        /// A principal pattern (`*`, `?`); repeatable, at least one.
        #[arg(long = "allowed-principal", required = true)]
        allowed_principals: Vec<String>,
        /// Principals used when a request names none; repeatable.
        #[arg(long = "default-principal")]
        default_principals: Vec<String>,
        /// An allowed extension (default: the permit-* ones); repeatable.
        #[arg(long = "allowed-extension")]
        allowed_extensions: Vec<String>,
        /// A critical option every certificate gets, NAME=VALUE; repeatable.
        #[arg(long = "critical-option")]
        critical_options: Vec<String>,
        /// A critical option requests may set; repeatable.
        #[arg(long = "allowed-critical-option")]
        allowed_critical_options: Vec<String>,
        #[arg(long)]
        ttl: Option<String>,
        #[arg(long)]
        max_ttl: Option<String>,
    },
    ProfileDelete {
        mount: String,
        name: String,
    },
    /// Sign a public key file (`id_ed25519.pub`) into a certificate.
    Sign {
        mount: String,
        profile: String,
        #[arg(long)]
        public_key_file: std::path::PathBuf,
        /// Repeatable; default: the profile's default principals.
        #[arg(long = "principal")]
        principals: Vec<String>,
        #[arg(long)]
        ttl: Option<String>,
        #[arg(long)]
        key_id: Option<String>,
        /// Where to write the certificate line (else it is printed).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Serials of the certificates this CA issued.
    Issued {
        mount: String,
        #[arg(long)]
        after: Option<u64>,
    },
    /// One issued certificate.
    Cert {
        mount: String,
        serial: String,
    },
    /// Revoke by serial and/or key id; the KRL is re-encoded.
    Revoke {
        mount: String,
        #[arg(long = "serial")]
        serials: Vec<u64>,
        #[arg(long = "key-id")]
        key_ids: Vec<String>,
    },
    /// Remove the records of expired certificates.
    Tidy {
        mount: String,
    },
}

fn req(mount: String, name: String, body: Value) -> pb::SshRequest {
    let json = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    pb::SshRequest { mount, name, json }
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
}

fn options(pairs: Vec<String>) -> anyhow::Result<serde_json::Map<String, Value>> {
    pairs
        .into_iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => Ok((k.to_owned(), Value::from(v))),
            None if p == "verify-required" => Ok((p, Value::from(""))),
            None => anyhow::bail!("--critical-option {p}: NAME=VALUE"),
        })
        .collect()
}

pub(crate) async fn run(
    c: &mut SshCaClient<Authed>,
    out: Out,
    cmd: SshCommand,
) -> anyhow::Result<()> {
    use SshCommand as S;
    let none = String::new;
    let mut write_to = None;
    let reply = match cmd {
        S::CaCreate {
            mount,
            key_type,
            import,
        } => {
            let body = match import {
                Some(f) => json!({"private_key": read(&f)?}),
                None => json!({"key_type": key_type}),
            };
            c.create_ca(req(mount, none(), body)).await
        }
        S::Ca { mount } => c.get_ca(req(mount, none(), Value::Null)).await,
        S::Profiles { mount } => c.list_profiles(req(mount, none(), Value::Null)).await,
        S::Profile { mount, name } => c.get_profile(req(mount, name, Value::Null)).await,
        S::ProfilePut {
            mount,
            name,
            cert_type,
            allowed_principals,
            default_principals,
            allowed_extensions,
            critical_options,
            allowed_critical_options,
            ttl,
            max_ttl,
        } => {
            let mut body = json!({
                "cert_type": cert_type,
                "allowed_principals": allowed_principals,
                "default_principals": default_principals,
                "critical_options": options(critical_options)?,
                "allowed_critical_options": allowed_critical_options,
            });
            if !allowed_extensions.is_empty() {
                body["allowed_extensions"] = allowed_extensions.into();
            }
            if let Some(t) = ttl {
                body["ttl"] = t.into();
            }
            if let Some(t) = max_ttl {
                body["max_ttl"] = t.into();
            }
            c.put_profile(req(mount, name, body)).await
        }
        S::ProfileDelete { mount, name } => c.delete_profile(req(mount, name, Value::Null)).await,
        S::Sign {
            mount,
            profile,
            public_key_file,
            principals,
            ttl,
            key_id,
            out,
        } => {
            let mut body = json!({"public_key": read(&public_key_file)?, "principals": principals});
            if let Some(t) = ttl {
                body["ttl"] = t.into();
            }
            if let Some(k) = key_id {
                body["key_id"] = k.into();
            }
            write_to = out;
            c.sign(req(mount, profile, body)).await
        }
        S::Issued { mount, after } => {
            let body = after.map_or(Value::Null, |a| json!({"after": a}));
            c.list_issued(req(mount, none(), body)).await
        }
        S::Cert { mount, serial } => c.get_issued(req(mount, serial, Value::Null)).await,
        S::Revoke {
            mount,
            serials,
            key_ids,
        } => {
            let body = json!({"serials": serials, "key_ids": key_ids});
            c.revoke(req(mount, none(), body)).await
        }
        S::Tidy { mount } => c.tidy(req(mount, none(), Value::Null)).await,
    };
    let text = reply.map_err(refused)?.into_inner().json;
    let v: Value = serde_json::from_str(&text)?;
    if let (Some(path), Some(line)) = (&write_to, v["certificate"].as_str()) {
        std::fs::write(path, format!("{line}\n"))
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    out.show(&v, || super::pki::print_human(&v))
}
