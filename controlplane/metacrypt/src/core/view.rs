//! The compiled view of the unsealed state: the mount table and the policy,
//! decrypted from their `sys` rows and compiled, rebuilt whenever the keys
//! change (a new unseal, ring or MEK: a new epoch) or a mount or rule
//! changes (a new generation).
//!
//! Invariant: a change bumps the generation only after it commits, and a
//! reader notes the generation before it reads, so a view built from
//! before a change is never kept as current after it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Metacrypt;
use crate::barrier::Unsealed;
use crate::barrier::sealer::Snapshot;
use crate::error::CryptError;
use crate::policy::{Policy, Rule};
use crate::store::{MOUNTS, POLICY, mount_key};

pub(crate) use super::mounts::Mount;

pub(crate) struct View {
    epoch: u64,
    generation: u64,
    pub(crate) mounts: BTreeMap<String, Mount>,
    pub(crate) policy: Policy,
}

impl Metacrypt {
    /// The current view for `keys` (built when stale).
    pub(crate) fn view(&self, keys: &Unsealed) -> Result<Arc<View>, CryptError> {
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(v) = &*self.view.load()
            && v.epoch == keys.epoch
            && v.generation == generation
        {
            return Ok(v.clone());
        }
        let rx = Snapshot::begin(&self.store)?;
        let sys = crate::barrier::SYS_MOUNT;
        let prefix = mount_key(sys, b"");
        let mounts = rx
            .scan::<Mount>(keys, sys, MOUNTS, &prefix)?
            .into_iter()
            .filter(|(_, m)| keys.has_ring(m.id))
            .map(|(_, m)| (m.name.clone(), m))
            .collect();
        let rules: Vec<Rule> = rx
            .scan::<Rule>(keys, sys, POLICY, &prefix)?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let view = Arc::new(View {
            epoch: keys.epoch,
            generation,
            mounts,
            policy: Policy::compile(rules),
        });
        self.view.store(Some(view.clone()));
        Ok(view)
    }

    /// Marks the view stale (after a committed mount or policy change).
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}
