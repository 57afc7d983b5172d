//! The barrier and mounts pages: status for every signed-in user; init
//! (passphrase, optional Shamir split, shares shown once), unseal
//! (passphrase or one share at a time, with progress), seal and the mounts
//! list/create/delete/rotate-dek (and the jobs) for admins. Each calls the `sys` core operation the
//! REST handler calls.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use mc_service::ui::UiUser;
use serde::Deserialize;

use super::{Ui, UiForm, csrf_field, failure, outcome, page, time};
use crate::core::{InitInput, MountInput, Status, UnsealInputBody};

fn state_view(s: &Status) -> Markup {
    html! {
        table #status {
            tr { th { "State" } td #state { (s.state) } }
            tr { th { "Slots" } td { (s.slots.join(", ")) } }
            @if s.shares > 0 {
                tr { th { "Shamir" } td { (s.threshold) " of " (s.shares) " shares" } }
            }
            @if s.sealed && s.shares > 0 {
                tr { th { "Unseal progress" } td #progress { (s.progress) " of " (s.threshold) } }
            }
        }
    }
}

fn forms(user: &UiUser, s: &Status) -> Markup {
    if !user.principal.is_admin() {
        return html! {};
    }
    html! {
        @if !s.initialized {
            h2 { "Initialise" }
            form.box #init method="post" action="/ui/crypt/admin/init" {
                (csrf_field(user))
                label { "Operator passphrase" input name="passphrase" type="password" autocomplete="new-password" required; }
                label { "Shamir shares (optional)" input name="shares" inputmode="numeric"; }
                label { "Threshold" input name="threshold" inputmode="numeric"; }
                button type="submit" { "Initialise" }
            }
        } @else if s.sealed {
            h2 { "Unseal" }
            form.box #unseal method="post" action="/ui/crypt/admin/unseal" {
                (csrf_field(user))
                label { "Passphrase" input name="passphrase" type="password" autocomplete="off"; }
                @if s.shares > 0 {
                    label { "or one Shamir share" input name="share" autocomplete="off"; }
                }
                button type="submit" { "Unseal" }
            }
            @if s.progress > 0 {
                form method="post" action="/ui/crypt/admin/unseal" {
                    (csrf_field(user))
                    input type="hidden" name="reset" value="true";
                    button type="submit" { "Discard the shares given so far" }
                }
            }
        } @else {
            h2 { "Seal" }
            form #seal method="post" action="/ui/crypt/admin/seal" {
                (csrf_field(user))
                p { "Sealing wipes every key from memory; nothing is readable until it is unsealed again." }
                button type="submit" { "Seal now" }
            }
        }
    }
}

/// `GET /ui/crypt/`: the barrier's state (and the form that moves it on).
pub(super) async fn status(State(ui): State<Ui>, Extension(user): Extension<UiUser>) -> Response {
    outcome(&user, "Metacrypt status", ui.m.status(), |s| {
        html! {
            @if s.sealed { p.error #sealed { "Metacrypt is sealed." } }
            (state_view(&s))
            (forms(&user, &s))
            @if !s.sealed && user.principal.is_admin() { (jobs_view(&ui)) }
        }
    })
}

/// Empty form fields are absent.
fn some(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.is_empty())
}

fn number(field: &str, s: Option<String>) -> Result<Option<u32>, crate::error::CryptError> {
    some(s)
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| crate::error::CryptError::invalid(field, "a number"))
        })
        .transpose()
}

#[derive(Deserialize)]
pub(super) struct InitForm {
    passphrase: Option<String>,
    shares: Option<String>,
    threshold: Option<String>,
}

pub(super) async fn init(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    UiForm(f): UiForm<InitForm>,
) -> Response {
    let input = match (number("shares", f.shares), number("threshold", f.threshold)) {
        (Ok(shares), Ok(threshold)) => InitInput {
            passphrase: some(f.passphrase),
            shares,
            threshold,
        },
        (Err(e), _) | (_, Err(e)) => return failure(&user, "Initialise", &e),
    };
    let r = ui.m.init(&user.caller(), input).await;
    outcome(&user, "Initialised", r, |out| {
        html! {
            p.ok #note { "Metacrypt is initialised." }
            @if !out.shares.is_empty() {
                p { "The Shamir shares, shown this once: give one to each operator." }
                ol #shares { @for s in &out.shares { li { code { (s) } } } }
            }
            (state_view(&out.status))
            p { a href="/ui/crypt/" { "Continue" } }
        }
    })
}

#[derive(Deserialize)]
pub(super) struct UnsealForm {
    passphrase: Option<String>,
    share: Option<String>,
    reset: Option<String>,
}

pub(super) async fn unseal(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    UiForm(f): UiForm<UnsealForm>,
) -> Response {
    let input = UnsealInputBody {
        passphrase: some(f.passphrase),
        share: some(f.share),
        reset: some(f.reset).is_some(),
    };
    let r = ui.m.unseal(&user.caller(), input).await;
    outcome(&user, "Metacrypt status", r, |s| {
        html! {
            @if s.sealed {
                p.ok #note { "Share accepted." }
            } @else {
                p.ok #note { "Unsealed." }
            }
            (state_view(&s))
            (forms(&user, &s))
        }
    })
}

pub(super) async fn seal(State(ui): State<Ui>, Extension(user): Extension<UiUser>) -> Response {
    let r = ui.m.seal(&user.caller()).await;
    outcome(&user, "Metacrypt status", r, |s| {
        html! {
            p.ok #note { "Sealed." }
            (state_view(&s))
            (forms(&user, &s))
        }
    })
}

/// Running rewrap jobs and the periodic tasks' last runs (admins, unsealed).
fn jobs_view(ui: &Ui) -> Markup {
    let Ok(v) = ui.m.jobs() else {
        return html! {};
    };
    html! {
        h2 { "Jobs" }
        @if v.jobs.is_empty() { p #no-jobs { "No rewrap job is running." } }
        @else {
            table #jobs {
                tr { th { "Job" } th { "Mount" } th { "Target DEK" } th { "Rows scanned" } th { "Resealed" } }
                @for j in &v.jobs {
                    tr { td { (j.kind) } td { (j.mount) } td { (j.target_version) }
                         td { (j.rows_scanned) " of " (j.rows_total) } td { (j.rows_resealed) } }
                }
            }
        }
        @if !v.tasks.is_empty() {
            table #tasks {
                tr { th { "Task" } th { "Runs" } th { "Last run" } th { "Outcome" } }
                @for t in &v.tasks {
                    tr { td { (t.name) } td { (t.runs) } td { (time(t.last_run)) } td { (t.outcome) } }
                }
            }
        }
    }
}

fn mounts_page(ui: &Ui, user: &UiUser, status: StatusCode, note: Markup) -> Response {
    let rings = ui.m.jobs().map(|v| v.rings).unwrap_or_default();
    let dek = |name: &str| {
        rings
            .iter()
            .find(|r| r.mount == name)
            .map_or_else(String::new, |r| {
                let v: Vec<String> = r.versions.iter().map(u32::to_string).collect();
                format!("v{} (held: {})", r.current, v.join(", "))
            })
    };
    match ui.m.list_mounts() {
        Ok(mounts) => page(
            user,
            "Mounts",
            status,
            html! {
                (note)
                table #mounts {
                    tr { th { "Name" } th { "Type" } th { "Description" } th { "Created" } th { "Data key" } th {} th {} }
                    @for m in &mounts {
                        tr {
                            td {
                                @match m.kind.as_str() {
                                    "kv" => a href=(format!("/ui/crypt/kv/{}", m.name)) { (m.name) },
                                    "transit" => a href=(format!("/ui/crypt/keys/{}", m.name)) { (m.name) },
                                    _ => (m.name),
                                }
                            }
                            td { (m.kind) } td { (m.description) } td { (time(m.created_at)) }
                            td { (dek(&m.name)) }
                            td {
                                form method="post" action=(format!("/ui/crypt/admin/mounts/{}/rotate-dek", m.name)) {
                                    (csrf_field(user))
                                    button type="submit" { "Rotate data key" }
                                }
                            }
                            td {
                                form method="post" action=(format!("/ui/crypt/admin/mounts/{}/delete", m.name)) {
                                    (csrf_field(user))
                                    button type="submit" { "Delete (and every secret in it)" }
                                }
                            }
                        }
                    }
                }
                h2 { "New mount" }
                form.box #new-mount method="post" action="/ui/crypt/admin/mounts" {
                    (csrf_field(user))
                    label { "Name" input name="name" required; }
                    label { "Type" select name="type" {
                        @for t in crate::core::MOUNT_TYPES { option value=(t) { (t) } }
                    } }
                    label { "Description" input name="description"; }
                    button type="submit" { "Mount" }
                }
                (jobs_view(ui))
            },
        ),
        Err(e) => failure(user, "Mounts", &e),
    }
}

pub(super) async fn mounts(State(ui): State<Ui>, Extension(user): Extension<UiUser>) -> Response {
    mounts_page(&ui, &user, StatusCode::OK, html! {})
}

#[derive(Deserialize)]
pub(super) struct MountForm {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    description: String,
}

fn note<T>(r: &Result<T, crate::error::CryptError>, ok: &str) -> (StatusCode, Markup) {
    match r {
        Ok(_) => (StatusCode::OK, html! { p.ok #note { (ok) } }),
        Err(e) => (
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            html! { p.error #error { (e.to_string()) } },
        ),
    }
}

pub(super) async fn create_mount(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    UiForm(f): UiForm<MountForm>,
) -> Response {
    let r = ui.m.create_mount(
        &user.caller(),
        MountInput {
            name: f.name,
            kind: f.kind,
            description: f.description,
            config: None,
        },
    );
    let (status, note) = note(&r, "Mounted.");
    mounts_page(&ui, &user, status, note)
}

pub(super) async fn rotate_dek(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(name): Path<String>,
) -> Response {
    let r = ui.m.rotate_dek(&user.caller(), &name);
    let ok = match &r {
        Ok(d) => format!(
            "{} now writes with data key version {}; rewrapping {} rows.",
            d.mount, d.dek_version, d.rows
        ),
        Err(_) => String::new(),
    };
    let (status, note) = note(&r, &ok);
    mounts_page(&ui, &user, status, note)
}

pub(super) async fn delete_mount(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(name): Path<String>,
) -> Response {
    let r = ui.m.delete_mount(&user.caller(), &name);
    let (status, note) = note(&r, "Deleted.");
    mounts_page(&ui, &user, status, note)
}
