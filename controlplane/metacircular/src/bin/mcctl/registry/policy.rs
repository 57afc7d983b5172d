//! `mcctl registry policy list|get|create|update|delete|explain` (admin):
//! MCR's rules over repositories (default deny, deny wins).

use clap::{Args, Subcommand};
use mc_proto::registry::v1 as pb;
use pb::policy_client::PolicyClient;
use serde::Serialize;

use crate::iam::client::{Authed, refused};
use crate::output::{Col, Out, Table, key_lists, row};

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Every rule, by priority.
    List,
    Get {
        id: String,
    },
    /// Add a rule (empty subject fields are wildcards; repository globs:
    /// `*` within a component, `**` any components).
    Create(RuleArgs),
    /// Change a rule: the flags given replace those fields.
    Update {
        #[arg(value_name = "ID")]
        rule: String,
        #[command(flatten)]
        args: RuleArgs,
    },
    Delete {
        id: String,
    },
    /// What the rules decide for a described account doing ACTION on REPO.
    Explain {
        #[arg(long)]
        repo: String,
        /// pull, push or delete.
        #[arg(long)]
        action: String,
        /// A tag being pushed or deleted.
        #[arg(long = "image-tag")]
        image_tag: Option<String>,
        #[arg(long, default_value = "")]
        account: String,
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long = "account-type", default_value = "")]
        account_type: String,
    },
}

#[derive(Args)]
pub(crate) struct RuleArgs {
    /// With create: the rule's id (default: generated).
    #[arg(long)]
    id: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    priority: Option<i64>,
    /// allow or deny.
    #[arg(long)]
    effect: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// Accounts (ids or usernames), any of them.
    #[arg(long = "account")]
    accounts: Vec<String>,
    /// Roles, any of them.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// MCIAS account tags, all of them.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// human or system, any of them.
    #[arg(long = "account-type")]
    account_types: Vec<String>,
    /// Repository globs (`apps/*`, `ci/**`).
    #[arg(long = "repo")]
    repositories: Vec<String>,
    /// pull, push, delete.
    #[arg(long = "action")]
    actions: Vec<String>,
    /// Tag globs the rule is limited to when pushing or deleting tags.
    #[arg(long = "image-tag")]
    tag_patterns: Vec<String>,
    #[arg(long, conflicts_with = "enable")]
    disable: bool,
    #[arg(long)]
    enable: bool,
}

impl RuleArgs {
    fn apply(self, mut r: pb::Rule) -> pb::Rule {
        let replace = |dst: &mut Vec<String>, src: Vec<String>| {
            if !src.is_empty() {
                *dst = src;
            }
        };
        if let Some(id) = self.id {
            r.id = id;
        }
        if let Some(p) = self.priority {
            r.priority = p;
        }
        if let Some(e) = self.effect {
            r.effect = e;
        }
        if let Some(d) = self.description {
            r.description = d;
        }
        replace(&mut r.accounts, self.accounts);
        replace(&mut r.roles, self.roles);
        replace(&mut r.tags, self.tags);
        replace(&mut r.account_types, self.account_types);
        replace(&mut r.repositories, self.repositories);
        replace(&mut r.actions, self.actions);
        replace(&mut r.tag_patterns, self.tag_patterns);
        if self.disable {
            r.enabled = false;
        }
        if self.enable {
            r.enabled = true;
        }
        r
    }
}

#[derive(Serialize)]
struct RuleView {
    id: String,
    priority: i64,
    effect: String,
    enabled: bool,
    description: String,
    accounts: Vec<String>,
    roles: Vec<String>,
    tags: Vec<String>,
    account_types: Vec<String>,
    repositories: Vec<String>,
    actions: Vec<String>,
    tag_patterns: Vec<String>,
}

impl From<pb::Rule> for RuleView {
    fn from(r: pb::Rule) -> Self {
        Self {
            id: r.id,
            priority: r.priority,
            effect: r.effect,
            enabled: r.enabled,
            description: r.description,
            accounts: r.accounts,
            roles: r.roles,
            tags: r.tags,
            account_types: r.account_types,
            repositories: r.repositories,
            actions: r.actions,
            tag_patterns: r.tag_patterns,
        }
    }
}

const TABLE: Table = Table(&[
    Col::left("ID", 16),
    Col::right("PRIO", 5),
    Col::left("EFFECT", 6),
    Col::left("ON", 3),
    Col::left("SUBJECT", 24),
    Col::left("REPOSITORIES", 24),
    Col::left("ACTIONS", 18),
    Col::left("TAGS", 10),
    Col::left("DESCRIPTION", 0),
]);

impl RuleView {
    fn subject(&self) -> String {
        key_lists(&[
            ("accounts", &self.accounts),
            ("roles", &self.roles),
            ("tags", &self.tags),
            ("types", &self.account_types),
        ])
        .unwrap_or_else(|| "*".to_owned())
    }

    fn row(&self) -> Vec<String> {
        let tags = if self.tag_patterns.is_empty() {
            "*".to_owned()
        } else {
            self.tag_patterns.join(",")
        };
        row![
            self.id,
            self.priority,
            self.effect,
            if self.enabled { "yes" } else { "no" },
            self.subject(),
            self.repositories.join(" "),
            self.actions.join(","),
            tags,
            self.description
        ]
    }
}

pub(crate) async fn run(
    c: &mut PolicyClient<Authed>,
    out: Out,
    cmd: PolicyCommand,
) -> anyhow::Result<()> {
    let show = |r: pb::Rule| {
        let v = RuleView::from(r);
        out.show(&v, || TABLE.print([v.row()]))
    };
    match cmd {
        PolicyCommand::List => {
            let rules: Vec<RuleView> = c
                .list_rules(pb::ListRulesRequest {})
                .await
                .map_err(refused)?
                .into_inner()
                .rules
                .into_iter()
                .map(RuleView::from)
                .collect();
            out.show(&rules, || TABLE.print(rules.iter().map(RuleView::row)))
        }
        PolicyCommand::Get { id } => show(
            c.get_rule(pb::GetRuleRequest { id })
                .await
                .map_err(refused)?
                .into_inner(),
        ),
        PolicyCommand::Create(args) => {
            let rule = args.apply(pb::Rule {
                effect: "allow".to_owned(),
                enabled: true,
                priority: 100,
                ..Default::default()
            });
            show(
                c.create_rule(pb::CreateRuleRequest { rule: Some(rule) })
                    .await
                    .map_err(refused)?
                    .into_inner(),
            )
        }
        PolicyCommand::Update { rule: id, args } => {
            let current = c
                .get_rule(pb::GetRuleRequest { id: id.clone() })
                .await
                .map_err(refused)?
                .into_inner();
            let rule = args.apply(current);
            show(
                c.update_rule(pb::UpdateRuleRequest {
                    id,
                    rule: Some(rule),
                })
                .await
                .map_err(refused)?
                .into_inner(),
            )
        }
        PolicyCommand::Delete { id } => {
            c.delete_rule(pb::DeleteRuleRequest { id: id.clone() })
                .await
                .map_err(refused)?;
            out.done(
                &serde_json::json!({"deleted": id}),
                &format!("rule {id} deleted"),
            )
        }
        PolicyCommand::Explain {
            repo,
            action,
            image_tag,
            account,
            roles,
            tags,
            account_type,
        } => {
            let r = c
                .explain(pb::ExplainRequest {
                    username: account.clone(),
                    account_id: account,
                    roles,
                    tags,
                    account_type,
                    repository: repo.clone(),
                    action: action.clone(),
                    tag: image_tag.unwrap_or_default(),
                })
                .await
                .map_err(refused)?
                .into_inner();
            let view = serde_json::json!({
                "repository": repo, "action": action, "allowed": r.allowed,
                "rule": r.rule, "reason": r.reason,
            });
            out.show(&view, || {
                let verdict = if r.allowed { "allowed" } else { "denied" };
                println!("{action} on {repo}: {verdict} ({})", r.reason);
            })
        }
    }
}
