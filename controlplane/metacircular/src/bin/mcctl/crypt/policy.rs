//! `mcctl crypt policy list|get|create|update|delete|explain` (admin):
//! Metacrypt's ACL rules over engine paths. Tables show the whole rule.

use clap::{Args, Subcommand};
use mc_proto::crypt::v1 as pb;
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
    /// Add a rule (empty subject fields are wildcards; `*` ends a path
    /// prefix, `+` stands for one segment).
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
    /// What policy decides for a subject (default: you) using CAPABILITY on PATH.
    Explain {
        path: String,
        capability: String,
        #[arg(long)]
        username: Option<String>,
        #[arg(long = "account-id")]
        account_id: Option<String>,
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long = "account-type")]
        account_type: Option<String>,
    },
}

#[derive(Args)]
pub(crate) struct RuleArgs {
    /// With create: the rule's id (default: generated).
    #[arg(long)]
    id: Option<String>,
    #[arg(long)]
    priority: Option<u32>,
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
    /// Tags, all of them.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// human or system, any of them.
    #[arg(long = "account-type")]
    account_types: Vec<String>,
    /// `<mount>/<sub-path>` patterns.
    #[arg(long = "path")]
    paths: Vec<String>,
    /// read list create update patch delete.
    #[arg(long = "capability")]
    capabilities: Vec<String>,
    #[arg(long, conflicts_with = "enable")]
    disable: bool,
    #[arg(long)]
    enable: bool,
}

impl RuleArgs {
    /// `base` with the given fields replaced.
    fn apply(self, mut r: pb::PolicyRule) -> pb::PolicyRule {
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
        replace(&mut r.paths, self.paths);
        replace(&mut r.capabilities, self.capabilities);
        if self.disable {
            r.enabled = Some(false);
        }
        if self.enable {
            r.enabled = Some(true);
        }
        r
    }
}

#[derive(Serialize)]
struct RuleView {
    id: String,
    priority: u32,
    effect: String,
    enabled: bool,
    description: String,
    accounts: Vec<String>,
    roles: Vec<String>,
    tags: Vec<String>,
    account_types: Vec<String>,
    paths: Vec<String>,
    capabilities: Vec<String>,
}

impl From<pb::PolicyRule> for RuleView {
    fn from(r: pb::PolicyRule) -> Self {
        Self {
            id: r.id,
            priority: r.priority,
            effect: r.effect,
            enabled: r.enabled.unwrap_or(true),
            description: r.description,
            accounts: r.accounts,
            roles: r.roles,
            tags: r.tags,
            account_types: r.account_types,
            paths: r.paths,
            capabilities: r.capabilities,
        }
    }
}

const TABLE: Table = Table(&[
    Col::left("ID", 20),
    Col::right("PRIO", 5),
    Col::left("EFFECT", 6),
    Col::left("ON", 3),
    Col::left("SUBJECT", 24),
    Col::left("PATHS", 28),
    Col::left("CAPABILITIES", 24),
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
        let caps = if self.capabilities.is_empty() {
            "(all)".to_owned()
        } else {
            self.capabilities.join(",")
        };
        row![
            self.id,
            self.priority,
            self.effect,
            if self.enabled { "yes" } else { "no" },
            self.subject(),
            self.paths.join(" "),
            caps,
            self.description
        ]
    }
}

pub(crate) async fn run(
    c: &mut PolicyClient<Authed>,
    out: Out,
    cmd: PolicyCommand,
) -> anyhow::Result<()> {
    let show = |r: pb::PolicyRule| {
        let v = RuleView::from(r);
        out.show(&v, || TABLE.print([v.row()]))
    };
    match cmd {
        PolicyCommand::List => {
            let rules: Vec<RuleView> = c
                .list(pb::ListRulesRequest {})
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
            c.get(pb::GetRuleRequest { id })
                .await
                .map_err(refused)?
                .into_inner(),
        ),
        PolicyCommand::Create(args) => {
            let rule = args.apply(pb::PolicyRule {
                effect: "allow".to_owned(),
                enabled: Some(true),
                ..Default::default()
            });
            show(c.create(rule).await.map_err(refused)?.into_inner())
        }
        PolicyCommand::Update { rule: id, args } => {
            let current = c
                .get(pb::GetRuleRequest { id: id.clone() })
                .await
                .map_err(refused)?
                .into_inner();
            let mut rule = args.apply(current);
            rule.id = id;
            show(c.update(rule).await.map_err(refused)?.into_inner())
        }
        PolicyCommand::Delete { id } => {
            c.delete(pb::DeleteRuleRequest { id: id.clone() })
                .await
                .map_err(refused)?;
            out.done(
                &serde_json::json!({"deleted": id}),
                &format!("rule {id} deleted"),
            )
        }
        PolicyCommand::Explain {
            path,
            capability,
            username,
            account_id,
            roles,
            tags,
            account_type,
        } => {
            let given = username.is_some()
                || account_id.is_some()
                || account_type.is_some()
                || !roles.is_empty()
                || !tags.is_empty();
            let subject = given.then(|| pb::ExplainSubject {
                account_id: account_id.unwrap_or_default(),
                username: username.unwrap_or_default(),
                account_type: account_type.unwrap_or_default(),
                roles,
                tags,
            });
            let r = c
                .explain(pb::ExplainRequest {
                    path: path.clone(),
                    capability: capability.clone(),
                    subject,
                })
                .await
                .map_err(refused)?
                .into_inner();
            let view = serde_json::json!({
                "path": path, "capability": capability, "allowed": r.allowed,
                "decision": r.decision, "rule": r.rule, "matched": r.matched,
            });
            out.show(&view, || {
                let by = if r.rule.is_empty() {
                    String::new()
                } else {
                    format!(" (rule {})", r.rule)
                };
                println!("{capability} on {path}: {}{by}", r.decision);
                if !r.matched.is_empty() {
                    println!("matching rules: {}", r.matched.join(", "));
                }
            })
        }
    }
}
