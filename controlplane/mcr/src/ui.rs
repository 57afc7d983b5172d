//! MCR's web UI under `/ui/registry/`: a repository browser and the GC
//! runs, server-rendered (maud) on `mc_service::ui`: the MCIAS session
//! cookie, the same guard (sign-in redirect, admin pages, same-origin and
//! CSRF checks on every POST) with MCR's own CSRF key, the strict CSP.
//!
//! Invariants: pages call the same core operations as the admin API with
//! the session's principal, so policy applies to the UI exactly as to the
//! API: the repository list and a repository's tags show only what the
//! caller may pull (an unknown and a refused repository look the same,
//! 404). Pages under `/ui/registry/admin/` need the admin role. Every value
//! is escaped by maud.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Form, Router};
use maud::{Markup, html};
use mc_service::ui::{Chrome, Csrf, UiUser, asset, csrf_field, pct};
use serde::Deserialize;

use crate::Mcr;
use crate::core::blocking;
use crate::error::RegistryError;

/// Every UI route (all `Public` in the method map: [`guard`] checks the session).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/ui/registry/"),
    ("GET", "/ui/registry/assets/htmx.min.js"),
    ("GET", "/ui/registry/assets/style.css"),
    ("GET", "/ui/registry/repository"),
    ("GET", "/ui/registry/admin/gc"),
    ("POST", "/ui/registry/admin/gc"),
];

const CHROME: Chrome = Chrome {
    product: "MCR",
    assets: "/ui/registry/assets",
    nav: &[
        ("Repositories", "/ui/registry/", false),
        ("Garbage collection", "/ui/registry/admin/gc", true),
    ],
};

/// Repositories and tags listed on one page at most.
const PAGE: usize = 500;

#[derive(Clone)]
struct Ui {
    m: Arc<Mcr>,
    csrf: Arc<Csrf>,
}

async fn guard(State(ui): State<Ui>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/ui/registry/assets/") {
        return next.run(req).await;
    }
    let admin = req.uri().path().starts_with("/ui/registry/admin/");
    let verifier = ui.m.ui_verifier.clone();
    mc_service::ui::guard(req, next, verifier, &ui.csrf, admin, &CHROME).await
}

/// The UI routes, behind [`guard`]; the CSRF key is made here, once.
pub(crate) fn router(m: Arc<Mcr>) -> Router {
    let ui = Ui {
        m,
        csrf: Arc::new(Csrf::new_or_refusing("mcr")),
    };
    Router::new()
        .route("/ui/registry/", get(index))
        .route(
            "/ui/registry/assets/htmx.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", mc_service::ui::HTMX) }),
        )
        .route(
            "/ui/registry/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", mc_service::ui::STYLE) }),
        )
        .route("/ui/registry/repository", get(repository))
        .route("/ui/registry/admin/gc", get(gc_runs).post(gc_start))
        .layer(axum::middleware::from_fn_with_state(ui.clone(), guard))
        .with_state(ui)
}

fn failure(user: &UiUser, title: &str, e: &RegistryError) -> Response {
    CHROME.page(
        user,
        title,
        e.status,
        html! { p.error #error { (e.message) } },
    )
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn when(unix: i64) -> String {
    if unix == 0 {
        "-".to_owned()
    } else {
        mc_kit::clock::rfc3339(unix)
    }
}

/// `GET /ui/registry/`: the repositories the caller may pull.
async fn index(State(ui): State<Ui>, Extension(user): Extension<UiUser>) -> Response {
    let (m, p) = (ui.m.clone(), user.principal.clone());
    let r = blocking(move || m.core.list_repositories(&m.policy, &p, "", None, PAGE)).await;
    let repos = match r {
        Ok(r) => r,
        Err(e) => return failure(&user, "Repositories", &e),
    };
    CHROME.page(
        &user,
        "Repositories",
        StatusCode::OK,
        html! {
            @if repos.is_empty() {
                p #empty { "No repository you may pull yet. Push one with podman, skopeo or buildah." }
            } @else {
                table #repositories {
                    tr { th { "Repository" } th { "Tags" } th { "Manifests" } th { "Size" } th { "Public" } th { "Updated" } }
                    @for r in &repos {
                        tr {
                            td { a href=(format!("/ui/registry/repository?name={}", pct(&r.name))) { (r.name) } }
                            td { (r.tag_count) }
                            td { (r.manifest_count) }
                            td { (bytes(r.size_bytes)) }
                            td { @if r.public_pull { "yes" } @else { "no" } }
                            td { (when(r.updated_at)) }
                        }
                    }
                }
            }
        },
    )
}

#[derive(Deserialize)]
struct RepoQuery {
    name: String,
}

/// `GET /ui/registry/repository?name=…`: its settings and tags.
async fn repository(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Query(q): Query<RepoQuery>,
) -> Response {
    let (m, p, name) = (ui.m.clone(), user.principal.clone(), q.name.clone());
    let r = blocking(move || {
        let info = m.core.repository(&m.policy, &p, &name)?;
        let tags = m.core.list_tags(&m.policy, &p, &name, None, PAGE)?;
        Ok((info, tags))
    })
    .await;
    let (info, tags) = match r {
        Ok(v) => v,
        Err(e) => return failure(&user, &q.name, &e),
    };
    CHROME.page(
        &user,
        &info.name,
        StatusCode::OK,
        html! {
            table #settings {
                tr { th { "Size" } td #size { (bytes(info.size_bytes)) } }
                tr { th { "Reclaimable" } td #reclaimable {
                    (bytes(info.reclaimable_bytes)) " in " (info.reclaimable_blobs) " blobs no manifest references (GC frees them)"
                } }
                tr { th { "Quota" } td { @if info.quota_bytes == 0 { "none" } @else { (bytes(info.quota_bytes)) } } }
                tr { th { "Public pull" } td { @if info.public_pull { "yes" } @else { "no" } } }
                tr { th { "Immutable tags" } td #immutable {
                    @if info.immutable_tags.is_empty() { "none" } @else { (info.immutable_tags.join(", ")) }
                } }
            }
            h2 { "Tags" }
            @if tags.is_empty() {
                p #empty { "No tags." }
            } @else {
                table #tags {
                    tr { th { "Tag" } th { "Digest" } th { "Type" } th { "Size" } th { "Updated" } th { "By" } }
                    @for t in &tags {
                        tr {
                            td.tag { (t.tag) }
                            td { code { (t.digest) } }
                            td { (t.media_type) }
                            td { (bytes(t.size)) }
                            td { (when(t.updated_at)) }
                            td { (t.updated_by) }
                        }
                    }
                }
            }
        },
    )
}

fn gc_page(ui: &Ui, user: &UiUser, note: Option<Markup>) -> Response {
    let runs = match ui.m.gc_list(20) {
        Ok(r) => r,
        Err(e) => {
            return CHROME.page(
                user,
                "Garbage collection",
                StatusCode::INTERNAL_SERVER_ERROR,
                html! { p.error #error { (e.to_string()) } },
            );
        }
    };
    // What a run would free; the page still shows the runs without it.
    let reclaimable = ui.m.core.status().ok();
    CHROME.page(
        user,
        "Garbage collection",
        StatusCode::OK,
        html! {
            @if let Some(n) = note { (n) }
            @if let Some(s) = reclaimable {
                p #reclaimable {
                    "Reclaimable: " (bytes(s.reclaimable_bytes)) " in " (s.reclaimable_blobs)
                    " blobs no manifest references (freed by GC once gc_grace old)."
                }
            }
            form #gc-start method="post" action="/ui/registry/admin/gc" {
                (csrf_field(user))
                label { input type="checkbox" name="dry_run" value="on"; " Dry run (list, delete nothing)" }
                button type="submit" { "Start a run" }
            }
            table #runs {
                tr { th { "Run" } th { "State" } th { "Phase" } th { "Started" } th { "Links removed" } th { "Blobs removed" } th { "Reclaimed" } }
                @for r in &runs {
                    tr {
                        td { (r.id) @if r.dry_run { " (dry run)" } }
                        td.state { (r.state) }
                        td { (r.phase) }
                        td { (when(r.started_at)) }
                        td { (r.counters.links_removed) }
                        td { (r.counters.blobs_removed) }
                        td { (bytes(r.counters.bytes_reclaimed)) }
                    }
                }
            }
        },
    )
}

/// `GET /ui/registry/admin/gc`: recent runs and a start button.
async fn gc_runs(State(ui): State<Ui>, Extension(user): Extension<UiUser>) -> Response {
    gc_page(&ui, &user, None)
}

#[derive(Deserialize)]
struct GcForm {
    #[serde(default)]
    dry_run: Option<String>,
}

/// `POST /ui/registry/admin/gc`: starts a run (one at a time).
async fn gc_start(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Form(f): Form<GcForm>,
) -> Response {
    let dry = f.dry_run.is_some();
    let note = match ui.m.gc_start(&user.principal.username, dry) {
        Ok(row) => html! { p #note { "Started " (row.id) @if dry { " (dry run)" } "." } },
        Err(e) => html! { p.error #error { (e.to_string()) } },
    };
    gc_page(&ui, &user, Some(note))
}
