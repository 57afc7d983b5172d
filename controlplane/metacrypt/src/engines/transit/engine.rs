//! The transit mount type bound to the frame: keys live in `transit_keys`
//! (mount id ‖ name → [`KeyState`], sealed under the mount's ring) and,
//! while unsealed, in a cache of [`TransitKey`]s so data operations touch
//! no store. A change reads the stored state inside its write transaction,
//! commits it with its audit row, then replaces the cached key.
//!
//! Invariants: key changes are serialised by one lock held from the read to
//! the cache update, so the cache never goes back to an older state; the
//! cache is emptied at seal and a mount's entries at unmount.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use mc_kit::store::Table;
use mc_kit::store::json::WriteTx;
use serde_json::Value;

use super::{KeyState, TransitError, TransitKey};
use crate::barrier::sealer::{Snapshot, get_sealed, put_sealed};
use crate::core::run::Authorized;
use crate::engines::{Engine, MountHooks};
use crate::error::CryptError;
use crate::store::{TRANSIT_KEYS, mount_key};

/// Keys per mount.
pub(crate) const MAX_KEYS: usize = 10_000;

type Cache = HashMap<(u64, String), Arc<TransitKey>>;

#[derive(Default)]
pub(crate) struct Transit {
    cache: RwLock<Cache>,
    writes: Mutex<()>,
}

impl MountHooks for Transit {
    fn validate_config(&self, _old: Option<&Value>, config: Value) -> Result<Value, CryptError> {
        match &config {
            Value::Null => {}
            Value::Object(m) if m.is_empty() => {}
            _ => {
                return Err(CryptError::invalid(
                    "config",
                    "a transit mount takes no config",
                ));
            }
        }
        Ok(Value::Object(Default::default()))
    }

    fn tables(&self) -> &'static [Table] {
        &[TRANSIT_KEYS]
    }

    fn on_unmount(&self, mount: u64) {
        if let Ok(mut c) = self.cache.write() {
            c.retain(|(m, _), _| *m != mount);
        }
    }

    fn on_seal(&self) {
        if let Ok(mut c) = self.cache.write() {
            c.clear();
        }
    }
}

impl Engine for Transit {
    const TYPE: &'static str = "transit";
}

fn poisoned() -> CryptError {
    CryptError::internal("transit cache lock poisoned")
}

/// What a change does to the stored key.
pub(crate) enum Change {
    Put(KeyState),
    Delete,
    /// Nothing to write (e.g. create of an existing key).
    Keep,
}

impl Transit {
    /// The key, from the cache or the store; `None` when there is none.
    pub(crate) fn key(
        &self,
        a: &Authorized<'_>,
        name: &str,
    ) -> Result<Option<Arc<TransitKey>>, CryptError> {
        let id = a.mount().id;
        let slot = (id, name.to_owned());
        if let Some(k) = self.cache.read().map_err(|_| poisoned())?.get(&slot) {
            return Ok(Some(k.clone()));
        }
        let rx = Snapshot::begin(a.store())?;
        let Some(state) =
            rx.get::<KeyState>(a.keys(), id, TRANSIT_KEYS, &mount_key(id, name.as_bytes()))?
        else {
            return Ok(None);
        };
        let key = Arc::new(TransitKey::load(state)?);
        // A change committed since our read inserted a newer key: keep that one.
        let mut cache = self.cache.write().map_err(|_| poisoned())?;
        Ok(Some(cache.entry(slot).or_insert(key).clone()))
    }

    /// The key or 404.
    pub(crate) fn require(
        &self,
        a: &Authorized<'_>,
        name: &str,
    ) -> Result<Arc<TransitKey>, CryptError> {
        self.key(a, name)?
            .ok_or_else(|| CryptError::from(TransitError::NotFound(format!("no key named {name}"))))
    }

    /// The names of the mount's keys, sorted.
    pub(crate) fn names(&self, a: &Authorized<'_>) -> Result<Vec<String>, CryptError> {
        let id = a.mount().id;
        let rx = Snapshot::begin(a.store())?;
        let prefix = mount_key(id, b"");
        Ok(rx
            .keys(TRANSIT_KEYS, &prefix, MAX_KEYS)?
            .into_iter()
            .filter_map(|k| String::from_utf8(k[prefix.len()..].to_vec()).ok())
            .collect())
    }

    /// Reads the stored key in a write transaction, applies `f`, stores the
    /// result with an audit row (`action`, `detail`) and updates the cache.
    /// Returns the key as it is afterwards (`None` once deleted).
    pub(crate) fn change(
        &self,
        a: &Authorized<'_>,
        name: &str,
        action: &str,
        f: impl FnOnce(Option<&KeyState>) -> Result<(Change, String), CryptError>,
    ) -> Result<Option<Arc<TransitKey>>, CryptError> {
        let _serial = self.writes.lock().map_err(|_| poisoned())?;
        let (keys, id) = (a.keys(), a.mount().id);
        let row = mount_key(id, name.as_bytes());
        let tx = WriteTx::begin(a.store())?;
        let current: Option<KeyState> = get_sealed(&tx, keys, id, TRANSIT_KEYS, &row)?;
        let (change, detail) = f(current.as_ref())?;
        let slot = (id, name.to_owned());
        match change {
            Change::Keep => {
                drop(tx);
                drop(_serial);
                self.key(a, name)
            }
            Change::Delete => {
                tx.delete(TRANSIT_KEYS, &row)?;
                audit(a, &tx, action, name, detail)?;
                tx.commit()?;
                self.cache.write().map_err(|_| poisoned())?.remove(&slot);
                Ok(None)
            }
            Change::Put(state) => {
                if current.is_none() {
                    let prefix = mount_key(id, b"");
                    let n = Snapshot::begin(a.store())?
                        .keys(TRANSIT_KEYS, &prefix, MAX_KEYS)?
                        .len();
                    if n >= MAX_KEYS {
                        return Err(CryptError::invalid(
                            "name",
                            format!("a mount holds at most {MAX_KEYS} keys"),
                        ));
                    }
                }
                let old = self
                    .cache
                    .read()
                    .map_err(|_| poisoned())?
                    .get(&slot)
                    .cloned();
                let key = Arc::new(match &old {
                    Some(o) if current.is_some() => o.reload(state.clone())?,
                    _ => TransitKey::load(state.clone())?,
                });
                put_sealed(&tx, keys, id, TRANSIT_KEYS, &row, &state)?;
                audit(a, &tx, action, name, detail)?;
                tx.commit()?;
                self.cache
                    .write()
                    .map_err(|_| poisoned())?
                    .insert(slot, key.clone());
                Ok(Some(key))
            }
        }
    }
}

impl Transit {
    /// The keys of `mount` now in the cache (those that may hold unflushed counts).
    pub(crate) fn cached(&self, mount: u64) -> Vec<(String, Arc<TransitKey>)> {
        self.cache.read().map_or_else(
            |_| Vec::new(),
            |c| {
                c.iter()
                    .filter(|((m, _), _)| *m == mount)
                    .map(|((_, n), k)| (n.clone(), k.clone()))
                    .collect()
            },
        )
    }

    /// Stores the encryption counts taken from a cached key
    /// ([`TransitKey::take_counts`]) into the stored state (counts only
    /// grow, so each version keeps the larger). Bookkeeping, not a change
    /// of the key: no audit row. Returns whether a row was written.
    pub(crate) fn flush_counts(
        &self,
        a: &Authorized<'_>,
        name: &str,
        taken: &KeyState,
    ) -> Result<bool, CryptError> {
        let _serial = self.writes.lock().map_err(|_| poisoned())?;
        let (keys, id) = (a.keys(), a.mount().id);
        let row = mount_key(id, name.as_bytes());
        let tx = WriteTx::begin(a.store())?;
        let Some(mut state): Option<KeyState> = get_sealed(&tx, keys, id, TRANSIT_KEYS, &row)?
        else {
            return Ok(false);
        };
        for (v, sv) in &mut state.versions {
            if let Some(t) = taken.versions.get(v) {
                sv.encryptions = sv.encryptions.max(t.encryptions);
            }
        }
        put_sealed(&tx, keys, id, TRANSIT_KEYS, &row, &state)?;
        tx.commit()?;
        let slot = (id, name.to_owned());
        let mut cache = self.cache.write().map_err(|_| poisoned())?;
        if let Some(old) = cache.get(&slot).cloned() {
            cache.insert(slot, Arc::new(old.reload(state)?));
        }
        Ok(true)
    }
}

fn audit(
    a: &Authorized<'_>,
    tx: &WriteTx,
    action: &str,
    name: &str,
    detail: String,
) -> Result<(), CryptError> {
    let target = format!("{}/keys/{name}", a.mount().name);
    tx.audit(crate::core::event(a.caller(), action, &target, detail))?;
    Ok(())
}
