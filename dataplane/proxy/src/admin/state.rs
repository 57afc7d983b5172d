//! The admin side's state: the single writer of the proxy's store and the
//! single publisher of snapshots.
//!
//! Every mutation (one file per entity beside this one) runs the same steps
//! under one mutex (held only by the admin thread, never by a worker):
//! validate into a domain type → check origin rules → bind sockets if a
//! listener appears → commit to redb → rebuild and [`ProxyState::publish`]
//! the snapshot. A failure at any step returns before the commit, so nothing
//! changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use mc_kit::api::ApiError;
use mc_kit::store::Store;
use mc_kit::store::json::{ReadTx, WriteTx};

use super::config::{Bootstrap, ProxySection};
use super::firewall::{LimitsRecord, load_geoip};
use super::listeners::bind;
use super::store as db;
use super::sweeper::Retired;
use crate::firewall::{FirewallRule, FirewallState, GeoIpInfo, Limits, RuleTarget};
use crate::model::{
    HostPattern, Invalid, L7PolicySpec, ListenerSpec, Origin, PolicyRule, RouteMode, RouteSpec,
};
use crate::published::{BoundListener, ListenerSet, Published};
use crate::snapshot::{self, Snapshot};
use crate::stats::GlobalCounters;
use crate::tls::{LoadedCertificate, Sealer, StoredCertificate};

/// The merged configuration and the bound sockets, behind the admin mutex.
pub(super) struct Inner {
    pub(super) generation: u64,
    pub(super) listeners: BTreeMap<String, ListenerSpec>,
    pub(super) routes: BTreeMap<(String, HostPattern), RouteSpec>,
    pub(super) rules: BTreeMap<RuleTarget, FirewallRule>,
    pub(super) limits: LimitsRecord,
    pub(super) geoip_path: Option<PathBuf>,
    pub(super) geoip: Option<Arc<GeoIpInfo>>,
    pub(super) bound: HashMap<String, Arc<BoundListener>>,
    pub(super) certificates: HashMap<String, LoadedCertificate>,
    /// By id.
    pub(super) policies: BTreeMap<String, L7PolicySpec>,
}

/// The admin side: the merged configuration, the store, and the publisher.
pub struct ProxyState {
    pub(super) inner: Mutex<Inner>,
    pub(super) store: Arc<Store>,
    /// What the workers read (and the metrics collector).
    pub published: Arc<Published>,
    pub(super) config_file: PathBuf,
    pub(super) sealer: Sealer,
    /// Snapshots replaced but possibly still held by connections.
    pub(super) retired: Retired,
    /// Chains must lead to these; TLS backends are verified against them by default.
    pub(super) roots: Arc<rustls::RootCertStore>,
    pub(super) ticketer: Arc<dyn rustls::server::ProducesTickets>,
    /// The active health checks' tasks.
    pub(super) checks: super::health::HealthChecks,
    /// Managed certificates: specs and renewal status.
    pub(super) managed: super::managed::Managed,
}

impl ProxyState {
    /// Opens the store, merges the config file's bootstrap entries (file wins
    /// for its own entries), binds every listener, and publishes the first snapshot.
    pub(crate) fn start(
        data_dir: &Path,
        section: &ProxySection,
        config_file: &Path,
        workers: usize,
        mut handed: super::HandedOver,
    ) -> Result<Self, ApiError> {
        let bootstrap = section.bootstrap()?;
        let store = Arc::new(Store::open(&db::path(data_dir), &db::SCHEMA)?);
        let roots =
            Arc::new(crate::tls::load_roots(&bootstrap.authorities).map_err(|m| {
                ApiError::Invalid(Invalid::new("proxy.certificate_authorities", m))
            })?);
        let sealer = Sealer::open(
            db::path(data_dir)
                .parent()
                .unwrap_or_else(|| Path::new(".")),
        )
        .map_err(ApiError::Internal)?;
        let ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
            .map_err(|e| ApiError::Internal(format!("TLS session ticketer: {e}")))?;
        let inner = Self::merge(&store, bootstrap, config_file, &sealer, &roots)?;
        let managed = super::managed::Managed::load(
            &store,
            section.metacrypt.clone(),
            section.acme.clone(),
            &inner.certificates,
        )?;
        let globals = GlobalCounters::new(workers);
        let firewall = Arc::new(
            FirewallState::build(
                &inner.rules.values().cloned().collect::<Vec<_>>(),
                inner.limits.limits,
                inner.geoip.clone(),
                None,
            )
            .map_err(|e| Invalid::new("proxy.firewall", e.to_string()))?,
        );
        let listeners: Vec<_> = inner.listeners.values().cloned().collect();
        let routes: Vec<_> = inner.routes.values().cloned().collect();
        let snap = snapshot::build(0, workers, &listeners, &routes, firewall, None);
        let state = Self {
            inner: Mutex::new(inner),
            store,
            published: Arc::new(Published::new(
                snap,
                globals,
                workers,
                section.max_client_hello,
            )),
            config_file: config_file.to_owned(),
            retired: Retired::default(),
            sealer,
            roots,
            ticketer,
            checks: Default::default(),
            managed,
        };
        {
            let mut inner = state.lock();
            let names: Vec<_> = inner.listeners.keys().cloned().collect();
            for name in names {
                let spec = inner.listeners.get(&name).cloned();
                if let Some(spec) = spec {
                    let bound = match handed.take(&spec) {
                        Some(b) => b,
                        None => bind(&spec, workers)?,
                    };
                    inner.bound.insert(name, bound);
                }
            }
            for name in handed.leftover() {
                tracing::warn!(
                    listener = name,
                    "a handed-over listener is not configured any more; closing it"
                );
            }
            state.publish(&mut inner, false);
        }
        Ok(state)
    }

    fn merge(
        store: &Store,
        boot: Bootstrap,
        config_file: &Path,
        sealer: &Sealer,
        roots: &rustls::RootCertStore,
    ) -> Result<Inner, ApiError> {
        let inner = Self::plan(store, boot, config_file, sealer, roots)?;
        write_merged(store, &inner)?;
        Ok(inner)
    }

    /// The kit's origin rule applied to the stored state and the file's
    /// `boot` entries, checked (certificates, the routes' certificates);
    /// nothing is written.
    pub(super) fn plan(
        store: &Store,
        boot: Bootstrap,
        config_file: &Path,
        sealer: &Sealer,
        roots: &rustls::RootCertStore,
    ) -> Result<Inner, ApiError> {
        let read = ReadTx::begin(store)?;
        let stored_certificates = read.all(db::CERTIFICATES)?;
        let stored_policies = read.all(db::L7_POLICIES)?;
        let stored_listeners = read.all(db::LISTENERS)?;
        let stored_routes = read.all(db::ROUTES)?;
        let stored_rules = read.all(db::FIREWALL_RULES)?;
        let stored_limits = read.all(db::FIREWALL_LIMITS)?;
        drop(read);
        let file = config_file.display();

        let listeners = file_wins(
            stored_listeners,
            boot.listeners,
            |l| l.name.clone(),
            |l| l.origin,
            |l| tracing::warn!(listener = %l.name, %file, "listener defined in the config file replaces the one stored through the admin API"),
        );
        let mut routes = file_wins(
            stored_routes,
            boot.routes,
            RouteSpec::key,
            |r| r.origin,
            |r| tracing::warn!(hostname = %r.hostname, listener = %r.listener, %file, "route defined in the config file replaces the one stored through the admin API"),
        );
        routes.retain(|_, r| {
            let keep = r.origin == Origin::ConfigFile || listeners.contains_key(&r.listener);
            if !keep {
                tracing::warn!(listener = %r.listener, hostname = %r.hostname, "dropping stored route: its listener no longer exists");
            }
            keep
        });
        let rules = file_wins(
            stored_rules,
            boot.rules,
            |r| r.target.clone(),
            |r| r.origin,
            |_| {},
        );
        let limits = match boot.limits {
            Some(limits) => LimitsRecord {
                limits,
                origin: Origin::ConfigFile,
            },
            None => stored_limits
                .into_iter()
                .find(|l| l.origin == Origin::AdminApi)
                .unwrap_or(LimitsRecord {
                    limits: Limits::default(),
                    origin: Origin::AdminApi,
                }),
        };
        let geoip = match &boot.geoip_db {
            Some(p) => Some(load_geoip(p).map_err(ApiError::FailedPrecondition)?),
            None => None,
        };
        let mut certificates = HashMap::new();
        for c in stored_certificates
            .into_iter()
            .filter(|c| c.origin == Origin::AdminApi)
        {
            let name = c.name.clone();
            match crate::tls::load_stored(c, sealer) {
                Ok(loaded) => {
                    certificates.insert(name, loaded);
                }
                Err(e) => {
                    tracing::error!(certificate = %name, error = %e, "dropping stored certificate")
                }
            }
        }
        for (i, (name, chain, key)) in boot.certificates.into_iter().enumerate() {
            let (certified, info) = crate::tls::check(
                &name,
                &chain,
                &key,
                roots,
                rustls_pki_types::UnixTime::now(),
            )
            .map_err(|m| Invalid::new(format!("proxy.certificates[{i}]"), m))?;
            let key_sealed = sealer
                .seal(&name, key.as_bytes())
                .map_err(ApiError::Internal)?;
            certificates.insert(
                name.clone(),
                LoadedCertificate {
                    stored: StoredCertificate {
                        name,
                        chain_pem: chain,
                        key_sealed,
                        info,
                        origin: Origin::ConfigFile,
                    },
                    key: certified,
                },
            );
        }
        for r in routes.values() {
            if let Some(l7) = &r.l7
                && !certificates.contains_key(&l7.certificate)
            {
                if r.origin == Origin::ConfigFile {
                    return Err(ApiError::Invalid(Invalid::new(
                        "proxy.routes.l7.certificate",
                        format!(
                            "route `{}` names certificate `{}`, which is neither in proxy.certificates nor stored",
                            r.hostname, l7.certificate
                        ),
                    )));
                }
                tracing::error!(route = %r.hostname, certificate = %l7.certificate, "stored route names a missing certificate; it will reset connections");
            }
        }
        let mut policies = BTreeMap::new();
        for p in stored_policies {
            if routes
                .get(&(p.listener.clone(), p.hostname.clone()))
                .is_some_and(|r| r.mode == RouteMode::L7)
            {
                policies.insert(p.id.clone(), p);
            }
        }
        Ok(Inner {
            generation: 0,
            listeners,
            routes,
            rules,
            limits,
            geoip_path: boot.geoip_db,
            geoip,
            bound: HashMap::new(),
            certificates,
            policies,
        })
    }

    /// The store, for snapshots.
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Builds and publishes the next snapshot (and listener set) from `inner`.
    pub(super) fn publish(&self, inner: &mut Inner, firewall_changed: bool) {
        inner.generation += 1;
        let previous = self.published.snapshot.load_full();
        let firewall = match firewall_changed {
            true => match FirewallState::build(
                &inner.rules.values().cloned().collect::<Vec<_>>(),
                inner.limits.limits,
                inner.geoip.clone(),
                Some(&previous.firewall),
            ) {
                Ok(f) => Arc::new(f),
                Err(e) => {
                    // Limits are validated before they are stored; keep the old state if not.
                    tracing::error!(error = %e, "firewall limits rejected; keeping the previous firewall");
                    previous.firewall.clone()
                }
            },
            false => previous.firewall.clone(),
        };
        let listeners: Vec<_> = inner.listeners.values().cloned().collect();
        let routes: Vec<_> = inner.routes.values().cloned().collect();
        let snap = self.build_snapshot(inner, &listeners, &routes, firewall, Some(&previous));
        let snap = Arc::new(snap);
        self.checks.reconcile(&snap);
        let replaced = self.published.snapshot.swap(snap);
        self.retired.retire(replaced);
        self.published.listeners.store(Arc::new(ListenerSet {
            listeners: inner.bound.values().cloned().collect(),
        }));
        self.published.notify(inner.generation);
        tracing::info!(
            generation = inner.generation,
            listeners = listeners.len(),
            routes = routes.len(),
            "published snapshot"
        );
    }

    fn build_snapshot(
        &self,
        inner: &Inner,
        listeners: &[ListenerSpec],
        routes: &[RouteSpec],
        firewall: Arc<FirewallState>,
        previous: Option<&Snapshot>,
    ) -> Snapshot {
        let mut by_route: HashMap<(String, HostPattern), Vec<(u32, PolicyRule)>> = HashMap::new();
        for p in inner.policies.values() {
            by_route
                .entry((p.listener.clone(), p.hostname.clone()))
                .or_default()
                .push((p.position, p.rule.clone()));
        }
        let policies = by_route
            .into_iter()
            .map(|(k, mut v)| {
                v.sort_by_key(|(pos, _)| *pos);
                (k, v.into_iter().map(|(_, r)| r).collect())
            })
            .collect();
        let mut l7 = snapshot::L7Inputs {
            configs: crate::tls::ServerConfigs::new(self.ticketer.clone(), &inner.certificates),
            policies,
            default_roots: self.roots.clone(),
        };
        snapshot::build_with_l7(
            inner.generation,
            self.published.workers,
            listeners,
            routes,
            firewall,
            previous,
            Some(&mut l7),
        )
    }

    /// Frees replaced snapshots no connection holds any more (call periodically
    /// from the admin thread). Returns how many are still held.
    pub fn sweep_retired(&self) -> usize {
        self.retired.sweep()
    }

    /// Stops accepting on every listener (shutdown); L7 connections close
    /// once their open requests finish.
    /// Every bound listener's sockets (duplicated descriptors), for handing
    /// them to a successor process: (name, address, one socket per worker).
    pub fn listening_sockets(
        &self,
    ) -> Vec<(String, std::net::SocketAddr, Vec<std::net::TcpListener>)> {
        let inner = self.lock();
        let mut out = Vec::new();
        for bound in inner.bound.values() {
            let dups: Result<Vec<_>, _> = bound
                .sockets
                .iter()
                .map(std::net::TcpListener::try_clone)
                .collect();
            match dups {
                Ok(d) => out.push((bound.name.clone(), bound.address, d)),
                Err(e) => {
                    tracing::error!(listener = %bound.name, error = %e, "cannot duplicate a listening socket")
                }
            }
        }
        out
    }

    /// Accept loops running across the workers.
    pub fn accepting(&self) -> usize {
        self.published
            .armed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sockets the workers should be accepting on.
    pub fn socket_count(&self) -> usize {
        self.lock().bound.values().map(|b| b.sockets.len()).sum()
    }

    pub(crate) fn close_listeners(&self) {
        self.published
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.close_listeners_only();
    }

    fn close_listeners_only(&self) {
        let mut inner = self.lock();
        inner.bound.clear();
        self.published
            .listeners
            .store(Arc::new(ListenerSet::default()));
        inner.generation += 1;
        self.published.notify(inner.generation);
    }

    /// The kit's origin rule, naming the config file to edit.
    pub(super) fn refuse_config_owned(&self, what: &str, origin: Origin) -> Result<(), ApiError> {
        mc_kit::origin::refuse_config_owned(origin, what).map_err(|e| {
            ApiError::FailedPrecondition(format!("{e} ({})", self.config_file.display()))
        })
    }
}

/// Rewrites the store so it holds exactly `m`'s entries (one transaction).
pub(super) fn write_merged(store: &Store, m: &Inner) -> Result<(), ApiError> {
    let tx = WriteTx::begin(store)?;
    tx.delete_where(db::LISTENERS, |_, _| true)?;
    tx.delete_where(db::ROUTES, |_, _| true)?;
    tx.delete_where(db::FIREWALL_RULES, |_, _| true)?;
    tx.delete_where(db::FIREWALL_LIMITS, |_, _| true)?;
    tx.delete_where(db::CERTIFICATES, |_, _| true)?;
    tx.delete_where(db::L7_POLICIES, |_, _| true)?;
    for l in m.listeners.values() {
        tx.put(db::LISTENERS, l.name.as_bytes(), l)?;
    }
    for r in m.routes.values() {
        tx.put(
            db::ROUTES,
            &db::route_key(&r.listener, r.hostname.as_str()),
            r,
        )?;
    }
    for r in m.rules.values() {
        tx.put(db::FIREWALL_RULES, &r.target.key(), r)?;
    }
    tx.put(db::FIREWALL_LIMITS, db::LIMITS_KEY, &m.limits)?;
    for c in m.certificates.values() {
        tx.put(db::CERTIFICATES, c.stored.name.as_bytes(), &c.stored)?;
    }
    for p in m.policies.values() {
        tx.put(db::L7_POLICIES, p.id.as_bytes(), p)?;
    }
    tx.commit()?;
    Ok(())
}

/// The kit's origin rule over one table: the file's entries replace stored
/// ones with the same key (`replaced` is told when that drops an API entry),
/// config-owned entries the file no longer declares go, API entries stay.
fn file_wins<K: Ord + Clone, V>(
    stored: Vec<V>,
    declared: Vec<V>,
    key: impl Fn(&V) -> K,
    origin: impl Fn(&V) -> Origin,
    replaced: impl Fn(&V),
) -> BTreeMap<K, V> {
    let plan = mc_kit::origin::merge(
        stored.iter().map(|v| (key(v), origin(v))),
        declared.into_iter().map(|v| (key(&v), v)),
    );
    let gone: BTreeSet<K> = plan.remove.into_iter().collect();
    let mut out: BTreeMap<K, V> = stored
        .into_iter()
        .map(|v| (key(&v), v))
        .filter(|(k, _)| !gone.contains(k))
        .collect();
    for (k, v) in plan.upsert {
        if out
            .get(&k)
            .is_some_and(|old| origin(old) == Origin::AdminApi)
        {
            replaced(&v);
        }
        out.insert(k, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn the_file_wins_for_what_it_declares_and_api_entries_stay() {
        let stored = vec![
            ("a", Origin::ConfigFile, 1),
            ("b", Origin::ConfigFile, 2),
            ("c", Origin::AdminApi, 3),
            ("d", Origin::AdminApi, 4),
        ];
        let declared = vec![("a", Origin::ConfigFile, 10), ("d", Origin::ConfigFile, 40)];
        let replaced = Cell::new(0);
        let out = file_wins(
            stored,
            declared,
            |v| v.0,
            |v| v.1,
            |_| replaced.set(replaced.get() + 1),
        );
        let kept: Vec<_> = out.values().map(|v| v.2).collect();
        assert_eq!(
            kept,
            [10, 3, 40],
            "b left the file; c is the API's; a and d are the file's"
        );
        assert_eq!(replaced.get(), 1, "only d replaced an API entry");
    }
}
