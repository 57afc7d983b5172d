//! Metacrypt's redb store: `<data_dir>/metacrypt/metacrypt.redb`, schema
//! `metacrypt`, opened through `mc_kit::store` (0600/0700, durable commits,
//! migrations in order, newer schemas refused).
//!
//! Tables (v1): `barrier_seal` (`config`: the slots), `barrier_mek`
//! (`current`), `barrier_keys` (mount id u64 BE ‖ DEK version u32 BE), and
//! the kit's `audit`; (v2) `mounts` and `policy` (sealed under the `sys`
//! ring), `kv_meta` and `kv_data` (sealed under their mount's ring);
//! (v3) `transit_keys` (sealed under its mount's ring); (v4) `user_keys`
//! (sealed under its mount's ring); (v5) the pki engine's, (v6) the ssh
//! engine's tables, (v7) the pki engine's ACME state (see `engines::pki`,
//! `engines::ssh`); (v8) `barrier_jobs` (mount id u64 BE → the mount's
//! rewrap job, plain JSON: versions, counts and a cursor, no secret).
//! Barrier rows are plain JSON whose secrets are wrapped keys; every other
//! value is sealed in the envelope.
//!
//! Invariant: every change and its audit row commit in one transaction.

use mc_kit::store::json::{JsonTable, create_tables};
use mc_kit::store::{Migration, Schema, StoreError, Table};
use redb::TableDefinition;

pub(crate) use mc_kit::store::audit::AUDIT;

use crate::barrier::rewrap::RewrapJob;
use crate::barrier::{DekRecord, MekRecord, SealConfig};

pub(crate) const BARRIER_SEAL: JsonTable<SealConfig> = JsonTable::new("barrier_seal");
pub(crate) const BARRIER_MEK: JsonTable<MekRecord> = JsonTable::new("barrier_mek");
pub(crate) const BARRIER_KEYS: JsonTable<DekRecord> = JsonTable::new("barrier_keys");
pub(crate) const BARRIER_JOBS: JsonTable<RewrapJob> = JsonTable::new("barrier_jobs");

/// `mounts`: sys id 0 ‖ name → the mount (sealed, `sys` ring).
pub(crate) const MOUNTS: Table = TableDefinition::new("mounts");
/// `policy`: sys id 0 ‖ rule id → the rule (sealed, `sys` ring).
pub(crate) const POLICY: Table = TableDefinition::new("policy");
/// `kv_meta`: mount id ‖ path → the path's metadata (sealed, the mount's ring).
pub(crate) const KV_META: Table = TableDefinition::new("kv_meta");
/// `kv_data`: mount id ‖ path ‖ 0 ‖ version (u64 BE) → the secret (sealed).
pub(crate) const KV_DATA: Table = TableDefinition::new("kv_data");
/// `transit_keys`: mount id ‖ key name → the key's state (sealed, the mount's ring).
pub(crate) const TRANSIT_KEYS: Table = TableDefinition::new("transit_keys");
/// `user_keys`: mount id ‖ 1 ‖ account id → the account's key pairs, and
/// mount id ‖ 2 ‖ username → its account id (sealed, the mount's ring).
pub(crate) const USER_KEYS: Table = TableDefinition::new("user_keys");

/// `pki_issuers`, `pki_roles`, `pki_certs` (sealed, the mount's ring) and
/// the clear `pki_public`, `pki_names` (v5): see `engines::pki`.
pub(crate) use crate::engines::pki::tables::{
    ACME, PKI_CERTS, PKI_ISSUERS, PKI_NAMES, PKI_PUBLIC, PKI_ROLES,
};
/// `ssh_ca`, `ssh_profiles`, `ssh_certs` (sealed, the mount's ring) and
/// the clear `ssh_public`, `ssh_names` (v6): see `engines::ssh`.
pub(crate) use crate::engines::ssh::tables::{
    SSH_CA, SSH_CERTS, SSH_NAMES, SSH_PROFILES, SSH_PUBLIC,
};

/// The only tables whose rows are stored in clear (public data served
/// while sealed); the barrier's own rows aside.
pub(crate) const PUBLIC_TABLES: &[Table] = &[PKI_PUBLIC, PKI_NAMES, SSH_PUBLIC, SSH_NAMES];

pub(crate) const SEAL_KEY: &[u8] = b"config";
pub(crate) const MEK_KEY: &[u8] = b"current";

fn create(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(
        txn,
        &[
            BARRIER_SEAL.def(),
            BARRIER_MEK.def(),
            BARRIER_KEYS.def(),
            AUDIT.def(),
        ],
    )
}

fn engines(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[MOUNTS, POLICY, KV_META, KV_DATA])
}

fn transit(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[TRANSIT_KEYS])
}

fn user(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[USER_KEYS])
}

fn pki(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(
        txn,
        &[PKI_ISSUERS, PKI_ROLES, PKI_CERTS, PKI_PUBLIC, PKI_NAMES],
    )
}

fn ssh(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(
        txn,
        &[SSH_CA, SSH_PROFILES, SSH_CERTS, SSH_PUBLIC, SSH_NAMES],
    )
}

fn acme(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[ACME])
}

fn jobs(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[BARRIER_JOBS.def()])
}

pub(crate) const SCHEMA: Schema = Schema {
    name: "metacrypt",
    migrations: &[
        Migration {
            to_version: 1,
            description: "barrier tables and audit",
            apply: create,
        },
        Migration {
            to_version: 2,
            description: "mounts, policy and the kv engine's tables",
            apply: engines,
        },
        Migration {
            to_version: 3,
            description: "the transit engine's keys",
            apply: transit,
        },
        Migration {
            to_version: 4,
            description: "the user engine's keys",
            apply: user,
        },
        Migration {
            to_version: 5,
            description: "the pki engine's tables",
            apply: pki,
        },
        Migration {
            to_version: 6,
            description: "the ssh engine's tables",
            apply: ssh,
        },
        Migration {
            to_version: 7,
            description: "the pki engine's ACME state",
            apply: acme,
        },
        Migration {
            to_version: 8,
            description: "the barrier's resumable jobs (DEK rewrap)",
            apply: jobs,
        },
    ],
};

/// The row key of a `sys` row (mount id 0 ‖ name).
pub(crate) fn sys_key(name: &str) -> Vec<u8> {
    mount_key(crate::barrier::SYS_MOUNT, name.as_bytes())
}

/// `mount id ‖ rest`: every engine row key starts with its mount's id.
pub(crate) fn mount_key(mount: u64, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + rest.len());
    k.extend_from_slice(&mount.to_be_bytes());
    k.extend_from_slice(rest);
    k
}

/// The `barrier_keys` row key of a mount's DEK version.
pub(crate) fn dek_key(mount: u64, version: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&mount.to_be_bytes());
    k[8..].copy_from_slice(&version.to_be_bytes());
    k
}
