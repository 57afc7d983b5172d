//! The audit page (admin, `/ui/crypt/admin/audit`): the same query as REST
//! `GET sys/audit`, from a GET form (action prefix, actor, rows newer than
//! an age, limit), newest first, with a link to the next (older) page.
//! A bad filter is the core's 400, named; sealed is the 503 notice.

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use mc_service::ui::{UiUser, pct};

use super::{Ui, outcome, time};
use crate::core::AuditQuery;
use crate::error::CryptError;

/// The form's fields (all optional).
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct Filter {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    /// An age: `30m`, `12h`, `7d` (empty: any).
    #[serde(default)]
    since: String,
    #[serde(default)]
    limit: String,
    #[serde(default)]
    before: String,
}

fn query(f: &Filter) -> Result<AuditQuery, CryptError> {
    let num = |field: &str, v: &str| -> Result<u64, CryptError> {
        if v.trim().is_empty() {
            return Ok(0);
        }
        v.trim()
            .parse()
            .map_err(|_| CryptError::invalid(field.to_owned(), "a non-negative integer"))
    };
    let since = if f.since.trim().is_empty() {
        0
    } else {
        let age: mc_kit::config::Duration = f
            .since
            .parse()
            .map_err(|e: String| CryptError::invalid("since", e))?;
        let age = i64::try_from(age.get().as_secs()).unwrap_or(i64::MAX);
        mc_kit::clock::unix_now().saturating_sub(age).max(0)
    };
    Ok(AuditQuery {
        since,
        until: 0,
        actor: f.actor.trim().to_owned(),
        action: f.action.trim().to_owned(),
        before: num("before", &f.before)?,
        limit: u32::try_from(num("limit", &f.limit)?)
            .map_err(|_| CryptError::invalid("limit", "1 to 1000"))?,
    })
}

/// `GET /ui/crypt/admin/audit[?action=&actor=&since=&limit=&before=]`.
pub(super) async fn list(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Query(f): Query<Filter>,
) -> Response {
    let r = query(&f).and_then(|q| ui.m.audit_query(&q));
    outcome(&user, "Audit log", r, |page| {
        let next = format!(
            "/ui/crypt/admin/audit?action={}&actor={}&since={}&limit={}&before={}",
            pct(&f.action),
            pct(&f.actor),
            pct(&f.since),
            pct(&f.limit),
            page.next_before
        );
        html! {
            form.box #filter method="get" action="/ui/crypt/admin/audit" {
                label { "Action prefix" input name="action" value=(f.action) placeholder="kv."; }
                label { "Actor (account id)" input name="actor" value=(f.actor); }
                label { "Newer than" input name="since" value=(f.since) placeholder="24h"; }
                label { "Rows" input name="limit" value=(f.limit) placeholder="100"; }
                button type="submit" { "Filter" }
            }
            table #events {
                tr { th { "Seq" } th { "At" } th { "Actor" } th { "Action" } th { "Result" } th { "Target" } th { "Source" } th { "Detail" } }
                @for e in &page.events {
                    tr {
                        td { (e.seq) } td { (time(e.at)) } td { (e.actor) } td.action { (e.action) }
                        td { (e.result) } td { (e.target) } td { (e.source_ip) } td { (e.detail) }
                    }
                }
            }
            @if page.events.is_empty() { p #none { "No matching rows." } }
            @if page.next_before > 0 { p { a #older href=(next) { "Older rows" } } }
        }
    })
}
