//! Slot changes against a temporary store: a new passphrase replaces the
//! old, a re-split replaces the old shares, removal never takes the last
//! slot, and each needs current unseal material.

use mc_kit::api::ApiError;
use mc_kit::store::json::ReadTx;
use zeroize::Zeroizing;

use super::Material;
use crate::barrier::tests::{open, pass};
use crate::barrier::{Actor, InitRequest, UnsealInput};

fn shares(all: &[Zeroizing<String>], pick: &[usize]) -> Material {
    Material::Shares(pick.iter().map(|i| all[*i].clone()).collect())
}

#[tokio::test]
async fn passphrase_change_reshare_and_slot_removal_need_material_and_replace_slots() {
    let dir = tempfile::tempdir().expect("tmp");
    let who = Actor::default();
    let b = open(dir.path());
    let req = InitRequest {
        passphrase: Some(pass("correct horse battery")),
        shamir: Some((5, 3)),
    };
    let old_shares = b.init_blocking(&req, &who).expect("init");
    let mek = b.unsealed().expect("keys").mek_version;

    // Wrong material: refused, nothing changes.
    let r = b
        .change_passphrase(
            Material::Passphrase(pass("not the passphrase")),
            pass("a brand new passphrase"),
            &who,
        )
        .await;
    assert!(matches!(r, Err(ApiError::Forbidden(_))), "{r:?}");
    let r = b
        .change_passphrase(
            Material::Passphrase(pass("correct horse battery")),
            pass("short"),
            &who,
        )
        .await;
    assert!(matches!(r, Err(ApiError::Invalid(_))), "{r:?}");
    // Three current shares prove it as well as the passphrase.
    let slot = b
        .change_passphrase(
            shares(&old_shares, &[0, 2, 4]),
            pass("a brand new passphrase"),
            &who,
        )
        .await
        .expect("change");
    assert!(slot.id.starts_with("passphrase-"));
    let (_, new_shares) = b
        .reshare(
            Material::Passphrase(pass("a brand new passphrase")),
            3,
            2,
            &who,
        )
        .await
        .expect("reshare");
    assert_eq!(new_shares.len(), 3);
    assert_eq!(
        b.unsealed().expect("keys").mek_version,
        mek,
        "MEK unchanged"
    );

    // After a restart: the old passphrase and old shares are refused.
    drop(b);
    let b = open(dir.path());
    let r = b
        .unseal(
            UnsealInput::Passphrase(pass("correct horse battery")),
            who.clone(),
        )
        .await;
    assert!(matches!(r, Err(ApiError::Forbidden(_))), "{r:?}");
    let r = b
        .unseal(UnsealInput::Share(old_shares[0].clone()), who.clone())
        .await;
    assert!(matches!(r, Err(ApiError::Invalid(_))), "another set: {r:?}");
    // Two new shares unseal.
    for s in &new_shares[1..] {
        b.unseal(UnsealInput::Share(s.clone()), who.clone())
            .await
            .expect("share");
    }
    assert!(b.unsealed().is_ok());
    drop(b);
    let b = open(dir.path());
    b.unseal(
        UnsealInput::Passphrase(pass("a brand new passphrase")),
        who.clone(),
    )
    .await
    .expect("new passphrase unseals");

    // Removal: unknown id 404; the Shamir slot goes; the last slot stays.
    let m = || Material::Passphrase(pass("a brand new passphrase"));
    let r = b.remove_slot(m(), "nope", &who).await;
    assert!(matches!(r, Err(ApiError::NotFound(_))), "{r:?}");
    let shamir = b
        .slots()
        .expect("slots")
        .into_iter()
        .find(|s| s.kind == "shamir")
        .expect("shamir slot");
    b.remove_slot(m(), &shamir.id, &who).await.expect("remove");
    let left = b.slots().expect("slots");
    assert_eq!(left.len(), 1);
    let r = b.remove_slot(m(), &left[0].id, &who).await;
    assert!(matches!(r, Err(ApiError::FailedPrecondition(_))), "{r:?}");
    let actions: Vec<String> = ReadTx::begin(&b.store)
        .expect("rx")
        .all(crate::store::AUDIT)
        .expect("audit")
        .into_iter()
        .map(|e| format!("{} {}", e.action, e.result))
        .collect();
    for want in [
        "barrier.passphrase_change denied",
        "barrier.passphrase_change ok",
        "barrier.reshare ok",
        "barrier.slot_remove ok",
    ] {
        assert!(actions.iter().any(|a| a == want), "{want}: {actions:?}");
    }
}

#[tokio::test]
async fn root_rekey_needs_every_slots_material_and_every_slot_still_opens() {
    use super::super::rootkey::RekeyMaterial;
    let dir = tempfile::tempdir().expect("tmp");
    let who = Actor::default();
    let b = open(dir.path());
    let req = InitRequest {
        passphrase: Some(pass("correct horse battery")),
        shamir: Some((3, 2)),
    };
    let all = b.init_blocking(&req, &who).expect("init");
    let before = b.unsealed().expect("keys");
    let (root_v, mek_v) = (before.root_version, before.mek_version);
    drop(before);
    let material = |p: &str, s: &[usize]| RekeyMaterial {
        passphrase: (!p.is_empty()).then(|| pass(p)),
        shares: s.iter().map(|i| all[*i].clone()).collect(),
        key_file: None,
    };
    // Missing shares: refused by name; a wrong passphrase: forbidden.
    let r = b
        .rekey_root(material("correct horse battery", &[]), &who)
        .await;
    assert!(
        matches!(&r, Err(ApiError::Invalid(i)) if i.to_string().starts_with("shares")),
        "{r:?}"
    );
    let r = b
        .rekey_root(material("not the passphrase", &[0, 1]), &who)
        .await;
    assert!(matches!(r, Err(ApiError::Forbidden(_))), "{r:?}");
    assert_eq!(
        b.unsealed().expect("keys").root_version,
        root_v,
        "nothing changed"
    );
    let done = b
        .rekey_root(material("correct horse battery", &[2, 0]), &who)
        .await
        .expect("rekey");
    assert_eq!(
        (done.root_version, done.mek_version),
        (root_v + 1, mek_v + 1)
    );
    let now = b.unsealed().expect("keys");
    assert_eq!((now.root_version, now.mek_version), (root_v + 1, mek_v + 1));
    drop(now);
    // A restart: the same passphrase opens, and so do two of the same shares.
    drop(b);
    let b = open(dir.path());
    b.unseal(
        UnsealInput::Passphrase(pass("correct horse battery")),
        who.clone(),
    )
    .await
    .expect("passphrase unseals");
    assert_eq!(b.unsealed().expect("keys").root_version, root_v + 1);
    drop(b);
    let b = open(dir.path());
    for s in &all[1..] {
        b.unseal(UnsealInput::Share(s.clone()), who.clone())
            .await
            .expect("share");
    }
    assert!(b.unsealed().is_ok(), "shares unseal");
    let actions: Vec<String> = ReadTx::begin(&b.store)
        .expect("rx")
        .all(crate::store::AUDIT)
        .expect("audit")
        .into_iter()
        .map(|e| format!("{} {}", e.action, e.result))
        .collect();
    for want in ["barrier.rekey denied", "barrier.rekey ok"] {
        assert!(actions.iter().any(|a| a == want), "{want}: {actions:?}");
    }
}
