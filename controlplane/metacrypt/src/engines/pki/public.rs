//! The clear rows: the mount name → id index and each issuer version's
//! public row (certificate, chain, CRL). Written by the engine inside its
//! transactions; read by the public routes without the barrier's keys, so
//! they answer while sealed.
//!
//! Invariant: nothing secret is written here: rows are `PublicIssuer`
//! (certificates and CRLs) and mount ids.

use base64::Engine as _;
use mc_kit::store::Store;
use mc_kit::store::json::WriteTx;
use redb::ReadableDatabase;

use super::model::PublicIssuer;
use super::tables::{PKI_NAMES, PKI_PUBLIC};
use crate::barrier::sealer::put_public;
use crate::error::CryptError;
use crate::store::mount_key;

/// `name ‖ 0 ‖ version BE` under the mount.
pub(crate) fn version_key(mount: u64, name: &str, version: u32) -> Vec<u8> {
    let mut rest = Vec::with_capacity(name.len() + 5);
    rest.extend_from_slice(name.as_bytes());
    rest.push(0);
    rest.extend_from_slice(&version.to_be_bytes());
    mount_key(mount, &rest)
}

pub(crate) fn put_issuer(
    tx: &WriteTx,
    mount: u64,
    name: &str,
    version: u32,
    row: &PublicIssuer,
) -> Result<(), CryptError> {
    let json = serde_json::to_vec(row).map_err(CryptError::internal)?;
    put_public(tx, PKI_PUBLIC, &version_key(mount, name, version), &json)
}

pub(crate) fn put_name(tx: &WriteTx, mount_name: &str, mount: u64) -> Result<(), CryptError> {
    put_public(tx, PKI_NAMES, mount_name.as_bytes(), &mount.to_be_bytes())
}

/// One public issuer version, as listed.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub name: String,
    pub version: u32,
    pub row: PublicIssuer,
}

impl Listed {
    pub(crate) fn crl_der(&self) -> Result<Vec<u8>, CryptError> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.row.crl_der)
            .map_err(CryptError::internal)
    }
}

fn not_found(what: &str) -> CryptError {
    CryptError::NotFound(format!("no {what}"))
}

/// Every public issuer version of the mount named `mount_name`, by name
/// then version.
pub(crate) fn all(store: &Store, mount_name: &str) -> Result<Vec<Listed>, CryptError> {
    let rx = store.db().begin_read().map_err(CryptError::internal)?;
    let names = rx.open_table(PKI_NAMES).map_err(CryptError::internal)?;
    let id = match names
        .get(mount_name.as_bytes())
        .map_err(CryptError::internal)?
    {
        Some(v) => u64::from_be_bytes(
            v.value()
                .try_into()
                .map_err(|_| CryptError::internal("pki_names: bad row"))?,
        ),
        None => return Err(not_found(&format!("pki mount named {mount_name}"))),
    };
    let t = rx.open_table(PKI_PUBLIC).map_err(CryptError::internal)?;
    let prefix = mount_key(id, b"");
    let mut out = Vec::new();
    for row in t.range(prefix.as_slice()..).map_err(CryptError::internal)? {
        let (k, v) = row.map_err(CryptError::internal)?;
        let key = k.value();
        if !key.starts_with(&prefix) {
            break;
        }
        let rest = &key[8..];
        let (name, version) = match rest.len().checked_sub(5) {
            Some(n) if rest[n] == 0 => (
                String::from_utf8_lossy(&rest[..n]).into_owned(),
                u32::from_be_bytes(
                    rest[n + 1..]
                        .try_into()
                        .map_err(|_| CryptError::internal("pki_public: bad key"))?,
                ),
            ),
            _ => return Err(CryptError::internal("pki_public: bad key")),
        };
        let row: PublicIssuer = serde_json::from_slice(v.value()).map_err(CryptError::internal)?;
        out.push(Listed { name, version, row });
    }
    if out.is_empty() {
        return Err(not_found(&format!("CA in mount {mount_name} yet")));
    }
    Ok(out)
}

/// Issuer `name` at `version` (the latest when `None`).
pub(crate) fn one(
    store: &Store,
    mount_name: &str,
    name: &str,
    version: Option<u32>,
) -> Result<Listed, CryptError> {
    all(store, mount_name)?
        .into_iter()
        .rfind(|l| l.name == name && version.is_none_or(|v| v == l.version))
        .ok_or_else(|| not_found(&format!("issuer {name} in mount {mount_name}")))
}
