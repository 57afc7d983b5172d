//! `mcctl iam policy …`: login policy rules and the policy tester.

use clap::{Args, Subcommand, ValueEnum};
use mc_proto::iam::v1 as pb;
use pb::policy_client::PolicyClient;
use serde::Serialize;

use super::client::{Authed, refused};
use super::{role_args, role_names};
use crate::enums::{from_flag, name_or};
use crate::output::{Col, Out, Table, key_lists, row, utc};

type Client = PolicyClient<Authed>;

/// `--effect`: spelled as `pb::Effect` without its prefix.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum EffectArg {
    Allow,
    Deny,
}

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    List,
    /// Add a rule. Empty match fields are wildcards.
    Add(AddArgs),
    Remove {
        id: String,
    },
    /// Which rule decides a login for ACCOUNT to SERVICE with TAGS, and why.
    Explain {
        account: String,
        #[arg(long, default_value = "")]
        service: String,
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long, default_value = "auth:login")]
        action: String,
    },
}

#[derive(Args)]
pub(crate) struct AddArgs {
    #[arg(long, value_enum)]
    effect: EffectArg,
    /// Lower runs first.
    #[arg(long)]
    priority: i32,
    #[arg(long, default_value = "")]
    description: String,
    #[arg(long = "role")]
    roles: Vec<String>,
    #[arg(long = "service")]
    services: Vec<String>,
    #[arg(long = "tag")]
    tags: Vec<String>,
    #[arg(long = "action")]
    actions: Vec<String>,
    #[arg(long = "account")]
    accounts: Vec<String>,
    #[arg(long = "system-accounts")]
    system_only: bool,
}

impl AddArgs {
    fn into_rule(self) -> anyhow::Result<pb::PolicyRule> {
        Ok(pb::PolicyRule {
            priority: self.priority,
            effect: from_flag::<pb::Effect>(&self.effect)?,
            description: self.description,
            roles: role_args(&self.roles)?,
            account_types: if self.system_only {
                vec![pb::AccountType::System.into()]
            } else {
                vec![]
            },
            account_ids: self.accounts,
            service_names: self.services,
            required_tags: self.tags,
            actions: self.actions,
            enabled: true,
            ..Default::default()
        })
    }
}

#[derive(Serialize)]
struct RuleView {
    id: String,
    priority: i32,
    effect: String,
    description: String,
    roles: Vec<String>,
    account_types: Vec<String>,
    account_ids: Vec<String>,
    service_names: Vec<String>,
    required_tags: Vec<String>,
    actions: Vec<String>,
    not_before_unix: i64,
    expires_at_unix: i64,
    enabled: bool,
}

impl From<pb::PolicyRule> for RuleView {
    fn from(r: pb::PolicyRule) -> Self {
        Self {
            effect: name_or::<pb::Effect>(r.effect, "deny"),
            roles: role_names(&r.roles),
            account_types: r
                .account_types
                .iter()
                .map(|t| name_or::<pb::AccountType>(*t, "?"))
                .collect(),
            id: r.id,
            priority: r.priority,
            description: r.description,
            account_ids: r.account_ids,
            service_names: r.service_names,
            required_tags: r.required_tags,
            actions: r.actions,
            not_before_unix: r.not_before_unix,
            expires_at_unix: r.expires_at_unix,
            enabled: r.enabled,
        }
    }
}

#[derive(Serialize)]
struct DecisionView {
    decision: String,
    rule_id: String,
    trace: Vec<TraceView>,
}

#[derive(Serialize)]
struct TraceView {
    rule_id: String,
    matched: bool,
    mismatch: String,
}

const TABLE: Table = Table(&[
    Col::left("ID", 36),
    Col::right("PRIORITY", 8),
    Col::left("EFFECT", 6),
    Col::left("ENABLED", 7),
    Col::left("MATCHES", 40),
    Col::left("DESCRIPTION", 0),
]);

impl RuleView {
    /// Everything the rule matches on, `key=a,b` per non-empty field (a
    /// login must meet all of them), or `anything` for a catch-all rule.
    fn matches(&self) -> String {
        let mut parts: Vec<String> = key_lists(&[
            ("role", &self.roles),
            ("type", &self.account_types),
            ("account", &self.account_ids),
            ("service", &self.service_names),
            ("tag", &self.required_tags),
            ("action", &self.actions),
        ])
        .into_iter()
        .collect();
        if self.not_before_unix > 0 {
            parts.push(format!("from={}", utc(self.not_before_unix)));
        }
        if self.expires_at_unix > 0 {
            parts.push(format!("until={}", utc(self.expires_at_unix)));
        }
        if parts.is_empty() {
            "anything".to_owned()
        } else {
            parts.join(" ")
        }
    }
}

pub(super) async fn run(c: &mut Client, out: Out, cmd: PolicyCommand) -> anyhow::Result<()> {
    match cmd {
        PolicyCommand::List => list(c, out).await,
        PolicyCommand::Add(args) => add(c, out, args.into_rule()?).await,
        PolicyCommand::Remove { id } => {
            c.delete_rule(pb::DeleteRuleRequest { id: id.clone() })
                .await
                .map_err(refused)?;
            out.done(
                &serde_json::json!({ "removed": id }),
                &format!("removed rule {id}"),
            )
        }
        PolicyCommand::Explain {
            account,
            service,
            tags,
            action,
        } => {
            let request = pb::ExplainRequest {
                username: account,
                service_name: service,
                tags,
                action,
                ..Default::default()
            };
            explain(c, out, request).await
        }
    }
}

async fn list(c: &mut Client, out: Out) -> anyhow::Result<()> {
    let rules: Vec<RuleView> = c
        .list_rules(pb::ListRulesRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .rules
        .into_iter()
        .map(RuleView::from)
        .collect();
    out.show(&rules, || {
        TABLE.print(rules.iter().map(|r| {
            row![
                r.id,
                r.priority,
                r.effect,
                r.enabled,
                r.matches(),
                r.description
            ]
        }));
    })
}

async fn add(c: &mut Client, out: Out, rule: pb::PolicyRule) -> anyhow::Result<()> {
    let r = RuleView::from(
        c.create_rule(pb::CreateRuleRequest { rule: Some(rule) })
            .await
            .map_err(refused)?
            .into_inner(),
    );
    let line = format!("added rule {}", r.id);
    out.done(&r, &line)
}

async fn explain(c: &mut Client, out: Out, request: pb::ExplainRequest) -> anyhow::Result<()> {
    let d = c.explain(request).await.map_err(refused)?.into_inner();
    let d = DecisionView {
        decision: name_or::<pb::Effect>(d.decision, "deny"),
        rule_id: d.rule_id,
        trace: d
            .trace
            .into_iter()
            .map(|t| TraceView {
                rule_id: t.rule_id,
                matched: t.matched,
                mismatch: t.mismatch,
            })
            .collect(),
    };
    out.show(&d, || {
        let by = if d.rule_id.is_empty() {
            "the default deny".to_owned()
        } else {
            format!("rule {}", d.rule_id)
        };
        println!("{} by {by}", d.decision.to_ascii_uppercase());
        for t in &d.trace {
            let why = if t.matched {
                String::new()
            } else {
                format!(" ({} did not match)", t.mismatch)
            };
            let verdict = if t.matched { "matched " } else { "skipped " };
            println!("  {verdict} {}{why}", t.rule_id);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enums::names;

    #[test]
    fn a_rule_shows_everything_it_matches() {
        let r = RuleView::from(pb::PolicyRule {
            roles: vec![pb::Role::Admin.into()],
            service_names: vec!["mcctl".into(), "web".into()],
            required_tags: vec!["env:prod".into()],
            actions: vec!["auth:login".into()],
            account_types: vec![pb::AccountType::System.into()],
            expires_at_unix: 951_782_400,
            ..Default::default()
        });
        assert_eq!(
            r.matches(),
            "role=admin type=system service=mcctl,web tag=env:prod action=auth:login until=2000-02-29T00:00:00Z"
        );
        assert_eq!(
            RuleView::from(pb::PolicyRule::default()).matches(),
            "anything"
        );
    }

    #[test]
    fn the_effect_flag_spells_every_proto_effect() {
        let flags: Vec<String> = EffectArg::value_variants()
            .iter()
            .map(crate::enums::flag_name)
            .collect();
        assert_eq!(flags, names::<pb::Effect>());
    }
}
