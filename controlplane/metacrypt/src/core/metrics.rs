//! Metacrypt's Prometheus metrics on the control plane's `/metrics` (the
//! process prefixes `mc_`), read at scrape time:
//!
//! - `metacrypt_requests_total{engine, op, outcome}`: every engine
//!   operation through [`Metacrypt::run`]; `op` is the first segment of its
//!   policy sub-path (`encrypt`, `data`, `metadata`…), `outcome` `ok` or
//!   the error's kind (`invalid`, `denied`, `not_found`, `sealed`…).
//! - `metacrypt_sealed`, `metacrypt_initialized` (gauges, 0 or 1).
//! - `metacrypt_unseal_attempts_total{result}` (`ok`, `denied`,
//!   `rate_limited`) and `metacrypt_unseal_failures_total`.
//! - `metacrypt_open_failures_total`: sealed values that did not open.
//! - `metacrypt_acme_rows_tidied_total{kind}` (`order`, `authorization`,
//!   `eab`): expired ACME rows the `pki acme tidy` task removed.
//! - `metacrypt_job_runs_total{job}`, `metacrypt_job_failures_total{job}`:
//!   the jobs loop's tasks and rewrap jobs.
//! - `metacrypt_rewrap_rows{mount, state}` (gauge; `total`, `scanned`,
//!   `resealed`): running rewrap jobs' progress (while unsealed).
//!
//! Invariant: label values are bounded: engines and outcomes are fixed
//! sets, `op` comes from the sub-paths core builds (at most [`MAX_OPS`]
//! per engine, the rest counted as `other`), jobs are the fixed tasks plus
//! one rewrap per mount. Counting takes a read lock and one atomic add.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{PoisonError, RwLock, Weak};

use mc_kit::metrics::{Labels, encode_family as family};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use super::Metacrypt;
use crate::error::CryptError;

/// Distinct `op` values kept per engine.
const MAX_OPS: usize = 64;

/// The `outcome` label's values, in counter order.
const OUTCOMES: [&str; 9] = [
    "ok",
    "invalid",
    "unauthenticated",
    "denied",
    "not_found",
    "conflict",
    "rate_limited",
    "sealed",
    "error",
];

fn outcome<R>(r: &Result<R, CryptError>) -> usize {
    match r {
        Ok(_) => 0,
        Err(CryptError::Invalid(_)) => 1,
        Err(CryptError::Unauthenticated(_) | CryptError::Challenge { .. }) => 2,
        Err(CryptError::Forbidden(_)) => 3,
        Err(CryptError::NotFound(_)) => 4,
        Err(CryptError::AlreadyExists(_) | CryptError::FailedPrecondition(_)) => 5,
        Err(CryptError::RateLimited(_)) => 6,
        Err(CryptError::Unavailable(_)) => 7,
        Err(_) => 8,
    }
}

type Counts = [AtomicU64; OUTCOMES.len()];

/// Engine requests by (engine, op) and outcome.
#[derive(Default)]
pub(crate) struct Requests {
    by: RwLock<HashMap<&'static str, HashMap<String, Counts>>>,
}

impl Requests {
    /// Counts one request of `engine` whose policy sub-path is `sub`.
    pub(crate) fn count<R>(&self, engine: &'static str, sub: &str, r: &Result<R, CryptError>) {
        let op = sub.split('/').next().unwrap_or_default();
        let i = outcome(r);
        {
            let by = self.by.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(c) = by.get(engine).and_then(|ops| ops.get(op)) {
                c[i].fetch_add(1, Relaxed);
                return;
            }
        }
        let mut by = self.by.write().unwrap_or_else(PoisonError::into_inner);
        let ops = by.entry(engine).or_default();
        let op = if ops.len() >= MAX_OPS && !ops.contains_key(op) {
            "other"
        } else {
            op
        };
        ops.entry(op.to_owned()).or_default()[i].fetch_add(1, Relaxed);
    }

    fn rows(&self) -> Vec<(String, String, &'static str, u64)> {
        let by = self.by.read().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        for (engine, ops) in by.iter() {
            for (op, counts) in ops {
                for (i, c) in counts.iter().enumerate() {
                    let n = c.load(Relaxed);
                    if n > 0 {
                        out.push(((*engine).to_owned(), op.clone(), OUTCOMES[i], n));
                    }
                }
            }
        }
        out.sort();
        out
    }
}

/// The collector the host registers; it ends with Metacrypt.
#[derive(Debug)]
pub(crate) struct MetacryptCollector(pub(crate) Weak<Metacrypt>);

impl Collector for MetacryptCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(m) = self.0.upgrade() else {
            return Ok(());
        };
        let requests = m.requests.rows();
        let rows: Vec<(Labels<'_>, u64)> = requests
            .iter()
            .map(|(e, o, r, n)| {
                (
                    vec![("engine", e.as_str()), ("op", o.as_str()), ("outcome", *r)],
                    *n,
                )
            })
            .collect();
        family(
            &mut enc,
            "metacrypt_requests",
            "Engine requests, by engine, operation and outcome",
            MetricType::Counter,
            &rows,
        )?;
        let status = m.barrier.status().ok();
        let gauge = |b: bool| vec![(Vec::new(), u64::from(b))];
        family(
            &mut enc,
            "metacrypt_sealed",
            "1 while sealed or uninitialized, 0 while unsealed",
            MetricType::Gauge,
            &gauge(status.as_ref().is_none_or(|s| s.sealed)),
        )?;
        family(
            &mut enc,
            "metacrypt_initialized",
            "1 once the barrier is initialized",
            MetricType::Gauge,
            &gauge(status.as_ref().is_some_and(|s| s.initialized)),
        )?;
        let unseal = crate::barrier::unseal_counts();
        let attempts: Vec<(Labels<'_>, u64)> = unseal
            .iter()
            .map(|(result, n)| (vec![("result", *result)], *n))
            .collect();
        family(
            &mut enc,
            "metacrypt_unseal_attempts",
            "Unseal attempts (passphrase, share or key file), by result",
            MetricType::Counter,
            &attempts,
        )?;
        let failed = unseal
            .iter()
            .filter(|(r, _)| *r != "ok")
            .map(|(_, n)| n)
            .sum();
        family(
            &mut enc,
            "metacrypt_unseal_failures",
            "Unseal attempts refused (wrong material or rate-limited)",
            MetricType::Counter,
            &[(Vec::new(), failed)],
        )?;
        family(
            &mut enc,
            "metacrypt_open_failures",
            "Sealed values that did not open",
            MetricType::Counter,
            &[(Vec::new(), crate::barrier::open_failures())],
        )?;
        let tidied: Vec<(Labels<'_>, u64)> = crate::engines::pki::acme::tidy::tidied()
            .into_iter()
            .map(|(k, n)| (vec![("kind", k)], n))
            .collect();
        family(
            &mut enc,
            "metacrypt_acme_rows_tidied",
            "Expired ACME rows the tidy task removed, by kind (order, authorization, eab)",
            MetricType::Counter,
            &tidied,
        )?;
        let tasks = m.jobs.list();
        let runs: Vec<(Labels<'_>, u64)> = tasks
            .iter()
            .map(|t| (vec![("job", t.name.as_str())], t.runs))
            .collect();
        let failures: Vec<(Labels<'_>, u64)> = tasks
            .iter()
            .map(|t| (vec![("job", t.name.as_str())], t.failures))
            .collect();
        family(
            &mut enc,
            "metacrypt_job_runs",
            "Runs of background tasks and jobs, by job",
            MetricType::Counter,
            &runs,
        )?;
        family(
            &mut enc,
            "metacrypt_job_failures",
            "Failed runs of background tasks and jobs, by job",
            MetricType::Counter,
            &failures,
        )?;
        let jobs = m.jobs().map(|v| v.jobs).unwrap_or_default();
        let mut rewrap: Vec<(Labels<'_>, u64)> = Vec::new();
        for j in &jobs {
            let mount = j.mount.as_str();
            rewrap.push((vec![("mount", mount), ("state", "total")], j.rows_total));
            rewrap.push((vec![("mount", mount), ("state", "scanned")], j.rows_scanned));
            rewrap.push((
                vec![("mount", mount), ("state", "resealed")],
                j.rows_resealed,
            ));
        }
        family(
            &mut enc,
            "metacrypt_rewrap_rows",
            "Running DEK rewrap jobs: rows in scope, scanned and resealed, by mount",
            MetricType::Gauge,
            &rewrap,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_engine_op_and_outcome_with_bounded_ops() {
        let r = Requests::default();
        r.count("kv", "data/app/db", &Ok::<(), CryptError>(()));
        r.count("kv", "data/other", &Ok::<(), CryptError>(()));
        r.count::<()>("kv", "data/x", &Err(CryptError::NotFound(String::new())));
        r.count::<()>("transit", "encrypt/k", &Err(crate::error::sealed()));
        for i in 0..100 {
            r.count("transit", &format!("op{i}/k"), &Ok::<(), CryptError>(()));
        }
        let rows = r.rows();
        let get = |e: &str, o: &str, out: &str| {
            rows.iter()
                .find(|(a, b, c, _)| a == e && b == o && *c == out)
                .map(|r| r.3)
        };
        assert_eq!(get("kv", "data", "ok"), Some(2));
        assert_eq!(get("kv", "data", "not_found"), Some(1));
        assert_eq!(get("transit", "encrypt", "sealed"), Some(1));
        let transit_ops: std::collections::BTreeSet<_> = rows
            .iter()
            .filter(|r| r.0 == "transit")
            .map(|r| r.1.clone())
            .collect();
        assert_eq!(transit_ops.len(), MAX_OPS + 1, "{transit_ops:?}");
        assert!(transit_ops.contains("other"));
    }
}
