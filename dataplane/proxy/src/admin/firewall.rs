//! The firewall: rules, limits and the GeoIP database.
//!
//! Invariant: a firewall change publishes a snapshot with a rebuilt
//! [`FirewallState`](crate::firewall::FirewallState); limits are validated
//! before they are stored.

use std::path::Path;
use std::sync::Arc;

use mc_kit::api::ApiError;
use mc_kit::clock::unix_now;
use mc_kit::store::json::WriteTx;
use serde::{Deserialize, Serialize};

use super::state::{Inner, ProxyState};
use super::store as db;
use crate::firewall::{FirewallRule, GeoIpInfo, Limits, RuleTarget};
use crate::model::{Invalid, Origin};

/// The stored limits and who owns them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(super) struct LimitsRecord {
    pub(super) limits: Limits,
    pub(super) origin: Origin,
}

pub(super) fn load_geoip(path: &Path) -> Result<Arc<GeoIpInfo>, String> {
    let db = mc_firewall::GeoIp::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Arc::new(GeoIpInfo {
        db,
        path: path.to_owned(),
        loaded_at_unix: unix_now(),
    }))
}

impl ProxyState {
    pub(crate) fn firewall(&self) -> (Vec<FirewallRule>, Limits, Option<Arc<GeoIpInfo>>) {
        let inner = self.lock();
        (
            inner.rules.values().cloned().collect(),
            inner.limits.limits,
            inner.geoip.clone(),
        )
    }

    pub(crate) fn add_rule(
        &self,
        target: RuleTarget,
        comment: String,
    ) -> Result<FirewallRule, ApiError> {
        let mut inner = self.lock();
        if let Some(existing) = inner.rules.get(&target) {
            return Ok(existing.clone());
        }
        if matches!(target, RuleTarget::Country(_)) {
            Self::geoip_loaded(&inner)?;
        }
        if comment.len() > 256 {
            return Err(Invalid::new("rule.comment", "at most 256 bytes").into());
        }
        let rule = FirewallRule {
            target,
            comment,
            origin: Origin::AdminApi,
        };
        let tx = WriteTx::begin(&self.store)?;
        tx.put(db::FIREWALL_RULES, &rule.target.key(), &rule)?;
        tx.commit()?;
        inner.rules.insert(rule.target.clone(), rule.clone());
        self.publish(&mut inner, true);
        Ok(rule)
    }

    pub(crate) fn remove_rule(&self, target: &RuleTarget) -> Result<bool, ApiError> {
        let mut inner = self.lock();
        let Some(existing) = inner.rules.get(target) else {
            return Ok(false);
        };
        self.refuse_config_owned(&format!("firewall rule `{target}`"), existing.origin)?;
        let tx = WriteTx::begin(&self.store)?;
        tx.delete(db::FIREWALL_RULES.def(), &target.key())?;
        tx.commit()?;
        inner.rules.remove(target);
        self.publish(&mut inner, true);
        Ok(true)
    }

    pub(crate) fn set_limits(&self, limits: Limits) -> Result<Limits, ApiError> {
        limits.validate()?;
        let mut inner = self.lock();
        self.refuse_config_owned("the firewall limits", inner.limits.origin)?;
        let record = LimitsRecord {
            limits,
            origin: Origin::AdminApi,
        };
        let tx = WriteTx::begin(&self.store)?;
        tx.put(db::FIREWALL_LIMITS, db::LIMITS_KEY, &record)?;
        tx.commit()?;
        inner.limits = record;
        self.publish(&mut inner, true);
        Ok(limits)
    }

    /// Re-reads the GeoIP file; on failure the loaded database stays in use.
    /// Country rules need a loaded GeoIP database; the error says how to get one.
    pub(crate) fn require_geoip(&self) -> Result<(), ApiError> {
        Self::geoip_loaded(&self.lock())
    }

    fn geoip_loaded(inner: &Inner) -> Result<(), ApiError> {
        if inner.geoip.is_some() {
            return Ok(());
        }
        Err(ApiError::FailedPrecondition(match &inner.geoip_path {
            None => "country rules need a GeoIP database, and none is configured: set \
                     `geoip_db` under [proxy.firewall] in the config file to a MaxMind \
                     country database (.mmdb, e.g. GeoLite2-Country.mmdb) and restart"
                .to_owned(),
            Some(path) => format!(
                "country rules need a GeoIP database: {} is configured but not loaded; \
                 fix the file, then run `mcctl proxy geoip-reload`",
                path.display()
            ),
        }))
    }

    pub(crate) fn reload_geoip(&self) -> Result<Arc<GeoIpInfo>, ApiError> {
        let mut inner = self.lock();
        let Some(path) = inner.geoip_path.clone() else {
            return Err(ApiError::FailedPrecondition(
                "no GeoIP database is configured (proxy.firewall.geoip_db)".to_owned(),
            ));
        };
        let info = load_geoip(&path).map_err(ApiError::FailedPrecondition)?;
        inner.geoip = Some(info.clone());
        self.publish(&mut inner, true);
        Ok(info)
    }
}
