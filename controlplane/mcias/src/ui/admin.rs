//! The admin pages (behind the guard's admin check): accounts, login
//! policy and its tester, SSO clients, and the audit log.

use super::*;

pub(super) fn accounts_table(iam: &Mcias, u: &UiUser) -> Result<Markup, IamError> {
    let accounts = iam.list_accounts()?;
    Ok(html! {
        table #accounts {
            tr { th { "Username" } th { "Type" } th { "Status" } th { "Roles" } th { "TOTP" } th { "Actions" } }
            @for a in &accounts {
                tr data-username=(a.username) {
                    td { (a.username) }
                    td { (a.account_type.as_str()) }
                    td.status { (a.status.as_str()) }
                    td { (a.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")) }
                    td { @if a.totp_enabled { "yes" } @else { "no" } }
                    td {
                        form method="post" action=(format!("/ui/admin/accounts/{}/status", a.id)) {
                            (csrf(u))
                            @if a.status.as_str() == "active" {
                                input type="hidden" name="status" value="disabled";
                                button type="submit" { "Disable" }
                            } @else {
                                input type="hidden" name="status" value="active";
                                button type="submit" { "Enable" }
                            }
                        }
                        form method="post" action=(format!("/ui/admin/accounts/{}/roles", a.id)) {
                            (csrf(u))
                            input name="roles" size="12" value=(a.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(","));
                            button type="submit" { "Set roles" }
                        }
                    }
                }
            }
        }
    })
}

pub(super) fn accounts_page(iam: &Mcias, u: &UiUser, status: StatusCode, note: Markup) -> Response {
    match accounts_table(iam, u) {
        Ok(table) => page(
            u,
            "Accounts",
            status,
            html! {
                (note)
                (table)
                h2 { "Create an account" }
                form.box method="post" action="/ui/admin/accounts" #create-account {
                    (csrf(u))
                    label { "Username" input name="username" required; }
                    label { "Type" select name="type" { option value="human" { "human" } option value="system" { "system" } } }
                    label { "Password (humans)" input name="password" type="password"; }
                    label { "Roles" select name="role" {
                        option value="user" { "user" } option value="admin" { "admin" }
                        option value="guest" { "guest" } option value="" { "(none)" } } }
                    label { "Tags (comma-separated)" input name="tags"; }
                    button type="submit" { "Create" }
                }
            },
        ),
        Err(e) => error_page(e.status(), &e.to_string()),
    }
}

pub(super) async fn accounts(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
) -> Response {
    accounts_page(&iam, &u, StatusCode::OK, html! {})
}

#[derive(Deserialize)]
pub(super) struct CreateAccountForm {
    username: String,
    #[serde(default, rename = "type")]
    account_type: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    tags: String,
}

pub(super) async fn create_account(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    UiForm(f): UiForm<CreateAccountForm>,
) -> Response {
    let input = NewAccount {
        username: f.username.clone(),
        account_type: f.account_type,
        password: f.password,
        roles: list(&f.role),
        tags: list(&f.tags),
    };
    let c = u.caller();
    let r = iam.create_account(&c, input).await;
    let (status, n) = note(&r, &format!("Created account {}", f.username));
    accounts_page(&iam, &u, status, n)
}

#[derive(Deserialize)]
pub(super) struct StatusForm {
    status: String,
}

pub(super) async fn account_status(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    Path(id): Path<String>,
    UiForm(f): UiForm<StatusForm>,
) -> Response {
    let r = iam.set_status(&u.caller(), &id, &f.status);
    let (status, n) = note(&r, "Status changed");
    accounts_page(&iam, &u, status, n)
}

#[derive(Deserialize)]
pub(super) struct RolesForm {
    #[serde(default)]
    roles: String,
}

pub(super) async fn account_roles(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    Path(id): Path<String>,
    UiForm(f): UiForm<RolesForm>,
) -> Response {
    let r = iam.set_roles(&u.caller(), &id, &list(&f.roles));
    let (status, n) = note(&r, "Roles changed");
    accounts_page(&iam, &u, status, n)
}

// ------------------------------------------------------------------ policy

pub(super) fn policy_page(iam: &Mcias, u: &UiUser, status: StatusCode, note: Markup) -> Response {
    let rules = match iam.rules() {
        Ok(r) => r,
        Err(e) => return error_page(e.status(), &e.to_string()),
    };
    let j = |v: &[String]| v.join(", ");
    page(
        u,
        "Policy rules",
        status,
        html! {
            (note)
            table #rules {
                tr { th { "Priority" } th { "Effect" } th { "Description" } th { "Roles" } th { "Services" } th { "Tags" } th { "Actions" } th {} }
                @for r in &rules {
                    tr {
                        td { (r.priority) }
                        td { (if r.effect == Effect::Allow { "allow" } else { "deny" }) }
                        td { (r.description) }
                        td { (r.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")) }
                        td { (j(&r.service_names)) }
                        td { (j(&r.required_tags)) }
                        td { (j(&r.actions)) }
                        td { form method="post" action=(format!("/ui/admin/policy/{}/delete", r.id)) {
                            (csrf(u)) button type="submit" { "Delete" } } }
                    }
                }
            }
            h2 { "Add a rule" }
            form.box method="post" action="/ui/admin/policy" #create-rule {
                (csrf(u))
                label { "Priority" input name="priority" type="number" value="100" required; }
                label { "Effect" select name="effect" { option value="deny" { "deny" } option value="allow" { "allow" } } }
                label { "Description" input name="description"; }
                label { "Roles (comma-separated)" input name="roles"; }
                label { "Service names" input name="service_names"; }
                label { "Required tags" input name="required_tags"; }
                label { "Actions" input name="actions" value="auth:login"; }
                button type="submit" { "Add rule" }
            }
        },
    )
}

pub(super) async fn policy(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
) -> Response {
    policy_page(&iam, &u, StatusCode::OK, html! {})
}

#[derive(Deserialize)]
pub(super) struct RuleForm {
    priority: i32,
    effect: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    roles: String,
    #[serde(default)]
    service_names: String,
    #[serde(default)]
    required_tags: String,
    #[serde(default)]
    actions: String,
}

pub(super) async fn create_rule(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    UiForm(f): UiForm<RuleForm>,
) -> Response {
    let rule = (|| -> Result<Rule, IamError> {
        Ok(Rule {
            id: String::new(),
            priority: f.priority,
            effect: match f.effect.as_str() {
                "allow" => Effect::Allow,
                "deny" => Effect::Deny,
                _ => return Err(IamError::invalid("effect", "allow or deny")),
            },
            description: f.description.clone(),
            roles: list(&f.roles)
                .iter()
                .map(|r| crate::model::Role::parse(r))
                .collect::<Result<_, _>>()?,
            account_types: vec![],
            account_ids: vec![],
            service_names: list(&f.service_names),
            required_tags: list(&f.required_tags),
            actions: list(&f.actions),
            not_before: 0,
            expires_at: 0,
            enabled: true,
        })
    })();
    let r = rule.and_then(|rule| iam.create_rule(&u.caller(), rule, false));
    let (status, n) = note(&r, "Rule added");
    policy_page(&iam, &u, status, n)
}

pub(super) async fn delete_rule(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    Path(id): Path<String>,
) -> Response {
    let r = iam.delete_rule(&u.caller(), &id);
    let (status, n) = note(&r, "Rule deleted");
    policy_page(&iam, &u, status, n)
}

// ------------------------------------------------------------ policy tester

pub(super) async fn tester(Extension(u): Extension<UiUser>) -> Response {
    page(
        &u,
        "Policy tester",
        StatusCode::OK,
        html! {
            form.box hx-post="/ui/admin/tester" hx-target="#result" method="post" action="/ui/admin/tester" #tester {
                (csrf(&u))
                label { "Account (username or id)" input name="account" required; }
                label { "Service name" input name="service_name"; }
                label { "Tags (comma-separated)" input name="tags"; }
                label { "Action" input name="action" value="auth:login"; }
                button type="submit" #explain { "Explain" }
            }
            div #result {}
        },
    )
}

#[derive(Deserialize)]
pub(super) struct TesterForm {
    account: String,
    #[serde(default)]
    service_name: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    action: String,
}

pub(super) async fn tester_run(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    headers: HeaderMap,
    UiForm(f): UiForm<TesterForm>,
) -> Response {
    let r = iam.explain(
        &f.account,
        &f.service_name,
        &list(&f.tags),
        &f.action,
        0,
        None,
    );
    let (status, fragment) = match r {
        Ok(d) => (
            StatusCode::OK,
            html! {
                div data-service=(f.service_name) {
                p #decision { (if d.effect == Effect::Allow { "ALLOW" } else { "DENY" }) }
                p { "Deciding rule: " code #rule { (if d.rule_id.is_empty() { "default deny" } else { d.rule_id.as_str() }) } }
                table {
                    tr { th { "Rule" } th { "Priority" } th { "Effect" } th { "Matched" } th { "First mismatch" } }
                    @for t in &d.trace {
                        tr { td { (t.rule_id) } td { (t.priority) }
                             td { (if t.effect == Effect::Allow { "allow" } else { "deny" }) }
                             td { (t.matched) } td { (t.mismatch) } }
                    }
                }
                }
            },
        ),
        Err(e) => (e.status(), html! { p.error #error { (e.to_string()) } }),
    };
    if headers.contains_key("hx-request") {
        // htmx swaps 2xx only: errors are shown with 200 in the fragment.
        return with_headers(StatusCode::OK, fragment);
    }
    page(&u, "Policy tester", status, fragment)
}

// -------------------------------------------------------------- SSO clients

pub(super) fn sso_page(iam: &Mcias, u: &UiUser, status: StatusCode, note: Markup) -> Response {
    let clients = match iam.sso_clients() {
        Ok(c) => c,
        Err(e) => return error_page(e.status(), &e.to_string()),
    };
    page(
        u,
        "SSO clients",
        status,
        html! {
            (note)
            table #clients {
                tr { th { "Client id" } th { "Name" } th { "Redirect URIs" } th { "Tags" } th { "id_token alg" } th { "Enabled" } th {} }
                @for c in &clients {
                    tr {
                        td { (c.client_id) } td { (c.name) } td { (c.redirect_uris.join(" ")) }
                        td { (c.tags.join(", ")) } td { (c.id_token_signed_response_alg) } td { (c.enabled) }
                        td { form method="post" action=(format!("/ui/admin/sso/{}/delete", c.client_id)) {
                            (csrf(u)) button type="submit" { "Delete" } } }
                    }
                }
            }
            h2 { "Register a client" }
            form.box method="post" action="/ui/admin/sso" {
                (csrf(u))
                label { "Client id (empty: generated)" input name="client_id"; }
                label { "Name" input name="name"; }
                label { "Redirect URIs (space-separated, exact)" input name="redirect_uris" required size="50"; }
                label { "Tags" input name="tags"; }
                label { "id_token algorithm" select name="alg" { option value="RS256" { "RS256" } option value="EdDSA" { "EdDSA" } } }
                button type="submit" { "Register" }
            }
        },
    )
}

pub(super) async fn sso(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
) -> Response {
    sso_page(&iam, &u, StatusCode::OK, html! {})
}

#[derive(Deserialize)]
pub(super) struct ClientForm {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    alg: String,
}

pub(super) async fn sso_create(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    UiForm(f): UiForm<ClientForm>,
) -> Response {
    let input = ClientInput {
        client_id: f.client_id,
        name: f.name,
        redirect_uris: list(&f.redirect_uris),
        tags: list(&f.tags),
        enabled: Some(true),
        id_token_signed_response_alg: f.alg,
    };
    let (status, n) = match iam.create_sso_client(&u.caller(), input) {
        Ok((c, secret)) => (
            StatusCode::OK,
            html! { p.ok #note { "Registered " (c.client_id) ". Its secret, shown once: " code #client-secret { (secret) } } },
        ),
        Err(e) => (e.status(), html! { p.error #error { (e.to_string()) } }),
    };
    sso_page(&iam, &u, status, n)
}

pub(super) async fn sso_delete(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    Path(id): Path<String>,
) -> Response {
    let r = iam.delete_sso_client(&u.caller(), &id);
    let (status, n) = note(&r, "Client deleted");
    sso_page(&iam, &u, status, n)
}

// ------------------------------------------------------------------- audit

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    #[serde(default)]
    page: usize,
}

pub(super) async fn audit(
    State(iam): State<Arc<Mcias>>,
    Extension(u): Extension<UiUser>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let p = q.page.min(1000 / AUDIT_PAGE);
    let r = iam.audit_log(1000, "", "");
    outcome(&u, "Audit log", r, |events| {
        let shown: Vec<_> = events
            .iter()
            .skip(p * AUDIT_PAGE)
            .take(AUDIT_PAGE)
            .collect();
        let more = events.len() > (p + 1) * AUDIT_PAGE;
        html! {
            table #audit {
                tr { th { "#" } th { "At (unix)" } th { "Actor" } th { "Action" } th { "Target" } th { "Source" } th { "Result" } th { "Detail" } }
                @for e in &shown {
                    tr { td { (e.seq) } td { (e.at) } td { (e.actor) } td { (e.action) } td { (e.target) }
                         td { (e.source_ip) } td { (e.result) } td { (e.detail) } }
                }
            }
            p {
                @if p > 0 { a href=(format!("/ui/admin/audit?page={}", p - 1)) { "← newer" } " " }
                @if more { a href=(format!("/ui/admin/audit?page={}", p + 1)) { "older →" } }
            }
        }
    })
}
