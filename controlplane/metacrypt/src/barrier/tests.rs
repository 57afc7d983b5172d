//! Barrier unit tests against a temporary store.

use std::sync::Arc;

use mc_kit::store::Store;
use mc_kit::store::json::ReadTx;
use zeroize::Zeroizing;

use super::*;
use crate::config::MetacryptConfig;

fn config() -> MetacryptConfig {
    MetacryptConfig {
        argon2_memory_kib: crate::config::ARGON2_MIN_MEMORY_KIB,
        argon2_iterations: 2,
        unseal_backoff_after: 2,
        unseal_backoff: mc_kit::config::Duration::from_secs(600),
        ..MetacryptConfig::default()
    }
}

pub(super) fn open(dir: &std::path::Path) -> Arc<Barrier> {
    let store =
        Arc::new(Store::open(&dir.join("metacrypt.redb"), &crate::store::SCHEMA).expect("store"));
    Arc::new(Barrier::open(store, &config()).expect("barrier"))
}

pub(super) fn pass(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.to_owned())
}

fn audit_actions(b: &Barrier) -> Vec<(String, String)> {
    ReadTx::begin(&b.store)
        .expect("rx")
        .all(crate::store::AUDIT)
        .expect("audit")
        .into_iter()
        .map(|e| (e.action, e.result))
        .collect()
}

#[tokio::test]
async fn init_seal_unseal_with_a_passphrase_and_back_off_on_failures() {
    let dir = tempfile::tempdir().expect("tmp");
    let who = Actor::default();
    let b = open(dir.path());
    assert_eq!(b.status().expect("status").state, "uninitialized");
    assert!(matches!(b.unsealed(), Err(ApiError::Unavailable(m)) if m == "sealed"));
    let short = InitRequest {
        passphrase: Some(pass("short")),
        shamir: None,
    };
    assert!(
        matches!(b.init_blocking(&short, &who), Err(ApiError::Invalid(i)) if i.field == "passphrase")
    );
    let req = InitRequest {
        passphrase: Some(pass("correct horse battery")),
        shamir: None,
    };
    assert!(b.init_blocking(&req, &who).expect("init").is_empty());
    assert!(matches!(
        b.init_blocking(&req, &who),
        Err(ApiError::FailedPrecondition(_))
    ));
    let u = b.unsealed().expect("unsealed after init");
    let sealed = u
        .seal_row(SYS_MOUNT, "mounts", b"\0\0\0\0\0\0\0\0a", b"value")
        .expect("seal");
    drop(u);

    // A restart is sealed; the sealed row does not open while sealed.
    drop(b);
    let b = open(dir.path());
    assert_eq!(b.status().expect("status").state, "sealed");
    assert!(b.unsealed().is_err());
    // Wrong passphrase: refused, then rate-limited (after 2 failures).
    for _ in 0..2 {
        let r = b
            .unseal(
                UnsealInput::Passphrase(pass("wrong passphrase!")),
                who.clone(),
            )
            .await;
        assert!(matches!(r, Err(ApiError::Forbidden(_))), "{r:?}");
    }
    let r = b
        .unseal(
            UnsealInput::Passphrase(pass("correct horse battery")),
            who.clone(),
        )
        .await;
    assert!(matches!(r, Err(ApiError::RateLimited(_))), "{r:?}");
    b.backoff.success();
    let s = b
        .unseal(
            UnsealInput::Passphrase(pass("correct horse battery")),
            who.clone(),
        )
        .await
        .expect("unseal");
    assert_eq!(s.state, "unsealed");
    let u = b.unsealed().expect("unsealed");
    assert_eq!(
        &*u.open_row(SYS_MOUNT, "mounts", b"\0\0\0\0\0\0\0\0a", &sealed)
            .expect("open"),
        b"value"
    );
    assert!(
        u.open_row(SYS_MOUNT, "mounts", b"\0\0\0\0\0\0\0\0b", &sealed)
            .is_err(),
        "moved row"
    );
    // The same through the kit's Sealer trait.
    {
        use mc_kit::seal::{SealError, Sealer};
        let s = sealer::MountSealer::new(u.clone(), SYS_MOUNT);
        let v = s.seal("mounts", b"k1", b"through the trait").expect("seal");
        assert_eq!(
            &*s.open("mounts", b"k1", &v).expect("open"),
            b"through the trait"
        );
        assert!(matches!(
            s.open("mounts", b"k2", &v),
            Err(SealError::Open { .. })
        ));
        assert!(matches!(
            s.open("mounts", b"k1", b"junk"),
            Err(SealError::Malformed { .. })
        ));
        assert!(
            sealer::MountSealer::new(u.clone(), 42)
                .seal("t", b"k", b"v")
                .is_err(),
            "no ring"
        );
    }

    // MEK rotation keeps every DEK; the next unseal still opens the row.
    assert_eq!(b.rotate_mek(&who).expect("rotate"), 2);
    let weak = Arc::downgrade(&u);
    drop(u);
    b.seal(&who).await.expect("seal");
    assert!(
        weak.upgrade().is_none(),
        "seal drops the last reference to the keys"
    );
    assert_eq!(b.status().expect("status").state, "sealed");
    b.unseal(
        UnsealInput::Passphrase(pass("correct horse battery")),
        who.clone(),
    )
    .await
    .expect("unseal");
    let u = b.unsealed().expect("unsealed");
    assert_eq!(u.mek_version, 2);
    assert_eq!(
        &*u.open_row(SYS_MOUNT, "mounts", b"\0\0\0\0\0\0\0\0a", &sealed)
            .expect("open"),
        b"value"
    );

    let actions = audit_actions(&b);
    for want in [
        ("barrier.init", "ok"),
        ("barrier.unseal", "denied"),
        ("barrier.unseal", "rate_limited"),
        ("barrier.unseal", "ok"),
        ("barrier.rotate_mek", "ok"),
        ("barrier.seal", "ok"),
    ] {
        assert!(
            actions
                .iter()
                .any(|(a, r)| (a.as_str(), r.as_str()) == want),
            "{want:?} in {actions:?}"
        );
    }
}

#[tokio::test]
async fn shamir_three_of_five_unseals_and_two_do_not() {
    let dir = tempfile::tempdir().expect("tmp");
    let who = Actor::default();
    let b = open(dir.path());
    let shares = b
        .init_blocking(
            &InitRequest {
                passphrase: None,
                shamir: Some((5, 3)),
            },
            &who,
        )
        .expect("init");
    assert_eq!(shares.len(), 5);
    let st = b.status().expect("status");
    assert_eq!(
        (st.shares, st.threshold, st.slots.clone()),
        (5, 3, vec!["shamir"])
    );
    drop(b);
    let b = open(dir.path());
    for (i, s) in shares.iter().skip(1).take(2).enumerate() {
        let st = b
            .unseal(UnsealInput::Share(s.clone()), who.clone())
            .await
            .expect("share");
        assert_eq!(
            (st.state, st.progress),
            ("sealed", u32::try_from(i + 1).expect("small"))
        );
    }
    assert!(b.unsealed().is_err(), "two of three are not enough");
    // A mistyped share is refused before it counts.
    let typo = Zeroizing::new(format!("{}x", &shares[0][..shares[0].len() - 1]));
    assert!(matches!(
        b.unseal(UnsealInput::Share(typo), who.clone()).await,
        Err(ApiError::Invalid(_))
    ));
    let st = b
        .unseal(UnsealInput::Share(shares[4].clone()), who.clone())
        .await
        .expect("third");
    assert_eq!(st.state, "unsealed");
    // Reset discards progress.
    b.seal(&who).await.expect("seal");
    b.unseal(UnsealInput::Share(shares[0].clone()), who.clone())
        .await
        .expect("one");
    b.unseal(UnsealInput::Reset, who.clone())
        .await
        .expect("reset");
    assert_eq!(b.status().expect("status").progress, 0);
}

/// An initialized, unsealed barrier over a temporary store (for sibling tests).
pub(crate) fn unsealed_barrier() -> (tempfile::TempDir, Arc<Barrier>, Arc<Store>) {
    let dir = tempfile::tempdir().expect("tmp");
    let b = open(dir.path());
    let req = InitRequest {
        passphrase: Some(pass("correct horse battery")),
        shamir: None,
    };
    b.init_blocking(&req, &Actor::default()).expect("init");
    let store = b.store.clone();
    (dir, b, store)
}
