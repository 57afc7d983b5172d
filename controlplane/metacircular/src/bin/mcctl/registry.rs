//! `mcctl registry …`: MCR administration over `mc.registry.v1`:
//! `repos`, `tags`, `namespaces`, `quota` and `audit` here, `manifests`
//! and `policy` in `registry/`. Every answer goes through [`Out`]; sizes print in
//! binary units and are given as `10GiB`, `500MiB`, `1024` (bytes).

mod gc;
mod manifests;
mod policy;
mod retention;
mod storage;

use clap::Subcommand;
use mc_proto::registry::v1 as pb;
use serde::Serialize;

use crate::endpoints::Endpoints;
use crate::iam::client::{authed, refused};
use crate::output::{Col, Out, Table, row, utc};

#[derive(Subcommand)]
pub(crate) enum RegistryCommand {
    #[command(flatten)]
    Admin(AdminCommand),
    /// Online garbage collection: unreferenced blobs, orphans, stale uploads (admin).
    #[command(subcommand)]
    Gc(gc::GcCommand),
    /// Retention rules: keep last N tags, keep tags by pattern, untagged age (admin).
    #[command(subcommand)]
    Retention(retention::RetentionCommand),
    #[command(flatten)]
    Storage(storage::StorageCommand),
}

/// Repositories, tags, policy, quotas, namespaces and audit.
#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// Repositories: list, show, set (admin), delete (admin).
    Repos {
        #[command(subcommand)]
        cmd: ReposCommand,
    },
    /// Tags of a repository, with their digests and when they last moved.
    Tags {
        #[command(subcommand)]
        cmd: TagsCommand,
    },
    /// Manifests of a repository: one shown whole by tag or digest.
    Manifests {
        #[command(subcommand)]
        cmd: manifests::ManifestsCommand,
    },
    /// Policy rules over repositories (admin).
    Policy {
        #[command(subcommand)]
        cmd: Box<policy::PolicyCommand>,
    },
    /// Quotas and usage of repositories and namespaces (admin).
    Quota {
        #[command(subcommand)]
        cmd: QuotaCommand,
    },
    /// Namespace defaults: public pull and quota (admin).
    Namespaces {
        #[command(subcommand)]
        cmd: NamespacesCommand,
    },
    /// The registry's audit log, newest first (admin).
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Action prefix, e.g. `registry.policy` or `registry.denied`.
        #[arg(long, default_value = "")]
        action: String,
        /// Only rows about this repository or rule.
        #[arg(long, default_value = "")]
        target: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum ReposCommand {
    /// Repositories you may pull.
    List {
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long, default_value_t = 100)]
        n: u32,
        /// Start after this repository name.
        #[arg(long, default_value = "")]
        last: String,
    },
    Show {
        repo: String,
    },
    /// Change a repository's settings (admin).
    Set {
        repo: String,
        /// Anonymous callers may pull it.
        #[arg(long, conflicts_with = "private")]
        public: bool,
        /// Anonymous callers may not pull it.
        #[arg(long)]
        private: bool,
        /// Quota (`10GiB`, `500MiB`, bytes; 0 = none).
        #[arg(long, value_parser = parse_size)]
        quota: Option<u64>,
        /// Tags matching this glob (`v*`) may be created but never moved or
        /// deleted; repeat for more. Replaces the repository's globs.
        #[arg(long = "immutable", value_name = "GLOB", conflicts_with = "mutable")]
        immutable: Vec<String>,
        /// Clears the immutable-tag globs: every tag can move again.
        #[arg(long)]
        mutable: bool,
    },
    /// Remove its tags, manifests and links (admin; bytes go at the next GC).
    Delete {
        repo: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum TagsCommand {
    List {
        repo: String,
        #[arg(long, default_value_t = 100)]
        n: u32,
        #[arg(long, default_value = "")]
        last: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum QuotaCommand {
    /// Quota and usage of a repository and its namespace.
    Show { repo: String },
    /// Set a repository's quota (`10GiB`, `500MiB`, bytes; 0 = none).
    Set {
        repo: String,
        #[arg(value_parser = parse_size)]
        size: u64,
    },
}

#[derive(Subcommand)]
pub(crate) enum NamespacesCommand {
    Show {
        namespace: String,
    },
    Set {
        namespace: String,
        /// Its repositories are public unless they say otherwise.
        #[arg(long, conflicts_with = "private")]
        public: bool,
        #[arg(long)]
        private: bool,
        /// Quota over all its repositories (`10GiB`, bytes; 0 = none).
        #[arg(long, value_parser = parse_size)]
        quota: Option<u64>,
    },
}

/// `10GiB`, `1.5GB`, `500MiB`, `64k`, `1024` → bytes.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        u => {
            return Err(format!(
                "unknown unit {u:?} (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            ));
        }
    };
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("size out of range: {s:?}"));
    }
    Ok(bytes.round() as u64)
}

/// Bytes for people.
pub(crate) fn human(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn quota_text(q: u64) -> String {
    if q == 0 { "-".to_owned() } else { human(q) }
}

#[derive(Serialize)]
struct RepoView {
    name: String,
    created_at_unix: i64,
    updated_at_unix: i64,
    tag_count: u64,
    manifest_count: u64,
    size_bytes: u64,
    public_pull: bool,
    quota_bytes: u64,
    immutable_tags: Vec<String>,
    /// What GC frees because of this repository.
    reclaimable_blobs: u64,
    reclaimable_bytes: u64,
}

impl From<pb::Repository> for RepoView {
    fn from(r: pb::Repository) -> Self {
        Self {
            name: r.name,
            created_at_unix: r.created_at,
            updated_at_unix: r.updated_at,
            tag_count: r.tag_count,
            manifest_count: r.manifest_count,
            size_bytes: r.size_bytes,
            public_pull: r.public_pull,
            quota_bytes: r.quota_bytes,
            immutable_tags: r.immutable_tags,
            reclaimable_blobs: r.reclaimable_blobs,
            reclaimable_bytes: r.reclaimable_bytes,
        }
    }
}

const REPOS: Table = Table(&[
    Col::left("REPOSITORY", 32),
    Col::right("TAGS", 6),
    Col::right("MANIFESTS", 9),
    Col::right("SIZE", 10),
    Col::right("RECLAIMABLE", 11),
    Col::right("QUOTA", 10),
    Col::left("PUBLIC", 6),
    Col::left("IMMUTABLE", 12),
    Col::left("UPDATED", 0),
]);

impl RepoView {
    fn row(&self) -> Vec<String> {
        row![
            self.name,
            self.tag_count,
            self.manifest_count,
            human(self.size_bytes),
            human(self.reclaimable_bytes),
            quota_text(self.quota_bytes),
            if self.public_pull { "yes" } else { "no" },
            if self.immutable_tags.is_empty() {
                "-".to_owned()
            } else {
                self.immutable_tags.join(",")
            },
            utc(self.updated_at_unix)
        ]
    }
}

#[derive(Serialize)]
struct TagView {
    tag: String,
    digest: String,
    media_type: String,
    size: u64,
    updated_at_unix: i64,
    updated_by: String,
}

const TAGS: Table = Table(&[
    Col::left("TAG", 24),
    Col::left("DIGEST", 72),
    Col::right("SIZE", 9),
    Col::left("UPDATED", 21),
    Col::left("BY", 0),
]);

#[derive(Serialize)]
struct QuotaView {
    repository: String,
    quota_bytes: u64,
    used_bytes: u64,
    namespace: String,
    namespace_quota_bytes: u64,
    namespace_used_bytes: u64,
}

fn show_quota(out: Out, q: pb::Quota) -> anyhow::Result<()> {
    let v = QuotaView {
        repository: q.repository,
        quota_bytes: q.quota_bytes,
        used_bytes: q.used_bytes,
        namespace: q.namespace,
        namespace_quota_bytes: q.namespace_quota_bytes,
        namespace_used_bytes: q.namespace_used_bytes,
    };
    out.show(&v, || {
        println!(
            "{}: {} used of {}",
            v.repository,
            human(v.used_bytes),
            quota_text(v.quota_bytes)
        );
        println!(
            "{} (namespace): {} used of {}",
            v.namespace,
            human(v.namespace_used_bytes),
            quota_text(v.namespace_quota_bytes)
        );
    })
}

fn show_namespace(out: Out, n: pb::Namespace) -> anyhow::Result<()> {
    let v = serde_json::json!({"name": n.name, "public_pull": n.public_pull, "quota_bytes": n.quota_bytes});
    out.show(&v, || {
        println!(
            "{}: public pull {}, quota {}",
            n.name,
            if n.public_pull { "yes" } else { "no" },
            quota_text(n.quota_bytes)
        );
    })
}

const AUDIT: Table = Table(&[
    Col::right("SEQ", 6),
    Col::left("AT", 20),
    Col::left("ACTION", 24),
    Col::left("RESULT", 7),
    Col::left("TARGET", 28),
    Col::left("SOURCE", 15),
    Col::left("DETAIL", 0),
]);

pub(crate) async fn run(e: &Endpoints, out: Out, cmd: RegistryCommand) -> anyhow::Result<()> {
    match cmd {
        RegistryCommand::Admin(cmd) => admin(e, out, cmd).await,
        RegistryCommand::Gc(cmd) => gc::run(e, out, cmd).await,
        RegistryCommand::Retention(cmd) => retention::run(e, out, cmd).await,
        RegistryCommand::Storage(cmd) => storage::run(e, out, cmd).await,
    }
}

async fn admin(e: &Endpoints, out: Out, cmd: AdminCommand) -> anyhow::Result<()> {
    let (ch, b) = authed(e).await?;
    match cmd {
        AdminCommand::Repos { cmd } => {
            let mut c = pb::repositories_client::RepositoriesClient::with_interceptor(ch, b);
            match cmd {
                ReposCommand::List { prefix, n, last } => {
                    let repos: Vec<RepoView> = c
                        .list(pb::ListRepositoriesRequest { prefix, last, n })
                        .await
                        .map_err(refused)?
                        .into_inner()
                        .repositories
                        .into_iter()
                        .map(RepoView::from)
                        .collect();
                    out.show(&repos, || REPOS.print(repos.iter().map(RepoView::row)))
                }
                ReposCommand::Show { repo } => {
                    let r = c
                        .get(pb::GetRepositoryRequest { name: repo })
                        .await
                        .map_err(refused)?
                        .into_inner();
                    let v = RepoView::from(r);
                    out.show(&v, || REPOS.print([v.row()]))
                }
                ReposCommand::Set {
                    repo,
                    public,
                    private,
                    quota,
                    immutable,
                    mutable,
                } => {
                    let public_pull = (public || private).then_some(public);
                    let immutable_tags = (mutable || !immutable.is_empty())
                        .then_some(pb::ImmutableTags { globs: immutable });
                    let r = c
                        .update(pb::UpdateRepositoryRequest {
                            name: repo,
                            public_pull,
                            quota_bytes: quota,
                            immutable_tags,
                        })
                        .await
                        .map_err(refused)?
                        .into_inner();
                    let v = RepoView::from(r);
                    out.show(&v, || REPOS.print([v.row()]))
                }
                ReposCommand::Delete { repo } => {
                    c.delete(pb::DeleteRepositoryRequest { name: repo.clone() })
                        .await
                        .map_err(refused)?;
                    out.done(
                        &serde_json::json!({"deleted": repo}),
                        &format!("repository {repo} deleted"),
                    )
                }
            }
        }
        AdminCommand::Tags {
            cmd: TagsCommand::List { repo, n, last },
        } => {
            let mut c = pb::repositories_client::RepositoriesClient::with_interceptor(ch, b);
            let tags: Vec<TagView> = c
                .list_tags(pb::ListTagsRequest {
                    repository: repo,
                    last,
                    n,
                })
                .await
                .map_err(refused)?
                .into_inner()
                .tags
                .into_iter()
                .map(|t| TagView {
                    tag: t.tag,
                    digest: t.digest,
                    media_type: t.media_type,
                    size: t.size,
                    updated_at_unix: t.updated_at,
                    updated_by: t.updated_by,
                })
                .collect();
            out.show(&tags, || {
                TAGS.print(tags.iter().map(|t| {
                    row![
                        t.tag,
                        t.digest,
                        human(t.size),
                        utc(t.updated_at_unix),
                        t.updated_by
                    ]
                }));
            })
        }
        AdminCommand::Manifests { cmd } => {
            let mut c = pb::repositories_client::RepositoriesClient::with_interceptor(ch, b);
            manifests::run(&mut c, out, cmd).await
        }
        AdminCommand::Policy { cmd } => {
            let mut c = pb::policy_client::PolicyClient::with_interceptor(ch, b);
            policy::run(&mut c, out, *cmd).await
        }
        AdminCommand::Quota { cmd } => {
            let mut c = pb::quotas_client::QuotasClient::with_interceptor(ch, b);
            let q = match cmd {
                QuotaCommand::Show { repo } => {
                    c.get(pb::GetQuotaRequest { repository: repo }).await
                }
                QuotaCommand::Set { repo, size } => {
                    c.set(pb::SetQuotaRequest {
                        repository: repo,
                        quota_bytes: size,
                    })
                    .await
                }
            };
            show_quota(out, q.map_err(refused)?.into_inner())
        }
        AdminCommand::Namespaces { cmd } => {
            let mut c = pb::namespaces_client::NamespacesClient::with_interceptor(ch, b);
            let n = match cmd {
                NamespacesCommand::Show { namespace } => {
                    c.get(pb::GetNamespaceRequest { name: namespace }).await
                }
                NamespacesCommand::Set {
                    namespace,
                    public,
                    private,
                    quota,
                } => {
                    c.update(pb::UpdateNamespaceRequest {
                        name: namespace,
                        public_pull: (public || private).then_some(public),
                        quota_bytes: quota,
                    })
                    .await
                }
            };
            show_namespace(out, n.map_err(refused)?.into_inner())
        }
        AdminCommand::Audit {
            limit,
            action,
            target,
        } => {
            let mut c = pb::audit_client::AuditClient::with_interceptor(ch, b);
            let events = c
                .query(pb::AuditQueryRequest {
                    before: 0,
                    limit,
                    action,
                    target,
                })
                .await
                .map_err(refused)?
                .into_inner()
                .events;
            let view: Vec<serde_json::Value> = events
                .iter()
                .map(|e| {
                    serde_json::json!({"seq": e.seq, "at_unix": e.at, "actor": e.actor,
                        "action": e.action, "target": e.target, "source_ip": e.source_ip,
                        "result": e.result, "detail": e.detail})
                })
                .collect();
            out.show(&view, || {
                AUDIT.print(events.iter().map(|e| {
                    row![
                        e.seq,
                        utc(e.at),
                        e.action,
                        e.result,
                        e.target,
                        e.source_ip,
                        e.detail
                    ]
                }));
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_both_unit_systems() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("500 MiB"), Ok(500 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("-1").is_err());
        assert_eq!(human(1536), "1.5 KiB");
    }
}
