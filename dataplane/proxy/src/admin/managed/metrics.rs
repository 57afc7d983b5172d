//! Managed certificates in `/metrics`: seconds to expiry, whether the last
//! attempt failed (the alert), and failed attempts, per certificate.

use std::sync::Arc;

use mc_kit::metrics::{Labels, encode_family as family};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use crate::admin::ProxyState;

/// Registered by the data plane host beside the proxy's own collector.
pub struct ManagedCollector(pub Arc<ProxyState>);

impl std::fmt::Debug for ManagedCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ManagedCollector")
    }
}

impl Collector for ManagedCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let entries = self.0.managed.entries();
        if entries.is_empty() {
            return Ok(());
        }
        let now = mc_kit::clock::unix_now();
        let expiry: Vec<(String, u64)> = {
            let inner = self.0.lock();
            entries
                .iter()
                .map(|e| {
                    let left = inner.certificates.get(&e.spec.name).map_or(0, |c| {
                        c.stored.info.not_after_unix.saturating_sub(now).max(0)
                    });
                    (e.spec.name.clone(), u64::try_from(left).unwrap_or(0))
                })
                .collect()
        };
        let rows = |f: &dyn Fn(usize) -> u64| -> Vec<(Labels<'_>, u64)> {
            entries
                .iter()
                .enumerate()
                .map(|(i, e)| (vec![("certificate", e.spec.name.as_str())], f(i)))
                .collect()
        };
        family(
            &mut enc,
            "proxy_managed_certificate_expiry_seconds",
            "Seconds until the served managed certificate expires (0: expired or none issued)",
            MetricType::Gauge,
            &rows(&|i| expiry.get(i).map_or(0, |x| x.1)),
        )?;
        family(
            &mut enc,
            "proxy_managed_certificate_failing",
            "1 while the last issuance or renewal attempt failed (the old certificate is still served until it expires)",
            MetricType::Gauge,
            &rows(&|i| {
                entries
                    .get(i)
                    .map_or(0, |e| u64::from(e.status.failures > 0))
            }),
        )?;
        family(
            &mut enc,
            "proxy_managed_certificate_renewal_failures",
            "Failed issuance or renewal attempts since the process started",
            MetricType::Counter,
            &rows(&|i| entries.get(i).map_or(0, |e| e.status.failures_total)),
        )
    }
}
