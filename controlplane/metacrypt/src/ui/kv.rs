//! The KV browser: list a directory, a path's metadata and versions, a
//! value (only in answer to a CSRF-checked POST), write a new version
//! (with `cas`, the version the form was made from), delete, undelete and
//! destroy versions. Every action is the kv core operation the REST
//! handler calls, as the session's principal, so policy decides.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use mc_service::ui::{UiUser, pct};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Ui, UiForm, csrf_field, failure, outcome, page, time};
use crate::core::{KvDelete, KvMetadata, KvOptions, KvWrite};
use crate::error::CryptError;

/// `GET /ui/crypt/kv[?mount=…]`: a mount to open (admins see the kv mounts).
pub(super) async fn index(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Query(q): Query<super::Open>,
) -> Response {
    super::mount_index(&ui, &user, q, "kv", "KV secrets")
}

#[derive(Deserialize, Default)]
pub(super) struct Where {
    #[serde(default)]
    path: String,
}

fn browse_url(mount: &str, path: &str) -> String {
    format!("/ui/crypt/kv/{mount}?path={}", pct(path))
}

fn breadcrumbs(mount: &str, path: &str) -> Markup {
    let mut acc = String::new();
    html! {
        p #crumbs {
            a href=(browse_url(mount, "")) { (mount) } " / "
            @for seg in path.split_inclusive('/') {
                ({ acc.push_str(seg); "" })
                @if seg.ends_with('/') {
                    a href=(browse_url(mount, &acc)) { (seg) } " "
                } @else {
                    b { (seg) }
                }
            }
        }
    }
}

fn write_form(user: &UiUser, mount: &str, path: &str, cas: u64, dir: bool) -> Markup {
    html! {
        h2 { @if dir { "New secret" } @else { "Write a new version" } }
        form.box #kv-write method="post" action=(format!("/ui/crypt/kv/{mount}/write")) {
            (csrf_field(user))
            input type="hidden" name="cas" value=(cas);
            label { "Path" input name="path" value=(path) required readonly[!dir]; }
            label { "Data (a JSON object)" textarea name="data" rows="6" required { "{\n  \n}" } }
            button type="submit" { "Save" }
        }
    }
}

fn versions(user: &UiUser, mount: &str, path: &str, meta: &KvMetadata) -> Markup {
    let action = |what: &str| format!("/ui/crypt/kv/{mount}/{what}");
    html! {
        table #kv-meta {
            tr { th { "Current version" } td #current { (meta.current_version) } }
            tr { th { "Oldest version" } td { (meta.oldest_version) } }
            tr { th { "Max versions" } td { (meta.max_versions) } }
            tr { th { "CAS required" } td { (meta.cas_required) } }
            tr { th { "Updated" } td { (time(meta.updated_time)) } }
            @for (k, v) in &meta.custom_metadata { tr { th { (k) } td { (v) } } }
        }
        table #kv-versions {
            tr { th { "Version" } th { "Created" } th { "Deleted" } th { "Destroyed" } th {} }
            @for (n, v) in meta.versions.iter().rev() {
                tr {
                    td { (n) } td { (time(v.created_time)) } td { (time(v.deletion_time)) } td { (v.destroyed) }
                    td {
                        @if !v.destroyed {
                            @if v.deletion_time == 0 {
                                form.inline method="post" action=(action("read")) {
                                    (csrf_field(user))
                                    input type="hidden" name="path" value=(path);
                                    input type="hidden" name="version" value=(n);
                                    button type="submit" { "Show value" }
                                }
                                form.inline method="post" action=(action("delete")) {
                                    (csrf_field(user))
                                    input type="hidden" name="path" value=(path);
                                    input type="hidden" name="versions" value=(n);
                                    button type="submit" { "Delete" }
                                }
                            } @else {
                                form.inline method="post" action=(action("undelete")) {
                                    (csrf_field(user))
                                    input type="hidden" name="path" value=(path);
                                    input type="hidden" name="versions" value=(n);
                                    button type="submit" { "Undelete" }
                                }
                            }
                            form.inline method="post" action=(action("destroy")) {
                                (csrf_field(user))
                                input type="hidden" name="path" value=(path);
                                input type="hidden" name="versions" value=(n);
                                button type="submit" { "Destroy" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The page of `path` on `mount`: a directory listing, or a secret's
/// metadata and versions, with `note` on top.
fn show(ui: &Ui, user: &UiUser, mount: &str, path: &str, note: Markup) -> Response {
    let c = user.caller();
    let title = format!("KV: {mount}");
    if path.is_empty() || path.ends_with('/') {
        let r = ui.m.kv_list(&c, mount, path);
        let r = match r {
            // An empty directory is a place to write the first secret.
            Err(CryptError::NotFound(_)) => Ok(Vec::new()),
            r => r.map(|l| l.keys),
        };
        return outcome(user, &title, r, |keys| {
            html! {
                (note)
                (breadcrumbs(mount, path))
                ul #kv-list {
                    @for k in &keys {
                        li { a href=(browse_url(mount, &format!("{path}{k}"))) { (k) } }
                    }
                }
                @if keys.is_empty() { p #empty { "Nothing here yet." } }
                (write_form(user, mount, path, 0, true))
            }
        });
    }
    match ui.m.kv_read_metadata(&c, mount, path) {
        Ok(meta) => page(
            user,
            &title,
            StatusCode::OK,
            html! {
                (note)
                (breadcrumbs(mount, path))
                (versions(user, mount, path, &meta))
                (write_form(user, mount, path, meta.current_version, false))
            },
        ),
        Err(CryptError::NotFound(_)) => page(
            user,
            &title,
            StatusCode::NOT_FOUND,
            html! {
                (note)
                (breadcrumbs(mount, path))
                p #empty { "No secret at this path yet." }
                (write_form(user, mount, path, 0, false))
            },
        ),
        Err(e) => failure(user, &title, &e),
    }
}

/// `GET /ui/crypt/kv/<mount>?path=…`.
pub(super) async fn browse(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(mount): Path<String>,
    Query(w): Query<Where>,
) -> Response {
    show(&ui, &user, &mount, &w.path, html! {})
}

#[derive(Deserialize)]
pub(super) struct ReadForm {
    path: String,
    #[serde(default)]
    version: u64,
}

/// `POST …/read`: one version's value (policy: `read` on `data/<path>`).
pub(super) async fn read(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(mount): Path<String>,
    UiForm(f): UiForm<ReadForm>,
) -> Response {
    let r = ui.m.kv_read(&user.caller(), &mount, &f.path, f.version);
    outcome(&user, &format!("KV: {mount}"), r, |read| {
        html! {
            (breadcrumbs(&mount, &f.path))
            p { "Version " b #version { (read.metadata.version) } ", created " (time(read.metadata.created_time)) }
            @match &read.data {
                Some(data) => table #kv-value {
                    tr { th { "Key" } th { "Value" } }
                    @for (k, v) in data {
                        tr { td { (k) } td { code { (display(v)) } } }
                    }
                },
                None => p #empty { "This version is deleted or destroyed." },
            }
            p { a href=(browse_url(&mount, &f.path)) { "Back to the versions" } }
        }
    })
}

/// A JSON value as shown: strings as they are, anything else as JSON.
fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Deserialize)]
pub(super) struct WriteForm {
    path: String,
    data: String,
    #[serde(default)]
    cas: Option<u64>,
}

/// `POST …/write`: a new version with `cas` (the version the form showed).
pub(super) async fn write(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(mount): Path<String>,
    UiForm(f): UiForm<WriteForm>,
) -> Response {
    let data = match serde_json::from_str::<Map<String, Value>>(&f.data) {
        Ok(d) => d,
        Err(e) => {
            let e = CryptError::invalid("data", format!("not a JSON object: {e}"));
            return failure(&user, &format!("KV: {mount}"), &e);
        }
    };
    let input = KvWrite {
        data,
        options: KvOptions { cas: f.cas },
    };
    match ui.m.kv_write(&user.caller(), &mount, &f.path, &input) {
        Ok(v) => {
            let note = html! { p.ok #note { "Saved version " (v.version) "." } };
            show(&ui, &user, &mount, &f.path, note)
        }
        Err(e) => failure(&user, &format!("KV: {mount}"), &e),
    }
}

#[derive(Deserialize)]
pub(super) struct VersionsForm {
    path: String,
    versions: String,
}

fn versions_of(s: &str) -> Result<Vec<u64>, CryptError> {
    super::list(s)
        .iter()
        .map(|v| {
            v.parse()
                .map_err(|_| CryptError::invalid("versions", "version numbers"))
        })
        .collect()
}

async fn change(
    ui: Ui,
    user: UiUser,
    mount: String,
    f: VersionsForm,
    done: &str,
    op: impl FnOnce(&Ui, &UiUser, &KvDelete) -> Result<(), CryptError>,
) -> Response {
    let r = versions_of(&f.versions).and_then(|versions| op(&ui, &user, &KvDelete { versions }));
    match r {
        Ok(()) => show(&ui, &user, &mount, &f.path, html! { p.ok #note { (done) } }),
        Err(e) => failure(&user, &format!("KV: {mount}"), &e),
    }
}

pub(super) async fn delete(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(mount): Path<String>,
    UiForm(f): UiForm<VersionsForm>,
) -> Response {
    let (m, p) = (mount.clone(), f.path.clone());
    change(ui, user, mount, f, "Deleted.", |ui, u, d| {
        ui.m.kv_delete_versions(&u.caller(), &m, &p, d)
    })
    .await
}

pub(super) async fn undelete(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(mount): Path<String>,
    UiForm(f): UiForm<VersionsForm>,
) -> Response {
    let (m, p) = (mount.clone(), f.path.clone());
    change(ui, user, mount, f, "Undeleted.", |ui, u, d| {
        ui.m.kv_undelete(&u.caller(), &m, &p, d)
    })
    .await
}

pub(super) async fn destroy(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(mount): Path<String>,
    UiForm(f): UiForm<VersionsForm>,
) -> Response {
    let (m, p) = (mount.clone(), f.path.clone());
    change(ui, user, mount, f, "Destroyed.", |ui, u, d| {
        ui.m.kv_destroy(&u.caller(), &m, &p, d)
    })
    .await
}
