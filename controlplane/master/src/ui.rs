//! MCP's web UI under `/ui/mcp/`: the nodes (health, heartbeat age, the
//! last probe, resources) and the services (components with node, image,
//! state, health and flapping, drift, the last deploy's steps),
//! server-rendered (maud) on `mc_service::ui`: the MCIAS session cookie,
//! the same guard (sign-in redirect, same-origin and CSRF checks) with the
//! master's own CSRF key, the strict CSP. htmx refreshes each table every
//! 5 s from its fragment route.
//!
//! Invariants: every page is for human admins only, like the operator
//! RPCs whose data it shows (the guard's admin check, then the account
//! type); pages call the same functions as the RPCs (`registry::list`,
//! `deploy::list`); read-only: nothing here changes state. Every value is
//! escaped by maud.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use maud::{Markup, html};
use mc_proto::deploy::v1 as pb;
use mc_service::ui::{Chrome, Csrf, UiUser, asset};

use crate::Master;
use crate::registry::now_ms;

/// Every UI route (all `Public` in the method map: [`guard`] checks the session).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/ui/mcp/"),
    ("GET", "/ui/mcp/assets/htmx.min.js"),
    ("GET", "/ui/mcp/assets/style.css"),
    ("GET", "/ui/mcp/nodes"),
    ("GET", "/ui/mcp/services"),
];

const CHROME: Chrome = Chrome {
    product: "MCP",
    assets: "/ui/mcp/assets",
    nav: &[("Nodes and services", "/ui/mcp/", true)],
};

#[derive(Clone)]
struct Ui {
    m: Arc<Master>,
    csrf: Arc<Csrf>,
}

async fn guard(State(ui): State<Ui>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/ui/mcp/assets/") {
        return next.run(req).await;
    }
    let verifier = ui.m.ui_verifier.clone();
    mc_service::ui::guard(req, next, verifier, &ui.csrf, true, &CHROME).await
}

/// Refuses a signed-in account that is not human (after [`guard`]).
async fn humans_only(req: Request, next: Next) -> Response {
    let is_human = req
        .extensions()
        .get::<UiUser>()
        .is_some_and(|u| u.principal.account_type == "human");
    if is_human {
        next.run(req).await
    } else {
        CHROME.error_page(StatusCode::FORBIDDEN, "this page is for human accounts")
    }
}

/// The UI routes, behind [`guard`]; the CSRF key is made here, once.
pub(crate) fn router(m: Arc<Master>) -> Router {
    let ui = Ui {
        m,
        csrf: Arc::new(Csrf::new_or_refusing("mcp")),
    };
    Router::new()
        .route("/ui/mcp/", get(index))
        .route("/ui/mcp/nodes", get(nodes_fragment))
        .route("/ui/mcp/services", get(services_fragment))
        .layer(axum::middleware::from_fn(humans_only))
        .route(
            "/ui/mcp/assets/htmx.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", mc_service::ui::HTMX) }),
        )
        .route(
            "/ui/mcp/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", mc_service::ui::STYLE) }),
        )
        .layer(axum::middleware::from_fn_with_state(ui.clone(), guard))
        .with_state(ui)
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn when(unix: i64) -> String {
    if unix == 0 {
        "-".to_owned()
    } else {
        mc_kit::clock::rfc3339(unix)
    }
}

fn lower(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_lowercase()
}

fn nodes_table(m: &Master) -> Markup {
    let nodes = match crate::registry::list(m) {
        Ok(l) => l.nodes,
        Err(e) => return html! { p.error #error { (e.to_string()) } },
    };
    let now = now_ms() / 1000;
    html! {
        div #nodes hx-get="/ui/mcp/nodes" hx-trigger="every 5s" hx-swap="outerHTML" {
            @if nodes.is_empty() {
                p #no-nodes { "No node has registered yet (mcp.nodes lists who may)." }
            } @else {
                table {
                    tr { th { "Node" } th { "Role" } th { "Health" } th { "Heartbeat" } th { "Probe" }
                         th { "CPU" } th { "Memory" } th { "Disk free" } th { "Containers" } th { "Address" } }
                    @for n in &nodes {
                        @let l = n.load.unwrap_or_default();
                        @let health = lower(pb::NodeHealth::try_from(n.health).map_or("unknown", |h| h.as_str_name()), "NODE_HEALTH_");
                        tr.node data-node=(n.name) {
                            td { (n.name) }
                            td { (lower(pb::NodeRole::try_from(n.role).map_or("unknown", |r| r.as_str_name()), "NODE_ROLE_")) }
                            td.health.ok[health == "healthy"].error[health != "healthy"] { (health) }
                            td { (now.saturating_sub(n.last_heartbeat_unix)) " s ago" }
                            td { @if let Some(p) = &n.probe { (p.message) " (" (when(p.at_unix)) ")" } @else { "-" } }
                            td { (format!("{:.2}", l.cpu)) }
                            td { (bytes(l.memory_used_bytes)) " / " (bytes(l.memory_total_bytes)) }
                            td { (bytes(l.disk_free_bytes)) }
                            td { (l.containers) }
                            td { code { (n.address) } }
                        }
                    }
                }
            }
        }
    }
}

fn state_name(s: i32) -> String {
    lower(
        pb::ContainerState::try_from(s).map_or("unknown", |s| s.as_str_name()),
        "CONTAINER_STATE_",
    )
}

async fn services_table(m: &Master) -> Markup {
    let services = match crate::deploy::list(m, "").await {
        Ok(l) => l.services,
        Err(e) => return html! { p.error #error { (e.to_string()) } },
    };
    html! {
        div #services hx-get="/ui/mcp/services" hx-trigger="every 5s" hx-swap="outerHTML" {
            @if services.is_empty() {
                p #no-services { "No service is deployed. Deploy one with mcctl deploy FILE." }
            }
            @for s in &services {
                @let last = crate::store::last_record(&m.store, &s.service, "deploy").ok().flatten();
                section.service data-service=(s.service) {
                    h2 { (s.service) " on " (s.node) }
                    p { "Deployed " (when(s.deployed_at_unix)) }
                    table.components {
                        tr { th { "Component" } th { "Image" } th { "State" } th { "Healthy" } th { "Restarts" } th { "Ports" } }
                        @for c in &s.components {
                            tr {
                                td { (c.name) }
                                td { code { (c.image) } }
                                td.state { (state_name(c.state)) @if c.flapping { " (flapping)" } }
                                td { @if c.healthy { "yes" } @else { "no" } }
                                td { (c.restarts) }
                                td { @for (k, v) in &c.ports { (k) ":" (v) " " } }
                            }
                        }
                    }
                    @if !s.drift.is_empty() {
                        ul.drift { @for d in &s.drift { li.error { (d) } } }
                    }
                    @if let Some(r) = last {
                        p.last { "Last deploy " (when(r.at)) " by " (r.by) ": "
                            @if r.success { span.ok { "succeeded" } } @else { span.error { "failed" } } }
                        table.steps {
                            tr { th { "Step" } th { "Result" } th { "Message" } }
                            @for st in &r.steps {
                                tr { td { (st.step) } td { @if st.success { "ok" } @else { "FAILED" } } td { (st.message) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /ui/mcp/`: the nodes and the services.
async fn index(State(ui): State<Ui>, Extension(user): Extension<UiUser>) -> Response {
    let services = services_table(&ui.m).await;
    CHROME.page(
        &user,
        "Nodes and services",
        StatusCode::OK,
        html! {
            h2 { "Nodes" }
            (nodes_table(&ui.m))
            h2 { "Services" }
            (services)
        },
    )
}

fn fragment(markup: Markup) -> Response {
    mc_service::ui::with_headers(StatusCode::OK, markup).into_response()
}

/// `GET /ui/mcp/nodes`: the nodes table (htmx refresh).
async fn nodes_fragment(State(ui): State<Ui>) -> Response {
    fragment(nodes_table(&ui.m))
}

/// `GET /ui/mcp/services`: the services (htmx refresh).
async fn services_fragment(State(ui): State<Ui>) -> Response {
    fragment(services_table(&ui.m).await)
}
