//! The SSH CA, read-only: a mount's CA (key type, public key line, next
//! serial, KRL version), its profiles and issued serials, with links to
//! the public key and KRL routes `sshd` reads. The CA's private key never
//! reaches a page: the page renders `CaInfo`, which holds none.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::html;
use mc_service::ui::UiUser;

use super::{Ui, outcome};

/// `GET /ui/crypt/ssh[?mount=…]`.
pub(super) async fn index(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Query(q): Query<super::Open>,
) -> Response {
    super::mount_index(&ui, &user, q, "ssh", "SSH CA")
}

/// `GET /ui/crypt/ssh/<mount>` (policy: `read` on `ca`, `list` on
/// `profiles` and `issued`).
pub(super) async fn show(
    State(ui): State<Ui>,
    Extension(user): Extension<UiUser>,
    Path(mount): Path<String>,
) -> Response {
    let c = user.caller();
    let r = ui.m.ssh_ca(&c, &mount).and_then(|ca| {
        let profiles = ui.m.ssh_profiles(&c, &mount)?;
        let issued = ui.m.ssh_issued(&c, &mount, || Ok(None))?;
        Ok((ca, profiles, issued))
    });
    outcome(
        &user,
        &format!("SSH CA: {mount}"),
        r,
        |(ca, profiles, issued)| {
            html! {
                table #ca {
                    tr { th { "Key type" } td #key_type { (format!("{:?}", ca.key_type)) } }
                    tr { th { "Public key" } td { code #public_key { (ca.public_key) } } }
                    tr { th { "Next serial" } td #next_serial { (ca.next_serial) } }
                    tr { th { "KRL version" } td #krl_version { (ca.krl_version) } }
                    tr { th { "Revoked" } td { (ca.revoked_serials) " serials, " (ca.revoked_key_ids) " key ids" } }
                    tr { th { "Created" } td { (super::time(ca.created_at)) } }
                }
                p {
                    a href=(format!("/v1/ssh/{mount}/ca")) { "CA public key" } " (TrustedUserCAKeys, @cert-authority) · "
                    a href=(format!("/v1/ssh/{mount}/krl")) { "KRL" } " (RevokedKeys)"
                }
                h2 { "Profiles" }
                ul #profiles { @for p in &profiles { li { (p) } } }
                @if profiles.is_empty() { p { "No profiles yet." } }
                h2 { "Issued certificates" }
                ul #issued { @for s in &issued { li { (s) } } }
                @if issued.is_empty() { p { "None yet." } }
            }
        },
    )
}
