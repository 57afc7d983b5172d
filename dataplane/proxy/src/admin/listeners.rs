//! Listeners: list, get, upsert (binding the sockets before the commit) and remove.
//!
//! Invariant: a listener's sockets are bound before its spec is committed,
//! so a listener in the store is one the workers can accept on.

use std::collections::HashMap;
use std::sync::Arc;

use mc_kit::api::ApiError;
use mc_kit::store::json::WriteTx;

use super::state::ProxyState;
use super::store as db;
use crate::model::{Invalid, ListenerSpec, Origin};
use crate::published::BoundListener;

const BACKLOG: i32 = 4096;

impl ProxyState {
    pub(crate) fn listeners(&self) -> Vec<ListenerSpec> {
        self.lock().listeners.values().cloned().collect()
    }

    pub(crate) fn listener(&self, name: &str) -> Result<ListenerSpec, ApiError> {
        self.lock()
            .listeners
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("no listener `{name}`")))
    }

    pub(crate) fn upsert_listener(&self, mut spec: ListenerSpec) -> Result<ListenerSpec, ApiError> {
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
        if let Some((r, e)) = inner
            .routes
            .values()
            .filter(|r| r.listener == spec.name)
            .find_map(|r| r.check_listener_kind(spec.kind).err().map(|e| (r, e)))
        {
            return Err(Invalid::new(
                "listener.kind",
                format!(
                    "route `{}` on `{}` does not fit this kind of listener ({}); remove it first",
                    r.hostname, spec.name, e.message
                ),
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
        let tx = WriteTx::begin(&self.store)?;
        tx.put(db::LISTENERS, spec.name.as_bytes(), &spec)?;
        tx.commit()?;
        if let Some(b) = bound {
            inner.bound.insert(spec.name.clone(), b);
        }
        inner.listeners.insert(spec.name.clone(), spec.clone());
        self.publish(&mut inner, false);
        Ok(spec)
    }

    pub(crate) fn remove_listener(&self, name: &str, force: bool) -> Result<bool, ApiError> {
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
            return Err(ApiError::FailedPrecondition(format!(
                "listener `{name}` still has {} route(s); remove them or pass force",
                routes.len()
            )));
        }
        if let Some(r) = routes.iter().find_map(|k| inner.routes.get(k)) {
            self.refuse_config_owned(&format!("route `{}`", r.hostname), r.origin)?;
        }
        let dropped: Vec<String> = inner
            .policies
            .values()
            .filter(|p| p.listener == name)
            .map(|p| p.id.clone())
            .collect();
        let tx = WriteTx::begin(&self.store)?;
        tx.delete(db::LISTENERS.def(), name.as_bytes())?;
        for (l, h) in &routes {
            tx.delete(db::ROUTES.def(), &db::route_key(l, h.as_str()))?;
        }
        for id in &dropped {
            tx.delete(db::L7_POLICIES.def(), id.as_bytes())?;
        }
        tx.commit()?;
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
}

pub(super) fn bind(spec: &ListenerSpec, workers: usize) -> Result<Arc<BoundListener>, ApiError> {
    let sockets = mc_rt::socket::bind_reuseport(spec.address, workers, BACKLOG).map_err(|e| {
        ApiError::FailedPrecondition(format!(
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

/// Listening sockets a predecessor process handed over (the binary upgrade),
/// by listener name: [`ProxyState::start`](super::ProxyState) accepts on them
/// instead of binding, so the kernel's accept queues carry over.
#[derive(Debug, Default)]
pub struct HandedOver(HashMap<String, Vec<std::net::TcpListener>>);

impl HandedOver {
    /// Adds one of `listener`'s sockets (in the order the predecessor held them).
    pub fn push(&mut self, listener: String, socket: std::net::TcpListener) {
        self.0.entry(listener).or_default().push(socket);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The sockets for `spec` if they listen on its address (a listener whose
    /// address changed in the config is bound afresh).
    pub(super) fn take(&mut self, spec: &ListenerSpec) -> Option<Arc<BoundListener>> {
        let sockets = self.0.remove(&spec.name)?;
        let address = sockets.first().and_then(|s| s.local_addr().ok())?;
        let same = address == spec.address
            || (spec.address.port() == 0 && address.ip() == spec.address.ip());
        if !same {
            tracing::warn!(listener = %spec.name, was = %address, now = %spec.address, "handed-over listener moved; binding the new address");
            return None;
        }
        Some(Arc::new(BoundListener {
            name: spec.name.clone(),
            address,
            sockets,
        }))
    }

    /// Names of sockets no listener took (closed when this is dropped).
    pub(super) fn leftover(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}
