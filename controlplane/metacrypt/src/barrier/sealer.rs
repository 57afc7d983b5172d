//! `MountSealer`: the kit's [`Sealer`] over one mount's DEK ring, so engine
//! rows (and, later, other services' sealed values) are sealed in the
//! barrier's envelope.
//!
//! Invariant: as the trait promises, a value is bound to its location
//! (AAD = envelope header ‖ table ‖ 0 ‖ row key), and a sealer holds its
//! own reference to the unsealed keys, so it keeps working until dropped
//! even if the barrier seals meanwhile (seal waits for such holders).

use std::sync::Arc;

use mc_kit::seal::{SealError, Sealer};
use zeroize::Zeroizing;

use super::Unsealed;

/// Seals with `mount`'s current DEK; opens with the version an envelope names.
#[cfg_attr(not(test), allow(dead_code))] // the engines' seam; no engine yet
pub(crate) struct MountSealer {
    keys: Arc<Unsealed>,
    mount: u64,
}

#[cfg_attr(not(test), allow(dead_code))]
impl MountSealer {
    pub(crate) fn new(keys: Arc<Unsealed>, mount: u64) -> Self {
        Self { keys, mount }
    }
}

impl Sealer for MountSealer {
    fn seal(&self, table: &str, key: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        self.keys
            .seal_row(self.mount, table, key, plain)
            .map_err(|_| SealError::Seal)
    }

    fn open(
        &self,
        table: &str,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if super::envelope::parse(sealed).is_err() {
            return Err(SealError::Malformed {
                table: table.to_owned(),
            });
        }
        self.keys
            .open_row(self.mount, table, key, sealed)
            .map_err(|_| SealError::Open {
                table: table.to_owned(),
            })
    }
}
