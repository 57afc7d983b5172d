//! MCIAS's redb store: `<data_dir>/mcias/mcias.redb`.
//!
//! Tables (bytes → JSON unless noted): `accounts` (id), `usernames` (name →
//! id, raw), `tokens` (jti), `keys` (kid; private keys sealed with the master
//! key, see [`crate::keys`]), `policy` (rule id), `audit` (big-endian u64 seq),
//! `resets` (SHA-256 of a reset token; schema v2), `sso_clients` (client id;
//! secrets stored only as SHA-256; schema v3), `passkeys` (passkey id;
//! credentials sealed with the master key; schema v4).

use std::path::{Path, PathBuf};

use mc_kit::store::{Migration, Schema, Store, StoreError, Table};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const ACCOUNTS: Table = TableDefinition::new("accounts");
pub const USERNAMES: Table = TableDefinition::new("usernames");
pub const TOKENS: Table = TableDefinition::new("tokens");
pub const KEYS: Table = TableDefinition::new("keys");
pub const POLICY: Table = TableDefinition::new("policy");
pub const AUDIT: Table = TableDefinition::new("audit");
/// Credential-reset tokens, keyed by SHA-256 of the token (the token itself is never stored).
pub const RESETS: Table = TableDefinition::new("resets");
/// OAuth 2.0 / OIDC clients (see [`crate::core::sso`]).
pub const SSO_CLIENTS: Table = TableDefinition::new("sso_clients");
/// WebAuthn credentials (see [`crate::core::mfa::passkey`]).
pub const PASSKEYS: Table = TableDefinition::new("passkeys");

fn create(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    for t in [ACCOUNTS, USERNAMES, TOKENS, KEYS, POLICY, AUDIT] {
        txn.open_table(t).map_err(StoreError::other)?;
    }
    Ok(())
}

fn create_resets(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(RESETS).map(drop).map_err(StoreError::other)
}

fn create_sso_clients(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(SSO_CLIENTS)
        .map(drop)
        .map_err(StoreError::other)
}

fn create_passkeys(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(PASSKEYS)
        .map(drop)
        .map_err(StoreError::other)
}

pub const SCHEMA: Schema = Schema {
    name: "mcias",
    migrations: &[
        Migration {
            to_version: 1,
            description: "accounts, tokens, keys, policy, audit",
            apply: create,
        },
        Migration {
            to_version: 2,
            description: "credential-reset tokens",
            apply: create_resets,
        },
        Migration {
            to_version: 3,
            description: "SSO (OAuth 2.0 / OIDC) clients",
            apply: create_sso_clients,
        },
        Migration {
            to_version: 4,
            description: "passkeys (WebAuthn credentials, sealed)",
            apply: create_passkeys,
        },
    ],
};

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("mcias").join("mcias.redb")
}

pub fn get<T: DeserializeOwned>(
    store: &Store,
    table: Table,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    let txn = store.db().begin_read().map_err(StoreError::other)?;
    let t = txn.open_table(table).map_err(StoreError::other)?;
    match t.get(key).map_err(StoreError::other)? {
        Some(v) => Ok(Some(
            serde_json::from_slice(v.value()).map_err(StoreError::other)?,
        )),
        None => Ok(None),
    }
}

pub fn get_raw(store: &Store, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    let txn = store.db().begin_read().map_err(StoreError::other)?;
    let t = txn.open_table(table).map_err(StoreError::other)?;
    Ok(t.get(key)
        .map_err(StoreError::other)?
        .map(|v| v.value().to_vec()))
}

pub fn all<T: DeserializeOwned>(store: &Store, table: Table) -> Result<Vec<T>, StoreError> {
    let txn = store.db().begin_read().map_err(StoreError::other)?;
    let t = txn.open_table(table).map_err(StoreError::other)?;
    let mut out = Vec::new();
    for row in t.iter().map_err(StoreError::other)? {
        let (_, v) = row.map_err(StoreError::other)?;
        out.push(serde_json::from_slice(v.value()).map_err(StoreError::other)?);
    }
    Ok(out)
}

/// The last `limit` rows of `table` (highest keys), newest first.
pub fn last<T: DeserializeOwned>(
    store: &Store,
    table: Table,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    let txn = store.db().begin_read().map_err(StoreError::other)?;
    let t = txn.open_table(table).map_err(StoreError::other)?;
    let mut out = Vec::new();
    for row in t.iter().map_err(StoreError::other)?.rev().take(limit) {
        let (_, v) = row.map_err(StoreError::other)?;
        out.push(serde_json::from_slice(v.value()).map_err(StoreError::other)?);
    }
    Ok(out)
}

/// A write transaction with JSON helpers; commit is durable.
pub struct Tx(redb::WriteTransaction);

impl Tx {
    pub fn begin(store: &Store) -> Result<Self, StoreError> {
        store
            .db()
            .begin_write()
            .map(Self)
            .map_err(StoreError::other)
    }
    pub fn put<T: Serialize>(&self, table: Table, key: &[u8], value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(StoreError::other)?;
        self.put_raw(table, key, &bytes)
    }
    pub fn put_raw(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.0
            .open_table(table)
            .map_err(StoreError::other)?
            .insert(key, value)
            .map_err(StoreError::other)?;
        Ok(())
    }
    pub fn delete(&self, table: Table, key: &[u8]) -> Result<(), StoreError> {
        self.0
            .open_table(table)
            .map_err(StoreError::other)?
            .remove(key)
            .map_err(StoreError::other)?;
        Ok(())
    }
    /// Appends to the audit log with the next sequence number.
    pub fn audit<T: Serialize>(
        &self,
        event: &mut T,
        set_seq: impl FnOnce(&mut T, u64),
    ) -> Result<(), StoreError> {
        let mut t = self.0.open_table(AUDIT).map_err(StoreError::other)?;
        let next = match t.last().map_err(StoreError::other)? {
            Some((k, _)) => {
                let b: [u8; 8] = k
                    .value()
                    .try_into()
                    .map_err(|_| StoreError::other("bad audit key"))?;
                u64::from_be_bytes(b) + 1
            }
            None => 1,
        };
        set_seq(event, next);
        let bytes = serde_json::to_vec(event).map_err(StoreError::other)?;
        t.insert(next.to_be_bytes().as_slice(), bytes.as_slice())
            .map_err(StoreError::other)?;
        Ok(())
    }
    pub fn commit(self) -> Result<(), StoreError> {
        self.0.commit().map_err(StoreError::other)
    }
}
