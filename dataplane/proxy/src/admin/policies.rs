//! L7 policies: per-route rules, applied in position order.
//!
//! Invariant: policies exist only on L7 routes, at most
//! [`MAX_POLICIES_PER_ROUTE`] per route; adding the same rule twice is a no-op.

use mc_kit::api::ApiError;
use mc_kit::store::json::WriteTx;

use super::state::ProxyState;
use super::store as db;
use crate::model::{
    HostPattern, Invalid, L7PolicySpec, MAX_POLICIES_PER_ROUTE, Origin, PolicyRule, RouteMode,
};

impl ProxyState {
    pub(crate) fn policies(
        &self,
        listener: &str,
        hostname: &str,
    ) -> Result<Vec<L7PolicySpec>, ApiError> {
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
    pub(crate) fn add_policy(
        &self,
        listener: &str,
        hostname: &str,
        rule: PolicyRule,
    ) -> Result<L7PolicySpec, ApiError> {
        let rule = rule.validated()?;
        let mut inner = self.lock();
        let listener = Self::resolve_listener(&inner, listener)?;
        let host = HostPattern::parse(hostname).map_err(|m| Invalid::new("policy.hostname", m))?;
        let Some(route) = inner.routes.get(&(listener.clone(), host.clone())) else {
            return Err(ApiError::NotFound(format!(
                "no route `{host}` on listener `{listener}`"
            )));
        };
        if route.mode != RouteMode::L7 {
            return Err(ApiError::FailedPrecondition(format!(
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
            return Err(ApiError::FailedPrecondition(format!(
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
        let tx = WriteTx::begin(&self.store)?;
        tx.put(db::L7_POLICIES, policy.id.as_bytes(), &policy)?;
        tx.commit()?;
        inner.policies.insert(policy.id.clone(), policy.clone());
        self.publish(&mut inner, false);
        Ok(policy)
    }

    pub(crate) fn remove_policy(&self, id: &str) -> Result<bool, ApiError> {
        let mut inner = self.lock();
        if !inner.policies.contains_key(id) {
            return Ok(false);
        }
        let tx = WriteTx::begin(&self.store)?;
        tx.delete(db::L7_POLICIES.def(), id.as_bytes())?;
        tx.commit()?;
        inner.policies.remove(id);
        self.publish(&mut inner, false);
        Ok(true)
    }
}

/// A short random id (hex).
fn new_id() -> String {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = [0u8; 8];
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
