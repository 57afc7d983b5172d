//! `mcctl crypt kv get|put|patch|delete|undelete|destroy|metadata|list
//! MOUNT PATH`: the kv engine (version 2 semantics), policy-governed.
//! Secrets are JSON objects: `KEY=VALUE` pairs (string values) or
//! `--file FILE` holding a JSON object (`-` reads stdin).

use std::collections::BTreeMap;

use anyhow::Context as _;
use clap::Subcommand;
use mc_proto::crypt::v1 as pb;
use pb::kv_client::KvClient;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::iam::client::{Authed, refused};
use crate::output::{Col, Out, Table, row};

#[derive(Subcommand)]
pub(crate) enum KvCommand {
    /// Read a secret (the current version, or --version N).
    Get {
        mount: String,
        path: String,
        #[arg(long, default_value_t = 0)]
        version: u64,
    },
    /// Write a new version (--cas N: only if the current version is N; 0:
    /// only if the path is new).
    Put {
        mount: String,
        path: String,
        /// KEY=VALUE pairs.
        pairs: Vec<String>,
        #[arg(long)]
        file: Option<String>,
        #[arg(long)]
        cas: Option<u64>,
    },
    /// Merge into the current version (JSON merge patch; `KEY=` with
    /// --file '{"KEY": null}' removes a key).
    Patch {
        mount: String,
        path: String,
        pairs: Vec<String>,
        #[arg(long)]
        file: Option<String>,
        #[arg(long)]
        cas: Option<u64>,
    },
    /// Soft-delete the current version, or --versions 1,2.
    Delete {
        mount: String,
        path: String,
        #[arg(long, value_delimiter = ',')]
        versions: Vec<u64>,
    },
    /// Restore soft-deleted versions.
    Undelete {
        mount: String,
        path: String,
        #[arg(long, value_delimiter = ',', required = true)]
        versions: Vec<u64>,
    },
    /// Destroy versions for good (their data is deleted).
    Destroy {
        mount: String,
        path: String,
        #[arg(long, value_delimiter = ',', required = true)]
        versions: Vec<u64>,
    },
    /// Read a path's metadata; with --max-versions, --cas-required,
    /// --delete-version-after or --custom, change it; with --delete, delete
    /// the path and every version.
    Metadata {
        mount: String,
        path: String,
        #[arg(long)]
        max_versions: Option<u32>,
        #[arg(long)]
        cas_required: Option<bool>,
        /// New versions read as deleted this long after they are written,
        /// then are destroyed (e.g. 90s, 12h, 30d; 0s: the mount's).
        #[arg(long, value_parser = parse_secs)]
        delete_version_after: Option<u64>,
        /// KEY=VALUE custom metadata (replaces it all).
        #[arg(long = "custom")]
        custom: Vec<String>,
        #[arg(long, conflicts_with_all = ["max_versions", "cas_required", "delete_version_after", "custom"])]
        delete: bool,
    },
    /// The immediate children of a folder (default: the mount's root).
    List {
        mount: String,
        #[arg(default_value = "")]
        path: String,
    },
}

fn parse_secs(s: &str) -> Result<u64, String> {
    let d: mc_kit::config::Duration = s.parse()?;
    Ok(d.get().as_secs())
}

fn pairs_to_object(pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut m = Map::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("{p:?}: expected KEY=VALUE"))?;
        m.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    Ok(m)
}

fn secret_json(pairs: &[String], file: Option<&str>) -> anyhow::Result<String> {
    let mut m = match file {
        Some(f) => {
            let text = if f == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading stdin")?
            } else {
                std::fs::read_to_string(f).with_context(|| format!("reading {f}"))?
            };
            match serde_json::from_str::<Value>(&text).with_context(|| format!("{f}: not JSON"))? {
                Value::Object(m) => m,
                _ => anyhow::bail!("{f}: expected a JSON object"),
            }
        }
        None => Map::new(),
    };
    m.extend(pairs_to_object(pairs)?);
    if m.is_empty() {
        anyhow::bail!("no data: give KEY=VALUE pairs or --file");
    }
    Ok(Value::Object(m).to_string())
}

#[derive(Serialize)]
struct VersionView {
    version: u64,
    created_time: i64,
    deletion_time: i64,
    destroyed: bool,
}

impl From<pb::KvVersionInfo> for VersionView {
    fn from(v: pb::KvVersionInfo) -> Self {
        Self {
            version: v.version,
            created_time: v.created_time,
            deletion_time: v.deletion_time,
            destroyed: v.destroyed,
        }
    }
}

const VERSIONS: Table = Table(&[
    Col::right("VERSION", 7),
    Col::right("CREATED", 12),
    Col::right("DELETED", 12),
    Col::left("DESTROYED", 0),
]);

impl VersionView {
    fn row(&self) -> Vec<String> {
        row![
            self.version,
            self.created_time,
            if self.deletion_time == 0 {
                "-".to_owned()
            } else {
                self.deletion_time.to_string()
            },
            if self.destroyed { "yes" } else { "no" }
        ]
    }
}

#[derive(Serialize)]
struct MetadataView {
    current_version: u64,
    oldest_version: u64,
    created_time: i64,
    updated_time: i64,
    max_versions: u32,
    cas_required: bool,
    delete_version_after: u64,
    custom_metadata: BTreeMap<String, String>,
    versions: Vec<VersionView>,
}

impl From<pb::KvMetadata> for MetadataView {
    fn from(m: pb::KvMetadata) -> Self {
        let mut versions: Vec<VersionView> = m.versions.into_values().map(Into::into).collect();
        versions.sort_by_key(|v| v.version);
        Self {
            current_version: m.current_version,
            oldest_version: m.oldest_version,
            created_time: m.created_time,
            updated_time: m.updated_time,
            max_versions: m.max_versions,
            cas_required: m.cas_required,
            delete_version_after: m.delete_version_after,
            custom_metadata: m.custom_metadata.into_iter().collect(),
            versions,
        }
    }
}

fn print_metadata(m: &MetadataView) {
    println!(
        "current {} oldest {} max_versions {} cas_required {} delete_version_after {}",
        m.current_version,
        m.oldest_version,
        if m.max_versions == 0 {
            "(mount's)".to_owned()
        } else {
            m.max_versions.to_string()
        },
        m.cas_required,
        if m.delete_version_after == 0 {
            "(mount's)".to_owned()
        } else {
            format!("{}s", m.delete_version_after)
        }
    );
    for (k, v) in &m.custom_metadata {
        println!("custom {k}={v}");
    }
    VERSIONS.print(m.versions.iter().map(VersionView::row));
}

pub(crate) async fn run(c: &mut KvClient<Authed>, out: Out, cmd: KvCommand) -> anyhow::Result<()> {
    let written = |v: pb::KvVersionInfo| {
        let v = VersionView::from(v);
        let line = format!("version {} written", v.version);
        out.done(&v, &line)
    };
    match cmd {
        KvCommand::Get {
            mount,
            path,
            version,
        } => {
            let r = c
                .read(pb::KvReadRequest {
                    mount,
                    path,
                    version,
                })
                .await
                .map_err(refused)?
                .into_inner();
            let meta = VersionView::from(r.metadata.unwrap_or_default());
            let data: Value = if r.data_json.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&r.data_json).context("the server sent bad JSON")?
            };
            let view = serde_json::json!({"data": data, "metadata": meta});
            out.show(&view, || match &data {
                Value::Object(m) => {
                    for (k, v) in m {
                        match v {
                            Value::String(s) => println!("{k}={s}"),
                            other => println!("{k}={other}"),
                        }
                    }
                }
                _ => println!(
                    "(version {} is {})",
                    meta.version,
                    if meta.destroyed {
                        "destroyed"
                    } else {
                        "deleted"
                    }
                ),
            })
        }
        KvCommand::Put {
            mount,
            path,
            pairs,
            file,
            cas,
        } => {
            let data_json = secret_json(&pairs, file.as_deref())?;
            let v = c
                .write(pb::KvWriteRequest {
                    mount,
                    path,
                    data_json,
                    cas,
                })
                .await
                .map_err(refused)?
                .into_inner();
            written(v)
        }
        KvCommand::Patch {
            mount,
            path,
            pairs,
            file,
            cas,
        } => {
            let data_json = secret_json(&pairs, file.as_deref())?;
            let v = c
                .patch(pb::KvWriteRequest {
                    mount,
                    path,
                    data_json,
                    cas,
                })
                .await
                .map_err(refused)?
                .into_inner();
            written(v)
        }
        KvCommand::Delete {
            mount,
            path,
            versions,
        } => {
            if versions.is_empty() {
                c.delete_latest(pb::KvPathRequest {
                    mount,
                    path: path.clone(),
                })
                .await
                .map_err(refused)?;
            } else {
                c.delete_versions(pb::KvVersionsRequest {
                    mount,
                    path: path.clone(),
                    versions: versions.clone(),
                })
                .await
                .map_err(refused)?;
            }
            out.done(
                &serde_json::json!({"deleted": path, "versions": versions}),
                &format!("{path}: deleted"),
            )
        }
        KvCommand::Undelete {
            mount,
            path,
            versions,
        } => {
            c.undelete(pb::KvVersionsRequest {
                mount,
                path: path.clone(),
                versions: versions.clone(),
            })
            .await
            .map_err(refused)?;
            out.done(
                &serde_json::json!({"undeleted": path, "versions": versions}),
                &format!("{path}: undeleted"),
            )
        }
        KvCommand::Destroy {
            mount,
            path,
            versions,
        } => {
            c.destroy(pb::KvVersionsRequest {
                mount,
                path: path.clone(),
                versions: versions.clone(),
            })
            .await
            .map_err(refused)?;
            out.done(
                &serde_json::json!({"destroyed": path, "versions": versions}),
                &format!("{path}: destroyed"),
            )
        }
        KvCommand::Metadata {
            mount,
            path,
            max_versions,
            cas_required,
            delete_version_after,
            custom,
            delete,
        } => {
            if delete {
                c.delete_metadata(pb::KvPathRequest {
                    mount,
                    path: path.clone(),
                })
                .await
                .map_err(refused)?;
                return out.done(
                    &serde_json::json!({"deleted": path}),
                    &format!("{path}: every version deleted"),
                );
            }
            let change = max_versions.is_some()
                || cas_required.is_some()
                || delete_version_after.is_some()
                || !custom.is_empty();
            let m = if change {
                let custom_metadata = pairs_to_object(&custom)?
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                c.write_metadata(pb::KvWriteMetadataRequest {
                    mount,
                    path,
                    max_versions,
                    cas_required,
                    delete_version_after,
                    custom_metadata,
                    replace_custom_metadata: !custom.is_empty(),
                })
                .await
            } else {
                c.read_metadata(pb::KvPathRequest { mount, path }).await
            }
            .map_err(refused)?
            .into_inner();
            let view = MetadataView::from(m);
            out.show(&view, || print_metadata(&view))
        }
        KvCommand::List { mount, path } => {
            let keys = c
                .list(pb::KvPathRequest { mount, path })
                .await
                .map_err(refused)?
                .into_inner()
                .keys;
            out.show(&keys, || {
                for k in &keys {
                    println!("{k}");
                }
            })
        }
    }
}
