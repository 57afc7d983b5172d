//! The barrier's slots page (admin, `/ui/crypt/admin/slots`): the slots
//! (ids and kinds, no secret) and the forms that change them, each calling
//! the core operation its REST twin calls: a new passphrase, a new Shamir
//! split (the new shares shown once), removing a slot, and the root key
//! rekey. Every form takes the current material: the passphrase, or
//! shares one per line (the rekey needs every slot's).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use mc_service::ui::UiUser;
use serde::Deserialize;

use super::{Ui, UiForm, csrf_field, failure, outcome, page};
use crate::core::{ChangePassphraseInput, Material, ReshareInput};

/// The current-material fields every form carries.
fn material_fields() -> Markup {
    html! {
        label { "Current passphrase" input name="passphrase" type="password" autocomplete="off"; }
        label { "and/or current Shamir shares, one per line" textarea name="shares" rows="3" autocomplete="off" {} }
    }
}

fn slots_page(ui: &Ui, user: &UiUser, status: StatusCode, note: Markup) -> Response {
    let slots = match ui.m.list_slots() {
        Ok(s) => s,
        Err(e) => return failure(user, "Slots", &e),
    };
    page(
        user,
        "Slots",
        status,
        html! {
            (note)
            table #slots {
                tr { th { "Slot" } th { "Kind" } }
                @for s in &slots { tr { td { (s.id) } td { (s.kind) } } }
            }
            h2 { "Change the passphrase" }
            form.box #change-passphrase method="post" action="/ui/crypt/admin/slots/passphrase" {
                (csrf_field(user)) (material_fields())
                label { "New passphrase (at least 12 characters)" input name="new_passphrase" type="password" autocomplete="new-password" required; }
                button type="submit" { "Change passphrase" }
            }
            h2 { "New Shamir split" }
            form.box #reshare method="post" action="/ui/crypt/admin/slots/reshare" {
                (csrf_field(user)) (material_fields())
                label { "Shares" input name="new_shares" inputmode="numeric" required; }
                label { "Threshold" input name="new_threshold" inputmode="numeric" required; }
                button type="submit" { "Re-split" }
            }
            h2 { "Remove a slot" }
            form.box #remove-slot method="post" action="/ui/crypt/admin/slots/remove" {
                (csrf_field(user)) (material_fields())
                label { "Slot" select name="id" { @for s in &slots { option value=(s.id) { (s.id) } } } }
                button type="submit" { "Remove slot" }
            }
            h2 { "Rekey the root key" }
            form.box #rekey method="post" action="/ui/crypt/admin/slots/rekey" {
                p { "A new root key and master key; the same passphrase, shares and key file keep opening. Give every slot's material." }
                (csrf_field(user)) (material_fields())
                button type="submit" { "Rekey" }
            }
        },
    )
}

/// `GET /ui/crypt/admin/slots`.
pub(super) async fn list(State(ui): State<Ui>, Extension(user): Extension<UiUser>) -> Response {
    slots_page(&ui, &user, StatusCode::OK, html! {})
}

/// The fields of every slot form (unused ones stay empty).
#[derive(Deserialize, Default)]
pub(super) struct SlotForm {
    #[serde(default)]
    passphrase: String,
    #[serde(default)]
    shares: String,
    #[serde(default)]
    new_passphrase: String,
    #[serde(default)]
    new_shares: String,
    #[serde(default)]
    new_threshold: String,
    #[serde(default)]
    id: String,
}

impl SlotForm {
    fn shares(&self) -> Vec<String> {
        self.shares
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn material(&self) -> Material {
        Material {
            passphrase: self.passphrase.clone(),
            shares: self.shares(),
        }
    }
}

fn done(ui: &Ui, user: &UiUser, what: &str) -> Response {
    slots_page(ui, user, StatusCode::OK, html! { p.ok #note { (what) } })
}

pub(super) async fn change_passphrase(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    UiForm(f): UiForm<SlotForm>,
) -> Response {
    let input = ChangePassphraseInput {
        passphrase: f.passphrase.clone(),
        shares: f.shares(),
        new_passphrase: f.new_passphrase,
    };
    match ui.m.change_passphrase(&user.caller(), input).await {
        Ok(s) => done(&ui, &user, &format!("Passphrase changed (slot {}).", s.id)),
        Err(e) => failure(&user, "Slots", &e),
    }
}

pub(super) async fn reshare(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    UiForm(f): UiForm<SlotForm>,
) -> Response {
    let num = |v: &str| v.trim().parse::<u32>().unwrap_or(0);
    let input = ReshareInput {
        passphrase: f.passphrase.clone(),
        shares: f.shares(),
        new_shares: num(&f.new_shares),
        new_threshold: num(&f.new_threshold),
    };
    let r = ui.m.reshare(&user.caller(), input).await;
    outcome(&user, "New Shamir split", r, |out| {
        html! {
            p.ok #note { "New split (slot " (out.slot.id) "); the old shares no longer open." }
            p { "The shares, shown this once: give one to each operator." }
            ol #shares { @for s in &out.shares { li { code { (s) } } } }
            p { a href="/ui/crypt/admin/slots" { "Back to the slots" } }
        }
    })
}

pub(super) async fn remove(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    UiForm(f): UiForm<SlotForm>,
) -> Response {
    match ui.m.remove_slot(&user.caller(), &f.id, f.material()).await {
        Ok(()) => done(&ui, &user, &format!("Slot {} removed.", f.id)),
        Err(e) => failure(&user, "Slots", &e),
    }
}

pub(super) async fn rekey(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    UiForm(f): UiForm<SlotForm>,
) -> Response {
    match ui.m.rekey(&user.caller(), f.material()).await {
        Ok(r) => done(
            &ui,
            &user,
            &format!(
                "Rekeyed: root key version {}, master key version {}.",
                r.root_version, r.mek_version
            ),
        ),
        Err(e) => failure(&user, "Slots", &e),
    }
}
