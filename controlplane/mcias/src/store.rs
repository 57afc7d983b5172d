//! MCIAS's redb store: `<data_dir>/mcias/mcias.redb`, as typed tables of
//! the kit ([`mc_kit::store::json`]): every value is JSON of its record
//! type, every redb error becomes a `StoreError` inside the kit, and the
//! audit log is the kit's ([`mc_kit::store::audit::AUDIT`]), appended in the
//! same write transaction as the change it records.
//!
//! Tables: `accounts` (id), `usernames` (name → id, raw bytes), `tokens`
//! (jti), `keys` (kid; private keys sealed with the master key, see
//! [`crate::keys`]), `policy` (rule id), `audit` (big-endian u64 seq),
//! `resets` (SHA-256 of a reset token; schema v2), `sso_clients` (client id;
//! secrets stored only as SHA-256; schema v3), `passkeys` (passkey id;
//! credentials sealed with the master key; schema v4).

use std::path::{Path, PathBuf};

use mc_kit::store::json::{JsonTable, create_tables};
use mc_kit::store::{Migration, Schema, StoreError, Table};

pub use mc_kit::store::audit::AUDIT;
pub use mc_kit::store::json::{ReadTx, WriteTx};

use crate::keys::KeyRecord;
use crate::model::{Account, PasskeyRecord, SsoClient, TokenRecord};
use crate::policy::Rule;

pub const ACCOUNTS: JsonTable<Account> = JsonTable::new("accounts");
/// Username → account id (raw bytes).
pub const USERNAMES: Table = Table::new("usernames");
pub const TOKENS: JsonTable<TokenRecord> = JsonTable::new("tokens");
pub const KEYS: JsonTable<KeyRecord> = JsonTable::new("keys");
pub const POLICY: JsonTable<Rule> = JsonTable::new("policy");
/// Credential-reset tokens, keyed by SHA-256 of the token (the token itself
/// is never stored): `{"account_id", "expires_at"}`.
pub const RESETS: JsonTable<serde_json::Value> = JsonTable::new("resets");
/// OAuth 2.0 / OIDC clients (see [`crate::core::sso`]).
pub const SSO_CLIENTS: JsonTable<SsoClient> = JsonTable::new("sso_clients");
/// WebAuthn credentials (see [`crate::core::mfa::passkey`]).
pub const PASSKEYS: JsonTable<PasskeyRecord> = JsonTable::new("passkeys");

fn create(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(
        txn,
        &[
            ACCOUNTS.def(),
            USERNAMES,
            TOKENS.def(),
            KEYS.def(),
            POLICY.def(),
            AUDIT.def(),
        ],
    )
}

fn create_resets(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[RESETS.def()])
}

fn create_sso_clients(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[SSO_CLIENTS.def()])
}

fn create_passkeys(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[PASSKEYS.def()])
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
