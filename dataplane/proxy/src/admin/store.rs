//! MC-Proxy's redb store: `<data_dir>/mc-proxy/mc-proxy.redb`.
//!
//! Tables (the kit's typed JSON tables, keyed by bytes): `listeners` (name),
//! `routes` (listener NUL hostname), `firewall_rules` (rule key),
//! `firewall_limits` (one row), `certificates` (name; the key sealed),
//! `l7_policies` (id), `managed_certificates` (name: the spec),
//! `acme_accounts` (directory URL: the ACME account, its credentials sealed). Every admin change is one [`WriteTx`], committed before
//! the new snapshot is published and before the caller is answered.
//!
//! [`WriteTx`]: mc_kit::store::json::WriteTx

use std::path::{Path, PathBuf};

use mc_kit::store::json::{JsonTable, create_tables};
use mc_kit::store::{Migration, Schema, StoreError};

use super::firewall::LimitsRecord;
use super::managed::{ManagedSpec, StoredAccount};
use crate::firewall::FirewallRule;
use crate::model::{L7PolicySpec, ListenerSpec, RouteSpec};
use crate::tls::StoredCertificate;

pub(super) const LISTENERS: JsonTable<ListenerSpec> = JsonTable::new("listeners");
pub(super) const ROUTES: JsonTable<RouteSpec> = JsonTable::new("routes");
pub(super) const FIREWALL_RULES: JsonTable<FirewallRule> = JsonTable::new("firewall_rules");
pub(super) const FIREWALL_LIMITS: JsonTable<LimitsRecord> = JsonTable::new("firewall_limits");
pub(super) const CERTIFICATES: JsonTable<StoredCertificate> = JsonTable::new("certificates");
pub(super) const L7_POLICIES: JsonTable<L7PolicySpec> = JsonTable::new("l7_policies");
pub(super) const MANAGED: JsonTable<ManagedSpec> = JsonTable::new("managed_certificates");
pub(super) const ACME_ACCOUNTS: JsonTable<StoredAccount> = JsonTable::new("acme_accounts");

/// The key of the one row of [`FIREWALL_LIMITS`].
pub(super) const LIMITS_KEY: &[u8] = b"limits";

fn create_v1_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(
        txn,
        &[
            LISTENERS.def(),
            ROUTES.def(),
            FIREWALL_RULES.def(),
            FIREWALL_LIMITS.def(),
        ],
    )
}

fn create_l7_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[CERTIFICATES.def(), L7_POLICIES.def()])
}

fn create_managed_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[MANAGED.def()])
}

fn create_acme_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[ACME_ACCOUNTS.def()])
}

pub const SCHEMA: Schema = Schema {
    name: "mc-proxy",
    migrations: &[
        Migration {
            to_version: 1,
            description: "listeners, routes, firewall",
            apply: create_v1_tables,
        },
        Migration {
            to_version: 2,
            description: "L7: certificates (keys sealed), per-route policies",
            apply: create_l7_tables,
        },
        Migration {
            to_version: 3,
            description: "managed certificates (specs; the certificates in `certificates`)",
            apply: create_managed_tables,
        },
        Migration {
            to_version: 4,
            description: "ACME accounts of managed certificates (credentials sealed)",
            apply: create_acme_tables,
        },
    ],
};

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("mc-proxy").join("mc-proxy.redb")
}

/// The key that seals L7 private keys in the store ([`crate::tls`]): a
/// snapshot of the store is useless without it.
pub fn seal_key_path(data_dir: &Path) -> PathBuf {
    path(data_dir).with_file_name(crate::tls::SEAL_KEY_FILE)
}

pub(super) fn route_key(listener: &str, hostname: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(listener.len() + hostname.len() + 1);
    k.extend_from_slice(listener.as_bytes());
    k.push(0);
    k.extend_from_slice(hostname.as_bytes());
    k
}
