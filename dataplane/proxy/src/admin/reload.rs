//! Config reload in the running process (SIGHUP, `ReloadConfig`).
//!
//! The file's `[proxy]` entries are merged with the stored state by the same
//! rule as at a start or in an upgrade's successor (`ProxyState::plan`: the
//! file wins for what it declares, API entries stay), then applied like an
//! admin API change: listeners that are new or moved are bound first, the
//! store is rewritten in one transaction, and one new snapshot is published.
//! A listener on the same address keeps its sockets (nothing is re-bound),
//! and counters, limiters and backend health carry over as for any publish.
//!
//! Invariant: a refused reload (a bad file, a certificate that does not
//! verify, an address that cannot be bound, a released store) returns before
//! the commit and changes nothing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use mc_kit::api::ApiError;

use super::config::ProxySection;
use super::listeners::bind;
use super::state::{ProxyState, write_merged};

/// What a reload published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloaded {
    pub generation: u64,
    pub listeners: usize,
    pub routes: usize,
}

/// Re-reads the process's config file and applies it: the host implements
/// it (it owns the file's other sections); `ReloadConfig` calls it.
pub trait Reload: Send + Sync + 'static {
    fn reload(&self) -> Result<Reloaded, ApiError>;
}

/// Whether a bound listener already listens where `spec` asks (port 0: any port).
fn same_address(bound: SocketAddr, wanted: SocketAddr) -> bool {
    bound == wanted || (wanted.port() == 0 && bound.ip() == wanted.ip())
}

impl ProxyState {
    /// Merges `section` (the file as it is now) with the stored state and
    /// publishes the result; see the module header.
    pub fn reload(&self, section: &ProxySection) -> Result<Reloaded, ApiError> {
        let boot = section.bootstrap()?;
        let mut inner = self.lock();
        if self.published.draining.load(Ordering::Relaxed) {
            return Err(ApiError::FailedPrecondition(
                "the proxy is shutting down or handing over; not reloading".into(),
            ));
        }
        let mut next = Self::plan(
            &self.store,
            boot,
            &self.config_file,
            &self.sealer,
            &self.roots,
        )?;
        let mut bound = HashMap::new();
        for spec in next.listeners.values() {
            let b = match inner.bound.get(&spec.name) {
                Some(b) if same_address(b.address, spec.address) => b.clone(),
                _ => bind(spec, self.published.workers)?,
            };
            bound.insert(spec.name.clone(), b);
        }
        write_merged(&self.store, &next)?;
        next.generation = inner.generation;
        next.bound = bound;
        *inner = next;
        self.publish(&mut inner, true);
        Ok(Reloaded {
            generation: inner.generation,
            listeners: inner.listeners.len(),
            routes: inner.routes.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_keeps_its_sockets_only_on_the_same_address() {
        let a: SocketAddr = "127.0.0.1:8443".parse().expect("addr");
        assert!(same_address(a, a));
        assert!(same_address(a, "127.0.0.1:0".parse().expect("addr")));
        assert!(!same_address(a, "127.0.0.1:8444".parse().expect("addr")));
        assert!(!same_address(a, "127.0.0.2:8443".parse().expect("addr")));
    }
}
