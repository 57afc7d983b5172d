//! `mcctl registry retention …`: MCR's retention rules over
//! `mc.registry.v1.Retention` (admin): list, set (create or replace),
//! delete, and run (all repositories or `--repo`, `--dry-run` to list only).

use clap::Subcommand;
use mc_proto::registry::v1 as pb;
use pb::retention_client::RetentionClient;
use serde::Serialize;

use crate::endpoints::Endpoints;
use crate::iam::client::{authed, refused};
use crate::output::{Col, Out, Table, row};

#[derive(Subcommand)]
pub(crate) enum RetentionCommand {
    /// Every rule.
    List,
    /// Create or replace a rule.
    Set {
        id: String,
        /// Repository glob (`*` one component, `**` any); repeatable.
        #[arg(long = "repo", required = true)]
        repositories: Vec<String>,
        /// Keep this many most recently updated tags (besides --keep-tag).
        #[arg(long)]
        keep_last: Option<u32>,
        /// Tag glob always kept; repeatable.
        #[arg(long = "keep-tag")]
        keep_tags: Vec<String>,
        /// Delete untagged manifests pushed longer ago than this (7d, 12h).
        #[arg(long)]
        untagged_older_than: Option<String>,
        /// Store the rule disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Delete a rule.
    Delete { id: String },
    /// Apply the enabled rules now.
    Run {
        /// Only this repository.
        #[arg(long)]
        repo: Option<String>,
        /// List what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Serialize)]
struct RuleView {
    id: String,
    repositories: Vec<String>,
    keep_last: Option<u32>,
    keep_tags: Vec<String>,
    untagged_older_than: String,
    enabled: bool,
}

impl From<pb::RetentionRule> for RuleView {
    fn from(r: pb::RetentionRule) -> Self {
        Self {
            id: r.id,
            repositories: r.repositories,
            keep_last: r.keep_last,
            keep_tags: r.keep_tags,
            untagged_older_than: r.untagged_older_than,
            enabled: r.enabled,
        }
    }
}

#[derive(Serialize)]
struct ReportView {
    dry_run: bool,
    repositories: u64,
    tags_deleted: u64,
    manifests_deleted: u64,
    bytes: u64,
    skipped: u64,
    tags: Vec<[String; 3]>,
    manifests: Vec<(String, String, u64)>,
}

const RULES: Table = Table(&[
    Col::left("ID", 16),
    Col::left("ON", 5),
    Col::right("KEEP", 5),
    Col::left("KEEP TAGS", 16),
    Col::left("UNTAGGED>", 9),
    Col::left("REPOSITORIES", 0),
]);

fn print_report(r: &ReportView) {
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    println!(
        "{} repositories: {verb} {} tags and {} manifests ({} bytes); {} skipped (changed meanwhile)",
        r.repositories, r.tags_deleted, r.manifests_deleted, r.bytes, r.skipped
    );
    for [repo, tag, digest] in &r.tags {
        println!("tag       {repo}:{tag} ({digest})");
    }
    for (repo, digest, size) in &r.manifests {
        println!("manifest  {repo}@{digest} ({size} bytes)");
    }
}

pub(crate) async fn run(
    endpoints: &Endpoints,
    out: Out,
    cmd: RetentionCommand,
) -> anyhow::Result<()> {
    let (ch, bearer) = authed(endpoints).await?;
    let mut c = RetentionClient::with_interceptor(ch, bearer);
    match cmd {
        RetentionCommand::List => {
            let rules: Vec<RuleView> = c
                .list(pb::RetentionListRequest {})
                .await
                .map_err(refused)?
                .into_inner()
                .rules
                .into_iter()
                .map(RuleView::from)
                .collect();
            out.show(&rules, || {
                RULES.print(rules.iter().map(|r| {
                    row![
                        r.id,
                        if r.enabled { "yes" } else { "no" },
                        r.keep_last.map_or("all".to_owned(), |n| n.to_string()),
                        if r.keep_tags.is_empty() {
                            "-".to_owned()
                        } else {
                            r.keep_tags.join(",")
                        },
                        if r.untagged_older_than.is_empty() {
                            "-"
                        } else {
                            &r.untagged_older_than
                        },
                        r.repositories.join(","),
                    ]
                }))
            })
        }
        RetentionCommand::Set {
            id,
            repositories,
            keep_last,
            keep_tags,
            untagged_older_than,
            disabled,
        } => {
            let r = c
                .put(pb::RetentionRule {
                    id,
                    repositories,
                    keep_last,
                    keep_tags,
                    untagged_older_than: untagged_older_than.unwrap_or_default(),
                    enabled: !disabled,
                })
                .await
                .map_err(refused)?
                .into_inner();
            let view = RuleView::from(r);
            out.done(&view, &format!("retention rule {} saved", view.id))
        }
        RetentionCommand::Delete { id } => {
            c.delete(pb::RetentionDeleteRequest { id: id.clone() })
                .await
                .map_err(refused)?;
            out.done(
                &serde_json::json!({"deleted": id}),
                &format!("retention rule {id} deleted"),
            )
        }
        RetentionCommand::Run { repo, dry_run } => {
            let r = c
                .run(pb::RetentionRunRequest {
                    repository: repo.unwrap_or_default(),
                    dry_run,
                })
                .await
                .map_err(refused)?
                .into_inner();
            let view = ReportView {
                dry_run: r.dry_run,
                repositories: r.repositories,
                tags_deleted: r.tags_deleted,
                manifests_deleted: r.manifests_deleted,
                bytes: r.bytes,
                skipped: r.skipped,
                tags: r
                    .tags
                    .into_iter()
                    .map(|t| [t.repository, t.tag, t.digest])
                    .collect(),
                manifests: r
                    .manifests
                    .into_iter()
                    .map(|m| (m.repository, m.digest, m.size))
                    .collect(),
            };
            out.show(&view, || print_report(&view))
        }
    }
}
