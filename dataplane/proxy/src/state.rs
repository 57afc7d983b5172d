//! The admin side of the proxy: the single writer of its store and the
//! single publisher of snapshots.
//!
//! Every mutation runs the same steps under one mutex (held only by the admin
//! thread, never by a worker): validate into a domain type → check origin
//! rules → bind sockets if a listener appears → commit to redb → rebuild and
//! publish the snapshot. A failure at any step returns before the commit, so
//! nothing changes.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use mc_kit::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::{Bootstrap, ProxySection};
use crate::firewall::{FirewallRule, FirewallState, GeoIpInfo, Limits, RuleTarget};
use crate::model::{
    HostPattern, Invalid, L7PolicySpec, ListenerSpec, MAX_POLICIES_PER_ROUTE, Origin, PolicyRule,
    RouteMode, RouteSpec,
};
use crate::snapshot::{self, Snapshot};
use crate::stats::GlobalCounters;
use crate::store::{self as db, Op};
use crate::tls::{LoadedCertificate, Sealer, StoredCertificate};

/// Why an admin call was refused; maps one-to-one onto gRPC codes.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    InvalidArgument(#[from] Invalid),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<AdminError> for tonic::Status {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::InvalidArgument(i) => Self::invalid_argument(i.to_string()),
            AdminError::NotFound(m) => Self::not_found(m),
            AdminError::FailedPrecondition(m) => Self::failed_precondition(m),
            AdminError::Internal(m) => Self::internal(m),
        }
    }
}

/// A listener's bound sockets: one `SO_REUSEPORT` socket per worker.
#[derive(Debug)]
pub struct BoundListener {
    pub name: String,
    pub address: SocketAddr,
    pub sockets: Vec<std::net::TcpListener>,
}

/// The listeners workers should be accepting on. Kept apart from the routing
/// snapshot so that a removed listener's sockets close as soon as workers
/// let go, even while old connections still hold old snapshots.
#[derive(Debug, Default)]
pub struct ListenerSet {
    pub listeners: Vec<Arc<BoundListener>>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct LimitsRecord {
    limits: Limits,
    origin: Origin,
}

struct Inner {
    generation: u64,
    listeners: BTreeMap<String, ListenerSpec>,
    routes: BTreeMap<(String, HostPattern), RouteSpec>,
    rules: BTreeMap<RuleTarget, FirewallRule>,
    limits: LimitsRecord,
    geoip_path: Option<PathBuf>,
    geoip: Option<Arc<GeoIpInfo>>,
    bound: HashMap<String, Arc<BoundListener>>,
    certificates: HashMap<String, LoadedCertificate>,
    /// By id.
    policies: BTreeMap<String, L7PolicySpec>,
}

/// Shared between the admin thread (writes) and the workers (reads).
#[derive(Debug)]
pub struct Published {
    pub snapshot: ArcSwap<Snapshot>,
    pub listeners: ArcSwap<ListenerSet>,
    /// Bumped after every publish; workers wait on it to pick up listeners.
    pub changes: watch::Sender<u64>,
    pub globals: GlobalCounters,
    pub workers: usize,
    pub max_client_hello: usize,
    /// Set when the process drains: L7 connections finish their requests and close.
    pub draining: std::sync::atomic::AtomicBool,
}

pub struct ProxyState {
    inner: Mutex<Inner>,
    store: Arc<Store>,
    pub published: Arc<Published>,
    config_file: PathBuf,
    sealer: Sealer,
    /// Snapshots replaced but possibly still held by connections. Holding
    /// one reference here means a worker never drops the last one: freeing a
    /// 10k-route table takes milliseconds, and that happens here, on the
    /// admin thread ([`Self::sweep_retired`]).
    retired: Mutex<Vec<Arc<Snapshot>>>,
    /// Chains must lead to these; TLS backends are verified against them by default.
    roots: Arc<rustls::RootCertStore>,
    ticketer: Arc<dyn rustls::server::ProducesTickets>,
}

const BACKLOG: i32 = 4096;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn load_geoip(path: &Path) -> Result<Arc<GeoIpInfo>, String> {
    let db = mc_firewall::GeoIp::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Arc::new(GeoIpInfo {
        db,
        path: path.to_owned(),
        loaded_at_unix: unix_now(),
    }))
}

impl ProxyState {
    /// Opens the store, merges the config file's bootstrap entries (file wins
    /// for its own entries), binds every listener, and publishes the first snapshot.
    pub fn start(
        data_dir: &Path,
        section: &ProxySection,
        config_file: &Path,
        workers: usize,
    ) -> Result<Self, AdminError> {
        let bootstrap = section
            .bootstrap()
            .map_err(|e| AdminError::InvalidArgument(Invalid::new(e.field, e.message)))?;
        let store = Arc::new(Store::open(&db::path(data_dir), &db::SCHEMA)?);
        let roots = Arc::new(crate::tls::load_roots(&bootstrap.authorities).map_err(|m| {
            AdminError::InvalidArgument(Invalid::new("proxy.certificate_authorities", m))
        })?);
        let sealer = Sealer::open(
            db::path(data_dir)
                .parent()
                .unwrap_or_else(|| Path::new(".")),
        )
        .map_err(AdminError::Internal)?;
        let ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
            .map_err(|e| AdminError::Internal(format!("TLS session ticketer: {e}")))?;
        let inner = Self::merge(&store, bootstrap, config_file, &sealer, &roots)?;
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
        let (changes, _) = watch::channel(0);
        let state = Self {
            inner: Mutex::new(inner),
            store,
            published: Arc::new(Published {
                snapshot: ArcSwap::from_pointee(snap),
                listeners: ArcSwap::from_pointee(ListenerSet::default()),
                changes,
                globals,
                workers,
                max_client_hello: section.max_client_hello,
                draining: std::sync::atomic::AtomicBool::new(false),
            }),
            config_file: config_file.to_owned(),
            retired: Mutex::new(Vec::new()),
            sealer,
            roots,
            ticketer,
        };
        {
            let mut inner = state.lock();
            let names: Vec<_> = inner.listeners.keys().cloned().collect();
            for name in names {
                let spec = inner.listeners.get(&name).cloned();
                if let Some(spec) = spec {
                    let bound = bind(&spec, workers)?;
                    inner.bound.insert(name, bound);
                }
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
    ) -> Result<Inner, AdminError> {
        let stored_certificates: Vec<StoredCertificate> = db::load_all(store, db::CERTIFICATES)?;
        let stored_policies: Vec<L7PolicySpec> = db::load_all(store, db::L7_POLICIES)?;
        let stored_listeners: Vec<ListenerSpec> = db::load_all(store, db::LISTENERS)?;
        let stored_routes: Vec<RouteSpec> = db::load_all(store, db::ROUTES)?;
        let stored_rules: Vec<FirewallRule> = db::load_all(store, db::FIREWALL_RULES)?;
        let stored_limits: Vec<LimitsRecord> = db::load_all(store, db::FIREWALL_LIMITS)?;
        let file = config_file.display();

        let mut listeners = BTreeMap::new();
        for l in stored_listeners
            .into_iter()
            .filter(|l| l.origin == Origin::AdminApi)
        {
            listeners.insert(l.name.clone(), l);
        }
        for l in boot.listeners {
            if listeners.contains_key(&l.name) {
                tracing::warn!(listener = %l.name, %file, "listener defined in the config file replaces the one stored through the admin API");
            }
            listeners.insert(l.name.clone(), l);
        }
        let mut routes = BTreeMap::new();
        for r in stored_routes
            .into_iter()
            .filter(|r| r.origin == Origin::AdminApi)
        {
            if listeners.contains_key(&r.listener) {
                routes.insert(r.key(), r);
            } else {
                tracing::warn!(listener = %r.listener, hostname = %r.hostname, "dropping stored route: its listener no longer exists");
            }
        }
        for r in boot.routes {
            if routes.contains_key(&r.key()) {
                tracing::warn!(hostname = %r.hostname, listener = %r.listener, %file, "route defined in the config file replaces the one stored through the admin API");
            }
            routes.insert(r.key(), r);
        }
        let mut rules = BTreeMap::new();
        for r in stored_rules
            .into_iter()
            .filter(|r| r.origin == Origin::AdminApi)
        {
            rules.insert(r.target.clone(), r);
        }
        for r in boot.rules {
            rules.insert(r.target.clone(), r);
        }
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
            Some(p) => Some(load_geoip(p).map_err(AdminError::FailedPrecondition)?),
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
                .map_err(AdminError::Internal)?;
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
                    return Err(AdminError::InvalidArgument(Invalid::new(
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
        // Rewrite the store so it holds exactly the merged state.
        let mut ops = Vec::new();
        let txn = store.db().begin_write().map_err(StoreError::other)?;
        for t in [
            db::LISTENERS,
            db::ROUTES,
            db::FIREWALL_RULES,
            db::FIREWALL_LIMITS,
            db::CERTIFICATES,
            db::L7_POLICIES,
        ] {
            txn.delete_table(t).map_err(StoreError::other)?;
            txn.open_table(t).map_err(StoreError::other)?;
        }
        txn.commit().map_err(StoreError::other)?;
        for l in listeners.values() {
            ops.push(Op::Put(db::LISTENERS, l.name.clone().into_bytes(), l));
        }
        for r in routes.values() {
            ops.push(Op::Put(
                db::ROUTES,
                db::route_key(&r.listener, r.hostname.as_str()),
                r,
            ));
        }
        for r in rules.values() {
            ops.push(Op::Put(db::FIREWALL_RULES, r.target.key(), r));
        }
        ops.push(Op::Put(db::FIREWALL_LIMITS, b"limits".to_vec(), &limits));
        for c in certificates.values() {
            ops.push(Op::Put(
                db::CERTIFICATES,
                c.stored.name.clone().into_bytes(),
                &c.stored,
            ));
        }
        for p in policies.values() {
            ops.push(Op::Put(db::L7_POLICIES, p.id.clone().into_bytes(), p));
        }
        db::apply(store, &ops)?;
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

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Builds and publishes the next snapshot (and listener set) from `inner`.
    fn publish(&self, inner: &mut Inner, firewall_changed: bool) {
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
        let replaced = self.published.snapshot.swap(Arc::new(snap));
        {
            let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
            retired.push(replaced);
            retired.retain(|s| Arc::strong_count(s) > 1);
        }
        self.published.listeners.store(Arc::new(ListenerSet {
            listeners: inner.bound.values().cloned().collect(),
        }));
        self.published.changes.send_replace(inner.generation);
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
        let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        retired.retain(|s| Arc::strong_count(s) > 1);
        retired.len()
    }

    /// Stops accepting on every listener (shutdown); L7 connections close
    /// once their open requests finish.
    pub fn close_listeners(&self) {
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
        self.published.changes.send_replace(inner.generation);
    }

    fn refuse_config_owned(&self, what: &str, origin: Origin) -> Result<(), AdminError> {
        if origin == Origin::ConfigFile {
            return Err(AdminError::FailedPrecondition(format!(
                "{what} is defined in the config file {}; change it there",
                self.config_file.display()
            )));
        }
        Ok(())
    }

    // ------------------------------------------------------------ listeners

    pub fn listeners(&self) -> Vec<ListenerSpec> {
        self.lock().listeners.values().cloned().collect()
    }

    pub fn listener(&self, name: &str) -> Result<ListenerSpec, AdminError> {
        self.lock()
            .listeners
            .get(name)
            .cloned()
            .ok_or_else(|| AdminError::NotFound(format!("no listener `{name}`")))
    }

    pub fn upsert_listener(&self, mut spec: ListenerSpec) -> Result<ListenerSpec, AdminError> {
        spec.origin = Origin::AdminApi;
        spec.validate()?;
        let mut inner = self.lock();
        if let Some(existing) = inner.listeners.get(&spec.name) {
            self.refuse_config_owned(&format!("listener `{}`", spec.name), existing.origin)?;
            if *existing == spec {
                return Ok(spec);
            }
        }
        if let Some(h) = &spec.default_route
            && !inner.routes.contains_key(&(spec.name.clone(), h.clone()))
        {
            return Err(Invalid::new(
                "listener.default_route",
                format!("no route `{h}` on listener `{}`", spec.name),
            )
            .into());
        }
        let rebind = inner
            .bound
            .get(&spec.name)
            .is_none_or(|b| b.address != spec.address);
        let bound = if rebind {
            Some(bind(&spec, self.published.workers)?)
        } else {
            None
        };
        db::apply(
            &self.store,
            &[Op::Put(
                db::LISTENERS,
                spec.name.clone().into_bytes(),
                &spec,
            )],
        )?;
        if let Some(b) = bound {
            inner.bound.insert(spec.name.clone(), b);
        }
        inner.listeners.insert(spec.name.clone(), spec.clone());
        self.publish(&mut inner, false);
        Ok(spec)
    }

    pub fn remove_listener(&self, name: &str, force: bool) -> Result<bool, AdminError> {
        let mut inner = self.lock();
        let Some(existing) = inner.listeners.get(name) else {
            return Ok(false);
        };
        self.refuse_config_owned(&format!("listener `{name}`"), existing.origin)?;
        let routes: Vec<_> = inner
            .routes
            .keys()
            .filter(|(l, _)| l == name)
            .cloned()
            .collect();
        if !routes.is_empty() && !force {
            return Err(AdminError::FailedPrecondition(format!(
                "listener `{name}` still has {} route(s); remove them or pass force",
                routes.len()
            )));
        }
        if let Some(r) = routes.iter().find_map(|k| inner.routes.get(k)) {
            self.refuse_config_owned(&format!("route `{}`", r.hostname), r.origin)?;
        }
        let mut ops = vec![Op::Delete(db::LISTENERS, name.as_bytes().to_vec())];
        for (l, h) in &routes {
            ops.push(Op::Delete(db::ROUTES, db::route_key(l, h.as_str())));
        }
        let dropped: Vec<String> = inner
            .policies
            .values()
            .filter(|p| p.listener == name)
            .map(|p| p.id.clone())
            .collect();
        for id in &dropped {
            ops.push(Op::Delete(db::L7_POLICIES, id.clone().into_bytes()));
        }
        db::apply(&self.store, &ops)?;
        for id in &dropped {
            inner.policies.remove(id);
        }
        for k in &routes {
            inner.routes.remove(k);
        }
        inner.listeners.remove(name);
        inner.bound.remove(name);
        self.publish(&mut inner, false);
        Ok(true)
    }

    // --------------------------------------------------------------- routes

    /// The listener a request means: the named one, or the only one.
    fn resolve_listener(inner: &Inner, name: &str) -> Result<String, AdminError> {
        if name.is_empty() {
            let mut names = inner.listeners.keys();
            return match (names.next(), names.next()) {
                (Some(only), None) => Ok(only.clone()),
                (None, _) => Err(AdminError::FailedPrecondition(
                    "there are no listeners".to_owned(),
                )),
                _ => Err(Invalid::new(
                    "route.listener",
                    "required when there is more than one listener",
                )
                .into()),
            };
        }
        if inner.listeners.contains_key(name) {
            Ok(name.to_owned())
        } else {
            Err(AdminError::NotFound(format!("no listener `{name}`")))
        }
    }

    pub fn routes(&self, listener: &str) -> Vec<RouteSpec> {
        self.lock()
            .routes
            .values()
            .filter(|r| listener.is_empty() || r.listener == listener)
            .cloned()
            .collect()
    }

    pub fn route(&self, listener: &str, hostname: &str) -> Result<RouteSpec, AdminError> {
        let inner = self.lock();
        let listener = Self::resolve_listener(&inner, listener)?;
        let host = HostPattern::parse(hostname).map_err(|m| Invalid::new("hostname", m))?;
        inner
            .routes
            .get(&(listener.clone(), host))
            .cloned()
            .ok_or_else(|| {
                AdminError::NotFound(format!("no route `{hostname}` on listener `{listener}`"))
            })
    }

    pub fn upsert_route(&self, mut spec: RouteSpec) -> Result<RouteSpec, AdminError> {
        let mut inner = self.lock();
        spec.listener = Self::resolve_listener(&inner, &spec.listener)?;
        spec.origin = Origin::AdminApi;
        spec.validate()?;
        if let Some(l7) = &spec.l7
            && !inner.certificates.contains_key(&l7.certificate)
        {
            return Err(Invalid::new(
                "route.l7.certificate",
                format!(
                    "no certificate `{}`; store it first (PutCertificate / mcctl proxy certs put)",
                    l7.certificate
                ),
            )
            .into());
        }
        if let Some(existing) = inner.routes.get(&spec.key()) {
            self.refuse_config_owned(&format!("route `{}`", spec.hostname), existing.origin)?;
            if *existing == spec {
                return Ok(spec);
            }
        }
        // Policies only apply to L7; a route turned L4 loses them.
        let dropped: Vec<String> = if spec.mode == RouteMode::L4 {
            Self::policies_of(&inner, &spec.listener, &spec.hostname)
        } else {
            Vec::new()
        };
        let mut ops = vec![Op::Put(
            db::ROUTES,
            db::route_key(&spec.listener, spec.hostname.as_str()),
            &spec,
        )];
        for id in &dropped {
            ops.push(Op::Delete(db::L7_POLICIES, id.clone().into_bytes()));
        }
        db::apply(&self.store, &ops)?;
        for id in &dropped {
            inner.policies.remove(id);
        }
        inner.routes.insert(spec.key(), spec.clone());
        self.publish(&mut inner, false);
        Ok(spec)
    }

    pub fn remove_route(&self, listener: &str, hostname: &str) -> Result<bool, AdminError> {
        let mut inner = self.lock();
        let listener = Self::resolve_listener(&inner, listener)?;
        let host = HostPattern::parse(hostname).map_err(|m| Invalid::new("hostname", m))?;
        let key = (listener.clone(), host);
        let Some(existing) = inner.routes.get(&key) else {
            return Ok(false);
        };
        self.refuse_config_owned(&format!("route `{hostname}`"), existing.origin)?;
        if inner
            .listeners
            .get(&listener)
            .and_then(|l| l.default_route.as_ref())
            == Some(&key.1)
        {
            return Err(AdminError::FailedPrecondition(format!(
                "route `{hostname}` is listener `{listener}`'s default route"
            )));
        }
        let dropped = Self::policies_of(&inner, &listener, &key.1);
        let mut ops = vec![Op::Delete(
            db::ROUTES,
            db::route_key(&listener, key.1.as_str()),
        )];
        for id in &dropped {
            ops.push(Op::Delete(db::L7_POLICIES, id.clone().into_bytes()));
        }
        db::apply(&self.store, &ops)?;
        for id in &dropped {
            inner.policies.remove(id);
        }
        inner.routes.remove(&key);
        self.publish(&mut inner, false);
        Ok(true)
    }

    /// Replaces every API-owned route of `listener` with `specs`: one
    /// transaction, one snapshot. All or nothing.
    pub fn replace_routes(
        &self,
        listener: &str,
        specs: Vec<RouteSpec>,
    ) -> Result<ReplaceSummary, AdminError> {
        if specs.len() > MAX_ROUTES_PER_REPLACE {
            return Err(Invalid::new(
                "routes",
                format!("at most {MAX_ROUTES_PER_REPLACE} routes per request"),
            )
            .into());
        }
        let mut inner = self.lock();
        let listener = Self::resolve_listener(&inner, listener)?;
        let mut next: BTreeMap<(String, HostPattern), RouteSpec> = BTreeMap::new();
        for (i, mut spec) in specs.into_iter().enumerate() {
            if !spec.listener.is_empty() && spec.listener != listener {
                return Err(Invalid::new(
                    format!("routes[{i}].listener"),
                    format!("must be empty or `{listener}`"),
                )
                .into());
            }
            spec.listener = listener.clone();
            spec.origin = Origin::AdminApi;
            spec.validate().map_err(|e| {
                Invalid::new(
                    format!("routes[{i}].{}", e.field.trim_start_matches("route.")),
                    e.message,
                )
            })?;
            if let Some(l7) = &spec.l7
                && !inner.certificates.contains_key(&l7.certificate)
            {
                return Err(Invalid::new(
                    format!("routes[{i}].l7.certificate"),
                    format!("no certificate `{}`", l7.certificate),
                )
                .into());
            }
            if inner
                .routes
                .get(&spec.key())
                .is_some_and(|r| r.origin == Origin::ConfigFile)
            {
                return Err(AdminError::FailedPrecondition(format!(
                    "routes[{i}]: route `{}` is defined in the config file {}; change it there",
                    spec.hostname,
                    self.config_file.display()
                )));
            }
            let key = spec.key();
            if next.insert(key, spec).is_some() {
                return Err(Invalid::new(format!("routes[{i}].hostname"), "listed twice").into());
            }
        }
        let current: Vec<(String, HostPattern)> = inner
            .routes
            .iter()
            .filter(|(k, r)| k.0 == listener && r.origin == Origin::AdminApi)
            .map(|(k, _)| k.clone())
            .collect();
        let removed: Vec<_> = current.iter().filter(|k| !next.contains_key(*k)).collect();
        if let Some(default) = inner
            .listeners
            .get(&listener)
            .and_then(|l| l.default_route.clone())
            && removed.iter().any(|k| k.1 == default)
        {
            return Err(AdminError::FailedPrecondition(format!(
                "route `{default}` is listener `{listener}`'s default route; keep it in the table"
            )));
        }
        let mut summary = ReplaceSummary::default();
        let mut ops = Vec::new();
        let mut dropped_policies = Vec::new();
        for k in &removed {
            ops.push(Op::Delete(db::ROUTES, db::route_key(&k.0, k.1.as_str())));
            dropped_policies.extend(Self::policies_of(&inner, &k.0, &k.1));
            summary.removed += 1;
        }
        for (k, spec) in &next {
            match inner.routes.get(k) {
                Some(old) if old == spec => summary.unchanged += 1,
                Some(_) => {
                    summary.changed += 1;
                    if spec.mode == RouteMode::L4 {
                        dropped_policies.extend(Self::policies_of(&inner, &k.0, &k.1));
                    }
                    ops.push(Op::Put(db::ROUTES, db::route_key(&k.0, k.1.as_str()), spec));
                }
                None => {
                    summary.added += 1;
                    ops.push(Op::Put(db::ROUTES, db::route_key(&k.0, k.1.as_str()), spec));
                }
            }
        }
        for id in &dropped_policies {
            ops.push(Op::Delete(db::L7_POLICIES, id.clone().into_bytes()));
        }
        if summary.added + summary.changed + summary.removed == 0 {
            summary.generation = inner.generation;
            return Ok(summary);
        }
        db::apply(&self.store, &ops)?;
        drop(ops);
        let removed: Vec<_> = removed.into_iter().cloned().collect();
        for k in removed {
            inner.routes.remove(&k);
        }
        for id in &dropped_policies {
            inner.policies.remove(id);
        }
        inner.routes.extend(next);
        self.publish(&mut inner, false);
        summary.generation = inner.generation;
        Ok(summary)
    }

    fn policies_of(inner: &Inner, listener: &str, hostname: &HostPattern) -> Vec<String> {
        inner
            .policies
            .values()
            .filter(|p| p.listener == listener && p.hostname == *hostname)
            .map(|p| p.id.clone())
            .collect()
    }

    // --------------------------------------------------------- certificates

    pub fn certificates(&self) -> Vec<StoredCertificate> {
        let mut v: Vec<_> = self
            .lock()
            .certificates
            .values()
            .map(|c| c.stored.clone())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Checks and stores a certificate; routes using it serve it from the next handshake.
    pub fn put_certificate(
        &self,
        name: &str,
        chain_pem: &str,
        key_pem: &str,
    ) -> Result<StoredCertificate, AdminError> {
        crate::model::check_certificate_name("name", name)?;
        let (key, info) = crate::tls::check(
            name,
            chain_pem,
            key_pem,
            &self.roots,
            rustls_pki_types::UnixTime::now(),
        )
        .map_err(|m| {
            let (field, msg) = m.split_once(": ").unwrap_or(("certificate", m.as_str()));
            match field {
                "chain_pem" | "key_pem" => Invalid::new(field, msg),
                _ => Invalid::new("certificate", m.clone()),
            }
        })?;
        let mut inner = self.lock();
        if let Some(existing) = inner.certificates.get(name) {
            self.refuse_config_owned(&format!("certificate `{name}`"), existing.stored.origin)?;
        }
        let stored = StoredCertificate {
            name: name.to_owned(),
            chain_pem: chain_pem.to_owned(),
            key_sealed: self
                .sealer
                .seal(name, key_pem.as_bytes())
                .map_err(AdminError::Internal)?,
            info,
            origin: Origin::AdminApi,
        };
        db::apply(
            &self.store,
            &[Op::Put(db::CERTIFICATES, name.as_bytes().to_vec(), &stored)],
        )?;
        inner.certificates.insert(
            name.to_owned(),
            LoadedCertificate {
                stored: stored.clone(),
                key,
            },
        );
        self.publish(&mut inner, false);
        Ok(stored)
    }

    pub fn remove_certificate(&self, name: &str) -> Result<bool, AdminError> {
        let mut inner = self.lock();
        let Some(existing) = inner.certificates.get(name) else {
            return Ok(false);
        };
        self.refuse_config_owned(&format!("certificate `{name}`"), existing.stored.origin)?;
        if let Some(r) = inner
            .routes
            .values()
            .find(|r| r.l7.as_ref().is_some_and(|l| l.certificate == name))
        {
            return Err(AdminError::FailedPrecondition(format!(
                "certificate `{name}` is used by route `{}` on listener `{}`",
                r.hostname, r.listener
            )));
        }
        db::apply(
            &self.store,
            &[Op::Delete(db::CERTIFICATES, name.as_bytes().to_vec())],
        )?;
        inner.certificates.remove(name);
        self.publish(&mut inner, false);
        Ok(true)
    }

    // ---------------------------------------------------------- L7 policies

    pub fn policies(
        &self,
        listener: &str,
        hostname: &str,
    ) -> Result<Vec<L7PolicySpec>, AdminError> {
        let inner = self.lock();
        let listener = Self::resolve_listener(&inner, listener)?;
        let host = match hostname {
            "" => None,
            h => Some(HostPattern::parse(h).map_err(|m| Invalid::new("hostname", m))?),
        };
        let mut v: Vec<_> = inner
            .policies
            .values()
            .filter(|p| p.listener == listener && host.as_ref().is_none_or(|h| *h == p.hostname))
            .cloned()
            .collect();
        v.sort_by(|a, b| (&a.hostname, a.position).cmp(&(&b.hostname, b.position)));
        Ok(v)
    }

    /// Appends a policy to a route (idempotent on the same rule).
    pub fn add_policy(
        &self,
        listener: &str,
        hostname: &str,
        rule: PolicyRule,
    ) -> Result<L7PolicySpec, AdminError> {
        let rule = rule.validated()?;
        let mut inner = self.lock();
        let listener = Self::resolve_listener(&inner, listener)?;
        let host = HostPattern::parse(hostname).map_err(|m| Invalid::new("policy.hostname", m))?;
        let Some(route) = inner.routes.get(&(listener.clone(), host.clone())) else {
            return Err(AdminError::NotFound(format!(
                "no route `{host}` on listener `{listener}`"
            )));
        };
        if route.mode != RouteMode::L7 {
            return Err(AdminError::FailedPrecondition(format!(
                "route `{host}` is L4: policies need TLS termination (mode l7)"
            )));
        }
        let same_route: Vec<&L7PolicySpec> = inner
            .policies
            .values()
            .filter(|p| p.listener == listener && p.hostname == host)
            .collect();
        if let Some(existing) = same_route.iter().find(|p| p.rule == rule) {
            return Ok((*existing).clone());
        }
        if same_route.len() >= MAX_POLICIES_PER_ROUTE {
            return Err(AdminError::FailedPrecondition(format!(
                "route `{host}` already has {MAX_POLICIES_PER_ROUTE} policies"
            )));
        }
        let position = same_route.iter().map(|p| p.position + 1).max().unwrap_or(0);
        let policy = L7PolicySpec {
            id: new_id(),
            listener,
            hostname: host,
            rule,
            position,
            origin: Origin::AdminApi,
        };
        db::apply(
            &self.store,
            &[Op::Put(
                db::L7_POLICIES,
                policy.id.clone().into_bytes(),
                &policy,
            )],
        )?;
        inner.policies.insert(policy.id.clone(), policy.clone());
        self.publish(&mut inner, false);
        Ok(policy)
    }

    pub fn remove_policy(&self, id: &str) -> Result<bool, AdminError> {
        let mut inner = self.lock();
        if !inner.policies.contains_key(id) {
            return Ok(false);
        }
        db::apply(
            &self.store,
            &[Op::Delete(db::L7_POLICIES, id.as_bytes().to_vec())],
        )?;
        inner.policies.remove(id);
        self.publish(&mut inner, false);
        Ok(true)
    }

    // ------------------------------------------------------------- firewall

    pub fn firewall(&self) -> (Vec<FirewallRule>, Limits, Option<Arc<GeoIpInfo>>) {
        let inner = self.lock();
        (
            inner.rules.values().cloned().collect(),
            inner.limits.limits,
            inner.geoip.clone(),
        )
    }

    pub fn add_rule(
        &self,
        target: RuleTarget,
        comment: String,
    ) -> Result<FirewallRule, AdminError> {
        let mut inner = self.lock();
        if let Some(existing) = inner.rules.get(&target) {
            return Ok(existing.clone());
        }
        if matches!(target, RuleTarget::Country(_)) && inner.geoip.is_none() {
            return Err(AdminError::FailedPrecondition(
                "country rules need a GeoIP database (proxy.firewall.geoip_db in the config file)"
                    .to_owned(),
            ));
        }
        if comment.len() > 256 {
            return Err(Invalid::new("rule.comment", "at most 256 bytes").into());
        }
        let rule = FirewallRule {
            target,
            comment,
            origin: Origin::AdminApi,
        };
        db::apply(
            &self.store,
            &[Op::Put(db::FIREWALL_RULES, rule.target.key(), &rule)],
        )?;
        inner.rules.insert(rule.target.clone(), rule.clone());
        self.publish(&mut inner, true);
        Ok(rule)
    }

    pub fn remove_rule(&self, target: &RuleTarget) -> Result<bool, AdminError> {
        let mut inner = self.lock();
        let Some(existing) = inner.rules.get(target) else {
            return Ok(false);
        };
        self.refuse_config_owned(&format!("firewall rule `{target}`"), existing.origin)?;
        db::apply(&self.store, &[Op::Delete(db::FIREWALL_RULES, target.key())])?;
        inner.rules.remove(target);
        self.publish(&mut inner, true);
        Ok(true)
    }

    pub fn set_limits(&self, limits: Limits) -> Result<Limits, AdminError> {
        limits.validate()?;
        let mut inner = self.lock();
        self.refuse_config_owned("the firewall limits", inner.limits.origin)?;
        let record = LimitsRecord {
            limits,
            origin: Origin::AdminApi,
        };
        db::apply(
            &self.store,
            &[Op::Put(db::FIREWALL_LIMITS, b"limits".to_vec(), &record)],
        )?;
        inner.limits = record;
        self.publish(&mut inner, true);
        Ok(limits)
    }

    /// Re-reads the GeoIP file; on failure the loaded database stays in use.
    pub fn reload_geoip(&self) -> Result<Arc<GeoIpInfo>, AdminError> {
        let mut inner = self.lock();
        let Some(path) = inner.geoip_path.clone() else {
            return Err(AdminError::FailedPrecondition(
                "no GeoIP database is configured (proxy.firewall.geoip_db)".to_owned(),
            ));
        };
        let info = load_geoip(&path).map_err(AdminError::FailedPrecondition)?;
        inner.geoip = Some(info.clone());
        self.publish(&mut inner, true);
        Ok(info)
    }
}

pub const MAX_ROUTES_PER_REPLACE: usize = 100_000;

/// What a [`ProxyState::replace_routes`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplaceSummary {
    pub added: u32,
    pub changed: u32,
    pub removed: u32,
    pub unchanged: u32,
    pub generation: u64,
}

/// A short random id (hex).
fn new_id() -> String {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = [0u8; 8];
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn bind(spec: &ListenerSpec, workers: usize) -> Result<Arc<BoundListener>, AdminError> {
    let sockets = mc_rt::socket::bind_reuseport(spec.address, workers, BACKLOG).map_err(|e| {
        AdminError::FailedPrecondition(format!(
            "listener `{}`: cannot listen on {}: {e}",
            spec.name, spec.address
        ))
    })?;
    let address = sockets
        .first()
        .and_then(|s| s.local_addr().ok())
        .unwrap_or(spec.address);
    Ok(Arc::new(BoundListener {
        name: spec.name.clone(),
        address,
        sockets,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaced_snapshots_are_freed_by_the_sweeper_not_by_their_last_reader() {
        let dir = tempfile::tempdir().expect("dir");
        let section = ProxySection {
            certificate_authorities: Some(Vec::new()),
            ..ProxySection::default()
        };
        let state =
            ProxyState::start(dir.path(), &section, &dir.path().join("x.toml"), 1).expect("start");
        // A connection holds the current snapshot while the table changes.
        let held = state.published.snapshot.load_full();
        state
            .add_rule(
                RuleTarget::parse_ip("192.0.2.1").expect("ip"),
                String::new(),
            )
            .expect("publish");
        assert_eq!(state.sweep_retired(), 1, "kept while a connection holds it");
        assert_eq!(
            Arc::strong_count(&held),
            2,
            "the retired list holds a reference"
        );
        drop(held);
        assert_eq!(state.sweep_retired(), 0, "freed on the admin side");
    }
}
