//! `mcctl crypt keys list|create|get|rotate|config|trim|delete MOUNT NAME`
//! and `mcctl crypt encrypt|decrypt|sign|verify MOUNT KEY`: the transit
//! engine over `mc.crypt.v1.Transit`, policy-governed. Inputs come from
//! `--file FILE` or stdin (`-`); `--context` is the derivation context's
//! text. `decrypt` writes the plaintext's raw bytes to stdout.

use std::io::{Read as _, Write as _};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Subcommand;
use mc_proto::crypt::v1 as pb;
use pb::transit_client::TransitClient;
use serde::Serialize;
use serde_json::Value;

use crate::iam::client::{Authed, refused};
use crate::output::Out;

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// The mount's key names.
    List { mount: String },
    /// Create a key (an existing key is left as it is).
    Create {
        mount: String,
        name: String,
        /// aes256-gcm (default), xchacha20-poly1305, ed25519, ecdsa-p256,
        /// ecdsa-p384, rsa-2048, rsa-3072, rsa-4096, hmac-sha256, hmac-sha512.
        #[arg(long = "type", default_value = "")]
        kind: String,
        /// Every call then needs --context (HKDF-SHA256 per context).
        #[arg(long)]
        derived: bool,
        /// The key material may be exported (cannot be undone).
        #[arg(long)]
        exportable: bool,
        /// Seconds between automatic rotations (0: never; else at least 3600).
        #[arg(long, default_value_t = 0)]
        auto_rotate_period: u64,
    },
    /// A key's type, versions, minimums and flags (no key material).
    Get { mount: String, name: String },
    /// A new latest version.
    Rotate { mount: String, name: String },
    /// Change minimums and flags.
    Config {
        mount: String,
        name: String,
        #[arg(long)]
        min_decryption_version: Option<u32>,
        #[arg(long)]
        min_encryption_version: Option<u32>,
        #[arg(long)]
        deletion_allowed: Option<bool>,
        #[arg(long)]
        exportable: Option<bool>,
        #[arg(long)]
        auto_rotate_period: Option<u64>,
    },
    /// Delete the versions below N (N ≤ both minimums).
    Trim {
        mount: String,
        name: String,
        #[arg(long)]
        min_available_version: u32,
    },
    /// Delete the key (needs deletion_allowed).
    Delete { mount: String, name: String },
}

#[derive(Subcommand)]
pub(crate) enum DataCommand {
    /// Encrypt --file (or stdin); prints `vault:vN:…`.
    Encrypt {
        mount: String,
        key: String,
        #[arg(long, default_value = "-")]
        file: String,
        #[arg(long)]
        context: Option<String>,
        /// Associated data, bound to the ciphertext (text).
        #[arg(long)]
        aad: Option<String>,
        /// The type of a key this creates when there is none.
        #[arg(long = "type", default_value = "")]
        kind: String,
    },
    /// Decrypt a ciphertext; writes the plaintext to stdout.
    Decrypt {
        mount: String,
        key: String,
        ciphertext: String,
        #[arg(long)]
        context: Option<String>,
        #[arg(long)]
        aad: Option<String>,
    },
    /// Sign --file (or stdin); prints `vault:vN:…`.
    Sign {
        mount: String,
        key: String,
        #[arg(long, default_value = "-")]
        file: String,
        #[command(flatten)]
        params: SignArgs,
    },
    /// Verify a signature over --file (or stdin); exits 1 when it is not valid.
    Verify {
        mount: String,
        key: String,
        signature: String,
        #[arg(long, default_value = "-")]
        file: String,
        #[command(flatten)]
        params: SignArgs,
    },
}

#[derive(clap::Args)]
pub(crate) struct SignArgs {
    /// sha2-256 (default), sha2-224, sha2-384, sha2-512, sha3-256/384/512.
    #[arg(long, default_value = "")]
    hash_algorithm: String,
    /// The input is already the digest.
    #[arg(long)]
    prehashed: bool,
    /// RSA: pss (default) or pkcs1v15.
    #[arg(long, default_value = "")]
    signature_algorithm: String,
    /// ECDSA: asn1 (default) or jws.
    #[arg(long, default_value = "")]
    marshaling_algorithm: String,
    #[arg(long)]
    context: Option<String>,
}

impl SignArgs {
    fn params(&self) -> pb::TransitSignParams {
        pb::TransitSignParams {
            hash_algorithm: self.hash_algorithm.clone(),
            prehashed: self.prehashed,
            signature_algorithm: self.signature_algorithm.clone(),
            marshaling_algorithm: self.marshaling_algorithm.clone(),
            key_version: 0,
        }
    }
}

type Client = TransitClient<Authed>;

/// Reads `path`, or stdin for `-`; at most 4 MiB (the server's body bound).
pub(super) fn input(path: &str) -> anyhow::Result<Vec<u8>> {
    const MAX: u64 = 4 * 1024 * 1024;
    let mut buf = Vec::new();
    if path == "-" {
        std::io::stdin()
            .take(MAX + 1)
            .read_to_end(&mut buf)
            .context("reading stdin")?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("opening {path}"))?
            .take(MAX + 1)
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {path}"))?;
    }
    anyhow::ensure!(buf.len() as u64 <= MAX, "input: at most 4 MiB");
    Ok(buf)
}

fn text(s: &Option<String>) -> Vec<u8> {
    s.as_deref()
        .map(|s| s.as_bytes().to_vec())
        .unwrap_or_default()
}

fn key_view(json: &str) -> anyhow::Result<Value> {
    serde_json::from_str(json).context("the server's key description")
}

fn print_key(k: &Value) {
    println!(
        "{} ({}): latest version {}, min decryption {}, min encryption {}, min available {}, deletion {}, exportable {}, derived {}",
        k["name"].as_str().unwrap_or_default(),
        k["type"].as_str().unwrap_or_default(),
        k["latest_version"],
        k["min_decryption_version"],
        k["min_encryption_version"],
        k["min_available_version"],
        if k["deletion_allowed"] == true {
            "allowed"
        } else {
            "refused"
        },
        k["exportable"],
        k["derived"],
    );
    if let Some(versions) = k["keys"].as_object() {
        for (v, info) in versions {
            match info.get("public_key").and_then(Value::as_str) {
                Some(pk) => println!(
                    "  v{v}: {}\n{}",
                    info["creation_time"].as_str().unwrap_or_default(),
                    pk.trim_end()
                ),
                None => println!(
                    "  v{v}: created {}",
                    info.get("creation_time").unwrap_or(info)
                ),
            }
        }
    }
}

fn first<T>(results: Vec<T>, error: impl Fn(&T) -> &str) -> anyhow::Result<T> {
    let r = results
        .into_iter()
        .next()
        .context("the server answered no result")?;
    anyhow::ensure!(error(&r).is_empty(), "{}", error(&r));
    Ok(r)
}

pub(crate) async fn keys(c: &mut Client, out: Out, cmd: KeysCommand) -> anyhow::Result<()> {
    let key = |mount: String, name: String| pb::TransitKeyRequest { mount, name };
    let shown = match cmd {
        KeysCommand::List { mount } => {
            let keys = c
                .list_keys(pb::TransitMountRequest { mount })
                .await
                .map_err(refused)?
                .into_inner()
                .keys;
            return out.show(&keys, || keys.iter().for_each(|k| println!("{k}")));
        }
        KeysCommand::Delete { mount, name } => {
            c.delete_key(key(mount, name.clone()))
                .await
                .map_err(refused)?;
            #[derive(Serialize)]
            struct Deleted {
                deleted: String,
            }
            return out.done(
                &Deleted {
                    deleted: name.clone(),
                },
                &format!("deleted key {name}"),
            );
        }
        KeysCommand::Create {
            mount,
            name,
            kind,
            derived,
            exportable,
            auto_rotate_period,
        } => {
            let r = pb::TransitCreateKeyRequest {
                mount,
                name,
                r#type: kind,
                derived,
                exportable,
                auto_rotate_period,
            };
            c.create_key(r).await
        }
        KeysCommand::Get { mount, name } => c.get_key(key(mount, name)).await,
        KeysCommand::Rotate { mount, name } => c.rotate_key(key(mount, name)).await,
        KeysCommand::Config {
            mount,
            name,
            min_decryption_version,
            min_encryption_version,
            deletion_allowed,
            exportable,
            auto_rotate_period,
        } => {
            let r = pb::TransitKeyConfigRequest {
                mount,
                name,
                min_decryption_version,
                min_encryption_version,
                deletion_allowed,
                exportable,
                auto_rotate_period,
            };
            c.update_key_config(r).await
        }
        KeysCommand::Trim {
            mount,
            name,
            min_available_version,
        } => {
            c.trim_key(pb::TransitTrimRequest {
                mount,
                name,
                min_available_version,
            })
            .await
        }
    };
    let k = key_view(&shown.map_err(refused)?.into_inner().json)?;
    out.show(&k, || print_key(&k))
}

pub(crate) async fn data(c: &mut Client, out: Out, cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Encrypt {
            mount,
            key,
            file,
            context,
            aad,
            kind,
        } => {
            let item = pb::TransitEncryptItem {
                plaintext: input(&file)?,
                context: text(&context),
                key_version: 0,
                associated_data: text(&aad),
                reference: String::new(),
            };
            let r = pb::TransitEncryptRequest {
                mount,
                name: key,
                items: vec![item],
                r#type: kind,
            };
            let res = c.encrypt(r).await.map_err(refused)?.into_inner().results;
            let r = first(res, |r| &r.error)?;
            #[derive(Serialize)]
            struct View {
                ciphertext: String,
                key_version: u32,
            }
            out.show(
                &View {
                    ciphertext: r.ciphertext.clone(),
                    key_version: r.key_version,
                },
                || println!("{}", r.ciphertext),
            )
        }
        DataCommand::Decrypt {
            mount,
            key,
            ciphertext,
            context,
            aad,
        } => {
            let item = pb::TransitDecryptItem {
                ciphertext,
                context: text(&context),
                associated_data: text(&aad),
                reference: String::new(),
            };
            let res = c
                .decrypt(pb::TransitDecryptRequest {
                    mount,
                    name: key,
                    items: vec![item],
                })
                .await
                .map_err(refused)?;
            let r = first(res.into_inner().results, |r| &r.error)?;
            #[derive(Serialize)]
            struct View {
                plaintext: String,
            }
            let view = View {
                plaintext: STANDARD.encode(&r.plaintext),
            };
            let mut failed = None;
            out.show(&view, || {
                let mut stdout = std::io::stdout().lock();
                failed = stdout
                    .write_all(&r.plaintext)
                    .and_then(|()| stdout.flush())
                    .err();
            })?;
            failed.map_or(Ok(()), |e| Err(e.into()))
        }
        DataCommand::Sign {
            mount,
            key,
            file,
            params,
        } => {
            let item = pb::TransitSignItem {
                input: input(&file)?,
                context: text(&params.context),
                reference: String::new(),
            };
            let r = pb::TransitSignRequest {
                mount,
                name: key,
                params: Some(params.params()),
                items: vec![item],
            };
            let r = first(
                c.sign(r).await.map_err(refused)?.into_inner().results,
                |r| &r.error,
            )?;
            #[derive(Serialize)]
            struct View {
                signature: String,
                key_version: u32,
            }
            out.show(
                &View {
                    signature: r.signature.clone(),
                    key_version: r.key_version,
                },
                || println!("{}", r.signature),
            )
        }
        DataCommand::Verify {
            mount,
            key,
            signature,
            file,
            params,
        } => {
            let item = pb::TransitVerifyItem {
                input: input(&file)?,
                signature,
                hmac: String::new(),
                context: text(&params.context),
                reference: String::new(),
            };
            let r = pb::TransitVerifyRequest {
                mount,
                name: key,
                params: Some(params.params()),
                items: vec![item],
            };
            let r = first(
                c.verify(r).await.map_err(refused)?.into_inner().results,
                |r| &r.error,
            )?;
            // Not valid is a failure: nothing on stdout, the reason on stderr.
            anyhow::ensure!(r.valid, "the signature is not valid");
            #[derive(Serialize)]
            struct View {
                valid: bool,
            }
            out.show(&View { valid: true }, || println!("valid"))
        }
    }
}
