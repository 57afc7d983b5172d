//! `mcctl registry manifests show REPO REF`: one manifest by tag or digest
//! over `mc.registry.v1.Repositories/GetManifest`: its type, digest and
//! size, config and layers (an image) or platforms (an index), subject,
//! artifactType, annotations, referrers and the tags pointing at it.

use std::collections::BTreeMap;

use clap::Subcommand;
use mc_proto::registry::v1 as pb;
use serde::Serialize;

use super::human;
use crate::iam::client::{Authed, refused};
use crate::output::{Col, Out, Table, row, utc};

#[derive(Subcommand)]
pub(crate) enum ManifestsCommand {
    /// One manifest by tag or digest: layers or platforms, referrers, tags.
    Show {
        repo: String,
        /// A tag (`v1`) or a digest (`sha256:…`).
        reference: String,
    },
}

#[derive(Serialize)]
struct DescriptorView {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    artifact_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    platform: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

impl From<pb::Descriptor> for DescriptorView {
    fn from(d: pb::Descriptor) -> Self {
        Self {
            media_type: d.media_type,
            digest: d.digest,
            size: d.size,
            artifact_type: d.artifact_type,
            platform: d.platform,
            annotations: d.annotations.into_iter().collect(),
        }
    }
}

#[derive(Serialize)]
struct ManifestView {
    repository: String,
    digest: String,
    media_type: String,
    size: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    artifact_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<DescriptorView>,
    layers: Vec<DescriptorView>,
    manifests: Vec<DescriptorView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<DescriptorView>,
    annotations: BTreeMap<String, String>,
    referrers: Vec<DescriptorView>,
    tags: Vec<String>,
    pushed_at_unix: i64,
    pushed_by: String,
}

fn all(v: Vec<pb::Descriptor>) -> Vec<DescriptorView> {
    v.into_iter().map(DescriptorView::from).collect()
}

impl From<pb::Manifest> for ManifestView {
    fn from(m: pb::Manifest) -> Self {
        Self {
            repository: m.repository,
            digest: m.digest,
            media_type: m.media_type,
            size: m.size,
            artifact_type: m.artifact_type,
            config: m.config.map(DescriptorView::from),
            layers: all(m.layers),
            manifests: all(m.manifests),
            subject: m.subject.map(DescriptorView::from),
            annotations: m.annotations.into_iter().collect(),
            referrers: all(m.referrers),
            tags: m.tags,
            pushed_at_unix: m.pushed_at,
            pushed_by: m.pushed_by,
        }
    }
}

const LAYERS: Table = Table(&[
    Col::left("LAYER", 72),
    Col::right("SIZE", 10),
    Col::left("MEDIA TYPE", 0),
]);

const PLATFORMS: Table = Table(&[
    Col::left("PLATFORM", 16),
    Col::left("MANIFEST", 72),
    Col::right("SIZE", 10),
    Col::left("MEDIA TYPE", 0),
]);

const REFERRERS: Table = Table(&[
    Col::left("REFERRER", 72),
    Col::right("SIZE", 10),
    Col::left("ARTIFACT TYPE", 0),
]);

fn print(v: &ManifestView) {
    println!("{}@{}", v.repository, v.digest);
    println!("media type:  {}", v.media_type);
    println!("size:        {}", human(v.size));
    let tags = if v.tags.is_empty() {
        "-".to_owned()
    } else {
        v.tags.join(", ")
    };
    println!("tags:        {tags}");
    println!("pushed:      {} by {}", utc(v.pushed_at_unix), v.pushed_by);
    if !v.artifact_type.is_empty() {
        println!("artifact:    {}", v.artifact_type);
    }
    if let Some(s) = &v.subject {
        println!("subject:     {} ({})", s.digest, s.media_type);
    }
    if let Some(c) = &v.config {
        println!(
            "config:      {} {} {}",
            c.digest,
            human(c.size),
            c.media_type
        );
    }
    for (k, val) in &v.annotations {
        println!("annotation:  {k}={val}");
    }
    if !v.layers.is_empty() {
        println!();
        LAYERS.print(
            v.layers
                .iter()
                .map(|l| row![l.digest, human(l.size), l.media_type]),
        );
    }
    if !v.manifests.is_empty() {
        println!();
        PLATFORMS.print(v.manifests.iter().map(|m| {
            let platform = if m.platform.is_empty() {
                "-"
            } else {
                &m.platform
            };
            row![platform, m.digest, human(m.size), m.media_type]
        }));
    }
    if !v.referrers.is_empty() {
        println!();
        REFERRERS.print(
            v.referrers
                .iter()
                .map(|r| row![r.digest, human(r.size), r.artifact_type]),
        );
    }
}

pub(crate) async fn run(
    c: &mut pb::repositories_client::RepositoriesClient<Authed>,
    out: Out,
    cmd: ManifestsCommand,
) -> anyhow::Result<()> {
    let ManifestsCommand::Show { repo, reference } = cmd;
    let m = c
        .get_manifest(pb::GetManifestRequest {
            repository: repo,
            reference,
        })
        .await
        .map_err(refused)?
        .into_inner();
    let v = ManifestView::from(m);
    out.show(&v, || print(&v))
}
