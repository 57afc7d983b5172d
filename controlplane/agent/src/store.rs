//! The agent's redb store (`<data_dir>/agent/agent.redb`): desired state
//! (the last spec applied successfully, per service) and observed state
//! (the container and host ports of each component).
//!
//! Invariants: `observed` rows exist only for a service with a `desired`
//! row, and a cutover writes both in one transaction, so a kill -9 leaves
//! either the old pair or the new pair; a failed apply changes only the
//! desired row's `last_steps`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mc_kit::store::json::{JsonTable, ReadTx, WriteTx, create_tables};
use mc_kit::store::{Migration, Schema, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::model::Spec;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Desired {
    pub(crate) spec: Spec,
    /// Whether its containers should run (StopService clears it).
    pub(crate) running: bool,
    pub(crate) applied_at: i64,
    /// The steps of the last ApplyService, successful or not.
    pub(crate) last_steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Step {
    pub(crate) step: String,
    pub(crate) success: bool,
    pub(crate) message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Observed {
    pub(crate) container: String,
    pub(crate) id: String,
    pub(crate) image: String,
    /// Host port by route name.
    pub(crate) ports: BTreeMap<String, u16>,
}

pub(crate) const DESIRED: JsonTable<Desired> = JsonTable::new("desired");
pub(crate) const OBSERVED: JsonTable<Observed> = JsonTable::new("observed");

fn create(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    create_tables(txn, &[DESIRED.def(), OBSERVED.def()])
}

pub(crate) const SCHEMA: Schema = Schema {
    name: "agent",
    migrations: &[Migration {
        to_version: 1,
        description: "desired services, observed containers",
        apply: create,
    }],
};

pub(crate) fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("agent").join("agent.redb")
}

/// `<service>/<component>`.
pub(crate) fn observed_key(service: &str, component: &str) -> Vec<u8> {
    format!("{service}/{component}").into_bytes()
}

pub(crate) fn desired(store: &Store, service: &str) -> Result<Option<Desired>, StoreError> {
    ReadTx::begin(store)?.get(DESIRED, service.as_bytes())
}

/// How many containers the agent runs (observed rows).
pub(crate) fn container_count(store: &Store) -> Result<u32, StoreError> {
    let n = ReadTx::begin(store)?.len(OBSERVED)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

pub(crate) fn all_desired(store: &Store) -> Result<Vec<Desired>, StoreError> {
    ReadTx::begin(store)?.all(DESIRED)
}

pub(crate) fn observed(
    store: &Store,
    service: &str,
    component: &str,
) -> Result<Option<Observed>, StoreError> {
    ReadTx::begin(store)?.get(OBSERVED, &observed_key(service, component))
}

/// Every host port a recorded container holds.
pub(crate) fn held_ports(store: &Store) -> Result<Vec<u16>, StoreError> {
    Ok(ReadTx::begin(store)?
        .all(OBSERVED)?
        .into_iter()
        .flat_map(|o| o.ports.into_values())
        .collect())
}

/// A successful cutover: the new desired spec and its components' rows,
/// replacing whatever the service had.
pub(crate) fn commit_applied(
    store: &Store,
    desired: &Desired,
    observed: &[(String, Observed)],
) -> Result<(), StoreError> {
    let name = desired.spec.name.clone();
    let tx = WriteTx::begin(store)?;
    let prefix = format!("{name}/");
    tx.delete_where(OBSERVED, |k, _| k.starts_with(prefix.as_bytes()))?;
    for (component, o) in observed {
        tx.put(OBSERVED, &observed_key(&name, component), o)?;
    }
    tx.put(DESIRED, name.as_bytes(), desired)?;
    tx.commit()
}

/// Replaces one component's observed row (reconcile).
pub(crate) fn put_observed(
    store: &Store,
    service: &str,
    component: &str,
    o: &Observed,
) -> Result<(), StoreError> {
    let tx = WriteTx::begin(store)?;
    tx.put(OBSERVED, &observed_key(service, component), o)?;
    tx.commit()
}

/// Records the steps of a failed apply on an existing desired row.
pub(crate) fn record_steps(store: &Store, service: &str, steps: &[Step]) -> Result<(), StoreError> {
    let tx = WriteTx::begin(store)?;
    if let Some(mut d) = tx.get(DESIRED, service.as_bytes())? {
        d.last_steps = steps.to_vec();
        tx.put(DESIRED, service.as_bytes(), &d)?;
    }
    tx.commit()
}

pub(crate) fn set_running(store: &Store, service: &str, running: bool) -> Result<bool, StoreError> {
    let tx = WriteTx::begin(store)?;
    let Some(mut d) = tx.get(DESIRED, service.as_bytes())? else {
        return Ok(false);
    };
    d.running = running;
    tx.put(DESIRED, service.as_bytes(), &d)?;
    tx.commit()?;
    Ok(true)
}

pub(crate) fn remove(store: &Store, service: &str) -> Result<(), StoreError> {
    let tx = WriteTx::begin(store)?;
    let prefix = format!("{service}/");
    tx.delete_where(OBSERVED, |k, _| k.starts_with(prefix.as_bytes()))?;
    tx.delete(DESIRED.def(), service.as_bytes())?;
    tx.commit()
}
