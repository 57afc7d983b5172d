//! Policy rules (admin): the list, create, edit, delete, and the explain
//! tester (htmx: the verdict replaces `#explain-result`). Each calls the
//! `sys/policy` core operation the REST handler calls.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use mc_service::ui::{UiUser, with_headers};
use serde::Deserialize;
use serde_json::Value;

use super::{Ui, UiForm, csrf_field, failure, list as split, page};
use crate::core::{ExplainInput, PolicyCapability, PolicyEffect, PolicyRule, Subject};
use crate::error::CryptError;

const CAPABILITIES: &[&str] = &["read", "list", "create", "update", "patch", "delete"];

fn effect_name(e: PolicyEffect) -> &'static str {
    match e {
        PolicyEffect::Allow => "allow",
        PolicyEffect::Deny => "deny",
    }
}

fn rule_form(user: &UiUser, action: &str, r: Option<&PolicyRule>) -> Markup {
    let joined =
        |f: fn(&PolicyRule) -> &Vec<String>| r.map(|r| f(r).join(", ")).unwrap_or_default();
    let has = |c: &str| r.is_some_and(|r| r.capabilities.iter().any(|x| x.as_str() == c));
    let deny = r.is_some_and(|r| r.effect == PolicyEffect::Deny);
    html! {
        form.box #rule-form method="post" action=(action) {
            (csrf_field(user))
            label { "Priority (lower first)" input name="priority" inputmode="numeric" value=(r.map_or(100, |r| r.priority)); }
            label { "Effect" select name="effect" {
                option value="allow" selected[!deny] { "allow" }
                option value="deny" selected[deny] { "deny" }
            } }
            label { "Enabled" input type="checkbox" name="enabled" value="true" checked[r.is_none_or(|r| r.enabled)]; }
            label { "Description" input name="description" value=(r.map(|r| r.description.as_str()).unwrap_or_default()); }
            label { "Paths (comma-separated patterns, e.g. secret/data/app/*)" input name="paths" required value=(joined(|r| &r.paths)); }
            fieldset { legend { "Capabilities" }
                @for c in CAPABILITIES {
                    label.inline { input type="checkbox" name="capabilities" value=(c) checked[has(c)]; (c) }
                }
            }
            label { "Accounts (usernames or ids)" input name="accounts" value=(joined(|r| &r.accounts)); }
            label { "Roles" input name="roles" value=(joined(|r| &r.roles)); }
            label { "Tags" input name="tags" value=(joined(|r| &r.tags)); }
            label { "Account types" input name="account_types" value=(joined(|r| &r.account_types)); }
            button type="submit" #save-rule { "Save" }
        }
    }
}

/// A rule from the form's fields (repeated `capabilities` boxes).
fn parse_rule(fields: Vec<(String, String)>) -> Result<PolicyRule, CryptError> {
    let mut rule = PolicyRule {
        id: String::new(),
        priority: 100,
        effect: PolicyEffect::Allow,
        enabled: false,
        description: String::new(),
        accounts: vec![],
        roles: vec![],
        tags: vec![],
        account_types: vec![],
        paths: vec![],
        capabilities: vec![],
    };
    for (k, v) in fields {
        match k.as_str() {
            "priority" => {
                rule.priority = v
                    .trim()
                    .parse()
                    .map_err(|_| CryptError::invalid("priority", "a number"))?;
            }
            "effect" => {
                rule.effect = serde_json::from_value(Value::String(v))
                    .map_err(|_| CryptError::invalid("effect", "allow or deny"))?;
            }
            "enabled" => rule.enabled = v == "true",
            "description" => rule.description = v,
            "paths" => rule.paths = split(&v),
            "accounts" => rule.accounts = split(&v),
            "roles" => rule.roles = split(&v),
            "tags" => rule.tags = split(&v),
            "account_types" => rule.account_types = split(&v),
            "capabilities" => {
                let c: PolicyCapability = serde_json::from_value(Value::String(v.clone()))
                    .map_err(|_| CryptError::invalid("capabilities", format!("unknown {v}")))?;
                rule.capabilities.push(c);
            }
            _ => {}
        }
    }
    Ok(rule)
}

fn rules_page(ui: &Ui, user: &UiUser, status: StatusCode, note: Markup) -> Response {
    let rules = match ui.m.list_rules() {
        Ok(r) => r,
        Err(e) => return failure(user, "Policy", &e),
    };
    page(
        user,
        "Policy",
        status,
        html! {
            (note)
            table #rules {
                tr { th { "Id" } th { "Priority" } th { "Effect" } th { "Enabled" } th { "Paths" } th { "Capabilities" } th { "Who" } th { "Description" } th {} }
                @for r in &rules {
                    tr.rule {
                        td { a href=(format!("/ui/crypt/admin/policy/{}", r.id)) { (r.id) } }
                        td { (r.priority) } td { (effect_name(r.effect)) } td { (r.enabled) }
                        td.paths { (r.paths.join(", ")) }
                        td { (r.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")) }
                        td {
                            @for a in &r.accounts { "account " (a) " " }
                            @for a in &r.roles { "role " (a) " " }
                            @for a in &r.tags { "tag " (a) " " }
                            @for a in &r.account_types { "type " (a) " " }
                        }
                        td { (r.description) }
                        td {
                            form method="post" action=(format!("/ui/crypt/admin/policy/{}/delete", r.id)) {
                                (csrf_field(user))
                                button type="submit" { "Delete" }
                            }
                        }
                    }
                }
            }
            h2 { "New rule" }
            (rule_form(user, "/ui/crypt/admin/policy", None))
            h2 { "Explain" }
            form.box #explain hx-post="/ui/crypt/admin/explain" hx-target="#explain-result" {
                (csrf_field(user))
                label { "Path (mount/…)" input name="path" required; }
                label { "Capability" select name="capability" { @for c in CAPABILITIES { option value=(c) { (c) } } } }
                label { "Username (empty: you)" input name="username"; }
                label { "Roles" input name="roles"; }
                label { "Tags" input name="tags"; }
                button type="submit" { "Explain" }
            }
            div #explain-result {}
        },
    )
}

/// `GET /ui/crypt/admin/policy`.
pub(super) async fn list(State(ui): State<Ui>, Extension(user): Extension<UiUser>) -> Response {
    rules_page(&ui, &user, StatusCode::OK, html! {})
}

fn noted<T>(ui: &Ui, user: &UiUser, r: Result<T, CryptError>, ok: &str) -> Response {
    match r {
        Ok(_) => rules_page(ui, user, StatusCode::OK, html! { p.ok #note { (ok) } }),
        Err(e) => failure(user, "Policy", &e),
    }
}

/// `POST /ui/crypt/admin/policy`.
pub(super) async fn create(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    UiForm(f): UiForm<Vec<(String, String)>>,
) -> Response {
    let r = parse_rule(f).and_then(|rule| ui.m.create_rule(&user.caller(), rule));
    noted(&ui, &user, r, "Rule created.")
}

/// `GET /ui/crypt/admin/policy/<id>`: the edit form.
pub(super) async fn edit(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(id): Path<String>,
) -> Response {
    match ui.m.get_rule(&id) {
        Ok(rule) => page(
            &user,
            &format!("Rule {id}"),
            StatusCode::OK,
            rule_form(&user, &format!("/ui/crypt/admin/policy/{id}"), Some(&rule)),
        ),
        Err(e) => failure(&user, "Policy", &e),
    }
}

/// `POST /ui/crypt/admin/policy/<id>`: replaces the rule.
pub(super) async fn update(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(id): Path<String>,
    UiForm(f): UiForm<Vec<(String, String)>>,
) -> Response {
    let r = parse_rule(f).and_then(|rule| ui.m.update_rule(&user.caller(), &id, rule));
    noted(&ui, &user, r, "Rule saved.")
}

/// `POST /ui/crypt/admin/policy/<id>/delete`.
pub(super) async fn delete(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(id): Path<String>,
) -> Response {
    let r = ui.m.delete_rule(&user.caller(), &id);
    noted(&ui, &user, r, "Rule deleted.")
}

#[derive(Deserialize)]
pub(super) struct ExplainForm {
    path: String,
    capability: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    roles: String,
    #[serde(default)]
    tags: String,
}

/// `POST /ui/crypt/admin/explain` (htmx): the verdict as a fragment.
pub(super) async fn explain(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    UiForm(f): UiForm<ExplainForm>,
) -> Response {
    let subject =
        (!f.username.is_empty() || !f.roles.is_empty() || !f.tags.is_empty()).then(|| Subject {
            username: f.username.clone(),
            roles: split(&f.roles),
            tags: split(&f.tags),
            ..Subject::default()
        });
    let input = ExplainInput {
        path: f.path,
        capability: f.capability,
        subject,
    };
    let fragment = match ui.m.explain(&user.caller(), input) {
        Ok(x) => html! {
            p #verdict class=(if x.verdict.allowed { "ok" } else { "error" }) {
                (x.capability.as_str()) " on " code { (x.path) } ": " b { (x.verdict.decision) }
                @if let Some(rule) = &x.verdict.rule { " by rule " (rule) }
            }
            @if !x.verdict.matched.is_empty() { p { "Matching rules: " (x.verdict.matched.join(", ")) } }
        },
        Err(e) => html! { p.error #error { (e.to_string()) } },
    };
    with_headers(StatusCode::OK, fragment)
}
