//! Per-mount DEK rings: created with a mount, removed with it, and the
//! copy-and-swap of the unsealed state that every key change uses.
//!
//! Invariant: a ring's key rows change in the caller's write transaction
//! (with the mount row and its audit row), and memory follows only after
//! that commit, under [`Barrier::key_lock`]; the swap is a compare-and-swap
//! against the state the change started from, so a seal in between is
//! never undone (an unseal in between already loaded the committed rows).

use std::collections::BTreeMap;
use std::sync::{Arc, MutexGuard, PoisonError};

use mc_kit::api::ApiError;
use mc_kit::store::json::WriteTx;
use zeroize::Zeroizing;

use super::keys::{Key, KeyError, aad_dek, wrap};
use super::{Barrier, DekRecord, DekRing, State, Unsealed, key_err, next_epoch, now_unix};
use crate::store::{BARRIER_KEYS, dek_key};

/// A ring written in a transaction, to install once that transaction commits.
pub(crate) struct NewRing {
    mount: u64,
    key: Key,
}

pub(super) fn copy_key(k: &Key) -> Result<(aws_lc_rs::aead::LessSafeKey, Key), KeyError> {
    let copy = Key::from_bytes(Zeroizing::new(*k.bytes()));
    copy.aead().map(|a| (a, copy))
}

impl Unsealed {
    /// A copy of every key, with a new epoch (the base of every change).
    pub(crate) fn copy(&self) -> Result<Unsealed, ApiError> {
        let rings = self
            .rings
            .iter()
            .map(|(m, r)| {
                let keys = r
                    .keys
                    .iter()
                    .map(|(v, (_, k))| copy_key(k).map(|pair| (*v, pair)))
                    .collect::<Result<BTreeMap<_, _>, _>>()?;
                Ok((
                    *m,
                    DekRing {
                        current: r.current,
                        keys,
                    },
                ))
            })
            .collect::<Result<BTreeMap<_, _>, KeyError>>()
            .map_err(key_err)?;
        Ok(Unsealed {
            root_version: self.root_version,
            mek_version: self.mek_version,
            root: Key::from_bytes(Zeroizing::new(*self.root.bytes())),
            mek: Key::from_bytes(Zeroizing::new(*self.mek.bytes())),
            rings,
            epoch: next_epoch(),
        })
    }

    /// Whether `mount` has a ring (a mount row without one is not served).
    pub(crate) fn has_ring(&self, mount: u64) -> bool {
        self.rings.contains_key(&mount)
    }
}

impl Barrier {
    /// Serialises key changes (see the module header).
    pub(crate) fn key_lock(&self) -> MutexGuard<'_, ()> {
        self.key_changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces `from` by `next` unless the state changed meanwhile (sealed,
    /// or unsealed again from the store, which already holds the change).
    pub(crate) fn swap_unsealed(&self, from: &Arc<Unsealed>, next: Unsealed) {
        let current = self.state.load();
        let same = matches!(&**current, State::Unsealed(u) if Arc::ptr_eq(u, from));
        if same {
            let _ = self
                .state
                .compare_and_swap(&current, Arc::new(State::Unsealed(Arc::new(next))));
        }
    }

    /// Writes DEK version 1 of a new mount in `tx` (wrapped under the MEK
    /// `keys` holds). Call with [`Barrier::key_lock`] held; install the
    /// ring with [`Barrier::install_ring`] after `tx` commits.
    pub(crate) fn create_ring(
        &self,
        tx: &WriteTx,
        keys: &Unsealed,
        mount: u64,
    ) -> Result<NewRing, ApiError> {
        if keys.rings.contains_key(&mount) || mount == super::SYS_MOUNT {
            return Err(ApiError::internal("mount id in use"));
        }
        if tx
            .get_raw(BARRIER_KEYS.def(), &dek_key(mount, 1))?
            .is_some()
        {
            return Err(ApiError::internal("mount id in use"));
        }
        let key = Key::random().map_err(key_err)?;
        tx.put(
            BARRIER_KEYS,
            &dek_key(mount, 1),
            &DekRecord {
                mek_version: keys.mek_version,
                wrapped: wrap(&keys.mek, &key, &aad_dek(mount, 1, keys.mek_version))
                    .map_err(key_err)?,
                created_at: now_unix(),
            },
        )?;
        Ok(NewRing { mount, key })
    }

    /// Puts a committed ring into memory (key lock held).
    pub(crate) fn install_ring(&self, from: &Arc<Unsealed>, ring: NewRing) -> Result<(), ApiError> {
        let mut next = from.copy()?;
        let pair = copy_key(&ring.key).map_err(key_err)?;
        next.rings.insert(
            ring.mount,
            DekRing {
                current: 1,
                keys: BTreeMap::from([(1, pair)]),
            },
        );
        self.swap_unsealed(from, next);
        Ok(())
    }

    /// Deletes every DEK row of `mount` in `tx`: once it commits, the
    /// mount's rows are unreadable (key lock held).
    pub(crate) fn delete_ring(&self, tx: &WriteTx, mount: u64) -> Result<u64, ApiError> {
        if mount == super::SYS_MOUNT {
            return Err(ApiError::internal("the sys ring stays"));
        }
        let prefix = mount.to_be_bytes();
        Ok(tx.delete_where(BARRIER_KEYS, |k, _| k.starts_with(&prefix))?)
    }

    /// Drops a deleted ring from memory (after its transaction committed).
    pub(crate) fn drop_ring(&self, from: &Arc<Unsealed>, mount: u64) -> Result<(), ApiError> {
        let mut next = from.copy()?;
        next.rings.remove(&mount);
        self.swap_unsealed(from, next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::barrier::sealer::MountSealer;
    use mc_kit::seal::Sealer;

    #[tokio::test]
    async fn a_mount_ring_is_created_installed_used_and_dropped() {
        let (_dir, barrier, _store) = crate::barrier::tests::unsealed_barrier();
        let store = barrier.store.clone();
        let keys = barrier.unsealed().expect("unsealed");
        let _l = barrier.key_lock();
        let tx = WriteTx::begin(&store).expect("tx");
        let ring = barrier.create_ring(&tx, &keys, 42).expect("ring");
        tx.commit().expect("commit");
        barrier.install_ring(&keys, ring).expect("install");
        let keys2 = barrier.unsealed().expect("unsealed");
        assert!(keys2.has_ring(42) && keys2.epoch != keys.epoch);
        let sealed = MountSealer::new(keys2.clone(), 42)
            .seal("kv_data", b"k", b"v")
            .expect("seal");
        // Another mount's ring does not open it.
        assert!(
            MountSealer::new(keys2.clone(), 0)
                .open("kv_data", b"k", &sealed)
                .is_err()
        );
        let tx = WriteTx::begin(&store).expect("tx");
        assert_eq!(barrier.delete_ring(&tx, 42).expect("delete"), 1);
        tx.commit().expect("commit");
        barrier.drop_ring(&keys2, 42).expect("drop");
        assert!(!barrier.unsealed().expect("unsealed").has_ring(42));
    }

    #[tokio::test]
    async fn a_ring_change_never_unseals_a_sealed_barrier() {
        let (_dir, barrier, _store) = crate::barrier::tests::unsealed_barrier();
        let keys = barrier.unsealed().expect("unsealed");
        barrier
            .seal(&crate::barrier::Actor::default())
            .await
            .expect("seal");
        let next = keys.copy().expect("copy");
        barrier.swap_unsealed(&keys, next);
        assert!(barrier.unsealed().is_err(), "still sealed");
    }
}
