//! The clear rows: the mount name → id index and each mount's public row
//! (CA public key line, KRL). Written by the engine inside its
//! transactions; read by the public routes without the barrier's keys, so
//! they answer while sealed.
//!
//! Invariant: nothing secret is written here: rows are `PublicCa` (a
//! public key and a KRL) and mount ids.

use mc_kit::store::Store;
use mc_kit::store::json::WriteTx;
use redb::ReadableDatabase;

use super::model::PublicCa;
use super::tables::{SSH_NAMES, SSH_PUBLIC};
use crate::barrier::sealer::put_public;
use crate::error::CryptError;
use crate::store::mount_key;

pub(crate) fn put(
    tx: &WriteTx,
    mount_name: &str,
    mount: u64,
    row: &PublicCa,
) -> Result<(), CryptError> {
    let json = serde_json::to_vec(row).map_err(CryptError::internal)?;
    put_public(tx, SSH_PUBLIC, &mount_key(mount, b""), &json)?;
    put_public(tx, SSH_NAMES, mount_name.as_bytes(), &mount.to_be_bytes())
}

/// The public row of the mount named `mount_name`.
pub(crate) fn get(store: &Store, mount_name: &str) -> Result<PublicCa, CryptError> {
    let none = || CryptError::NotFound(format!("no SSH CA in mount {mount_name}"));
    let rx = store.db().begin_read().map_err(CryptError::internal)?;
    let names = rx.open_table(SSH_NAMES).map_err(CryptError::internal)?;
    let id = match names
        .get(mount_name.as_bytes())
        .map_err(CryptError::internal)?
    {
        Some(v) => u64::from_be_bytes(
            v.value()
                .try_into()
                .map_err(|_| CryptError::internal("ssh_names: bad row"))?,
        ),
        None => return Err(none()),
    };
    let t = rx.open_table(SSH_PUBLIC).map_err(CryptError::internal)?;
    let row = t
        .get(mount_key(id, b"").as_slice())
        .map_err(CryptError::internal)?
        .ok_or_else(none)?;
    serde_json::from_slice(row.value()).map_err(CryptError::internal)
}
