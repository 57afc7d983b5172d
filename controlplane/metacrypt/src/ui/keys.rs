//! Transit keys, metadata only: the list of a mount's keys and one key's
//! type, versions (creation times), minimum versions and flags. Key
//! material never reaches a page: the page renders named metadata fields
//! of the key description the REST `GET keys/<name>` answers, nothing else.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::html;
use mc_service::ui::UiUser;
use serde_json::Value;

use super::{Ui, outcome};
use crate::core::transit::Dialect;

/// The scalar fields a key page shows, in order.
const FIELDS: &[&str] = &[
    "type",
    "latest_version",
    "min_decryption_version",
    "min_encryption_version",
    "min_available_version",
    "deletion_allowed",
    "exportable",
    "derived",
    "auto_rotate_period",
    "supports_encryption",
    "supports_signing",
    "supports_derivation",
];

/// `GET /ui/crypt/keys[?mount=…]`.
pub(super) async fn index(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Query(q): Query<super::Open>,
) -> Response {
    super::mount_index(&ui, &user, q, "transit", "Transit keys")
}

/// `GET /ui/crypt/keys/<mount>` (policy: `list` on `keys`).
pub(super) async fn list(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(mount): Path<String>,
) -> Response {
    let r = ui.m.transit_list_keys(&user.caller(), &mount);
    outcome(&user, &format!("Transit keys: {mount}"), r, |names| {
        html! {
            ul #keys {
                @for n in &names { li { a href=(format!("/ui/crypt/keys/{mount}/{n}")) { (n) } } }
            }
            @if names.is_empty() { p #empty { "No keys yet." } }
        }
    })
}

fn scalar(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `GET /ui/crypt/keys/<mount>/<name>` (policy: `read` on `keys/<name>`).
pub(super) async fn show(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path((mount, name)): Path<(String, String)>,
) -> Response {
    let r =
        ui.m.transit_read_key(&user.caller(), &mount, &name, Dialect::Native);
    outcome(&user, &format!("Transit key: {name}"), r, |key| {
        let versions = key.get("keys").and_then(Value::as_object);
        html! {
            table #key {
                @for f in FIELDS { tr { th { (f) } td id=(f) { (scalar(key.get(*f))) } } }
            }
            h2 { "Versions" }
            table #key-versions {
                tr { th { "Version" } th { "Created" } }
                @for (n, v) in versions.into_iter().flatten() {
                    tr {
                        td { (n) }
                        td { (match v {
                            Value::Number(t) => t.as_i64().map_or_else(|| t.to_string(), super::time),
                            other => scalar(other.get("creation_time")),
                        }) }
                    }
                }
            }
            p { a href=(format!("/ui/crypt/keys/{mount}")) { "All keys of " (mount) } }
        }
    })
}
