//! Routes: list, get, upsert, remove, and the all-or-nothing table replace.
//!
//! Invariant: a listener's default route stays in its table, and a route
//! turned L4 (or removed) takes its L7 policies with it in the same commit.

use std::collections::BTreeMap;

use mc_kit::api::ApiError;
use mc_kit::store::json::WriteTx;

use super::state::{Inner, ProxyState};
use super::store as db;
use crate::model::{HostPattern, Invalid, Origin, RouteMode, RouteSpec};

/// The most routes one `ReplaceRoutes` may carry.
pub(crate) const MAX_ROUTES_PER_REPLACE: usize = 100_000;

/// What a [`ProxyState::replace_routes`] did (or, dry run, would do).
#[derive(Debug, Default, Clone)]
pub(crate) struct ReplaceSummary {
    pub(crate) added: u32,
    pub(crate) changed: u32,
    pub(crate) removed: u32,
    pub(crate) unchanged: u32,
    pub(crate) generation: u64,
    /// The hostnames removed, sorted.
    pub(crate) removed_hostnames: Vec<String>,
    /// L7 policies dropped with removed or now-L4 routes.
    pub(crate) policies_removed: u32,
}

/// How [`ProxyState::replace_routes`] treats the listener's other routes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ReplaceMode {
    /// Keep API routes the table does not list (add/replace only).
    pub(crate) merge: bool,
    /// Validate and count; change nothing.
    pub(crate) dry_run: bool,
}

impl ProxyState {
    /// The listener a request means: the named one, or the only one.
    pub(super) fn resolve_listener(inner: &Inner, name: &str) -> Result<String, ApiError> {
        if name.is_empty() {
            let mut names = inner.listeners.keys();
            return match (names.next(), names.next()) {
                (Some(only), None) => Ok(only.clone()),
                (None, _) => Err(ApiError::FailedPrecondition(
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
            Err(ApiError::NotFound(format!("no listener `{name}`")))
        }
    }

    pub(crate) fn routes(&self, listener: &str) -> Vec<RouteSpec> {
        self.lock()
            .routes
            .values()
            .filter(|r| listener.is_empty() || r.listener == listener)
            .cloned()
            .collect()
    }

    pub(crate) fn route(&self, listener: &str, hostname: &str) -> Result<RouteSpec, ApiError> {
        let inner = self.lock();
        let listener = Self::resolve_listener(&inner, listener)?;
        let host = HostPattern::parse(hostname).map_err(|m| Invalid::new("hostname", m))?;
        inner
            .routes
            .get(&(listener.clone(), host))
            .cloned()
            .ok_or_else(|| {
                ApiError::NotFound(format!("no route `{hostname}` on listener `{listener}`"))
            })
    }

    /// Adds or replaces a route; with `create_only`, a route with other
    /// settings already on that hostname is refused instead of replaced.
    pub(crate) fn upsert_route(
        &self,
        mut spec: RouteSpec,
        create_only: bool,
    ) -> Result<RouteSpec, ApiError> {
        let mut inner = self.lock();
        spec.listener = Self::resolve_listener(&inner, &spec.listener)?;
        spec.origin = Origin::AdminApi;
        spec.validate()?;
        if let Some(l) = inner.listeners.get(&spec.listener) {
            spec.check_listener_kind(l.kind)?;
        }
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
            if create_only {
                return Err(ApiError::AlreadyExists(format!(
                    "route `{}` already exists on listener `{}` with other settings",
                    spec.hostname, spec.listener
                )));
            }
        }
        // Policies only apply to L7; a route turned L4 loses them.
        let dropped: Vec<String> = if spec.mode == RouteMode::L4 {
            Self::policies_of(&inner, &spec.listener, &spec.hostname)
        } else {
            Vec::new()
        };
        let tx = WriteTx::begin(&self.store)?;
        tx.put(
            db::ROUTES,
            &db::route_key(&spec.listener, spec.hostname.as_str()),
            &spec,
        )?;
        for id in &dropped {
            tx.delete(db::L7_POLICIES.def(), id.as_bytes())?;
        }
        tx.commit()?;
        for id in &dropped {
            inner.policies.remove(id);
        }
        inner.routes.insert(spec.key(), spec.clone());
        self.publish(&mut inner, false);
        Ok(spec)
    }

    pub(crate) fn remove_route(&self, listener: &str, hostname: &str) -> Result<bool, ApiError> {
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
            return Err(ApiError::FailedPrecondition(format!(
                "route `{hostname}` is listener `{listener}`'s default route"
            )));
        }
        let dropped = Self::policies_of(&inner, &listener, &key.1);
        let tx = WriteTx::begin(&self.store)?;
        tx.delete(db::ROUTES.def(), &db::route_key(&listener, key.1.as_str()))?;
        for id in &dropped {
            tx.delete(db::L7_POLICIES.def(), id.as_bytes())?;
        }
        tx.commit()?;
        for id in &dropped {
            inner.policies.remove(id);
        }
        inner.routes.remove(&key);
        self.publish(&mut inner, false);
        Ok(true)
    }

    /// Replaces every API-owned route of `listener` with `specs` (with
    /// `mode.merge`, only the listed ones): one transaction, one snapshot.
    /// All or nothing; `mode.dry_run` only counts.
    pub(crate) fn replace_routes(
        &self,
        listener: &str,
        specs: Vec<RouteSpec>,
        mode: ReplaceMode,
    ) -> Result<ReplaceSummary, ApiError> {
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
            let kind = inner
                .listeners
                .get(&listener)
                .map(|l| l.kind)
                .unwrap_or_default();
            spec.validate()
                .and_then(|()| spec.check_listener_kind(kind))
                .map_err(|e| {
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
                return Err(ApiError::FailedPrecondition(format!(
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
            .filter(|(k, r)| !mode.merge && k.0 == listener && r.origin == Origin::AdminApi)
            .map(|(k, _)| k.clone())
            .collect();
        let removed: Vec<_> = current.iter().filter(|k| !next.contains_key(*k)).collect();
        if let Some(default) = inner
            .listeners
            .get(&listener)
            .and_then(|l| l.default_route.clone())
            && removed.iter().any(|k| k.1 == default)
        {
            return Err(ApiError::FailedPrecondition(format!(
                "route `{default}` is listener `{listener}`'s default route; keep it in the table"
            )));
        }
        let mut summary = ReplaceSummary::default();
        let mut writes = Vec::new();
        let mut dropped_policies = Vec::new();
        for k in &removed {
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
                    writes.push((db::route_key(&k.0, k.1.as_str()), spec));
                }
                None => {
                    summary.added += 1;
                    writes.push((db::route_key(&k.0, k.1.as_str()), spec));
                }
            }
        }
        summary.removed_hostnames = removed.iter().map(|k| k.1.as_str().to_owned()).collect();
        summary.removed_hostnames.sort();
        summary.policies_removed = u32::try_from(dropped_policies.len()).unwrap_or(u32::MAX);
        if mode.dry_run || summary.added + summary.changed + summary.removed == 0 {
            summary.generation = inner.generation;
            return Ok(summary);
        }
        let tx = WriteTx::begin(&self.store)?;
        for k in &removed {
            tx.delete(db::ROUTES.def(), &db::route_key(&k.0, k.1.as_str()))?;
        }
        for (key, spec) in &writes {
            tx.put(db::ROUTES, key, *spec)?;
        }
        for id in &dropped_policies {
            tx.delete(db::L7_POLICIES.def(), id.as_bytes())?;
        }
        tx.commit()?;
        drop(writes);
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

    pub(super) fn policies_of(
        inner: &Inner,
        listener: &str,
        hostname: &HostPattern,
    ) -> Vec<String> {
        inner
            .policies
            .values()
            .filter(|p| p.listener == listener && p.hostname == *hostname)
            .map(|p| p.id.clone())
            .collect()
    }
}
